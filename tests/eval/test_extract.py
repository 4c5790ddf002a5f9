"""MCQ letter and yes/no extraction in all six MMMB languages (en, zh, pt, ar, tr, ru) and their scripts."""

from __future__ import annotations

import random

import pytest

from polyvlm.eval.extract import english_fallback, extract_choice, extract_yes_no

OPT_EN = {"A": "dog", "B": "cat", "C": "bird", "D": "horse"}
OPT_ZH = {"A": "狗", "B": "猫", "C": "鸟", "D": "马"}
OPT_PT = {"A": "cachorro", "B": "gato", "C": "pássaro", "D": "cavalo"}
OPT_AR = {"A": "كلب", "B": "قطة", "C": "طائر", "D": "حصان"}
OPT_TR = {"A": "köpek", "B": "kedi", "C": "kuş", "D": "at"}
OPT_RU = {"A": "собака", "B": "кошка", "C": "птица", "D": "лошадь"}

CASES = [
    # English
    ("en", "B", OPT_EN, "B"), ("en", "(C)", OPT_EN, "C"), ("en", "The answer is B.", OPT_EN, "B"),
    ("en", "Answer: C", OPT_EN, "C"), ("en", "D. horse", OPT_EN, "D"),
    ("en", "I think the correct answer is (D) because of the mane.", OPT_EN, "D"),
    ("en", "The correct option is A", OPT_EN, "A"), ("en", "A cat is sitting on the mat.", OPT_EN, "B"),
    ("en", "**B**", OPT_EN, "B"), ("en", "b", OPT_EN, "B"), ("en", "It is a bird.", OPT_EN, "C"),
    ("en", "Looking closely, it's clearly option B.", OPT_EN, "B"),
    ("en", "B cat", OPT_EN, "B"), ("en", "the answer is: d", OPT_EN, "D"),
    # Chinese (full-width letters, Chinese colon and brackets, no spaces)
    ("zh", "答案是B", OPT_ZH, "B"), ("zh", "答案：Ｂ", OPT_ZH, "B"), ("zh", "答案为（C）", OPT_ZH, "C"),
    ("zh", "【D】", OPT_ZH, "D"), ("zh", "选B。", OPT_ZH, "B"), ("zh", "我认为正确答案是 C 选项", OPT_ZH, "C"),
    ("zh", "图片中是一只猫", OPT_ZH, "B"), ("zh", "Ａ．狗", OPT_ZH, "A"), ("zh", "正确选项为D，因为", OPT_ZH, "D"),
    ("zh", "答案是鸟", OPT_ZH, "C"),
    # Portuguese
    ("pt", "Resposta: C", OPT_PT, "C"), ("pt", "A resposta correta é B.", OPT_PT, "B"),
    ("pt", "Alternativa D", OPT_PT, "D"), ("pt", "É um gato.", OPT_PT, "B"), ("pt", "(A) cachorro", OPT_PT, "A"),
    ("pt", "A imagem mostra um cavalo.", OPT_PT, "D"),
    # Arabic (Arabic comma, right-to-left text around a Latin letter)
    ("ar", "الإجابة: B", OPT_AR, "B"), ("ar", "الإجابة الصحيحة هي (C)", OPT_AR, "C"),
    ("ar", "B، لأن الحيوان صغير", OPT_AR, "B"), ("ar", "الجواب هو D", OPT_AR, "D"),
    ("ar", "الحيوان في الصورة قطة", OPT_AR, "B"), ("ar", "الخيار A", OPT_AR, "A"),
    # Turkish
    ("tr", "Cevap: A", OPT_TR, "A"), ("tr", "Doğru cevap B şıkkıdır.", OPT_TR, "B"), ("tr", "Yanıt: (C)", OPT_TR, "C"),
    ("tr", "Resimde bir kedi var.", OPT_TR, "B"), ("tr", "CEVAP: D", OPT_TR, "D"),
    # Russian (Cyrillic look-alike letters)
    ("ru", "Ответ: В", OPT_RU, "B"), ("ru", "Правильный ответ — С", OPT_RU, "C"), ("ru", "А", OPT_RU, "A"),
    ("ru", "На картинке кошка.", OPT_RU, "B"), ("ru", "Ответ: D) лошадь", OPT_RU, "D"), ("ru", "Вариант С", OPT_RU, "C"),
    # a Russian one-letter word opening a sentence ("В" in, "А" but, "С" with) is not a look-alike option letter
    ("ru", "В правой части изображения собака.", OPT_RU, "A"), ("ru", "А на картинке кошка.", OPT_RU, "B"),
    ("ru", "С другой стороны, это птица.", OPT_RU, "C"), ("ru", "Правильный ответ — С потому что", OPT_RU, "C"),
    ("ru", "Ответ：В", OPT_RU, "B"),
    # a bare "option X" does not override a stated answer; articles in other languages are not letters
    ("en", "The answer is B. Option A would be wrong.", OPT_EN, "B"), ("pt", "A única resposta é gato.", OPT_PT, "B"),
    ("zh", "B选项", OPT_ZH, "B"), ("zh", "答案：（Ｄ）", OPT_ZH, "D"), ("ar", "B،قطة", OPT_AR, "B"),
    ("ar", "الإجابة: (B)، قطة", OPT_AR, "B"), ("tr", "Doğru seçenek: D", OPT_TR, "D"),
]


