"""Text checks for translation: protected-span masking and number comparison (language identification and names
are polyvlm.data.langs', shared with the eval tasks).

`mask(text)` replaces media placeholders, code, URLs, inline maths and option letters with markers `⟦n⟧`
that the translator is told to keep; `unmask` puts them back and says which marker went missing.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

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
