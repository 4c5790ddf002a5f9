"""`polyvlm data validate`: check every record of one or more files and report each problem where it is.

One streaming pass; per record the work is a dict walk (no Record objects), so millions of records go by
at tens of thousands per second. Duplicate ids are found from 8-byte hashes spilled to a temporary file
(`dupes`), so memory does not grow with the number of records, and named in a second, targeted look-up. Problems have a code, a severity (`error` fails the run, `warning` does not),
and a location: file, line (or record index), id.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from polyvlm.data.dupes import IdHashes, locate_records
from polyvlm.data.langs import normalize_language
from polyvlm.data.media import DEFAULT_MAX_PIXELS, check_media_file, data_uri_bytes, is_data_uri
from polyvlm.data.readers import detect_format, expand_paths, iter_raw
from polyvlm.data.records import (
    MEDIA_KEYS,
    PLACEHOLDERS,
    ROLE_ALIASES,
    RecordError,
    normalise_id,
    resolve_media,
)

PROBLEMS: dict[str, tuple[str, str]] = {  # code -> (severity, what it means)
    "missing_file": ("error", "an input path does not exist"),
    "empty_dataset": ("error", "the inputs hold no records at all (an empty file or array): nothing was checked"),
    "unsupported_format": ("error", "an input file is of a format no reader handles"),
    "malformed_json": ("error", "a line or array element is not valid JSON (or the file is not UTF-8)"),
    "malformed_row": ("error", "a TSV row has a different number of fields than the header (or the file is not UTF-8)"),
    "unreadable_file": ("error", "a Parquet file or saved Hugging Face dataset cannot be read (damaged or truncated)"),
    "missing_key": ("error", "a record lacks 'id' or 'conversations'"),
    "wrong_type": ("error", "a field has the wrong type (record not an object, conversations not a list, ...)"),
    "empty_conversation": ("error", "'conversations' is an empty list"),
    "bad_role": ("error", "a turn has no role or an unknown one (known: human/user, gpt/assistant, system)"),
    "first_turn_not_user": ("error", "the first non-system turn is not from the user"),
    "consecutive_same_role": ("error", "two consecutive turns come from the same side"),
    "placeholder_mismatch": ("error", "the number of <image>/<audio>/<video> placeholders differs from the media count"),
    "media_missing": ("error", "a media file does not exist under the image root"),
    "media_escape": ("error", "a media path is absolute or leaves the image root (.., symlinks)"),
    "media_unreadable": ("error", "a media file cannot be decoded (corrupt or truncated)"),
    "media_too_large": ("error", "an image has more pixels than the limit (decompression bomb guard)"),
    "media_empty": ("error", "a media file has zero bytes or zero size"),
    "duplicate_id": ("error", "the same id appears more than once"),
    "too_long": ("error", "the sample is longer than the maximum length after placeholder expansion"),
    "language_invalid": ("error", "the language value is not a BCP-47 tag or a known language name"),
    "language_missing": ("warning", "no language tag"),
    "language_ambiguous": ("warning", "a language tag that is usually a mistake for another (kr, jp, ...)"),
    "language_unknown": ("warning", "a well-formed language tag that is not in polyvlm's tables"),
    "empty_turn": ("warning", "a turn's text is empty"),
    "last_turn_not_assistant": ("warning", "the conversation does not end with an assistant turn"),
}
_USER, _ASSISTANT, _SYSTEM = "user", "assistant", "system"


@dataclass
class ValidateOptions:
    image_root: str | None = None  # default: each data file's directory
    check_media: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    tokenizer: str | None = None  # a local tokenizer directory enables the length check
    max_length: int = 2048
    media_tokens: dict[str, int] = field(default_factory=lambda: {"image": 576, "audio": 1500, "video": 2304})
    examples: int = 20  # examples kept per problem code
    progress: bool = True


@dataclass
class Report:
    """Totals by problem code, the first examples of each, and language normalisation counts."""

    examples_per_code: int = 20
    files: list[str] = field(default_factory=list)
    records: int = 0
    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[dict]] = field(default_factory=dict)
    bad_records: int = 0
    languages: Counter = field(default_factory=Counter)  # normalised tag -> records
    renamed: Counter = field(default_factory=Counter)  # "raw -> normalised" -> records
    seconds: float = 0.0

    def add(self, code: str, file: str, line: int | None, index: int, rid: str | None, message: str) -> None:
        self.counts[code] += 1
        ex = self.examples.setdefault(code, [])
        if len(ex) < self.examples_per_code:
            ex.append({"file": file, "line": line, "index": index, "id": rid, "message": message})

    @property
    def errors(self) -> int:
        return sum(n for c, n in self.counts.items() if PROBLEMS.get(c, ("error",))[0] == "error")

    @property
    def warnings(self) -> int:
        return sum(self.counts.values()) - self.errors

    def to_dict(self) -> dict:
        return {
            "ok": self.errors == 0,
            "files": self.files,
            "records": self.records,
            "records_with_errors": self.bad_records,
            "errors": self.errors,
            "warnings": self.warnings,
            "seconds": round(self.seconds, 3),
            "records_per_second": round(self.records / self.seconds) if self.seconds else None,
            "by_code": {
                c: {"severity": PROBLEMS.get(c, ("error", ""))[0], "meaning": PROBLEMS.get(c, ("", ""))[1],
                    "count": n, "examples": self.examples.get(c, [])}
                for c, n in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
            },
            "languages": dict(self.languages.most_common()),
            "language_normalised": dict(self.renamed.most_common()),
        }


norm_id = normalise_id  # the id as parse_record spells it; None if unusable


def check_record(obj: Any, problems: list[tuple[str, str]]) -> tuple[str | None, list[str], dict[str, list]]:
    """Structural checks of one LLaVA dict. Appends `(code, message)` to `problems`.

    Returns `(id, turn texts, media)` for the checks that need them (media, duplicates, length).
    """
    if obj.__class__ is not dict:
        problems.append(("wrong_type", f"record is a {type(obj).__name__}, not an object"))
        return None, [], {}
    add = problems.append
    raw_id = obj.get("id")
    rid = norm_id(raw_id)
    if raw_id is None:
        add(("missing_key", "missing key 'id'"))
    elif rid is None:
        add(("wrong_type", f"'id' is a {type(raw_id).__name__}, not a string or number"))
    convs = obj.get("conversations")
    texts: list[str] = []
    if convs is None:
        add(("missing_key", "missing key 'conversations'"))
    elif convs.__class__ is not list:
        add(("wrong_type", f"'conversations' is a {type(convs).__name__}, not a list"))
    elif not convs:
        add(("empty_conversation", "'conversations' is empty"))
    else:
        prev, seen = None, False
        for i, turn in enumerate(convs):
            if turn.__class__ is not dict:
                add(("wrong_type", f"turn {i} is a {type(turn).__name__}, not an object"))
                continue
            who = turn.get("from")
            if who is None:
                who = turn.get("role")
            role = ROLE_ALIASES.get(who) if who.__class__ is str else None
            value = turn.get("value")
            if value is None:
                value = turn.get("content")
            if value.__class__ is not str:
                add(("wrong_type", f"turn {i} value is {type(value).__name__}, not a string"))
            else:
                texts.append(value)
                if not value or value.isspace():
                    add(("empty_turn", f"turn {i} ({who}) is empty"))
            if role is None:
                add(("bad_role", f"turn {i} has no role" if who is None else f"turn {i} has unknown role {who!r}"))
                continue
            if role == _SYSTEM:
                continue
            if not seen:
                seen = True
                if role != _USER:
                    add(("first_turn_not_user", f"the first turn is from {who!r}, not the user"))
            elif role == prev:
                add(("consecutive_same_role", f"turns {i - 1} and {i} are both from the {role}"))
            prev = role
        if prev == _USER:
            add(("last_turn_not_assistant", "the conversation ends with a user turn"))
    media: dict[str, list] = {}
    for m in MEDIA_KEYS:
        v = obj.get(m)
        if v is None:
            continue
        if v.__class__ is str:
            media[m] = [v]
        elif v.__class__ is list and all(p.__class__ is str for p in v):
            media[m] = v
        else:
            add(("wrong_type", f"'{m}' must be a path or a list of paths, not {type(v).__name__}"))
    if texts:
        joined = "\n".join(texts)  # placeholders hold no newline, so none is created or split by joining
        has_tag = "<" in joined
        for m in MEDIA_KEYS:
            n = len(media[m]) if m in media else 0
            if not n and not has_tag:
                continue
            ph = PLACEHOLDERS[m]
            c = joined.count(ph)
            if c != n:
                add(("placeholder_mismatch", f"{c} {ph} placeholder(s) but {n} {m} file(s)"))
    return rid, texts, media


class Validator:
    """Runs the checks over files; `run(paths) -> Report`."""

    def __init__(self, opts: ValidateOptions | None = None):
        self.opts = opts or ValidateOptions()
        self.report = Report(examples_per_code=self.opts.examples)
        self._media_cache: dict[tuple[str, str], tuple[str, str] | None] = {}
        self._hashes = IdHashes()
        self._file_starts: list[int] = []
        self._tok: Any = None
        self._pending: list[tuple[str, int | None, int, str | None, list[str], int]] = []
        if self.opts.tokenizer:
            from transformers import AutoTokenizer

            self._tok = AutoTokenizer.from_pretrained(self.opts.tokenizer)

    def run(self, paths: Iterable[str | Path]) -> Report:
        t0 = time.perf_counter()
        files = []
        for p in paths:
            try:
                files.extend(expand_paths([p]))
            except RecordError as e:
                self.report.add(e.code, str(p), None, -1, None, e.reason)
        for path in files:
            self._file_starts.append(len(self._hashes))
            self.report.files.append(str(path))
            try:
                self._run_file(path)
            except RecordError as e:  # file-level: missing, unsupported
                self.report.add(e.code, str(path), None, -1, None, e.reason)
        self._flush_lengths()
        self._find_duplicates(files)
        if files and not self.report.records and not self.report.errors:  # a pass over nothing is no pass
            self.report.add("empty_dataset", ", ".join(map(str, files)), None, -1, None,
                            f"no records in {len(files)} file(s): nothing to validate")
        self.report.seconds = time.perf_counter() - t0
        return self.report

    def _run_file(self, path: Path) -> None:
        rep, opts = self.report, self.opts
        fname = str(path)
        root = Path(opts.image_root) if opts.image_root else path.parent
        hashes = self._hashes
        languages, renamed = rep.languages, rep.renamed
        problems: list[tuple[str, str]] = []
        it = iter_raw(path, detect_format(path))
        bar = tqdm(it, desc=f"validate {path.name}", unit=" rec", disable=None if opts.progress else True, mininterval=1.0)
        for index, line, obj in bar:
            if index < 0:  # a file-level decoding failure
                rep.add(obj.code, fname, line, index, None, obj.reason)
                continue
            rep.records += 1
            if obj.__class__ is RecordError:
                hashes.append(hash(("\0no-id", fname, index)))
                rep.add(obj.code, fname, line, index, obj.record_id, obj.reason)
                rep.bad_records += 1
                continue
            rid, texts, media = check_record(obj, problems)
            hashes.append(hash(rid) if rid is not None else hash(("\0no-id", fname, index)))
            lang = obj.get("language") if obj.__class__ is dict else None
            tag, lp = normalize_language(lang)
            if lp is not None:
                problems.append((lp.code, lp.message))
            if tag is not None:
                languages[tag] += 1
                if tag != lang:
                    renamed[f"{lang} -> {tag}"] += 1
            if media and opts.check_media:
                self._check_media(root, media, rid, problems)
            if self._tok is not None and texts:
                n_media = sum(len(v) * opts.media_tokens.get(m, 0) for m, v in media.items())
                self._pending.append((fname, line, index, rid, texts, n_media))
                if len(self._pending) >= 512:
                    self._flush_lengths()
            if problems:
                bad = False
                for code, msg in problems:
                    rep.add(code, fname, line, index, rid, msg)
                    bad = bad or PROBLEMS.get(code, ("error",))[0] == "error"
                rep.bad_records += bad
                problems.clear()

    def _check_media(self, root: Path, media: dict[str, list], rid: str | None, problems: list) -> None:
        for m, refs in media.items():
            for ref in refs:
                key = (str(root), ref) if not is_data_uri(ref) else ("", ref[:200] + str(len(ref)))
                if key not in self._media_cache:
                    try:
                        if is_data_uri(ref):
                            res = check_media_file(m, None, data_uri_bytes(ref), self.opts.max_pixels)
                        else:
                            res = check_media_file(m, resolve_media(root, ref), None, self.opts.max_pixels)
                    except RecordError as e:
                        res = (e.code, e.reason)
                    self._media_cache[key] = res
                res = self._media_cache[key]
                if res is not None:
                    problems.append((res[0], f"{m} '{ref[:120]}': {res[1]}"))

    def _flush_lengths(self) -> None:
        if not self._pending:
            return
        import re

        strip = re.compile("|".join(map(re.escape, PLACEHOLDERS.values())))
        flat = [strip.sub("", t) for *_, texts, _ in self._pending for t in texts]
        ids = self._tok(flat, add_special_tokens=False)["input_ids"]
        k = 0
        for fname, line, index, rid, texts, n_media in self._pending:
            n = sum(len(x) for x in ids[k : k + len(texts)]) + n_media
            k += len(texts)
            if n > self.opts.max_length:
                self.report.add("too_long", fname, line, index, rid,
                                f"{n} tokens after placeholder expansion, over max_length {self.opts.max_length}")
                self.report.bad_records += 1
        self._pending = []

    def _find_duplicates(self, files: list[Path]) -> None:
        """Equal id hashes (`dupes.IdHashes`); each duplicate named by file and line, confirmed by reading the ids back."""
        pairs = self._hashes.repeated()  # (duplicate, first occurrence), as global record numbers
        self._hashes.close()
        if not pairs:
            return
        starts = np.asarray(self._file_starts + [len(self._hashes)])
        wanted: dict[int, set[int]] = {}
        for dup, first in pairs:
            for o in (dup, first):
                f = int(np.searchsorted(starts, o, side="right") - 1)
                wanted.setdefault(f, set()).add(o - int(starts[f]))
        where = {f: locate_records(files[f], idx) for f, idx in wanted.items()}

        def loc(o: int) -> tuple[str, int | None, int, str | None]:
            f = int(np.searchsorted(starts, o, side="right") - 1)
            i = o - int(starts[f])
            line, rid = where[f].get(i, (None, None))
            return str(files[f]), line, i, rid

        for dup, first in sorted(pairs):
            fd, ld, idd, rid = loc(dup)
            ff, lf, idf, rid_first = loc(first)
            if rid is None or rid != rid_first:
                continue  # a 64-bit hash collision, not a duplicate
            at = f"{ff}:{lf}" if lf is not None else f"{ff}#{idf}"
            self.report.add("duplicate_id", fd, ld, idd, rid, f"id {rid!r} already used at {at}")
            self.report.bad_records += 1


def validate(paths: Iterable[str | Path], **kw: Any) -> Report:
    """Validate files and return the Report (`ValidateOptions` fields as keywords)."""
    return Validator(ValidateOptions(**kw)).run(paths)
