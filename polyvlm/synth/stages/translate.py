"""The `translate` stage (Pangea): translate conversations into target languages and verify every turn.

Each turn is masked (placeholders, code, URLs, maths, option letters become `⟦n⟧`), translated, unmasked
and checked: every marker back exactly once, the same media placeholder counts, the same numbers, the
target language by the identifier (lid.176), and a length ratio in bounds. A failed turn is retried (with some sampling
temperature); a language whose turns still fail is rejected with the reason, the other languages are kept.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from polyvlm.data import langs
from polyvlm.data.langs import normalize_language
from polyvlm.data.records import PLACEHOLDERS, RecordError
from polyvlm.synth import textcheck
from polyvlm.synth.stages.base import Result, Stage, check_conversation, derive, ok, register, reject

log = logging.getLogger("polyvlm.synth")


@dataclass
class TranslateParams:
    languages: list = field(default_factory=list)  # target BCP-47 tags, e.g. [zh-Hans, sw, hi]
    source_language: str = ""  # empty: the record's `language`, else identified by the language identifier, else en
    keep_original: bool = True  # also pass the source record through
    attempts: int = 3  # model calls per turn before the language is rejected
    retry_temperature: float = 0.3
    min_length_ratio: float = 0.2  # translated / source characters (protected spans excluded)
    max_length_ratio: float = 4.0
    min_letters_for_langid: int = 20  # shorter turns skip the language check (identification is unreliable)
    max_tokens: int = 1024


class TurnRejected(Exception):
    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


def verify_translation(source: str, translated: str, spans: list[str], target: str,
                       p: TranslateParams) -> tuple[str, tuple[str, str] | None]:
    """Unmask and check one translated turn; returns (text, None) or (text, (code, reason))."""
    text, missing = textcheck.unmask(translated.strip(), spans)
    if missing:
        code = "lost_placeholder" if any(ph in missing for ph in PLACEHOLDERS.values()) else "lost_protected_span"
        return text, (code, missing)
    for ph in PLACEHOLDERS.values():
        if source.count(ph) != text.count(ph):
            return text, ("lost_placeholder", f"{ph} count {source.count(ph)} -> {text.count(ph)}")
    src_nums, out_nums = textcheck.numbers(textcheck.plain_text(source)), textcheck.numbers(textcheck.plain_text(text))
    if src_nums != out_nums:
        lost = sorted((src_nums - out_nums).elements())
        new = sorted((out_nums - src_nums).elements())
        return text, ("number_changed", f"numbers changed: lost {lost}, new {new}")
    plain_src, plain_out = textcheck.plain_text(source), textcheck.plain_text(text)
    if plain_src:
        ratio = len(plain_out) / len(plain_src)
        if not p.min_length_ratio <= ratio <= p.max_length_ratio:
            return text, ("length_ratio", f"length ratio {ratio:.2f} outside [{p.min_length_ratio}, {p.max_length_ratio}]")
    wrong = langs.check_language(plain_out, target, p.min_letters_for_langid)
    if wrong:
        return text, ("wrong_language", wrong)
    return text, None


@register
class Translate(Stage):
    """One output record per target language (`id-<lang>`, `language`, `translated_from`)."""

    name = "translate"
    Params = TranslateParams
    prompt_name = "translate"
    needs_backend = True

    def __init__(self, params: TranslateParams, ctx):  # noqa: ANN001
        super().__init__(params, ctx)
        if not params.languages:
            raise ValueError("stage translate: `languages` must list at least one target language")
        self.targets = []
        for tag in params.languages:
            norm, problem = normalize_language(str(tag))
            if norm is None:
                raise ValueError(f"stage translate: language {tag!r}: {problem}")
            self.targets.append(norm)
        unchecked = [t for t in self.targets if not langs.identifies(t)]
        if unchecked:
            log.warning("stage translate: no language identifier covers %s; those translations are kept with "
                        "language_check=unchecked", ", ".join(unchecked))

    def warm(self) -> None:
        langs.identifier_languages()

    def source_language(self, record: dict) -> str:
        if self.params.source_language:
            return normalize_language(self.params.source_language)[0] or "en"
        tag = normalize_language(record.get("language"))[0] if record.get("language") else None
        if tag:
            return tag
        text = textcheck.plain_text(" ".join(t["value"] for t in record["conversations"]))
        return langs.identify(text)[0] if sum(c.isalpha() for c in text) >= 20 else "en"

    async def _turn(self, text: str, src: str, target: str) -> str:
        masked, spans = textcheck.mask(text)
        if not textcheck.plain_text(text):  # nothing to translate (only placeholders / code)
            return text
        assert self.ctx.prompt is not None
        msgs = self.ctx.prompt.render(text=masked, source_language=langs.language_name(src),
                                      target_language=langs.language_name(target))
        problem: tuple[str, str] = ("no_attempt", "")
        for attempt in range(max(1, self.params.attempts)):
            temp = 0.0 if attempt == 0 else self.params.retry_temperature
            out = await self.ask(msgs, max_tokens=self.params.max_tokens, temperature=temp)
            out = out.replace("<text>", "").replace("</text>", "")
            result, bad = verify_translation(text, out, spans, target, self.params)
            if bad is None:
                return result
            problem = bad
        raise TurnRejected(problem[0], f"{target}: {problem[1]} (after {self.params.attempts} attempts)")

    async def _language(self, record: dict, src: str, target: str) -> dict:
        turns = record["conversations"]
        tasks = [asyncio.ensure_future(self._turn(t["value"], src, target)) for t in turns]
        try:
            texts = await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:  # one rejected turn rejects the language: stop asking for its other turns
                t.cancel()
            raise
        conv = [{**t, "value": v} for t, v in zip(turns, texts)]
        extra = {} if langs.identifies(target) else {"language_check": "unchecked"}  # said, not passed silently
        return derive(record, f"-{target}", conv, language=target, translated_from=src, **extra)

    async def process(self, record: dict) -> Result:
        try:
            check_conversation(record)
        except RecordError as e:
            return reject("invalid_record", str(e))
        src = self.source_language(record)
        # skip the source language itself (`zh-Hant` from `zh-Hans` is still a translation)
        targets = [t for t in self.targets if t != src and not (t.split("-")[0] == src.split("-")[0] and "-" not in t + src)]
        results = await asyncio.gather(*(self._language(record, src, t) for t in targets), return_exceptions=True)
        outputs = [dict(record, language=record.get("language") or src)] if self.params.keep_original else []
        rejections = []
        for res in results:
            if isinstance(res, TurnRejected):
                rejections.append([res.code, res.reason])
            elif isinstance(res, BaseException):
                raise res
            else:
                outputs.append(res)
        translated = len(targets) - len(rejections)
        if translated == 0 and targets:
            return reject(rejections[0][0], "; ".join(r[1] for r in rejections), rejections=rejections[1:])
        return ok(outputs, rejections=rejections, translated=translated)
