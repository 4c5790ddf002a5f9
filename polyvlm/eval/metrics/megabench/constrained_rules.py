"""The word-level rules of MEGA-Bench's constrained_generation: CMUdict pronunciations with the official's
out-of-vocabulary guesses, syllables, rhymes, iambic lines and lemmatised phrase counting
(lmms_eval/tasks/megabench/metrics/scoring/constrained_generation.py)."""

from __future__ import annotations

import itertools
import logging
import re
from typing import Any

from polyvlm.eval.metrics.megabench import requires

log = logging.getLogger("polyvlm.eval")
METRIC = "constrained_generation"
NLTK_DATA_HINT = "python -m nltk.downloader punkt_tab wordnet"

# pronunciations the official adds for words CMUdict lacks
EXTRA_PHONES: dict[str, list[str]] = {
    "'gainst": ["G EH1 N S T", "G EY1 N S T"], "'midst": ["M IH1 D S T"], "'mongst": ["M AH1 NG S T"],
    "'neath": ["N IY1 TH"], "beguiles": ["B IH0 G AY1 L Z"], "cerulean": ["S ER0 UW1 L IY0 AH0 N"],
    "doggo": ["D AO1 G OW0"], "downtorn": ["D AW1 N T AO2 R N"], "enthrall": ["EH0 N TH R AO1 L"],
    "fam'ly": ["F AE1 M L IY0"], "fiery": ["F AY1 ER0 IY0", "F AY1 R IY0"], "flits": ["F L IH1 T S"],
    "furred": ["F ER1 D"], "kneels": ["N IY1 L Z"], "o'er": ["OW1 ER0"], "orbs": ["AO1 R B Z"],
    "quenched": ["K W EH1 N CH D"], "quietude": ["K W AY1 AH0 T UW0 D"], "retold": ["R IY0 T OW1 L D"],
    "scurries": ["S K ER1 IY0 Z"], "sunbeams": ["S AH1 N B IY2 M Z"], "syncs": ["S IH1 NG K S"],
    "'twixt": ["T W IH1 K S T"],
}


def _cmu(word: str) -> list[str]:
    return requires("pronouncing", METRIC).phones_for_word(word)


def _stem_guess(text: str) -> tuple[str, list[str], list[str], list[str]]:
    """For an out-of-vocabulary word: (stem, prefixes, suffixes, prefixes to strip) as the official guesses."""
    suffixes, prefixes, strip = [""], [""], [""]
    if text.endswith("ed"):
        suffixes, text = [" D", " T", " AH0 D", " IH0 D"], text.removesuffix("ed")
    elif text.endswith("s"):
        if _cmu(text.removesuffix("s")):
            suffixes = [" S", " Z", " AH0 Z", " IH0 Z"] if text.endswith("es") else [" S", " Z"]
            text = text.removesuffix("s")
        elif text.endswith("es"):
            suffixes, text = [" AH0 Z", " IH0 Z"], text.removesuffix("es")
    if text.startswith("un"):
        prefixes, text = ["AH0 N "], text.removeprefix("un")
    elif text.startswith("'") and _cmu("a" + text.removeprefix("'")):
        strip, text = ["AH0 "], "a" + text.removeprefix("'")
    return text, prefixes, suffixes, strip


def phones_for_word(word: str) -> list[str]:
    """CMUdict pronunciations of `word` (curly apostrophe and case folded; "'s" adds Z), with the official's
    extra words and its guesses from the stem (-ed, -s, -es, un-, elided a-) for words CMUdict lacks."""
    text = word.replace("’", "'").lower()
    suffixes = [""]
    if text.endswith("'s"):
        suffixes, text = [" Z"], text.removesuffix("'s")
    if text in EXTRA_PHONES:
        return [p + s for p, s in itertools.product(EXTRA_PHONES[text], suffixes)]
    found = _cmu(text)
    prefixes, strip = [""], [""]
    if not found:
        if suffixes[0] != "":
            log.debug("constrained_generation: out of vocabulary: %s", text)
            return []
        text, prefixes, suffixes, strip = _stem_guess(text)
        found = _cmu(text)
    found = [(pre + p + suf).removeprefix(rm) for pre, p, suf, rm in itertools.product(prefixes, found, suffixes, strip)]
    if not found:
        log.debug("constrained_generation: out of vocabulary: %s", text)
    return found


