"""Option letters written in other scripts, read as Latin A, B, C...: Cyrillic, Greek and other look-alikes of
Latin letters, and the label sequences other languages' exams use (polyvlm/eval/prompts/language_forms.yaml
`letters`: А Б В Г, أ ب ج د, क ख ग घ, ก ข ค ง, ...). For the robust reading only; official scorers never see it."""

from __future__ import annotations

import re
import unicodedata

from polyvlm.eval.forms import letter_sequences

# Cyrillic and Greek capitals that look like Latin option letters (a model answering in Russian often types
# the Cyrillic one). Only applied to a letter standing alone, never inside a word.
LOOKALIKE = {
    "А": "A", "В": "B", "С": "C", "Е": "E", "Н": "H", "К": "K", "М": "M", "О": "O", "Р": "P", "Т": "T",
    "Х": "X", "а": "a", "с": "c", "е": "e", "о": "o", "р": "p", "х": "x",
    "Α": "A", "Β": "B", "Ε": "E", "Η": "H", "Κ": "K", "Μ": "M", "Ο": "O", "Ρ": "P", "Τ": "T", "Χ": "X",
}
# Letters of alphabetic scripts and digits: a look-alike next to one of these is part of a word.
WORDCHAR = r"0-9A-Za-z\u00C0-\u024F\u0370-\u03FF\u0400-\u04FF"
_LOOKALIKE_RE = re.compile(rf"(?<![{WORDCHAR}])[{''.join(LOOKALIKE)}](?![{WORDCHAR}])")


def _wordish(ch: str) -> bool:
    """A letter, digit or combining mark (Hindi "का" is क + a vowel sign: क there is not a label)."""
    return ch.isalnum() or ch == "_" or unicodedata.category(ch).startswith("M")


def standalone(text: str, start: int, end: int) -> bool:
    """`text[start:end]` is not part of a word: no letter, digit or mark touches it, and it is not joined to one by
    a hyphen, maqaf, geresh, apostrophe or abbreviation point (Hebrew "ב-2020", "ג'ירפה", Thai "ค.ศ.")."""
    if start > 0 and _wordish(text[start - 1]):
        return False
    if end < len(text) and _wordish(text[end]):
        return False
    return not (end + 1 < len(text) and text[end] in "-־'׳’." and _wordish(text[end + 1]))


def opens_sentence(text: str, start: int, end: int) -> bool:
    """A capital opening a sentence before a lower-case word is a word, not an option letter: Russian "В" (in),
    "С" (with), "А" (but), "О" (about), "К" (to), the English and Portuguese article "A" ("A única opção...")."""
    m = re.match(r"\s+(\w)", text[end:])
    return bool(m and m.group(1).islower()) and re.search(r"(?:^|[.!?…。！？\n])[\s\"'«“(]*$", text[:start]) is not None


def _sequences() -> list[tuple[re.Pattern[str], dict[str, str], re.Pattern[str] | None]]:
    """Per label sequence: its pattern, its labels -> Latin, and, when some label looks like a different Latin
    letter (Cyrillic В is C in А Б В Г but looks like B), the pattern of the labels that prove the sequence is
    used (Б Г Д: no Latin look-alike); None when every label reads the same either way (Greek Α Β Γ Δ)."""
    out = []
    for seq in letter_sequences():
        seq = {unicodedata.normalize("NFKC", k): v for k, v in seq.items()}
        pattern = re.compile("|".join(re.escape(k) for k in sorted(seq, key=len, reverse=True)))
        clash = any(LOOKALIKE.get(k, v) != v for k, v in seq.items())
        proof = [k for k in seq if k not in LOOKALIKE]
        evidence = re.compile("|".join(re.escape(k) for k in proof)) if clash and proof else None
        if clash and not proof:
            continue  # never distinguishable from look-alikes: not read
        out.append((pattern, seq, evidence))
    return out


_SEQUENCES = _sequences()


def _used(evidence: re.Pattern[str], text: str) -> bool:
    return any(standalone(text, m.start(), m.end()) for m in evidence.finditer(text))


def _relabel(pattern: re.Pattern[str], mapping: dict[str, str], text: str, alone: bool) -> str:
    def sub(m: re.Match[str]) -> str:
        s, e = m.start(), m.end()
        if (alone and not standalone(text, s, e)) or opens_sentence(text, s, e):
            return m.group(0)
        return mapping[m.group(0)]
    return pattern.sub(sub, text)


def to_latin(text: str) -> str:
    """Option labels standing alone in `text` (already NFKC) mapped to Latin capitals: first the label sequences
    (a sequence whose labels clash with look-alikes only when the reply uses one of its own labels: "Ответ: Б"
    reads Cyrillic В as C, "Ответ: В" alone reads it as the look-alike B), then the look-alikes. A one-letter
    word opening a sentence ("В правой части ...", "А что ...") stays a word."""
    for pattern, seq, evidence in _SEQUENCES:
        if evidence is None or _used(evidence, text):
            text = _relabel(pattern, seq, text, alone=True)
    return _relabel(_LOOKALIKE_RE, LOOKALIKE, text, alone=False)  # the pattern's own bounds, as before
