"""Option letters of other scripts read as Latin by the robust reader (polyvlm/eval/letters.py): the label sequences
of polyvlm/eval/prompts/language_forms.yaml (`letters`) and the Latin look-alikes, with the traps that must stay
words; the official readers never see them."""

from __future__ import annotations

import pytest
from published_fixtures import png, write_split
from test_published import data, run, samples  # noqa: F401  (the fixture and helpers)

from polyvlm.eval.extract import Extraction, extract_choice
from polyvlm.eval.forms import sequences_of

OPTS = {"A": "x1", "B": "y2", "C": "z3", "D": "w4"}


@pytest.mark.parametrize(("reply", "want"), [
    # Cyrillic sequence А Б В Г (Russian, Ukrainian, Bulgarian, Mongolian exams)
    ("Ответ: Б", "B"), ("Ответ: Г", "D"), ("Відповідь: Г", "D"), ("Отговор: Б", "B"), ("Зөв хариулт нь Г", "D"),
    ("Б", "B"), ("(Г)", "D"), ("Не Б, ответ: В", "C"),  # the reply uses Б: its В is the third label
    ("Ответ: В", "B"),  # no label of the sequence's own: В is the look-alike of Latin B, as before
    ("Ответ: С", "C"),  # Cyrillic С is no label of the sequence (its 18th letter): the look-alike of C
    ("Б неверно, ответ: B", "B"),  # Latin B among Cyrillic labels stays B (not the third label)
    ("Ответ: Д", None),  # the fifth label, and there are four options
    # traps: Russian words
    ("Автомобиль красный.", None),  # a word starting with А
    ("А вот ответ: Г", "D"),  # "А" (but) opening the sentence is a word
    ("В правой части картинки Г", "D"),  # "В" (in) opening the sentence is a word
    ("Не Б, а В.", None),  # lower-case а (and) is no label; Б and В are two answers
    # Greek Α Β Γ Δ: Γ and Δ have no Latin look-alike; Α Β Ε read the same either way
    ("Η απάντηση είναι Γ", "C"), ("Η σωστή απάντηση είναι Δ.", "D"), ("Γ", "C"),
    # Arabic أ ب ج د, Persian الف ب ج د
    ("الإجابة هي ج", "C"), ("پاسخ: الف", "A"), ("بالتأكيد", None),
    # Hebrew א ב ג ד; a prefix joined by a hyphen or a geresh is a word ("ב-2020", "ג'ירפה")
    ("התשובה היא ג", "C"), ("זה קרה ב-2020", None), ("ג'ירפה", None),
    # Hindi क ख ग घ, Bengali ক খ গ ঘ: a consonant with a vowel sign is a syllable ("का", "কি")
    ("उत्तर: ख", "B"), ("सही उत्तर है (घ)", "D"), ("यह का है", None), ("উত্তর হল গ", "C"), ("কি জানি", None),
    # Thai ก ข ค ง: "ก็" (a mark on it) and "ค.ศ." (an abbreviation) are words
    ("คำตอบคือ ข", "B"), ("ก็ได้ ค.ศ. 2020", None),
    # Japanese ア イ ウ エ, Amharic ሀ ለ ሐ መ
    ("答え：イ", "B"), ("アイス", None), ("መልሱ ሐ ነው", "C"), ("ለ", "B"),
])
def test_option_labels_of_other_scripts(reply: str, want: str | None) -> None:
    assert extract_choice(reply, OPTS).answer == want


def test_a_label_given_two_places_is_an_error() -> None:
    table = {"hi": {"letters": ["क", "ख", "ग", "घ"]}, "mr": {"letters": ["अ", "ब", "क", "ड"]}}
    with pytest.raises(ValueError, match="mr: letter क is C here but A in hi"):
        sequences_of(table)
    with pytest.raises(ValueError, match="xx: letters must be a list of distinct labels"):
        sequences_of({"xx": {"letters": ["a", "a"]}})
    # Cyrillic shared by four languages is one sequence
    cyr = ["А", "Б", "В", "Г"]
    assert sequences_of({k: {"letters": cyr} for k in ("ru", "uk", "bg", "mn")}) == [dict(zip(cyr, "ABCD"))]


def test_cvqa_robust_reads_a_cyrillic_label_the_official_reader_does_not(tmp_path, data) -> None:  # noqa: F811
    """A Mongolian CVQA row answered "Зөв хариулт нь Б" ("the right answer is Б"): the robust score reads B; the
    official reader (Pangea's cvqa/utils.py parse_multi_choice_response) finds no letter and picks a seeded random
    one, so the two disagree and the official headline stays as lmms-eval scores it."""
    from datasets import Image as ImageFeature
    from datasets import Sequence, Value

    features = {"image": ImageFeature(), "ID": Value("string"), "Subset": Value("string"),
                "Question": Value("string"), "Translated Question": Value("string"),
                "Options": Sequence(Value("string")), "Translated Options": Sequence(Value("string")),
                "Label": Value("int64"), "Category": Value("string")}
    write_split(data, "afaji/cvqa", "test", [
        {"image": {"bytes": png(), "path": None}, "ID": "m0", "Subset": "('Mongolian', 'Mongolia')",
         "Question": "Энэ юу вэ?", "Translated Question": "What is this?", "Options": ["бууз", "хуушуур", "цуйван", "банш"],
         "Translated Options": ["buuz", "khuushuur", "tsuivan", "bansh"], "Label": 1, "Category": "Food"}], features)
    t = run(tmp_path, "cvqa", [{"task": "cvqa", "split": "test", "row": 0, "prediction": "Зөв хариулт нь Б."},
                               {"task": "cvqa", "id": "test/0/en", "prediction": "B"}])["tasks"]["cvqa"]
    row = samples(tmp_path, "cvqa")["test/0"]
    assert (row["extracted"], row["method"], row["scores"]["accuracy"]) == ("B", "phrase", 1.0)
    assert row["random_fallback"] is True and row["official_answer"] != "B" and row["scores"]["official"] == 0.0
    assert t["metrics"]["accuracy"]["by_language"]["mn"] == 100.0 and t["official"]["by_language"]["mn"] == 0.0
    assert t["official"]["random_fallback"] == 1
    assert extract_choice("Зөв хариулт нь Б.", {"A": "бууз", "B": "хуушуур"}) == Extraction("B", "phrase")
