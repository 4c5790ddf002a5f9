"""Language tags: normalise the tags found in real instruction data to BCP-47, or say why not; and identify the
language of a text (py3langid), the one identifier the eval metrics and the synth stages share.

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
from typing import Any, NamedTuple

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


_NAME_OF = {tag: name.title() for name, tag in NAMES.items() if name not in ("bangla", "farsi", "mandarin")}
_SCRIPT = {"Hans": "Simplified", "Hant": "Traditional", "Latn": "Latin script", "Cyrl": "Cyrillic script"}


def language_name(tag: str) -> str:
    """`zh-Hans` -> `Chinese (Simplified)`, `sw` -> `Swahili`, `urdu` -> `Urdu`; unknown tags are returned as given
    (normalised), for prompts that name a language to a model or a judge."""
    norm = normalize_language(tag)[0] or tag
    parts = norm.split("-")
    name = _NAME_OF.get(parts[0], norm)
    extra = [_SCRIPT.get(p, p) for p in parts[1:]]
    return f"{name} ({', '.join(extra)})" if extra and name != norm else name


# ---- language identification -----------------------------------------------------------------------------------
# Codes an identification counts as the expected language under: py3langid (langid.py's model) confuses these close
# languages on short texts (Danish / Norwegian, the Serbo-Croatian standards, Malay / Indonesian, Chinese varieties,
# Arabic dialects) or writes them otherwise than benchmarks do (Hebrew's old `iw`, Filipino as `tl`, Cusco Quechua
# `quz` in the macrolanguage its `qu` model knows).
SAME_LANGUAGE = [frozenset(g) for g in ({"no", "nb", "nn", "da"}, {"sr", "hr", "bs", "sh"}, {"ms", "id"},
                                        {"zh", "yue", "wuu"}, {"ar", "ary", "arz"}, {"fil", "tl"}, {"he", "iw"},
                                        {"qu", "quz"})]


@lru_cache(maxsize=1)
def _identifier() -> Any:
    """py3langid's identifier (the maintained langid.py fork; its model ships in the wheel), probabilities
    normalised."""
    try:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier
    except ImportError as e:
        raise ImportError("language identification needs py3langid: pip install 'polyvlm[eval]' (or "
                          "'polyvlm[synth]')") from e
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@lru_cache(maxsize=1)
def identifier_languages() -> frozenset[str]:
    """The ISO 639-1 (or 639-3 where there is none) codes the identifier can return (140)."""
    return frozenset(str(x) for x in _identifier().labels) - {"zxx"}  # zxx: no linguistic content


def _primary(tag: str) -> str:
    """The primary language subtag of a tag as written or as normalised (`urdu` -> ur, `zh-Hant` -> zh)."""
    return (language_or_none(tag) or tag).split("-")[0].lower()


def _group(code: str) -> frozenset[str]:
    return next((g for g in SAME_LANGUAGE if code in g), frozenset({code}))


def identify(text: str) -> tuple[str, float]:
    """(language code, probability) of the identifier's best guess for `text`."""
    lang, prob = _identifier().classify(text)
    return str(lang), float(prob)


def identifies(tag: str) -> bool:
    """True when the identifier can tell `tag`'s language (`zh-Hant` -> zh, `quz` through `qu`); False means texts
    in it go unchecked (Sundanese and Maori are not among its languages)."""
    return bool(_group(_primary(tag)) & identifier_languages())


def same_language(expected: str, found: str) -> bool:
    """True when an identification `found` counts as `expected` (same primary language or one SAME_LANGUAGE group)."""
    a, b = _primary(expected), _primary(found)
    return a == b or b in _group(a)


def language_status(text: str, expected: str, min_letters: int = 20) -> tuple[str, str | None]:
    """("ok" | "wrong" | "unchecked" | "too_short", reason): "unchecked" when no identifier covers `expected` (never
    a silent pass), "too_short" under `min_letters` letters (identification is unreliable there)."""
    if not identifies(expected):
        return "unchecked", f"no language identifier covers {expected}"
    if sum(ch.isalpha() for ch in text) < min_letters:
        return "too_short", None
    found, prob = identify(text)
    if same_language(expected, found):
        return "ok", None
    return "wrong", f"expected language {expected}, identified {found} (p={prob:.2f})"


def check_language(text: str, expected: str, min_letters: int = 20) -> str | None:
    """The reason when `text` is identified as another language than `expected`, else None (use `language_status`
    or `identifies` to tell a pass from an unchecked language)."""
    status, reason = language_status(text, expected, min_letters)
    return reason if status == "wrong" else None
