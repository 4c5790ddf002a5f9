"""Forms for every language of the seeds' benchmarks (polyvlm/eval/prompts/language_forms.yaml): answer phrases,
yes/no words, Arabic option letters and the instructions of polyvlm's own tasks; where a language has none, the
English form is used and results.json / results.md say so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polyvlm.eval.cli import main as eval_main
from polyvlm.eval.extract import (
    ANSWER_PHRASES,
    YES_NO,
    Extraction,
    english_fallback,
    extract_choice,
    extract_yes_no,
)
from polyvlm.eval.tasks import resolve
from polyvlm.eval.tasks.jsonl import CAPTION_PROMPT, VQA_PROMPT, YESNO_PROMPT
from polyvlm.eval.tasks.mcq import INSTRUCTIONS
from polyvlm.eval.tasks.published import PUBLISHED

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "eval"
OPTS = {"A": "x1", "B": "y2", "C": "z3", "D": "w4"}
# Languages whose forms are not known (well enough) to write: they get English, and the results say so.
# Cusco Quechua has none; Burmese has answer phrases and yes/no words only; Igbo its yes/no words and instruction;
# Irish no yes/no (a question is answered with its verb); Yoruba no multiple-choice instruction.
NO_PHRASES = {"quz"}
NO_INSTRUCTIONS = {"mcq": {"ig", "my", "quz", "yo"}, "vqa": {"ig", "my", "quz"}, "yesno": {"ga", "my", "quz"},
                   "caption": {"ig", "my", "quz"}}
NO_YES_NO = {"ga", "quz"}


def benchmark_languages() -> set[str]:
    resolve([])  # registers the built-in tasks
    return {lang for name in PUBLISHED.names() for lang in PUBLISHED.get(name).describe()["languages"]} - {"mul"}


def test_every_benchmark_language_has_its_forms_or_is_named_as_english() -> None:
    langs = benchmark_languages()
    assert len(langs) >= 57  # PangeaBench's 47 and the text tasks' (MMMLU, XStoryCloze, FLORES, TyDi QA)
    assert {lang for lang in langs if lang not in ANSWER_PHRASES} == NO_PHRASES
    for kind, table in (("mcq", INSTRUCTIONS), ("vqa", VQA_PROMPT), ("yesno", YESNO_PROMPT),
                        ("caption", CAPTION_PROMPT)):
        assert {lang for lang in langs if lang not in table} == NO_INSTRUCTIONS[kind], kind
    assert english_fallback(sorted(langs), "phrases") == sorted(NO_PHRASES)
    assert english_fallback(sorted(langs), "yes_no") == sorted(NO_YES_NO)
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


# Another letter named before the answer: only the language's answer phrase decides (else "ambiguous").
@pytest.mark.parametrize(("reply", "want"), [
    ("A ስህተት ነው፤ መልሱ C ነው።", "C"), ("A ስህተት ነው። ትክክለኛው መልስ D ነው", "D"),  # am: መልሱ is መልስ + -u
    ("A? Ar respont reizh eo B.", "B"), ("A ez. Erantzun zuzena C da.", "C"), ("Ní A é. An freagra ceart ná D.", "D"),
    ("A abụghị. Azịza ya bụ C.", "C"), ("Ehara i te A. Ko te whakautu tika ko B.", "B"), ("Indak A. Jawabannyo C.", "C"),
    ("A မဟုတ်ပါ။ အဖြေမှာ D", "D"), ("A miti. Deebiin sirrii C.", "C"), ("Si A. Igisubizo nyacyo ni D.", "D"),
    ("A වැරදියි. නිවැරදි පිළිතුර D.", "D"), ("Dudu A, wangsulanipun B.", "B"), ("Lain A. Jawaban anu bener nyaéta C.", "C"),
    ("A kọ́. Ìdáhùn náà ni D.", "D"), ("A биш. Зөв хариулт нь B.", "B"),
])
def test_answer_phrase_decides_when_another_letter_is_named(reply: str, want: str) -> None:
    assert extract_choice(reply, OPTS) == Extraction(want, "phrase")


@pytest.mark.parametrize(("reply", "language", "want"), [
    ("Hindi po.", "fil", "no"), ("Oo, tama.", "fil", "yes"), ("Igen.", "hu", "yes"), ("Nem.", "hu", "no"),
    ("Kyllä", "fi", "yes"), ("Ei.", "fi", "no"), ("Yego", "rw", "yes"), ("Oya", "rw", "no"), ("أيوه", "arz", "yes"),
    ("Ναι", "el", "yes"), ("Όχι", "el", "no"), ("Ano", "cs", "yes"), ("Ez, ez da.", "eu", "no"), ("ඔව්", "si", "yes"),
    ("بله", "fa", "yes"), ("نہیں", "ur", "no"), ("होय", "mr", "yes"), ("Тийм", "mn", "yes"),
    # Filipino "hindi" (no) and Basque "ez" stay with their language: an English reply naming Hindi is a yes
    ("Hindi is spoken there, yes.", "en", "yes"), ("Ez", "en", None),
    # Javanese "ora" (no) is Italian "now", Yoruba "rara" (no) Italian "rare", Oromo "miti" Swahili "trees"
    ("Ora sì, è rosso.", None, "yes"), ("Una cosa rara, sì.", None, "yes"), ("Miti ni mingi, ndiyo.", None, "yes"),
    ("Ora.", "jv", "no"), ("Bẹ́ẹ̀ kọ́, kò pupa.", "yo", "no"), ("Miti.", "om", "no"), ("Mba.", "ig", "no"),
    ("B\u1eb9\u0301\u1eb9\u0300 ni", "yo", "yes"), ("Be\u0301\u0323e\u0300\u0323 ni", "yo", "yes"),  # marks in either order
    ("ဟုတ်ကဲ့။", "my", "yes"), ("မဟုတ်ပါဘူး။", "my", "no"), ("Āe.", "mi", "yes"), ("Henteu.", "su", "no"),
    ("Indak.", "min", "no"), ("Nann.", "br", "no"), ("የለም", "am", "no"),
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
    # Cusco Quechua's `quz` reads as its macrolanguage `qu`, as `polyvlm data` and training show it
    assert t["metrics"]["accuracy"]["by_language"] == {"fil": 100.0, "qu": 100.0}
    assert t["english_fallback"] == {"instructions": ["qu"], "yes_no": ["qu"]}
    samples = {json.loads(x)["id"]: json.loads(x) for x in (out / "samples_yn.jsonl").read_text().splitlines()}
    assert samples["fil0"]["input"].endswith("Pula ba ang larawan?\nSumagot ng oo o hindi.")
    assert samples["quz0"]["input"].endswith("Pukachu kay?\nAnswer yes or no.")
    md = (out / "results.md").read_text(encoding="utf-8")
    assert "yn: no instructions of its own for qu: English ones used" in md
    assert "yn: no yes no of its own for qu: English ones used" in md


def test_every_yes_no_language_has_both_words() -> None:
    assert all(yes and no for yes, no in YES_NO.values())


def _run(tmp_path: Path, kind: str, rows: list[dict], preds: dict[str, str]) -> tuple[dict, dict[str, dict]]:
    """Evaluate `preds` on a JSONL task of `kind` through the CLI: (the task's results, samples by id)."""
    data = tmp_path / f"{kind}.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    spec = tmp_path / f"{kind}.yaml"
    spec.write_text(f"name: t_{kind}\ntype: {kind}\ndata: {data}\nimage_root: {ASSETS}\n", encoding="utf-8")
    pred_file = tmp_path / f"{kind}_preds.jsonl"
    pred_file.write_text("".join(json.dumps({"id": k, "prediction": v}, ensure_ascii=False) + "\n"
                                 for k, v in preds.items()), encoding="utf-8")
    out = tmp_path / f"out_{kind}"
    assert eval_main(["--predictions", str(pred_file), "--tasks", str(spec), "--out", str(out)]) == 0
    task = json.loads((out / "results.json").read_text(encoding="utf-8"))["tasks"][f"t_{kind}"]
    lines = (out / f"samples_t_{kind}.jsonl").read_text(encoding="utf-8").splitlines()
    return task, {json.loads(x)["id"]: json.loads(x) for x in lines}


# (language, question, gold, reply in that language, the instruction the prompt must end with). CVQA asks these
# languages' questions (am, br, ga, jv, min, mn, om, rw, si, su, ig), XChatBench Kinyarwanda, XM100 Maori, MMMLU
# Yoruba, XStoryCloze Basque: polyvlm's own tasks in them get their instructions, and replies are read in them.
YESNO_CASES = [
    ("am", "ቀይ ነው?", True, "አዎ፣ ቀይ ነው።", "አዎ ወይም አይደለም ብለው ይመልሱ።"),
    ("br", "Ruz eo?", False, "Nann.", "Respontit gant ya pe nann."),
    ("eu", "Gorria da?", False, "Ez, urdina da.", "Erantzun bai ala ez."),
    ("ig", "Ọ bụ uhie?", True, "Ee.", "Zaa ee ma ọ bụ mba."),
    ("jv", "Abang?", False, "Ora, biru.", "Jawaben iya utawa ora."),
    ("mi", "He whero?", True, "Āe.", "Whakautua ki te āe, ki te kāo rānei."),
    ("min", "Sirah?", False, "Indak.", "Jawab iyo atau indak."),
    ("mn", "Улаан уу?", True, "Тийм, улаан.", "Тийм эсвэл үгүй гэж хариулна уу."),
    ("om", "Diimaadhaa?", "eeyyee", "Eeyyee.", "Eeyyee yookiin lakki jedhii deebisi."),
    ("rw", "Ni umutuku?", False, "Oya.", "Subiza yego cyangwa oya."),
    ("si", "රතු ද?", True, "ඔව්.", "ඔව් හෝ නැහැ ලෙස පිළිතුරු දෙන්න."),
    ("su", "Beureum?", False, "Henteu, bulao.", "Jawab enya atawa henteu."),
    ("yo", "Ṣé pupa ni?", False, "Rárá o.", "Dáhùn bẹ́ẹ̀ ni tàbí bẹ́ẹ̀ kọ́."),
    ("ga", "An bhfuil sé dearg?", True, "Yes.", "Answer yes or no."),  # Irish: English, and the results say so
]


def test_new_languages_yes_no_prompt_and_reading_end_to_end(tmp_path: Path) -> None:
    rows = [{"id": lang, "question": q, "image": "images/red.png", "answer": gold, "language": lang}
            for lang, q, gold, _, _ in YESNO_CASES]
    task, samples = _run(tmp_path, "yesno", rows, {lang: reply for lang, _, _, reply, _ in YESNO_CASES})
    for lang, q, _, _, instruction in YESNO_CASES:
        assert samples[lang]["input"].endswith(f"{q}\n{instruction}"), lang
    # every reply is read in its own language (Javanese "Ora", Yoruba "Rárá", Basque "Ez" are own_only words)
    assert task["metrics"]["accuracy"]["by_language"] == {lang: 100.0 for lang, *_ in YESNO_CASES}
    assert task["english_fallback"] == {"instructions": ["ga"], "yes_no": ["ga"]}


def test_new_languages_vqa_and_caption_instructions_end_to_end(tmp_path: Path) -> None:
    vqa = {"rw": "Subiza iki kibazo ukoresheje ijambo rimwe cyangwa interuro ngufi.",
           "mn": "Асуултад нэг үг эсвэл богино хэллэгээр хариулна уу.",
           "ga": "Freagair an cheist le focal amháin nó le frása gearr.", "ig": "Answer the question using a single "
           "word or phrase."}
    rows = [{"id": k, "question": "Q?", "image": "images/red.png", "answer": "x", "language": k} for k in vqa]
    task, samples = _run(tmp_path, "vqa", rows, {k: "x" for k in vqa})
    assert {k: s["input"].split("Q?\n")[-1] for k, s in samples.items()} == vqa
    assert task["english_fallback"] == {"instructions": ["ig"]}
    caption = {"am": "ይህን ምስል በአንድ ዓረፍተ ነገር ይግለጹ።", "si": "මෙම රූපය එක් වාක්‍යයකින් විස්තර කරන්න.",
               "mi": "Whakamāramatia tēnei whakaahua ki tētahi rerenga kōrero kotahi.",
               "quz": "Describe this image in one sentence."}
    rows = [{"id": k, "image": "images/red.png", "captions": ["x"], "language": k} for k in caption]
    task, samples = _run(tmp_path, "caption", rows, {k: "x" for k in caption})
    assert {k: s["input"].split("\n")[-1] for k, s in samples.items()} == caption
    assert task["english_fallback"] == {"instructions": ["qu"]}  # `quz` reads as its macrolanguage, as in training


def test_new_languages_mcq_instruction_and_answer_phrase_end_to_end(tmp_path: Path) -> None:
    """A VLMEvalKit-layout TSV per language (`bench_<lang>.tsv`): the instruction is the language's, and a reply
    naming another letter first is read by the language's answer phrase (without it the reply is ambiguous)."""
    cases = {  # language: (instruction, reply, the letter it gives)
        "am": ("በትክክለኛው አማራጭ ፊደል በቀጥታ ይመልሱ።", "A ስህተት ነው፤ መልሱ C ነው።", "C"),
        "mn": ("Зөв сонголтын үсгээр шууд хариулна уу.", "A биш. Зөв хариулт нь B.", "B"),
        "si": ("නිවැරදි විකල්පයේ අකුරෙන් කෙලින්ම පිළිතුරු දෙන්න.", "A වැරදියි. නිවැරදි පිළිතුර D.", "D"),
        "su": ("Jawab langsung ku hurup pilihan anu bener.", "Lain A. Jawaban anu bener nyaéta C.", "C"),
        "jv": ("Jawaben langsung nganggo huruf pilihan sing bener.", "Dudu A, wangsulanipun B.", "B"),
        "yo": ("Answer with the option's letter from the given choices directly.", "A kọ́. Ìdáhùn náà ni D.", "D"),
    }
    data = tmp_path / "tsv"
    data.mkdir()
    for lang, (_, _, gold) in cases.items():
        (data / f"bench_{lang}.tsv").write_text(
            "index\tquestion\tA\tB\tC\tD\tanswer\n" f"0\tQ {lang}?\tx1\ty2\tz3\tw4\t{gold}\n", encoding="utf-8")
    spec = tmp_path / "mc.yaml"
    spec.write_text(f"name: mc\ntype: mcq\ndata: {data}\n", encoding="utf-8")
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps({"id": f"{k}/0", "prediction": v[1]}, ensure_ascii=False) + "\n"
                             for k, v in cases.items()), encoding="utf-8")
    out = tmp_path / "out"
    assert eval_main(["--predictions", str(preds), "--tasks", str(spec), "--out", str(out)]) == 0
    t = json.loads((out / "results.json").read_text(encoding="utf-8"))["tasks"]["mc"]
    samples = {json.loads(x)["id"]: json.loads(x) for x in (out / "samples_mc.jsonl").read_text().splitlines()}
    for lang, (instruction, _, _) in cases.items():
        assert samples[f"{lang}/0"]["input"].endswith(f"D. w4\n{instruction}"), lang
    assert t["metrics"]["accuracy"]["by_language"] == {lang: 100.0 for lang in cases}
    assert t["english_fallback"] == {"instructions": ["yo"]}