@pytest.mark.parametrize("lang,response,options,expected", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_extract_choice(lang: str, response: str, options: dict[str, str], expected: str) -> None:
    got = extract_choice(response, options)
    assert got.answer == expected, (response, got)


UNPARSED = [
    ("en", "I cannot determine the answer from this image.", OPT_EN),
    ("en", "It could be A or B.", OPT_EN),
    ("en", "", OPT_EN),
    ("en", "There is a tree.", OPT_EN),
    ("zh", "抱歉，我无法确定。", OPT_ZH),
    ("pt", "Não é possível determinar.", OPT_PT),
    ("ar", "لا أستطيع تحديد ذلك", OPT_AR),
    ("tr", "Bilmiyorum.", OPT_TR),
    ("ru", "Не могу определить по изображению.", OPT_RU),
    ("en", "Either a dog or a cat.", OPT_EN),
]


@pytest.mark.parametrize("lang,response,options", UNPARSED)
def test_unresolvable_answers_are_unparsed_not_guessed(lang: str, response: str, options: dict[str, str]) -> None:
    assert extract_choice(response, options).answer is None


def test_no_random_fallback_and_no_dependence_on_option_order() -> None:
    """When neither `can_infer` (VLMEvalKit vlmeval/utils/matching_util.py) nor its judge parses an answer,
    VLMEvalKit picks a random option (vlmeval/dataset/utils/multiple_choice.py, extract_answer_from_item);
    polyvlm never guesses: whatever the global random state, an
    unresolvable answer stays unparsed, the random state is not consumed, and the order in which the options
    are listed never changes the answer."""
    for seed in range(5):
        random.seed(seed)
        before = random.getstate()
        assert all(extract_choice(resp, opts).answer is None for _, resp, opts in UNPARSED)
        assert random.getstate() == before
    for _, response, options, want in CASES:
        assert extract_choice(response, dict(reversed(options.items()))).answer == want, response


def test_longest_option_text_wins() -> None:
    opts = {"A": "cat", "B": "black cat", "C": "dog"}
    assert extract_choice("It is a black cat.", opts).answer == "B"


@pytest.mark.parametrize("response,expected", [
    ("Yes.", "yes"), ("No, it is not.", "no"), ("是的", "yes"), ("不是", "no"), ("否", "no"), ("Sim", "yes"),
    ("Não", "no"), ("نعم", "yes"), ("لا", "no"), ("Evet, doğru.", "yes"), ("Hayır", "no"), ("Да", "yes"),
    ("Нет", "no"), ("Ya, benar.", "yes"), ("Tidak", "no"), ("Ndiyo", "yes"), ("Hapana", "no"), ("ஆம்", "yes"),
    ("இல்லை", "no"), ("True", "yes"), ("maybe", None),
    # refusals are unparsed, not a "no" because they contain a no-word (не, 不, لا)
    ("Не знаю", None), ("不知道", None), ("我不确定", None), ("Não sei", None), ("لا أعرف", None),
    ("Bilmiyorum", None), ("No, I cannot see any red.", "no"),
])
def test_yes_no(response: str, expected: str | None) -> None:
    assert extract_yes_no(response).answer == expected


@pytest.mark.parametrize("response,language,expected", [
    ("Si.", "sw", "no"), ("Si kweli.", "sw", "no"), ("Sí.", "es", "yes"), ("Si.", None, None),
    ("Yes, it is.", "sw", "yes"), ("Evet", "tr", "yes"), ("不对", "zh", "no"), ("Нет", "ru", "no"),
])
def test_yes_no_in_the_samples_language_first(response: str, language: str | None, expected: str | None) -> None:
    """Swahili "si" means "not" and Spanish "sí" means "yes": the record's language decides; without one a word
    that is yes in one language and no in another is not guessed."""
    assert extract_yes_no(response, language).answer == expected


@pytest.mark.parametrize("reply, letter", [
    ("La réponse est B.", "B"), ("La respuesta correcta es C", "C"), ("Die richtige Antwort ist D.", "D"),
    ("La risposta è B", "B"), ("Jawabannya adalah C.", "C"), ("Câu trả lời đúng là D", "D"), ("คำตอบคือ B", "B"),
    ("答えはCです。", "C"), ("정답은 D입니다", "D"), ("सही उत्तर है B", "B"), ("উত্তর হল C", "C"),
    ("Jibu ni D", "D"), ("Răspunsul corect este B", "B"), ("Die antwoord is C", "C"), ("התשובה היא D", "D"),
])
def test_answer_phrases_of_the_benchmarks_languages(reply: str, letter: str) -> None:
    options = {"A": "a red car", "B": "a blue bus", "C": "a green train", "D": "a white boat"}
    # every letter is mentioned first, so no letter stands alone: only the language's answer phrase can decide
    assert extract_choice(f"A / B / C / D — {reply}", options).answer == letter


@pytest.mark.parametrize("reply, lang, label", [
    ("ใช่ ถูกต้อง", "th", "yes"), ("ไม่ใช่", "th", "no"), ("Có, đúng vậy", "vi", "yes"), ("Không.", "vi", "no"),
    ("हाँ", "hi", "yes"), ("नहीं", "hi", "no"), ("না", "bn", "no"), ("Nu, nu este", "ro", "no"),
    ("כן", "he", "yes"), ("Nee", "af", "no"), ("Sì", "it", "yes"),
])
def test_yes_no_words_of_the_benchmarks_languages(reply: str, lang: str, label: str) -> None:
    assert extract_yes_no(reply, lang).answer == label


def test_languages_without_forms_are_named() -> None:
    assert english_fallback(["en", "zh", "quz", "xh", None], "phrases") == ["quz", "xh"]
    assert english_fallback(["th", "quz"], "yes_no") == ["quz"]
