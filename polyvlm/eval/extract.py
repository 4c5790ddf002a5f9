"""Deterministic answer extraction in every script: multiple-choice letters and yes/no, no random fallback."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from polyvlm.eval.forms import extend, forms
from polyvlm.eval.letters import WORDCHAR, opens_sentence, to_latin

# "The answer is" per language of the seeds' benchmarks (MMMB, PangeaBench, CVQA); any language's phrase is read
# in any reply (models often answer in English or mix), the per-language table says which languages are covered.
ANSWER_PHRASES: dict[str, list[str]] = {
    "en": [r"(?:the\s+)?(?:correct|right|best|final)?\s*(?:answer|option|choice)\s*(?:is|would\s+be|:)?",
           r"I\s+(?:choose|pick|select|would\s+choose)", r"option"],
    "zh": [r"(?:正确)?答案(?:应该)?(?:是|为|选)?", r"(?:应该)?选(?:择|项)?(?:是|为)?", r"正确的?选项(?:是|为)?"],
    "pt": [r"(?:a\s+)?(?:resposta|alternativa|opção|opcao)\s*(?:correta|certa|final)?\s*(?:é|e|seria)?"],
    "ar": [r"(?:الإجابة|الاجابة|الجواب|الخيار)\s*(?:الصحيحة|الصحيح)?\s*(?:هي|هو)?"],
    "tr": [r"(?:doğru\s+)?(?:cevap|yanıt|seçenek|şık)\s*(?:şudur|budur)?"],
    "ru": [r"(?:правильный\s+)?(?:ответ|вариант)(?:\s+ответа)?\s*(?:—|-|это)?"],
    "fr": [r"(?:la\s+)?(?:bonne\s+)?réponse\s*(?:correcte\s*)?(?:est)?"],
    "es": [r"(?:la\s+)?respuesta\s*(?:correcta\s*)?(?:es)?"],
    "it": [r"(?:la\s+)?risposta\s*(?:corretta\s*)?(?:è|e)?"],
    "de": [r"(?:die\s+)?(?:richtige\s+)?antwort\s*(?:ist|lautet)?"],
    "ro": [r"răspunsul\s*(?:corect\s*)?(?:este)?"],
    "af": [r"(?:die\s+)?(?:korrekte\s+)?antwoord\s*(?:is)?"],
    "id": [r"jawaban(?:nya)?\s*(?:yang\s+benar\s*)?(?:adalah|ialah)?"],
    "ms": [r"jawapan(?:nya)?\s*(?:yang\s+betul\s*)?(?:ialah|adalah)?"],
    "vi": [r"(?:câu\s+trả\s+lời|đáp\s+án)\s*(?:đúng\s*)?(?:là)?"],
    "th": [r"คำตอบ(?:ที่ถูกต้อง)?(?:คือ)?"],
    "ja": [r"(?:正しい)?(?:答え|解答|正解)(?:は)?"],
    "ko": [r"(?:정답|답)(?:은|는)?"],
    "hi": [r"(?:सही\s+)?उत्तर\s*(?:है)?"],
    "bn": [r"(?:সঠিক\s+)?উত্তর\s*(?:হল|হলো)?"],
    "sw": [r"jibu\s*(?:sahihi\s*)?(?:ni)?"],
    "ta": [r"(?:சரியான\s+)?(?:பதில்|விடை)\s*(?:ஆகும்)?"],
    "te": [r"(?:సరైన\s+)?సమాధానం"],
    "he": [r"(?:ה)?תשובה(?:\s+(?:ה)?נכונה)?\s*(?:היא)?"],
    "fa": [r"پاسخ\s*(?:صحیح\s*)?(?:است)?"],
    "ur": [r"(?:درست\s+)?جواب\s*(?:ہے)?"],
}
extend(ANSWER_PHRASES, "answer")  # the other benchmark languages' phrases: polyvlm/eval/prompts/language_forms.yaml
# replies are read after NFKC (which splits Thai "ำ"), so the phrases are too
_ANSWER_PHRASES = [unicodedata.normalize("NFKC", p) for phrases in ANSWER_PHRASES.values() for p in phrases]
# Words that name an option without saying it is the answer.
_WEAK_PHRASES = {"option", "choice", "选项", "选", "opção", "opcao", "alternativa", "الخيار", "seçenek", "şık", "вариант"}
_SEP = r"[\s:：,，、،.。\-—–=*\"'“”«»「」『』()\[\]（）【】<>]*"

# Refusals and "cannot tell" answers in the six languages; with no letter given they score as unparsed.
_REFUSAL = re.compile(
    r"(?:\bI\s+(?:can(?:not|'t)|am\s+(?:not\s+able|unable)|don't\s+know)|\bnone\s+of\s+the\s+(?:options|above)"
    r"|无法(?:确定|判断|回答)|不能确定|不确定|不知道|抱歉|"
    r"não\s+(?:é\s+possível|posso|sei)|"
    r"لا\s+(?:أستطيع|يمكنني|يمكن|أعرف|أدري)|عذرا|"
    r"(?:cevap\s+veremem|bilmiyorum|belirleyemem|emin\s+değilim)|"
    r"(?:не\s+могу|невозможно\s+(?:определить|сказать)|не\s+знаю))",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Extraction:
    """`answer` is the option letter (or `yes`/`no`), None when unresolved; `method` says which rule fired."""

    answer: str | None
    method: str


def normalize_response(text: str) -> str:
    """NFKC (full-width letters and punctuation become ASCII), markdown emphasis removed, option labels of other
    scripts standing alone mapped to Latin (polyvlm/eval/letters.py: look-alikes, but not a Russian one-letter word
    opening a sentence, "В правой части ..."; Arabic `الإجابة هي ب`, Russian `Ответ: Б`, Hindi `उत्तर: ख`)."""
    return to_latin(unicodedata.normalize("NFKC", text).replace("**", "").replace("__", ""))


def _squash(text: str) -> str:
    """For matching option text without relying on spaces: NFKC, lower case, only letters/digits kept."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).lower() if ch.isalnum())


