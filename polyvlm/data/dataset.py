"""Lazy training records at scale: a torch Dataset over RecordIndex files or a mixture YAML.

Nothing is read up front: `ds[i]` reads record i from disk (by byte offset or Parquet row group),
checks it, and decodes its images, so DataLoader workers decode media in parallel and memory does not
grow with the dataset. A bad record follows `on_bad_record`: `error` raises its RecordError (file, line,
id, reason); `skip` returns None, counts it by problem code and logs it (collate functions drop Nones).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from polyvlm.data.index import RecordIndex
from polyvlm.data.media import DEFAULT_MAX_PIXELS, load_image
from polyvlm.data.mix import MixtureDataset, load_mixture
from polyvlm.data.records import Record, RecordError, check_placeholders

log = logging.getLogger("polyvlm.data")


@dataclass
class Sample:
    """One checked record with its decoded images (PIL RGB, in placeholder order)."""

    record: Record
    images: list[Any]


class LazyRecords(torch.utils.data.Dataset):
    """`paths`: data files (JSONL, JSON array, Parquet) or one mixture `.yaml`; `len()` and `[i] -> Sample | None`."""

    def __init__(self, paths: str | Path | Sequence[str | Path], image_root: str | Path | None = None,
                 on_bad_record: str = "error", decode_images: bool = True, max_pixels: int = DEFAULT_MAX_PIXELS):
        if on_bad_record not in ("error", "skip"):
            raise ValueError(f"on_bad_record must be 'error' or 'skip', got {on_bad_record!r}")
        paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
        self.on_bad_record, self.decode_images, self.max_pixels = on_bad_record, decode_images, max_pixels
        self.skipped: Counter[str] = Counter()
        self.mixture: MixtureDataset | None = None
        self.indexes: list[RecordIndex] = []
        self.roots: list[Path] = []
        if len(paths) == 1 and str(paths[0]).endswith((".yaml", ".yml")):
            self.mixture = load_mixture(paths[0])
            self._starts = [0, len(self.mixture)]
        else:
            for p in map(Path, paths):
                self.indexes.append(RecordIndex(p))
                self.roots.append(Path(image_root) if image_root else p.parent)
            self._starts = [0]
            for ix in self.indexes:
                self._starts.append(self._starts[-1] + len(ix))

    def __len__(self) -> int:
        return self._starts[-1]

    def locate(self, i: int) -> tuple[Record, Path]:
        """Record `i` and the directory its media paths are relative to (raises RecordError when unreadable)."""
        if self.mixture is not None:
            return self.mixture[i], self.mixture.root_of(i)
        import bisect

        f = bisect.bisect_right(self._starts, i) - 1
        return self.indexes[f][i - self._starts[f]], self.roots[f]

    def __getitem__(self, i: int) -> Sample | None:
        if not 0 <= i < len(self):
            raise IndexError(f"record {i} out of range ({len(self)} records)")
        try:
            rec, root = self.locate(i)
            check_placeholders(rec)
            images = [load_image(p, root, rec.source, rec.id, self.max_pixels) for p in rec.media.get("image", [])] \
                if self.decode_images else []
            return Sample(rec, images)
        except RecordError as e:
            if self.on_bad_record == "error":
                raise
            self.skipped[e.code] += 1
            log.warning("skipping record (data.on_bad_record=skip): %s", e)
            return None
