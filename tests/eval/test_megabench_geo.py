"""MEGA-Bench geo_proximity_location_dict against the reference (lmms-eval 0.7.3's
lmms_eval/tasks/megabench/metrics/scoring/geo_proximity.py), offline: ours reads a geocoding cache file, the
reference's Nominatim geocoder is replaced by a fake that answers from the same table."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from megabench_reference import reference

from polyvlm.eval.metrics.megabench import FIELD_METRICS, score_field
from polyvlm.eval.metrics.megabench import geo as ours

pytest.importorskip("geopy")

# structured Nominatim query -> (lat, lon), or None where Nominatim finds nothing
PLACES = {
    ("France", "Île-de-France", "Paris"): (48.8588897, 2.3200410),
    ("France", "Auvergne-Rhône-Alpes", "Lyon"): (45.7578137, 4.8320114),
    ("France", "Ile de France", "Paris"): None,  # a non-standard state: found by country and city only
    ("France", None, "Paris"): (48.8588897, 2.3200410),
    ("Japan", "Tokyo", "Shibuya"): (35.6645956, 139.6987107),
    ("日本", "東京都", "渋谷区"): (35.6645956, 139.6987107),
    ("Atlantis", "Nowhere", "Lost City"): None,
    ("Atlantis", None, "Lost City"): None,
    ("France", "Grand Est", "Strasbourg"): (48.584614, 7.7507127),
}


def _query(key: tuple) -> dict:
    country, state, city = key
    return {"country": country, "city": city} if state is None else {"country": country, "state": state,
                                                                      "city": city}


def _key_of(query: dict) -> tuple:
    return (query["country"], query.get("state"), query["city"])


def place(country: str, state: str, city: str) -> dict:
    return {"country": country, "province_or_state": state, "municipality": city}


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "geocode.json"
    path.write_text(json.dumps({ours.geocode_key(_query(k)): (None if v is None else list(v))
                                for k, v in PLACES.items()}), encoding="utf-8")
    monkeypatch.setenv(ours.CACHE_ENV, str(path))
    monkeypatch.delenv(ours.ONLINE_ENV, raising=False)
    return path


@pytest.fixture()
def ref(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)  # its requests_cache session opens an sqlite file in the working directory
    module = reference("scoring.geo_proximity")

    class FakeNominatim:
        def geocode(self, query):
            hit = PLACES[_key_of(query)]
            return None if hit is None else SimpleNamespace(latitude=hit[0], longitude=hit[1])

    monkeypatch.setattr(module, "geolocator", FakeNominatim())
    return module.GeoProximityLocationDict.match


PARIS = place("France", "Île-de-France", "Paris")
CASES = [
    (PARIS, PARIS), (place("France", "Auvergne-Rhône-Alpes", "Lyon"), PARIS),
    (place("France", "Ile de France", "Paris"), PARIS), (place("Japan", "Tokyo", "Shibuya"), PARIS),
    (place("日本", "東京都", "渋谷区"), place("Japan", "Tokyo", "Shibuya")),
    (place("Atlantis", "Nowhere", "Lost City"), PARIS), (PARIS, place("Atlantis", "Nowhere", "Lost City")),
    (place("", "Île-de-France", "Paris"), PARIS), (place("France", "", "Paris"), PARIS),
    (PARIS, place("France", "", "")),
    (place("France", "Grand Est", "Strasbourg"), place("France", "Auvergne-Rhône-Alpes", "Lyon")),
    ("Paris, France", PARIS), (None, PARIS), ({"country": "France", "municipality": "Paris"}, PARIS),
    ({**PARIS, "street": "Rue de Rivoli"}, PARIS), (PARIS, "Paris"), ({}, PARIS),
]


@pytest.mark.parametrize("response, answer", CASES)
def test_geo_proximity_parity(cache: Path, ref, response, answer) -> None:
    try:
        expected = ref(response, answer)
    except Exception:  # noqa: BLE001 - as evaluator.py: an exception scores 0
        expected = 0
    got = score_field(FIELD_METRICS.get("geo_proximity_location_dict"), response, answer)
    assert got == pytest.approx(expected, abs=1e-9)


def test_absolute(cache: Path) -> None:
    assert ours.geo_proximity_location_dict(PARIS, PARIS) == 1.0
    lyon = ours.geo_proximity_location_dict(place("France", "Auvergne-Rhône-Alpes", "Lyon"), PARIS)
    # Paris-Lyon: ~393.6 km on the WGS-84 ellipsoid, score exp(-d/100)
    assert 393 < -100 * math.log(lyon) < 394
    # found by the second query (country and city)
    assert ours.geo_proximity_location_dict(place("France", "Ile de France", "Paris"), PARIS) == 1.0


def test_place_queries_are_the_cache_keys(cache: Path) -> None:
    keys = [ours.geocode_key(q) for q in ours.place_queries(place("France", "Ile de France", "Paris"))]
    assert keys == ['{"city": "Paris", "country": "France", "state": "Ile de France"}',
                    '{"city": "Paris", "country": "France"}']
    assert all(k in json.loads(cache.read_text(encoding="utf-8")) for k in keys)


def test_missing_place_is_a_clear_error(cache: Path) -> None:
    metric = FIELD_METRICS.get("geo_proximity_location_dict")
    with pytest.raises(ours.GeocodeUnavailable, match="Narnia.*POLYVLM_GEOCODE_CACHE"):
        # not scored 0: the score is unknown
        score_field(metric, place("Narnia", "West", "Cair Paravel"), PARIS)
    with pytest.raises(ours.GeocodeUnavailable, match="Gondor"):
        score_field(metric, PARIS, place("Gondor", "Anórien", "Minas Tirith"))


def test_online_lookup_is_cached_atomically(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import geopy.geocoders

    calls = []

    class FakeNominatim:
        def __init__(self, user_agent: str) -> None:
            assert user_agent.startswith("vlm-mega-benchmark_")

        def geocode(self, query):
            calls.append(query)
            if query.get("state") == "Bretagne":
                return None  # not found with the state: the official retries without it
            return SimpleNamespace(latitude=48.1113387, longitude=-1.6800198)

    monkeypatch.setattr(geopy.geocoders, "Nominatim", FakeNominatim)
    monkeypatch.setattr(ours, "MIN_DELAY_S", 0.0)
    monkeypatch.setenv(ours.ONLINE_ENV, "1")
    rennes = place("France", "Bretagne", "Rennes")
    assert ours.geo_proximity_location_dict(rennes, rennes) == 1.0
    assert calls == [{"country": "France", "state": "Bretagne", "city": "Rennes"},
                     {"country": "France", "city": "Rennes"}]  # later lookups come from the cache
    written = json.loads(cache.read_text(encoding="utf-8"))
    assert written[ours.geocode_key(calls[0])] is None
    assert written[ours.geocode_key(calls[1])] == [48.1113387, -1.6800198]
    assert len(written) == len(PLACES) + 2
    assert not [p for p in os.listdir(cache.parent) if p.endswith(".tmp")]
    # a fresh offline geocoder now finds it in the file
    monkeypatch.delenv(ours.ONLINE_ENV)
    ours._GEOCODERS.clear()
    assert ours.geo_proximity_location_dict(rennes, PARIS) == pytest.approx(
        ours.proximity_score((48.1113387, -1.6800198), PLACES[("France", "Île-de-France", "Paris")]))


def test_registered() -> None:
    assert FIELD_METRICS.get("geo_proximity_location_dict").call == "pair"