def _letter_class(letters: list[str]) -> str:
    return "[" + "".join(letters) + "".join(x.lower() for x in letters) + "]"


def _option_by_text(text: str, options: dict[str, str]) -> str | None:
    """The one option whose text occurs in `text` (longest wins when one option's text contains another's)."""
    hay = _squash(text)
    if not hay:
        return None
    found = {k: _squash(v) for k, v in options.items() if _squash(v) and _squash(v) in hay}
    # drop options whose text is part of another found option's text ("cat" inside "black cat")
    found = {k: v for k, v in found.items() if not any(v != w and v in w for w in found.values())}
    return next(iter(found)) if len(set(found.values())) == 1 and len(found) == 1 else None


def extract_choice(response: str, options: dict[str, str]) -> Extraction:
    """The option letter a free-text `response` chooses among `options` ({"A": "text", ...}).

    Rules, first that resolves wins: the response is only a letter; a letter after an answer phrase
    ("the answer is", "答案是", "Ответ:", "الإجابة", "Cevap:", "Resposta:"); a letter opening the
    response ("B. ...", "(B)"); option text after an answer phrase; exactly one letter standing alone;
    exactly one option's text. A refusal or anything ambiguous gives `answer=None` (scored wrong)."""
    if not options:
        raise ValueError("extract_choice needs at least one option")
    letters = sorted(options)
    text = normalize_response(response).strip()
    if not text:
        return Extraction(None, "empty")
    lc = _letter_class(letters)
    bound_after = rf"(?![{WORDCHAR}])"
    bound_before = rf"(?<![{WORDCHAR}])"
    m = re.fullmatch(rf"{_SEP}({lc}){_SEP}", text)
    if m:
        return Extraction(m.group(1).upper(), "letter")
    phrase = "(?:" + "|".join(_ANSWER_PHRASES) + ")"
    hits = list(re.finditer(rf"{phrase}{_SEP}(?:option|选项|opção|الخيار|seçenek|вариант)?{_SEP}({lc}){bound_after}",
                            text, re.IGNORECASE))
    # a lower-case letter after a phrase is accepted only when not a word ("answer is a cat")
    hits = [h for h in hits if h.group(1).isupper() or not re.match(r"\s+\w", text[h.end():])]
    # the last statement of the answer wins ("... so the answer is B"); a bare "option X" only when no phrase
    # names the answer ("The answer is B. Option A would be wrong.")
    strong = [h for h in hits if _squash(h.group(0)[: h.start(1) - h.start()]) not in _WEAK_PHRASES]
    if strong or hits:
        return Extraction((strong or hits)[-1].group(1).upper(), "phrase")
    m = re.match(rf"{_SEP}({lc})(?:[.):：、,،)\]】」]|\s*$)", text)
    if m and m.group(1).isupper():
        return Extraction(m.group(1), "start")
    m = re.match(rf"{_SEP}({lc})\s+(.+)", text, re.DOTALL)
    if m and m.group(1).isupper() and _option_by_text(m.group(2), options) == m.group(1):
        return Extraction(m.group(1), "start")
    if _REFUSAL.search(text):
        return Extraction(None, "refusal")
    tail = list(re.finditer(phrase, text, re.IGNORECASE))
    if tail:
        after = _option_by_text(text[tail[-1].end():], options)
        if after is not None:
            return Extraction(after, "phrase_text")
    # capital letters standing alone, ignoring a sentence-initial article "A word" (en, pt)
    alone = {m.group(1) for m in re.finditer(rf"{bound_before}([{''.join(letters)}]){bound_after}", text)
             if not (m.group(1) == "A" and opens_sentence(text, m.start(), m.end()))}
    if len(alone) == 1:
        return Extraction(alone.pop(), "alone")
    if len(alone) > 1:
        return Extraction(None, "ambiguous")
    by_text = _option_by_text(text, options)
    if by_text is not None:
        return Extraction(by_text, "option_text")
    return Extraction(None, "unparsed")


