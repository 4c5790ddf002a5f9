"""Language tags: normalise the tags found in real instruction data to BCP-47, or say why not.

`normalize_language("zh_simplified") -> ("zh-Hans", None)`, `("urdu") -> ("ur", None)`,
`("kr") -> ("kr", LangProblem("language_ambiguous", ...))` (Kanuri by the standard, Korean by intent:
flagged, never guessed), `(None) -> (None, LangProblem("language_missing", ...))`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

# ISO 639-1 (two-letter) language codes, all of them.
ISO639_1 = frozenset(
    """aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv
    dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii
    ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk
    ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc
    sd se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve
    vi vo wa wo xh yi yo za zh zu""".split()
)

# ISO 639-2/3 codes with a two-letter equivalent (BCP-47 uses the shortest), plus deprecated two-letter codes.
ALIASES = {
    "ara": "ar", "ben": "bn", "bul": "bg", "cat": "ca", "ces": "cs", "cze": "cs", "dan": "da", "deu": "de",
    "ger": "de", "ell": "el", "gre": "el", "eng": "en", "spa": "es", "est": "et", "fas": "fa", "per": "fa",
    "fin": "fi", "fra": "fr", "fre": "fr", "heb": "he", "hin": "hi", "hrv": "hr", "hun": "hu", "ind": "id",
    "ita": "it", "jpn": "ja", "jav": "jv", "kor": "ko", "lit": "lt", "lav": "lv", "mon": "mn", "msa": "ms",
    "may": "ms", "nld": "nl", "dut": "nl", "nor": "no", "nob": "nb", "nno": "nn", "pol": "pl", "por": "pt",
    "ron": "ro", "rum": "ro", "rus": "ru", "slk": "sk", "slo": "sk", "slv": "sl", "srp": "sr", "swe": "sv",
    "swa": "sw", "tam": "ta", "tel": "te", "tha": "th", "tur": "tr", "ukr": "uk", "urd": "ur", "vie": "vi",
    "zho": "zh", "chi": "zh", "amh": "am", "hau": "ha", "ibo": "ig", "yor": "yo", "zul": "zu", "xho": "xh",
    "som": "so", "tgl": "tl", "mar": "mr", "guj": "gu", "pan": "pa", "kan": "kn", "mal": "ml", "sin": "si",
    "nep": "ne", "khm": "km", "lao": "lo", "mya": "my", "bur": "my", "kat": "ka", "geo": "ka", "hye": "hy",
    "arm": "hy", "aze": "az", "kaz": "kk", "uzb": "uz", "kir": "ky", "tgk": "tg", "pus": "ps", "kur": "ku",
    "gle": "ga", "cym": "cy", "wel": "cy", "eus": "eu", "baq": "eu", "glg": "gl", "isl": "is", "ice": "is",
    "iw": "he", "in": "id", "ji": "yi", "jw": "jv", "mo": "ro",
}

# Three-letter codes with no two-letter form that occur in multilingual instruction data.
ISO639_3_EXTRA = frozenset("fil yue cmn ceb haw ast ckb sco hmn nds gsw wuu nan hak kab ace ban min bug".split())

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
    "nepali": "ne", "javanese": "jv", "sundanese": "su", "tagalog": "tl", "filipino": "fil", "mongolian": "mn",
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

_SYNTAX = re.compile(r"^[a-z]{2,3}(-[a-z]{4})?(-([a-z]{2}|[0-9]{3}))?(-([a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*$")


class LangProblem(NamedTuple):
    """Why a tag was not accepted as is: `code` is a validation problem code, `message` one sentence."""

    code: str  # language_missing | language_ambiguous | language_unknown | language_invalid
    message: str

    def __str__(self) -> str:
        return self.message


def _canonical_case(subtags: list[str]) -> str:
    out = [subtags[0]]
    for s in subtags[1:]:
        if len(s) == 4 and s.isalpha():
            out.append(s.title())
        elif len(s) == 2 and s.isalpha():
            out.append(s.upper())
        else:
            out.append(s)
    return "-".join(out)


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
    lang = ALIASES.get(lang, lang)
    if "-" in lang:  # a name that maps to a full tag
        parts = lang.split("-") + parts[1:]
        lang = parts[0]
    subtags = [lang, *parts[1:]]
    if script is not None:
        subtags.insert(1, script.lower())
    candidate = "-".join(subtags)
    if not _SYNTAX.match(candidate):
        return None, LangProblem("language_invalid", f"language tag {raw!r} is not a BCP-47 tag or a known language name")
    if lang in ("cmn",) and len(subtags) == 1:
        candidate = "zh"
    out = _canonical_case(candidate.split("-"))
    if lang not in ISO639_1 and lang not in ISO639_3_EXTRA:
        return out, LangProblem("language_unknown", f"language tag {raw!r}: '{lang}' is not a language code we know")
    return out, None


def language_or_none(tag: str | None) -> str | None:
    """The normalised tag when there is one (ambiguous and unknown tags are kept as written, lowercased)."""
    return normalize_language(tag)[0]
