"""Language tags: normalise the tags found in real instruction data to BCP-47, or say why not.

`langcodes` does the standard part (deprecated and three-letter codes, FLORES-200 codes such as `swh_Latn`,
`arb_Arab`, `zsm_Latn`, `pes_Arab` to their macrolanguage, default scripts dropped, case); this file adds what
datasets need on top: English names and their odd spellings, script words (`zh_simplified`) and tags that
are valid but usually mean something else (flagged, never guessed).

`normalize_language("zh_simplified") -> ("zh-Hans", None)`, `("urdu") -> ("ur", None)`,
`("kr") -> ("kr", LangProblem("language_ambiguous", ...))` (Kanuri by the standard, Korean by intent:
flagged, never guessed), `(None) -> (None, LangProblem("language_missing", ...))`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import langcodes
from langcodes.tag_parser import LanguageTagError

# English names (and the odd spellings datasets use) -> tag.
NAMES = {
    "english": "en", "chinese": "zh", "mandarin": "zh", "cantonese": "yue", "japanese": "ja", "korean": "ko",
    "vietnamese": "vi", "french": "fr", "german": "de", "spanish": "es", "italian": "it", "portuguese": "pt",
    "russian": "ru", "arabic": "ar", "hindi": "hi", "urdu": "ur", "bengali": "bn", "bangla": "bn",
    "indonesian": "id", "malay": "ms", "thai": "th", "turkish": "tr", "persian": "fa", "farsi": "fa",
    "hebrew": "he", "polish": "pl", "dutch": "nl", "swedish": "sv", "norwegian": "no", "danish": "da",
    "finnish": "fi", "greek": "el", "czech": "cs", "romanian": "ro", "hungarian": "hu", "ukrainian": "uk",
    "bulgarian": "bg", "serbian": "sr", "croatian": "hr", "swahili": "sw", "tamil": "ta", "telugu": "te",
    "marathi": "mr", "gujarati": "gu", "punjabi": "pa", "kannada": "kn", "malayalam": "ml", "sinhala": "si",
    "nepali": "ne", "javanese": "jv", "sundanese": "su", "tagalog": "fil", "filipino": "fil", "mongolian": "mn",
    "amharic": "am", "hausa": "ha", "igbo": "ig", "yoruba": "yo", "zulu": "zu", "irish": "ga", "welsh": "cy",
    "basque": "eu", "catalan": "ca", "galician": "gl", "icelandic": "is", "estonian": "et", "latvian": "lv",
    "lithuanian": "lt", "slovak": "sk", "slovenian": "sl", "uzbek": "uz", "kazakh": "kk", "khmer": "km",
    "lao": "lo", "burmese": "my", "georgian": "ka", "armenian": "hy", "azerbaijani": "az", "pashto": "ps",
    "kurdish": "ku", "somali": "so", "xhosa": "xh",
}

# Script words datasets append to a language (`zh_simplified`, `chinese-traditional`).
SCRIPT_WORDS = {"simplified": "Hans", "traditional": "Hant", "latin": "Latn", "cyrillic": "Cyrl", "arabic": "Arab"}

# Tags that are valid codes (or country codes) but usually mean another language: flagged, never guessed.
AMBIGUOUS = {
    "kr": "'kr' is Kanuri in ISO 639-1 but is often written for Korean ('ko')",
    "se": "'se' is Northern Sami in ISO 639-1 but is often written for Swedish ('sv')",
    "jp": "'jp' is a country code, not a language; Japanese is 'ja'",
    "cn": "'cn' is a country code, not a language; Chinese is 'zh'",
    "gr": "'gr' is a country code, not a language; Greek is 'el'",
    "dk": "'dk' is a country code, not a language; Danish is 'da'",
    "ua": "'ua' is a country code, not a language; Ukrainian is 'uk'",
    "cz": "'cz' is a country code, not a language; Czech is 'cs'",
    "sh": "'sh' (Serbo-Croatian) is deprecated; pick 'sr', 'hr' or 'bs'",
}
# Ambiguous tags that are themselves valid language codes are kept (and flagged); the rest become None.
_KEEP_AMBIGUOUS = {"kr", "se"}


class LangProblem(NamedTuple):
    """Why a tag was not accepted as is: `code` is a validation problem code, `message` one sentence."""

    code: str  # language_missing | language_ambiguous | language_unknown | language_invalid
    message: str

    def __str__(self) -> str:
        return self.message


@lru_cache(maxsize=4096)
def normalize_language(tag: str | None) -> tuple[str | None, LangProblem | None]:
    """Return `(BCP-47 tag or None, problem or None)` for one raw language value.

    A problem with a tag means the tag was kept but is doubtful (`language_ambiguous`,
    `language_unknown`: well-formed but not in our tables); a problem with `None` means no usable tag.
    """
    if tag is None or (isinstance(tag, str) and not tag.strip()):
        return None, LangProblem("language_missing", "no language tag")
    if not isinstance(tag, str):
        return None, LangProblem("language_invalid", f"language tag {tag!r} is not a string")
    raw = tag
    key = tag.strip().lower().replace("_", "-").replace(" ", "-")
    if key in AMBIGUOUS:
        return (key if key in _KEEP_AMBIGUOUS else None), LangProblem("language_ambiguous", AMBIGUOUS[key])
    parts = key.split("-")
    # `zh-simplified`, `chinese-traditional`, `simplified-chinese`
    script = None
    words = [p for p in parts if p not in SCRIPT_WORDS]
    if len(words) < len(parts):
        script = next(SCRIPT_WORDS[p] for p in parts if p in SCRIPT_WORDS)
        parts = words
        if not parts:
            return None, LangProblem("language_invalid", f"language tag {raw!r} names a script but no language")
    lang = NAMES.get(parts[0], parts[0])
    subtags = [lang, *parts[1:]]
    if script is not None:
        subtags.insert(1, script)
    candidate = "-".join(subtags)
    try:
        out = langcodes.standardize_tag(candidate, macro=True)
    except (LanguageTagError, ValueError):
        return None, LangProblem("language_invalid", f"language tag {raw!r} is not a BCP-47 tag or a known language name")
    if not langcodes.tag_is_valid(out):
        return out, LangProblem("language_unknown", f"language tag {raw!r}: '{out}' is not a registered language")
    return out, None


def language_or_none(tag: str | None) -> str | None:
    """The normalised tag when there is one (ambiguous and unknown tags are kept as written, lowercased)."""
    return normalize_language(tag)[0]
