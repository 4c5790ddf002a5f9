"""Training data: records checked before the first step (or skipped under `data.on_bad_record=skip`) from their
text and media headers, only lengths kept; per item the record is read again, its media decoded once
(polyvlm.media) and the processor turns it into ids, labels and media tensors. `polyvlm.train.batch` collates."""

from __future__ import annotations

import logging
from array import array
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from polyvlm import media as media_registry
from polyvlm.data.dataset import LazyRecords
from polyvlm.data.langs import language_or_none
from polyvlm.data.media import CheckedMedia, check_record_media, decode_media, media_ref
from polyvlm.data.records import Record, RecordError, check_placeholders
from polyvlm.models.processor import IGNORE, Features, Processor

log = logging.getLogger("polyvlm.data")


class BadRecords(RecordError):
    """Raised before training starts when `on_bad_record=error` and some records are bad."""


@dataclass
class Example:
    """A checked record: its encoding and what its media headers said (nothing decoded)."""

    record_id: str
    source: str
    input_ids: list[int]
    labels: list[int]
    language: str | None
    media: CheckedMedia = field(default_factory=CheckedMedia)

    @property
    def has_image(self) -> bool:
        return bool(self.media.sources.get("image"))


def open_image(path: Path, source: str = "", record_id: str | None = None) -> Image.Image:
    """Decode an image fully (catches truncated files), as RGB (polyvlm.media; RecordError naming the record)."""
    return decode_media("image", Path(path), None, source, record_id)


