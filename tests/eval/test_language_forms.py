"""Forms for every language of the seeds' benchmarks (polyvlm/eval/prompts/language_forms.yaml): answer phrases,
yes/no words, Arabic option letters and the instructions of polyvlm's own tasks; where a language has none, the
English form is used and results.json / results.md say so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polyvlm.eval.cli import main as eval_main
from polyvlm.eval.extract import ANSWER_PHRASES, YES_NO, english_fallback, extract_choice, extract_yes_no
from polyvlm.eval.tasks import resolve
from polyvlm.eval.tasks.jsonl import CAPTION_PROMPT, VQA_PROMPT, YESNO_PROMPT
from polyvlm.eval.tasks.mcq import INSTRUCTIONS
from polyvlm.eval.tasks.published import PUBLISHED

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "eval"
OPTS = {"A": "x1", "B": "y2", "C": "z3", "D": "w4"}
# Languages whose forms are not known (well enough) to write: they get English, and the results say so.
NO_PHRASES = {"quz"}
NO_INSTRUCTIONS = {"am", "br", "eu", "ga", "ig", "jv", "mi", "min", "mn", "my", "om", "quz", "rw", "si", "su", "yo"}


def benchmark_languages() -> set[str]:
    resolve([])  # registers the built-in tasks
    return {lang for name in PUBLISHED.names() for lang in PUBLISHED.get(name).describe()["languages"]} - {"mul"}


def test_every_benchmark_language_has_its_forms_or_is_named_as_english() -> None:
    langs = benchmark_languages()
    assert len(langs) >= 57  # PangeaBench's 47 and the text tasks' (MMMLU, XStoryCloze, FLORES, TyDi QA)
    assert {lang for lang in langs if lang not in ANSWER_PHRASES} == NO_PHRASES
    for table in (INSTRUCTIONS, VQA_PROMPT, YESNO_PROMPT, CAPTION_PROMPT):
        assert {lang for lang in langs if lang not in table} == NO_INSTRUCTIONS
    assert english_fallback(sorted(langs), "phrases") == sorted(NO_PHRASES)
    # CVQA's 30-odd languages all have answer phrases now (Oromo, Amharic, Kinyarwanda, Sinhala, ...)
    cvqa = PUBLISHED.get("cvqa")()
    assert cvqa.english_fallback(cvqa.describe()["languages"]) == {"answer_phrases": []}


@pytest.mark.parametrize(("reply", "want"), [
    ("الإجابة هي ب", "B"), ("الجواب: ج", "C"), ("الإجابة الصحيحة هي (د)", "D"), ("پاسخ: الف", "A"),
    ("بالتأكيد", None),  # ب inside a word is not an option letter
    ("Die richtige Antwort ist B.", "B"), ("Odpověď je C", "C"), ("Svaret er D", "D"), ("Svaret är A", "A"),
    ("Η σωστή απάντηση είναι Β", "B"), ("Відповідь: C", "C"), ("Правилният отговор е D", "D"),
    ("Deebiin B", "B"), ("Igisubizo ni C", "C"), ("Ang tamang sagot ay D", "D"), ("Erantzuna B da", "B"),
    ("Oikea vastaus on A", "A"), ("A helyes válasz: C", "C"), ("Poprawna odpowiedź to B", "B"),
    ("መልሱ C ነው", "C"), ("योग्य उत्तर आहे D", "D"), ("Het juiste antwoord is A", "A"),
])
def test_answer_phrases_and_arabic_letters(reply: str, want: str | None) -> None:
    assert extract_choice(reply, OPTS).answer == want


@pytest.mark.parametrize(("reply", "language", "want"), [
    ("Hindi po.", "fil", "no"), ("Oo, tama.", "fil", "yes"), ("Igen.", "hu", "yes"), ("Nem.", "hu", "no"),
    ("Kyllä", "fi", "yes"), ("Ei.", "fi", "no"), ("Yego", "rw", "yes"), ("Oya", "rw", "no"), ("أيوه", "arz", "yes"),
    ("Ναι", "el", "yes"), ("Όχι", "el", "no"), ("Ano", "cs", "yes"), ("Ez, ez da.", "eu", "no"), ("ඔව්", "si", "yes"),
    ("بله", "fa", "yes"), ("نہیں", "ur", "no"), ("होय", "mr", "yes"), ("Тийм", "mn", "yes"),
    # Filipino "hindi" (no) and Basque "ez" stay with their language: an English reply naming Hindi is a yes
    ("Hindi is spoken there, yes.", "en", "yes"), ("Ez", "en", None),
])
def test_yes_no_words(reply: str, language: str, want: str | None) -> None:
    assert extract_yes_no(reply, language).answer == want


def test_a_language_without_forms_gets_english_and_the_results_say_so(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    rows = [{"id": "fil0", "question": "Pula ba ang larawan?", "image": "images/red.png",
             "answer": True, "language": "fil"},
            {"id": "quz0", "question": "Pukachu kay?", "image": "images/red.png",
             "answer": False, "language": "quz"}]
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    spec = tmp_path / "yn.yaml"
    spec.write_text(f"name: yn\ntype: yesno\ndata: {data}\nimage_root: {ASSETS}\n", encoding="utf-8")
    preds = tmp_path / "p.jsonl"
    preds.write_text('{"id": "fil0", "prediction": "Oo."}\n{"id": "quz0", "prediction": "No."}\n', encoding="utf-8")
    out = tmp_path / "out"
    assert eval_main(["--predictions", str(preds), "--tasks", str(spec), "--out", str(out)]) == 0
    t = json.loads((out / "results.json").read_text(encoding="utf-8"))["tasks"]["yn"]
    assert t["metrics"]["accuracy"]["by_language"] == {"fil": 100.0, "quz": 100.0}
    assert t["english_fallback"] == {"instructions": ["quz"], "yes_no": ["quz"]}
    samples = {json.loads(x)["id"]: json.loads(x) for x in (out / "samples_yn.jsonl").read_text().splitlines()}
    assert samples["fil0"]["input"].endswith("Pula ba ang larawan?\nSumagot ng oo o hindi.")
    assert samples["quz0"]["input"].endswith("Pukachu kay?\nAnswer yes or no.")
    md = (out / "results.md").read_text(encoding="utf-8")
    assert "yn: no instructions of its own for quz: English ones used" in md
    assert "yn: no yes no of its own for quz: English ones used" in md


def test_every_yes_no_language_has_both_words() -> None:
    assert all(yes and no for yes, no in YES_NO.values())