def rhyming_part(phones: str) -> str:
    """From the last stress-marked phone (not the first phone) to the end, stress digits removed."""
    parts = phones.split()
    for i in range(len(parts) - 1, 0, -1):
        if parts[i][-1] in "012":
            phones = " ".join(parts[i:])
            break
    return re.sub(r"\d", "", phones)


def count_syllables(text: str) -> list[int]:
    """The syllable count of `text` under every combination of its words' pronunciations."""
    pronouncing = requires("pronouncing", METRIC)
    options = [phones_for_word(w) for w in text.split()]
    return [sum(pronouncing.syllable_count(p) for p in combo) for combo in itertools.product(*options)]


def word_stresses(word: str) -> list[list[int]]:
    """The distinct stress patterns of `word`'s pronunciations."""
    pronouncing = requires("pronouncing", METRIC)
    patterns = {tuple(int(s) for s in pronouncing.stresses(p)) for p in phones_for_word(word)}
    return [list(p) for p in patterns]


_IAMBIC_PAIRS = {(2, 1), (0, 2), (0, 1), (0, 0), (1, 1), (2, 2)}


def _fits(words: list[list[list[int]]], index: int, syllable: int, prev: int) -> bool:
    """Backtracking over pronunciations: can words[index:] continue an iambic line at `syllable`?"""
    if index == len(words):
        return syllable % 2 == 0
    for pattern in words[index]:
        pos = 0
        if syllable % 2 != 0:
            if (prev, pattern[0]) not in _IAMBIC_PAIRS:
                continue
            pos = 1
        rest = pattern[pos:]
        pairs = list(zip(rest[0::2], rest[1::2]))
        if any(pair not in _IAMBIC_PAIRS for pair in pairs):
            continue
        pos += 2 * len(pairs)
        if pos < len(pattern):
            assert pos + 1 == len(pattern)
            if _fits(words, index + 1, syllable + pos + 1, pattern[pos]):
                return True
        elif _fits(words, index + 1, syllable + pos, -1):
            return True
    return False


def is_line_iambic(line: str) -> bool:
    """Whether some choice of pronunciations makes `line` an even-length run of iambic pairs."""
    return _fits([word_stresses(w) for w in line.split()], 0, 0, -1)


class NltkDataUnavailable(ImportError, LookupError):
    """nltk's punkt_tab or wordnet data is missing: an ImportError so that score_field stops the run with how to get
    it (as for a missing package) instead of scoring every 'contain' constraint 0."""


def _nltk(metric_part: str) -> Any:
    """nltk with the data the 'contain' constraints need, or an error saying how to get it."""
    nltk = requires("nltk", METRIC)
    for resource in ("tokenizers/punkt_tab/english/", "corpora/wordnet"):
        try:
            nltk.data.find(resource)
        except LookupError as e:
            raise NltkDataUnavailable(f"MEGA-Bench metric {METRIC} ({metric_part}) needs nltk data "
                                      f"{resource!r}: {NLTK_DATA_HINT}") from e
    return nltk


def _lemmatize_phrase(phrase: str, lemmatizer: Any, tokenize: Any, noun: str) -> str:
    out = []
    for word in tokenize(phrase.lower()):
        lemma = lemmatizer.lemmatize(word, noun)
        if word.endswith("ies") and lemma.endswith("y"):
            lemma = lemma[:-1] + "y"
        elif word.endswith("ves") and lemma.endswith("f"):
            lemma = lemma[:-1] + "f"
        out.append(lemma)
    return " ".join(out)


def count_phrase(text: str, phrase: str) -> tuple[int, list[tuple[int, int]]]:
    """Occurrences of `phrase` in `text` after lower-casing and noun-lemmatising both (substring count per
    sentence): (total, [(1-based sentence number, count) for sentences with any])."""
    nltk = _nltk("contain")
    from nltk.corpus import wordnet
    from nltk.stem import WordNetLemmatizer

    lemmatizer = WordNetLemmatizer()
    tokenize = nltk.tokenize.word_tokenize
    target = _lemmatize_phrase(phrase, lemmatizer, tokenize, wordnet.NOUN)
    found = []
    for i, sentence in enumerate(nltk.tokenize.sent_tokenize(text), 1):
        n = _lemmatize_phrase(sentence, lemmatizer, tokenize, wordnet.NOUN).count(target)
        if n > 0:
            found.append((i, n))
    return sum(n for _, n in found), found