class TrainDataset(torch.utils.data.Dataset):
    """Every record is checked and encoded once before step 1 (errors surface there, lengths are known),
    but only compact arrays are kept: `ds[i]` reads its record again (from disk when the source is a
    `LazyRecords` over files or a mixture), encodes it and decodes its media, so memory does not grow with
    the dataset and DataLoader workers do the decoding.

    `records`: a list of Records (media under `image_root`) or a `LazyRecords` (each source's own root).
    """

    def __init__(self, records: Sequence[Record] | LazyRecords, processor: Processor, image_root: str | Path,
                 on_bad_record: str = "error", read_errors: list[RecordError] | None = None,
                 show_progress: bool | None = None, cache: Path | None = None, num_workers: int = 0):
        """`read_errors`: records that could not even be parsed; they follow the same policy. `cache`: a file
        for the arrays of a `LazyRecords` source, reused while data, processor and policy are unchanged.
        `num_workers`: processes that share the check (`data.num_workers`); results come back in order."""
        if on_bad_record not in ("error", "skip"):
            raise ValueError(f"data.on_bad_record must be 'error' or 'skip', got '{on_bad_record}'")
        self.processor = processor
        self.limits = processor.media_limits()  # videos sampled as the model was configured
        self.root = Path(image_root)
        self.on_bad_record = on_bad_record
        self.records = records
        self.skipped: Counter[str] = Counter()
        key = None
        if cache is not None and isinstance(records, LazyRecords):
            from polyvlm.train import data_cache

            key = data_cache.source_key(records, processor, on_bad_record)
            if (hit := data_cache.load(cache, key)) is not None:
                self._set(hit["index"], hit["lengths"], hit["has_image"], hit["lang_codes"], hit["lang_names"])
                self.skipped.update(hit["skipped"])
                log.info("%d checked records from %s (data and settings unchanged)", len(self.index), cache)
                return
        errors: list[RecordError] = []  # the first 20 are shown; every bad record is counted
        n_bad = 0
        for e in read_errors or []:
            if on_bad_record == "error":
                n_bad += 1
                if len(errors) < 20:
                    errors.append(e)
            else:
                self.skipped[e.code] += 1
                log.warning("skipping record: %s", e)
        keep, lengths, media, langs = array("q"), array("i"), array("b"), array("i")
        lang_ids: dict[str | None, int] = {}
        n = len(records)
        # a bar when the pass takes a while (large files); None: only on a terminal
        bar = tqdm(self._check_all(n, num_workers), total=n, desc="checking records", unit="rec", dynamic_ncols=True,
                   disable=n < 20_000 if show_progress is None else not show_progress)
        for i, ok, res in bar:
            if not ok:
                e = RecordError(*res)
                if on_bad_record == "error":
                    n_bad += 1
                    if len(errors) < 20:
                        errors.append(e)
                else:
                    self.skipped[e.code] += 1
                    log.warning("skipping record: %s", e)
                continue
            length, has_image, language = res
            keep.append(i)
            lengths.append(length)
            media.append(has_image)
            langs.append(lang_ids.setdefault(language, len(lang_ids)))
        bar.close()
        if errors:
            lines = "\n".join(str(e) for e in errors)
            first = "" if n_bad == len(errors) else f"; the first {len(errors)}"
            if isinstance(records, LazyRecords):
                where = ", ".join(str(ix.path) for ix in records.indexes) or "the mixture"
            else:
                where = "the training records"
            raise BadRecords(f"{n_bad} bad record(s) of {n} (data.on_bad_record=error; =skip trains without them)"
                             f"{first}:\n{lines}", where)
        if self.skipped:
            log.warning("skipped %d bad records: %s", sum(self.skipped.values()), dict(self.skipped))
        if not keep:
            raise RecordError("no usable training records", str(image_root), code="empty_dataset")
        self._set(np.frombuffer(keep, dtype=np.int64), np.frombuffer(lengths, dtype=np.int32),
                  np.frombuffer(media, dtype=np.int8).astype(bool), np.frombuffer(langs, dtype=np.int32), list(lang_ids))
        if key is not None:
            from polyvlm.train import data_cache

            data_cache.save(cache, key, {"index": self.index, "lengths": self.lengths, "has_image": self.has_image,
                                         "lang_codes": self._lang_codes, "lang_names": self._lang_names,
                                         "skipped": dict(self.skipped)})

    def _check_all(self, n: int, num_workers: int) -> Iterator[tuple[int, bool, tuple]]:
        """(position, ok, (length, has image, language) or RecordError args) for every record, in order."""
        check = _Check(self)
        if num_workers > 0 and n > 1:
            loader = torch.utils.data.DataLoader(check, batch_size=256, num_workers=num_workers, collate_fn=list)
            for batch in loader:
                yield from batch
        else:
            for i in range(n):
                yield check[i]

    def _set(self, index: np.ndarray, lengths: np.ndarray, has_image: np.ndarray, lang_codes: np.ndarray,
             lang_names: list[str | None]) -> None:
        self.index = index  # dataset position -> record position
        self.lengths = lengths  # tokens of each example
        self.has_image = has_image
        self._lang_codes = lang_codes
        self._lang_names = lang_names

    @property
    def languages(self) -> list[str | None]:
        """The language tags present (None for untagged records)."""
        return list(self._lang_names)

    def language(self, i: int) -> str | None:
        return self._lang_names[int(self._lang_codes[i])]

    def _locate(self, i: int) -> tuple[Record, Path]:
        if isinstance(self.records, LazyRecords):
            return self.records.locate(i)
        return self.records[i], self.root

    def example(self, i: int) -> Example:
        """Example `i` (0 <= i < len(self)), encoded again from its record."""
        return self._prepare(*self._locate(int(self.index[i])))

    def _prepare(self, rec: Record, root: Path) -> Example:
        """The check before step 1: placeholders, turns, media headers (image sizes, audio length, video frame
        counts; polyvlm.media probes) and the encoding, whose length is kept. Raises RecordError."""
        check_placeholders(rec)
        if rec.turns[0].role not in ("user", "system"):
            raise RecordError("first turn is not from the user", rec.source, rec.id, code="first_turn_not_user")
        checked = check_record_media(rec, root, self.limits)
        n_media = {m: len(v) for m, v in rec.media.items()}
        enc = self.processor.encode(rec.turns, n_media, source=rec.source, record_id=rec.id,
                                    media_tokens=self.processor.placeholder_tokens(checked.facts))
        if all(lab == IGNORE for lab in enc.labels):
            raise RecordError("no assistant turn to learn from", rec.source, rec.id, code="no_answer")
        return Example(rec.id, rec.source, enc.input_ids, enc.labels, _language(rec), checked)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> Features | None:
        """Sample `i`: its record read again, its media decoded once, then ids, labels and media tensors. It was
        checked before step 1; a file that changed since follows the same policy as then."""
        try:
            rec, root = self._locate(int(self.index[i]))
            media = {}
            for key, refs in rec.media.items():
                name = media_registry.by_record_key(key).name
                media[name] = [decode_media(name, media_ref(ref, root, rec.source, rec.id), self.limits, rec.source,
                                            rec.id, ref) for ref in refs]
            return self.processor.process(rec.turns, media, _language(rec), rec.source, rec.id)
        except RecordError as e:
            if self.on_bad_record == "error":
                raise
            self.skipped[e.code] += 1  # counted in this process (a DataLoader worker keeps its own count)
            log.warning("skipping record: %s", e)
            return None


def _language(rec: Record) -> str | None:
    """The tag as `polyvlm data` shows it (`urdu` -> ur, `zh_simplified` -> zh-Hans) in logs, metrics and the router."""
    return language_or_none(rec.language) or rec.language


class _Check(torch.utils.data.Dataset):
    """One record checked and measured, as plain values (what a DataLoader worker sends back)."""

    def __init__(self, ds: TrainDataset):
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds.records)

    def __getitem__(self, i: int) -> tuple[int, bool, tuple]:
        try:
            ex = self.ds._prepare(*self.ds._locate(i))
        except RecordError as e:
            return i, False, (e.reason, e.source, e.record_id, e.code)
        return i, True, (len(ex.input_ids), ex.has_image, ex.language)
