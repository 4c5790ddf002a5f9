"""The "answered in the question's language" rate (polyvlm/eval/metrics/language.py, py3langid): every language of
every open-ended built-in task is either identified or reported `unchecked` (never passed), through the results."""

from __future__ import annotations

from pathlib import Path

from published_fixtures import xm100_repo
from test_published import data, run  # noqa: F401  (the fixture and helpers)

from polyvlm.data.langs import identifies
from polyvlm.eval.metrics.language import language_rates
from polyvlm.eval.tasks import resolve
from polyvlm.eval.tasks.published import PUBLISHED

# py3langid (langid.py's model, 140-odd languages) has no Maori model: XM100's `mi` captions stay unchecked.
UNCHECKED = {"mi"}


def open_ended_languages() -> dict[str, list[str]]:
    resolve([])  # registers the built-in tasks
    return {name: [x for x in PUBLISHED.get(name).describe()["languages"] if x != "mul"]
            for name in PUBLISHED.names() if getattr(PUBLISHED.get(name), "open_ended", False)}


def test_every_open_ended_language_is_identified_or_named_unchecked() -> None:
    tasks = open_ended_languages()
    # XM100, MaXM, FLORES, TyDi QA, M-LlavaBench, xChatBench (and the English-only judged chats)
    assert {"xm100", "maxm", "flores", "tydiqa", "m_llavabench", "xchatbench"} <= set(tasks)
    langs = {x for v in tasks.values() for x in v}
    assert {x for x in langs if not identifies(x)} == UNCHECKED
    # the codes the benchmarks use where the identifier's differ: Filipino (tl), Norwegian (nb/no), Quechua (qu)
    assert all(identifies(x) for x in ("fil", "no", "quz", "he", "rw"))


def test_an_uncovered_language_is_unchecked_not_passed() -> None:
    got = language_rates(["He tangata e noho ana i runga i te tūru.", "A man is sitting on a chair.",
                          "Huk qhari tiyanapi tiyachkan.", "Umugabo yicaye ku ntebe."], ["mi", "mi", "quz", "rw"])
    assert got["unchecked"] == ["mi"] and "mi" not in got["rate"] and "mi" not in got["checked"]
    assert got["rate"] == {"quz": 100.0, "rw": 100.0}


def test_xm100_reports_the_rate_per_language_and_maori_unchecked(tmp_path: Path, data: Path) -> None:  # noqa: F811
    xm100_repo(data, {"mi": ["he kurī e oma ana i te one"], "quz": ["huk allqu pampapi phawachkan"],
                      "uk": ["собака біжить по піску", "червоний автобус на вулиці"]})
    preds = {("mi", 0): "He kurī e oma ana i runga i te one.", ("quz", 0): "Huk allqu pampapi phawachkan.",
             ("uk", 0): "Собака біжить по піску біля моря.", ("uk", 1): "A red bus is parked on the street."}
    records = [{"task": "xm100", "split": s, "row": r, "prediction": p} for (s, r), p in preds.items()]
    rates = run(tmp_path, "xm100", records)["tasks"]["xm100"]["answered_in_language"]
    assert rates["rate"] == {"quz": 100.0, "uk": 50.0} and rates["checked"] == {"quz": 1, "uk": 2}
    assert rates["unchecked"] == ["mi"] and rates["identifier"] == "py3langid"
    md = (tmp_path / "out" / "results.md").read_text(encoding="utf-8")
    assert ("xm100: answered in the question's language (py3langid): quz 100.0 (n=1), uk 50.0 (n=2); "
            "unchecked (no py3langid model): mi") in md


def test_the_rate_counts_close_languages_as_the_synth_checks_do() -> None:
    """One identifier (polyvlm.data.langs) for eval and synth: py3langid's Danish for a Norwegian reply and its
    Serbian for a Croatian one count as answered in the question's language, as the translation check counts them."""
    got = language_rates(["Jeg kan godt lide denne mad, fordi den smager bedre end i går.",
                          "Ovo je vrlo dobra hrana i volim je jesti svaki dan.", "Huk qhari tiyanapi tiyachkan.",
                          "I like this food because it tastes better than yesterday."], ["no", "hr", "quz", "sw"])
    assert got["rate"] == {"hr": 100.0, "no": 100.0, "quz": 100.0, "sw": 0.0} and got["unchecked"] == []
