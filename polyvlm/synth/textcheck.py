"""Text checks for translation: protected-span masking, number comparison, language identification (py3langid).

`mask(text)` replaces media placeholders, code, URLs, inline maths and option letters with markers `⟦n⟧`
that the translator is told to keep; `unmask` puts them back and says which marker went missing.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from functools import lru_cache
from typing import Any

from polyvlm.data.langs import NAMES, normalize_language

_PROTECT = re.compile(
    r"```.*?```"  # fenced code
    r"|`[^`\n]+`"  # inline code
    r"|<image>|<audio>|<video>"  # media placeholders
    r"|https?://[^\s<>\"')\]]*[^\s<>\"')\].,;:!?]"  # URLs
    r"|\$[^$\n]+\$"  # inline maths
    r"|(?m:^[ \t]*(?:\([A-Z]\)|[A-Z][.:)])(?=\s))",  # option letters at line start: `A.`, `(B)`, `C)`
    re.S,
)
_MARK = re.compile(r"⟦(\d+)⟧")
_NUMBER = re.compile(r"\d+(?:[.,\u00a0\u202f]\d+)*")

# The identifier confuses these close pairs on short texts; an identification inside the group counts as a match.
_GROUPS = [{"ms", "id"}, {"no", "nb", "nn", "da"}, {"sr", "hr", "bs", "sh"}, {"zh", "yue", "wuu"}, {"ar", "ary", "arz"}, {"fil", "tl"}]


def mask(text: str) -> tuple[str, list[str]]:
    """Replace protected spans with `⟦0⟧, ⟦1⟧, ...`; return the masked text and the spans in order."""
    spans: list[str] = []

    def sub(m: re.Match) -> str:
        spans.append(m.group(0))
        return f"⟦{len(spans) - 1}⟧"

    return _PROTECT.sub(sub, text), spans


def unmask(text: str, spans: list[str]) -> tuple[str, str | None]:
    """Put the spans back; the second value names the first missing or repeated marker (None when all fine)."""
    counts = Counter(int(m) for m in _MARK.findall(text))
    for i, span in enumerate(spans):
        if counts.get(i, 0) != 1:
            what = "lost" if counts.get(i, 0) == 0 else "repeated"
            return text, f"{what} protected span {span[:40]!r}"
    extra = [i for i in counts if i >= len(spans)]
    if extra:
        return text, f"invented marker ⟦{extra[0]}⟧"
    return _MARK.sub(lambda m: spans[int(m.group(1))], text), None


def numbers(text: str) -> Counter:
    """Multiset of numbers written in `text` (any script's digits, separators ignored): `1,000.5` -> `10005`."""
    out: Counter = Counter()
    for m in _NUMBER.finditer(text):
        digits = "".join(str(unicodedata.digit(c)) for c in m.group(0) if unicodedata.digit(c, None) is not None)
        if digits:
            out[digits] += 1
    return out


def plain_text(text: str) -> str:
    """Text without protected spans, for language identification and length ratios."""
    return _PROTECT.sub(" ", text).strip()


@lru_cache(maxsize=1)
def _identifier() -> Any:
    """py3langid's identifier (the maintained langid.py fork; its model ships in the wheel) over its 140
    languages, probabilities normalised."""
    try:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier
    except ImportError as e:
        raise ImportError("language identification needs py3langid: pip install 'polyvlm[synth]'") from e
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@lru_cache(maxsize=1)
def identifier_languages() -> frozenset[str]:
    """The ISO 639-1 (or 639-3 where there is none) codes the identifier can return."""
    return frozenset(str(x) for x in _identifier().labels) - {"zxx"}  # zxx: no linguistic content


def identify(text: str) -> tuple[str, float]:
    """(language code, probability) of the identifier's best guess for `text`."""
    lang, prob = _identifier().classify(text)
    return str(lang), float(prob)


def identifies(tag: str) -> bool:
    """True when the identifier can tell `tag`'s language (`zh-Hant` -> zh); False means its texts go
    unchecked (Sundanese, for one, is not among its languages)."""
    base, known = tag.split("-")[0].lower(), identifier_languages()
    return base in known or any(base in g and g & known for g in _GROUPS)


def same_language(expected: str, found: str) -> bool:
    a, b = expected.split("-")[0].lower(), found.split("-")[0].lower()
    return a == b or any(a in g and b in g for g in _GROUPS)


def language_status(text: str, expected: str, min_letters: int = 20) -> tuple[str, str | None]:
    """("ok" | "wrong" | "unchecked" | "too_short", reason): "unchecked" when no identifier covers `expected`
    (never a silent pass), "too_short" under `min_letters` letters (identification is unreliable there)."""
    if not identifies(expected):
        return "unchecked", f"no language identifier covers {expected}"
    if sum(ch.isalpha() for ch in text) < min_letters:
        return "too_short", None
    found, prob = identify(text)
    if same_language(expected, found):
        return "ok", None
    return "wrong", f"expected language {expected}, identified {found} (p={prob:.2f})"


def check_language(text: str, expected: str, min_letters: int = 20) -> str | None:
    """The reason when `text` is identified as another language than `expected`, else None (use
    `language_status` or `identifies` to tell a pass from an unchecked language)."""
    status, reason = language_status(text, expected, min_letters)
    return reason if status == "wrong" else None


_NAME_OF = {tag: name.title() for name, tag in NAMES.items() if name not in ("bangla", "farsi", "mandarin")}
_SCRIPT = {"Hans": "Simplified", "Hant": "Traditional", "Latn": "Latin script", "Cyrl": "Cyrillic script"}


def language_name(tag: str) -> str:
    """`zh-Hans` -> `Chinese (Simplified)`, `sw` -> `Swahili`; unknown tags are returned as given."""
    norm = normalize_language(tag)[0] or tag
    parts = norm.split("-")
    name = _NAME_OF.get(parts[0], norm)
    extra = [_SCRIPT.get(p, p) for p in parts[1:]]
    return f"{name} ({', '.join(extra)})" if extra and name != norm else name
