"""Text checks for translation: protected-span masking, number comparison and language names (language
identification is polyvlm.data.langs', shared with the eval metrics).

`mask(text)` replaces media placeholders, code, URLs, inline maths and option letters with markers `⟦n⟧`
that the translator is told to keep; `unmask` puts them back and says which marker went missing.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

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


_NAME_OF = {tag: name.title() for name, tag in NAMES.items() if name not in ("bangla", "farsi", "mandarin")}
_SCRIPT = {"Hans": "Simplified", "Hant": "Traditional", "Latn": "Latin script", "Cyrl": "Cyrillic script"}


def language_name(tag: str) -> str:
    """`zh-Hans` -> `Chinese (Simplified)`, `sw` -> `Swahili`; unknown tags are returned as given."""
    norm = normalize_language(tag)[0] or tag
    parts = norm.split("-")
    name = _NAME_OF.get(parts[0], norm)
    extra = [_SCRIPT.get(p, p) for p in parts[1:]]
    return f"{name} ({', '.join(extra)})" if extra and name != norm else name