# yes / no words per language (MaRVL: id, sw, ta, tr, zh; MMMB: en, zh, pt, ar, tr, ru; and a few more).
YES_NO: dict[str, tuple[list[str], list[str]]] = {
    "en": (["yes", "true", "correct"], ["no", "false", "incorrect"]),
    "zh": (["是", "对", "對", "是的", "正确", "正確"], ["否", "不", "不是", "没有", "沒有", "错", "錯", "不对", "不對"]),
    "pt": (["sim", "verdadeiro", "correto"], ["não", "nao", "falso", "incorreto"]),
    "ar": (["نعم", "صحيح"], ["لا", "ليس", "خطأ"]),
    "tr": (["evet", "doğru"], ["hayır", "hayir", "yanlış", "değil"]),
    "ru": (["да", "верно"], ["нет", "неверно", "не"]),
    "id": (["ya", "benar"], ["tidak", "bukan", "salah"]),
    "sw": (["ndiyo", "ndio", "kweli"], ["hapana", "siyo", "si kweli", "si"]),  # Swahili "si" is "not"
    "ta": (["ஆம்"], ["இல்லை"]),
    "es": (["sí", "si"], ["no"]), "fr": (["oui"], ["non"]), "de": (["ja"], ["nein"]),
    "ja": (["はい"], ["いいえ"]), "ko": (["예", "네"], ["아니요", "아니"]),
    "it": (["sì"], ["no"]), "ro": (["da", "adevărat"], ["nu", "fals"]), "vi": (["có", "đúng"], ["không", "sai"]),
    "th": (["ใช่"], ["ไม่ใช่", "ไม่"]), "hi": (["हाँ", "हां", "सही"], ["नहीं", "गलत"]), "bn": (["হ্যাঁ"], ["না"]),
    "he": (["כן", "נכון"], ["לא"]), "af": (["ja"], ["nee"]), "nl": (["ja"], ["nee"]), "te": (["అవును"], ["కాదు"]),
    "uk": (["так"], ["ні"]), "pl": (["tak"], ["nie"]), "ms": (["ya", "betul"], ["tidak", "bukan"]),
}
for _lang, _entry in forms().items():  # the other benchmark languages' words (language_forms.yaml)
    if _lang not in YES_NO and (_entry.get("yes_words") or _entry.get("same_as") in YES_NO):
        _base = YES_NO.get(_entry.get("same_as", ""), ([], []))
        YES_NO[_lang] = (_base[0] + list(_entry.get("yes_words", [])), _base[1] + list(_entry.get("no_words", [])))
# words read in replies of any language; a language marked own_only keeps its words (Filipino "hindi") to itself
_POOLED = {lang: words for lang, words in YES_NO.items() if not forms().get(lang, {}).get("own_only")}
_YES = sorted({unicodedata.normalize("NFKC", w) for yes, _ in _POOLED.values() for w in yes})
_NO = sorted({unicodedata.normalize("NFKC", w) for _, no in _POOLED.values() for w in no})
_CJK_YES_NO = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")  # Thai, kana, CJK, Hangul


def english_fallback(languages: list[str | None], kind: str) -> list[str]:
    """Languages (of `languages`) without their own answer phrases (`kind="phrases"`) or yes/no words
    (`kind="yes_no"`): their replies are read with the other languages' forms, English among them."""
    table = ANSWER_PHRASES if kind == "phrases" else YES_NO
    return sorted({lang for lang in languages if lang and lang.split("-")[0].lower() not in table})


def _first_yes_no(text: str, yes: list[str], no: list[str]) -> tuple[int, int, str] | None:
    """(position, length, label) of the first yes/no word; a word that is yes in one language and no in another
    ("si") counts for neither."""
    best: tuple[int, int, str] | None = None
    both = set(yes) & set(no)
    for label, words in (("yes", yes), ("no", no)):
        for w in words:
            if w in both:
                continue
            pat = re.escape(w) if _CJK_YES_NO.search(w) else rf"(?<!\w){re.escape(w)}(?!\w)"
            m = re.search(pat, text)
            if m and (best is None or (m.start(), -len(w)) < (best[0], -best[1])):
                best = (m.start(), len(w), label)
    return best


def extract_yes_no(response: str, language: str | None = None) -> Extraction:
    """`yes` or `no` from the first yes/no word of `response`: in `language` first (Swahili "Si." is "no"),
    else in any listed language. A word in a script without spaces is matched as a substring, others as whole
    words (longest at a position wins). A refusal before that word ("I don't know", "不知道", "Не знаю") is
    unparsed, never a "no"."""
    text = unicodedata.normalize("NFKC", response).lower()
    own = YES_NO.get((language or "").split("-")[0].lower())
    if own:
        own = ([unicodedata.normalize("NFKC", w) for w in own[0]], [unicodedata.normalize("NFKC", w) for w in own[1]])
    best = (_first_yes_no(text, *own) if own else None) or _first_yes_no(text, _YES, _NO)
    if best is None:
        return Extraction(None, "unparsed")
    refusal = _REFUSAL.search(text)
    if refusal and refusal.start() <= best[0]:  # "Не знаю", "不知道", "لا أعرف": the no-word is part of a refusal
        return Extraction(None, "refusal")
    return Extraction(best[2], "yes_no")
