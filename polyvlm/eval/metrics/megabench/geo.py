"""MEGA-Bench's geo_proximity_location_dict (lmms_eval/tasks/megabench/metrics/scoring/geo_proximity.py): the
distance between two geocoded places, with the geocoding read from a cache file first so scoring runs offline.

The official geocodes with Nominatim (OpenStreetMap) online. Here each query is looked up in the JSON file
named by POLYVLM_GEOCODE_CACHE, {key: [lat, lon] or null (Nominatim found nothing)}, keys made by
`geocode_key`; only with POLYVLM_GEOCODE_ONLINE=1 are missing queries sent to Nominatim (geopy, the official
user agent and query form, one request a second), and the answers written back to the cache file
atomically."""

from __future__ import annotations

import json
import math
import os
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from polyvlm.eval.metrics.megabench import log, register, requires

CACHE_ENV = "POLYVLM_GEOCODE_CACHE"
ONLINE_ENV = "POLYVLM_GEOCODE_ONLINE"
USER_AGENT = f"vlm-mega-benchmark_{hex(random.getrandbits(128))[2:]}"
MIN_DELAY_S = 1.0  # Nominatim's usage policy: at most one request a second


class GeocodeUnavailable(ImportError):
    """A place that is neither in the geocoding cache nor may be looked up online.

    An ImportError so that score_field lets it through (as it does a missing package) instead of scoring 0:
    the score cannot be computed on this machine without the cache."""


def geocode_key(query: dict[str, str]) -> str:
    """The cache key of a Nominatim structured query, e.g. '{"city": "Paris", "country": "France"}'."""
    return json.dumps(query, ensure_ascii=False, sort_keys=True)


def place_queries(place: dict[str, str]) -> list[dict[str, str]]:
    """The structured queries a place {country, province_or_state, municipality} may need, in the order they
    are tried: what a prepared cache file must hold (`geocode_key` of each) to score it offline."""
    country, state, city = place["country"], place["province_or_state"], place["municipality"]
    return [{"country": country, "state": state, "city": city}, {"country": country, "city": city}]


class Geocoder:
    """Coordinates of structured queries: the cache file, then (if `online`) Nominatim."""

    def __init__(self, cache_path: str | None, online: bool) -> None:
        self.path = Path(cache_path) if cache_path else None
        self.online = online
        self.cache: dict[str, list[float] | None] = {}
        if self.path is not None and self.path.exists():
            self.cache = json.loads(self.path.read_text(encoding="utf-8"))
        self._nominatim: Any = None
        self._last = 0.0
        self._lock = threading.Lock()

    def __call__(self, query: dict[str, str]) -> tuple[float, float] | None:
        key = geocode_key(query)
        if key in self.cache:
            hit = self.cache[key]
            return None if hit is None else (float(hit[0]), float(hit[1]))
        if not self.online:
            raise GeocodeUnavailable(
                f"geo_proximity_location_dict: no coordinates for the place {key}: it is not in the "
                f"geocoding cache ({CACHE_ENV}={self.path or 'unset'}). Add it to that JSON file as "
                f"{{key: [lat, lon] or null}}, or set {ONLINE_ENV}=1 to look it up on OpenStreetMap "
                f"Nominatim (network) and cache it")
        with self._lock:
            coords = self._lookup(query)
            self.cache[key] = None if coords is None else list(coords)
            self._write_back(key)
        return coords

    def _lookup(self, query: dict[str, str]) -> tuple[float, float] | None:
        if self._nominatim is None:
            geocoders = requires("geopy.geocoders", "geo_proximity_location_dict")
            self._nominatim = geocoders.Nominatim(user_agent=USER_AGENT)
        wait = self._last + MIN_DELAY_S - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        try:
            location = self._nominatim.geocode(query=query)
        finally:
            self._last = time.monotonic()
        return None if location is None else (location.latitude, location.longitude)

    def _write_back(self, key: str) -> None:
        """Merge this entry into the file as it is now (another process may have added some), then replace
        the file."""
        if self.path is None:
            return
        current = json.loads(self.path.read_text(encoding="utf-8")) if self.path.exists() else {}
        current[key] = self.cache[key]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(current, f, ensure_ascii=False, indent=0, sort_keys=True)
        os.replace(tmp, self.path)


_GEOCODERS: dict[tuple[str | None, bool], Geocoder] = {}


def default_geocoder() -> Geocoder:
    """The Geocoder the environment asks for (one per cache path and online setting)."""
    setting = (os.environ.get(CACHE_ENV) or None, os.environ.get(ONLINE_ENV, "") == "1")
    if setting not in _GEOCODERS:
        _GEOCODERS[setting] = Geocoder(*setting)
    return _GEOCODERS[setting]


def location_to_coords(country: str, province_or_state: str, municipality: str) -> tuple[float, float] | None:
    """(lat, lon) of country/state/city, else of country/city (the state may be non-standard); None if a part
    is empty or neither query finds the place."""
    if country == "" or province_or_state == "" or municipality == "":
        return None
    geocoder = default_geocoder()
    first, without_state = place_queries(
        {"country": country, "province_or_state": province_or_state, "municipality": municipality})
    coords = geocoder(first)
    return coords if coords is not None else geocoder(without_state)


def proximity_score(guess: tuple[float, float], actual: tuple[float, float], k: float = 100) -> float:
    """exp(-d / k), d the geodesic (WGS-84) distance in km: 0.5 at about 69 km for k = 100."""
    distance = requires("geopy.distance", "geo_proximity_location_dict").distance
    return math.exp(-distance(guess, actual).km / k)


@register("geo_proximity_location_dict")
def geo_proximity_location_dict(response: Any, answer: Any) -> float:
    """proximity_score of two places, each a dict {country, province_or_state, municipality}; 0 if the
    response is not such a dict or either place has no coordinates (a missing cache entry raises
    GeocodeUnavailable)."""
    try:
        guess = location_to_coords(**response)
    except GeocodeUnavailable:
        raise
    except Exception:  # noqa: BLE001 - the official: an unreadable response (or a failed lookup) scores 0
        return 0
    if guess is None:
        log.warning("geo_proximity_location_dict: no coordinates for the response %r", response)
        return 0
    actual = location_to_coords(**answer)
    if actual is None:
        log.warning("geo_proximity_location_dict: no coordinates for the answer %r", answer)
        return 0
    return proximity_score(guess, actual)
