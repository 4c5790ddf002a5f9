"""Training data: records checked before the first step (or skipped under `data.on_bad_record=skip`),
encoded by the processor, images decoded lazily, batches collated with right padding."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from polyvlm.data.records import Record, RecordError, check_placeholders, resolve_media
from polyvlm.models.encoders.media import load_av, prepare_av
from polyvlm.models.processor import IGNORE, Processor

log = logging.getLogger("polyvlm.data")


class BadRecords(RecordError):
    """Raised before training starts when `on_bad_record=error` and some records are bad."""


@dataclass
class Example:
    record_id: str
    source: str
    input_ids: list[int]
    labels: list[int]
    images: list[Path]
    language: str | None
    image_sizes: list[tuple[int, int]] = field(default_factory=list)
    audios: list[Path] = field(default_factory=list)
    videos: list[tuple[Path, list[int]]] = field(default_factory=list)  # (file, frame indices)


def open_image(path: Path, source: str = "", record_id: str | None = None) -> Image.Image:
    """Decode an image fully (catches truncated files), as RGB."""
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")
    except Exception as e:  # PIL raises many types for corrupt data
        raise RecordError(f"unreadable image '{path.name}': {e}", source, record_id, code="media_unreadable") from None


class TrainDataset(torch.utils.data.Dataset):
    """Every record is encoded up front so errors surface before step 1 and lengths are known."""

    def __init__(self, records: list[Record], processor: Processor, image_root: str | Path, on_bad_record: str = "error",
                 read_errors: list[RecordError] | None = None):
        """`read_errors`: records that could not even be parsed; they follow the same policy."""
        if on_bad_record not in ("error", "skip"):
            raise ValueError(f"data.on_bad_record must be 'error' or 'skip', got '{on_bad_record}'")
        self.processor = processor
        self.root = Path(image_root)
        self.on_bad_record = on_bad_record
        self.examples: list[Example] = []
        self.skipped: Counter[str] = Counter()
        errors: list[RecordError] = []
        for e in read_errors or []:
            if on_bad_record == "error":
                errors.append(e)
            else:
                self.skipped[e.code] += 1
                log.warning("skipping record: %s", e)
        for rec in records:
            try:
                self.examples.append(self._prepare(rec))
            except RecordError as e:
                if on_bad_record == "error":
                    errors.append(e)
                    if len(errors) >= 20:
                        break
                else:
                    self.skipped[e.code] += 1
                    log.warning("skipping record: %s", e)
        if errors:
            lines = "\n".join(str(e) for e in errors)
            raise BadRecords(f"{len(errors)} bad record(s) (data.on_bad_record=error); first:\n{lines}")
        if self.skipped:
            log.warning("skipped %d bad records: %s", sum(self.skipped.values()), dict(self.skipped))
        if not self.examples:
            raise RecordError("no usable training records", str(image_root), code="empty_dataset")

    def _prepare(self, rec: Record) -> Example:
        check_placeholders(rec)
        if rec.turns[0].role not in ("user", "system"):
            raise RecordError("first turn is not from the user", rec.source, rec.id, code="first_turn_not_user")
        images = [resolve_media(self.root, p, rec.source, rec.id) for p in rec.media.get("image", [])]
        sizes = []
        for p in images:
            try:
                with Image.open(p) as im:
                    sizes.append(im.size)  # reads the header: catches non-images before step 1
            except Exception as e:
                raise RecordError(f"unreadable image '{p.name}': {e}", rec.source, rec.id, code="media_unreadable") from None
        audios, videos, media_tokens = prepare_av(rec, self.root, self.processor)
        if images and self.processor.config.image_aspect_ratio != "pad":
            media_tokens["image"] = self.processor.image_tokens(sizes)
        n_media = {m: len(v) for m, v in rec.media.items()}
        enc = self.processor.encode(rec.turns, n_media, source=rec.source, record_id=rec.id, media_tokens=media_tokens)
        if all(lab == IGNORE for lab in enc.labels):
            raise RecordError("no assistant turn to learn from", rec.source, rec.id, code="no_answer")
        return Example(rec.id, rec.source, enc.input_ids, enc.labels, images, rec.language, sizes, audios, videos)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict | None:
        ex = self.examples[i]
        try:
            imgs = [open_image(p, ex.source, ex.record_id) for p in ex.images]
            audio, video = load_av(ex.audios, ex.videos, self.processor, ex.source, ex.record_id)
        except RecordError as e:
            if self.on_bad_record == "error":
                raise
            log.warning("skipping record: %s", e)
            return None
        pixels = None  # a MediaBatch (image views, audio features, video frames); collate merges them in order
        if imgs or audio is not None or video:
            pixels = self.processor.images_to_media(imgs, [ex.language] * len(imgs))
            pixels.audio, pixels.video = audio, video
        return {"input_ids": ex.input_ids, "labels": ex.labels, "pixels": pixels, "language": ex.language}


def collate(items: list[dict | None], pad_id: int) -> dict:
    """Right-pad a list of examples -> input_ids/labels/attention_mask/segment_ids [b, s], pixels [n, 3, H, W]."""
    items = [it for it in items if it is not None]
    width = max(len(it["input_ids"]) for it in items)
    b = len(items)
    ids = torch.full((b, width), pad_id, dtype=torch.long)
    labels = torch.full((b, width), IGNORE, dtype=torch.long)
    mask = torch.zeros((b, width), dtype=torch.long)
    for i, it in enumerate(items):
        n = len(it["input_ids"])
        ids[i, :n] = torch.tensor(it["input_ids"])
        labels[i, :n] = torch.tensor(it["labels"])
        mask[i, :n] = 1
    pix = [it["pixels"] for it in items if it["pixels"] is not None]
    seg = torch.where(mask.bool(), torch.arange(b).unsqueeze(1), torch.tensor(-1))
    return {"input_ids": ids, "labels": labels, "attention_mask": mask, "position_ids": None, "segment_ids": seg,
            "pixels": torch.cat(pix) if pix else None, "languages": [it["language"] for it in items]}
