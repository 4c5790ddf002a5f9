"""Pangea's cultural pipeline over image + alt-text records: `media_filter`, `score`, `recaption`.

Input records look like `{"id", "image": "rel/path.jpg", "alt_text": "...", "language": "sw"}`; the
language is identified from the alt-text when missing. `recaption` turns them into conversation records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from polyvlm import media
from polyvlm.data import langs
from polyvlm.data.langs import normalize_language
from polyvlm.data.records import RecordError
from polyvlm.synth.parsing import ParseError, extract_json, get_pairs, get_score
from polyvlm.synth.stages.base import Result, Stage, derive, ok, register, reject
from polyvlm.synth.stages.dedup import record_hash


@dataclass
class MediaFilterParams:
    min_side: int = 224  # pixels, both sides
    max_side: int = 4096
    min_aspect: float = 0.25  # width / height
    max_aspect: float = 3.0
    min_alt_chars: int = 5
    max_alt_chars: int = 5000
    phash_distance: int = 4  # Hamming distance (of 64 bits) counted as a duplicate; -1 disables
    alt_text_key: str = "alt_text"


def _alt_language(record: dict, alt: str) -> str:
    tag = normalize_language(record.get("language"))[0] if record.get("language") else None
    if tag:
        return tag
    return langs.identify(alt)[0] if sum(c.isalpha() for c in alt) >= 10 else "und"


@register
class MediaFilter(Stage):
    """Per record: size, aspect ratio and alt-text length checks, perceptual hash; then drop pHash duplicates."""

    name = "media_filter"
    Params = MediaFilterParams
    has_reduce = True

    def warm(self) -> None:
        langs.identifier_languages()

    async def process(self, record: dict) -> Result:
        import imagehash

        p = self.params
        alt = record.get(p.alt_text_key)
        if not isinstance(alt, str):
            return reject("invalid_record", f"id={record.get('id')}: no '{p.alt_text_key}' string")
        if not p.min_alt_chars <= len(alt.strip()) <= p.max_alt_chars:
            return reject("alt_text_length", f"alt-text has {len(alt.strip())} characters, outside "
                                             f"[{p.min_alt_chars}, {p.max_alt_chars}]")
        try:
            images = self.images_of(record)
        except RecordError as e:
            return reject("invalid_record", str(e))
        if len(images) != 1:
            return reject("invalid_record", f"id={record.get('id')}: expected one image, got {len(images)}")
        ref = images[0]
        limits = media.MediaLimits(max_pixels=p.max_side * p.max_side)  # larger is refused from the header
        try:
            raw = media.read_source(ref if media.is_inline(ref) else Path(ref), where=str(record.get("image"))[:80])
            w, h = media.image.probe_image(raw, limits, "image")["size"]
            if min(w, h) < p.min_side or max(w, h) > p.max_side:
                return reject("image_size", f"image {w}x{h} outside [{p.min_side}, {p.max_side}] pixels")
            if not p.min_aspect <= w / h <= p.max_aspect:
                return reject("aspect_ratio", f"aspect ratio {w / h:.2f} outside [{p.min_aspect}, {p.max_aspect}]")
            phash = str(imagehash.phash(media.image.load_image(raw, limits, "image")))
        except media.MediaError as e:
            if e.code == "image_too_large":
                return reject("image_size", f"{e.reason}; the largest side allowed is {p.max_side} pixels")
            return reject("media_unreadable", f"cannot decode image {record.get('image')}: {e.reason}")
        lang = _alt_language(record, alt)
        return ok([derive(record, "", language=lang, phash=phash, width=w, height=h)], language=lang)

    def reduce(self, records: Callable[[], Iterable[dict]], emit: Callable[[dict], None],
               drop: Callable[[dict, str, str], None]) -> None:
        d = self.params.phash_distance
        if d < 0:
            for rec in records():
                emit(rec)
            return
        # pigeonhole: two 64-bit hashes within distance d agree exactly on at least one of d+1 bands
        n_bands = d + 1
        edges = [round(i * 64 / n_bands) for i in range(n_bands + 1)]
        entries = sorted((record_hash(r), int(r["phash"], 16), str(r.get("id"))) for r in records())
        buckets: dict[tuple[int, int], list[tuple[int, str]]] = {}
        dup_of: dict[int, str] = {}
        for rh, ph, rid in entries:
            keys = [(b, (ph >> edges[b]) & ((1 << (edges[b + 1] - edges[b])) - 1)) for b in range(n_bands)]
            hit = next((kid for k in keys for kph, kid in buckets.get(k, ()) if bin(kph ^ ph).count("1") <= d), None)
            if hit is not None:
                dup_of[rh] = hit
                continue
            for k in keys:
                buckets.setdefault(k, []).append((ph, rid))
        for rec in records():
            rh = record_hash(rec)
            if rh in dup_of:
                drop(rec, "phash_duplicate", f"perceptual hash within {d} bits of id={dup_of[rh]}")
            else:
                emit(rec)


@dataclass
class ScoreParams:
    min_score: float = 3.0  # keep informativeness >= min_score (1-5)
    max_tokens: int = 128
    attempts: int = 2
    alt_text_key: str = "alt_text"


@register
class Score(Stage):
    """A model rates informativeness 1-5 and names topic and country (fields kept on the record)."""

    name = "score"
    Params = ScoreParams
    prompt_name = "score"
    needs_backend = True

    def warm(self) -> None:
        langs.identifier_languages()

    async def process(self, record: dict) -> Result:
        alt = record.get(self.params.alt_text_key)
        if not isinstance(alt, str):
            return reject("invalid_record", f"id={record.get('id')}: no '{self.params.alt_text_key}' string")
        try:
            images = self.images_of(record)
        except RecordError as e:
            return reject("invalid_record", str(e))
        lang = record.get("language") or _alt_language(record, alt)
        assert self.ctx.prompt is not None
        msgs = self.ctx.prompt.render(alt_text=alt, language=langs.language_name(lang))
        msgs[-1]["content"] = "<image>\n" + msgs[-1]["content"]
        err = ""
        for _ in range(max(1, self.params.attempts)):
            text = await self.ask(msgs, images, max_tokens=self.params.max_tokens)
            try:
                score, obj = get_score(text, "informativeness", 1, 5)
            except ParseError as e:
                err = str(e)
                continue
            topic, country = str(obj.get("topic", "")).strip(), str(obj.get("country", "")).strip()
            if score < self.params.min_score:
                return reject("low_informativeness", f"informativeness {score:g} < {self.params.min_score:g}",
                              score=score)
            return ok([derive(record, "", informativeness=score, topic=topic, country=country)],
                      score=score)
        return reject("unparseable_output", err)


@dataclass
class RecaptionParams:
    n: int = 2  # instruction-response pairs besides the caption
    max_tokens: int = 1024
    temperature: float = 0.7
    attempts: int = 2
    check_language: bool = True  # the caption must be in the alt-text's language (identified; uncovered languages marked unchecked)
    alt_text_key: str = "alt_text"


@register
class Recaption(Stage):
    """A caption in the alt-text's language conditioned on alt-text, topic and country, plus `n` QA pairs."""

    name = "recaption"
    Params = RecaptionParams
    prompt_name = "recaption"
    needs_backend = True

    def warm(self) -> None:
        langs.identifier_languages()

    async def process(self, record: dict) -> Result:
        p = self.params
        alt = record.get(p.alt_text_key)
        if not isinstance(alt, str):
            return reject("invalid_record", f"id={record.get('id')}: no '{p.alt_text_key}' string")
        try:
            images = self.images_of(record)
        except RecordError as e:
            return reject("invalid_record", str(e))
        lang = record.get("language") or _alt_language(record, alt)
        assert self.ctx.prompt is not None
        msgs = self.ctx.prompt.render(alt_text=alt, language=lang, language_name=langs.language_name(lang),
                                      topic=record.get("topic", "unknown"), country=record.get("country", "unknown"),
                                      n=p.n)
        msgs[-1]["content"] = "<image>\n" + msgs[-1]["content"]
        problem = ("unparseable_output", "")
        for _ in range(max(1, p.attempts)):
            text = await self.ask(msgs, images, max_tokens=p.max_tokens, temperature=p.temperature)
            try:
                obj = extract_json(text)
                if not isinstance(obj, dict) or not str(obj.get("caption", "")).strip():
                    raise ParseError("no 'caption' in model output")
                pairs = get_pairs(obj, max_pairs=p.n) if p.n > 0 else []
            except ParseError as e:
                problem = ("unparseable_output", str(e))
                continue
            caption = str(obj["caption"]).strip()
            prompt = str(obj.get("caption_prompt") or "").strip() or "Describe the image in detail."
            wrong = langs.check_language(caption, lang) if p.check_language and lang != "und" else None
            if wrong:
                problem = ("wrong_language", f"caption: {wrong}")
                continue
            conv = [{"from": "human", "value": "<image>\n" + prompt}, {"from": "gpt", "value": caption}]
            for q, a in pairs:
                conv += [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
            extra = {"language_check": "unchecked"} if p.check_language and lang != "und" and not langs.identifies(lang) else {}
            return ok([derive(record, "-cap", conv, language=lang, category="caption", **extra)], language=lang)
        return reject(*problem)
