"""Processor: turns + media -> token ids and labels (template, label mask, placeholder expansion,
truncation), and images -> pixels. Knows every sequence length before any encoder runs."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from PIL import Image
from transformers import PreTrainedTokenizerBase

from polyvlm.data.records import RecordError, Turn
from polyvlm.media import PLACEHOLDERS, MediaLimits, get_modality
from polyvlm.media.video import sample_indices
from polyvlm.models.encoders.media import MediaBatch
from polyvlm.models.encoders.vision import preprocess_images
from polyvlm.models.templates import get_template
from polyvlm.models.tokenizer import load_tokenizer, placeholder_ids

IGNORE = -100


class SampleTooLong(RecordError):
    """The sample does not fit `max_length` without cutting a media placeholder run or every answer."""


@dataclass
class ProcessorConfig:
    template: str = "chatml"
    max_length: int = 2048
    image_size: int = 336
    image_mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    image_std: tuple[float, ...] = (0.5, 0.5, 0.5)
    tokens_per_media: dict[str, int] = field(default_factory=lambda: {"image": 576})
    image_aspect_ratio: str = "pad"  # pad | anyres | anyres_max_N (then per-image counts come from image sizes)
    image_grid_pinpoints: list = field(default_factory=list)
    patch_size: int = 14
    image_resize: str = "pad"  # pad: pad to square (LLaVA); crop: short side resized, centre crop (ImageBind)
    audio_mels: int = 80
    audio_samples: int = 480_000  # waveforms are padded or cut to this many 16 kHz samples
    video_fps: float = 1.0
    frames_upbound: int = 32


@dataclass
class Encoded:
    input_ids: list[int]  # [s], media placeholders expanded
    labels: list[int]  # [s], IGNORE where not supervised
    n_media: dict[str, int]


@dataclass
class Features:
    """One sample ready to collate: ids and labels [s], its media as tensors (None: text only), its language."""

    input_ids: list[int]
    labels: list[int]
    media: MediaBatch | None
    language: str | None = None


class Processor:
    def __init__(self, tokenizer: PreTrainedTokenizerBase, config: ProcessorConfig):
        self.tokenizer = tokenizer
        self.config = config
        self.template = get_template(config.template, tokenizer.bos_token)
        # every registered modality whose placeholder is a token of this tokenizer (polyvlm.media)
        self.media_token_ids = placeholder_ids(tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        eot_ids = tokenizer.encode(self.template.eot, add_special_tokens=False)
        self.stop_ids = {i for i in [tokenizer.eos_token_id, *(eot_ids if len(eot_ids) == 1 else [])] if i is not None}

    # -- text ---------------------------------------------------------------------------------------
    def encode(
        self, turns: list[Turn], n_media: dict[str, int] | None = None, add_generation_prompt: bool = False,
        source: str = "", record_id: str | None = None, truncate: bool = True,
        media_tokens: dict[str, list[int]] | None = None,
    ) -> Encoded:
        """Render, tokenise once with offsets, label assistant spans, expand placeholders, truncate.

        `media_tokens[m][i]`: placeholder tokens of input i of modality m when they vary per input (anyres
        images from `image_tokens`, videos from their frame count); otherwise `tokens_per_media[m]` each.

        Raises RecordError when placeholders and media disagree, SampleTooLong when truncation would cut
        a media run or leave nothing supervised (the caller drops the sample and logs why).
        """
        rendered = self.template.render(turns, add_generation_prompt)
        enc = self.tokenizer(rendered.text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        spans = rendered.spans
        labels = []
        j = 0
        for tok, (start, end) in zip(ids, offsets):
            while j < len(spans) and spans[j][1] <= start:
                j += 1
            # a token overlapping an answer span is supervised (e.g. " red" after "ASSISTANT:" in vicuna_v1)
            sup = j < len(spans) and start < spans[j][1] and end > spans[j][0]
            labels.append(tok if sup else IGNORE)
        for m, n in (n_media or {}).items():
            if n and m not in self.media_token_ids:
                raise RecordError(f"this model has no {m} encoder: {n} {m} input(s) and no {PLACEHOLDERS.get(m, m)} "
                                  "token in its tokenizer", source,
                                  record_id, code="unsupported_modality")
        counts = {m: ids.count(t) for m, t in self.media_token_ids.items() if t is not None}
        want = {m: (n_media or {}).get(m, 0) for m in counts}
        for m in counts:
            if counts[m] != want[m]:
                raise RecordError(
                    f"{counts[m]} {PLACEHOLDERS[m]} placeholder(s) but {want[m]} {m} input(s)", source, record_id,
                    code="placeholder_mismatch",
                )
        out_ids: list[int] = []
        out_labels: list[int] = []
        media_of = {t: m for m, t in self.media_token_ids.items()}
        seen = dict.fromkeys(media_of.values(), 0)
        for tok, lab in zip(ids, labels):
            m = media_of.get(tok)
            if m is not None:
                n = self.config.tokens_per_media.get(m)
                if n is None:
                    raise RecordError(f"this model has no {m} encoder", source, record_id, code="unsupported_modality")
                per = (media_tokens or {}).get(m)
                if per is not None:
                    n = per[seen[m]]
                elif m == "video" or (m == "image" and self.config.image_aspect_ratio != "pad"):
                    raise ValueError(f"{m} placeholder counts vary per input: pass media_tokens (see image_tokens, video_tokens)")
                seen[m] += 1
                out_ids.extend([tok] * n)
                out_labels.extend([IGNORE] * n)
            else:
                out_ids.append(tok)
                out_labels.append(lab)
        limit = self.config.max_length
        if truncate and len(out_ids) > limit:
            media_ids = set(media_of)
            if any(t in media_ids for t in out_ids[limit:]):
                raise SampleTooLong(
                    f"{len(out_ids)} tokens > max_length {limit}, and truncating would cut a media placeholder run",
                    source, record_id, code="too_long",
                )
            out_ids, out_labels = out_ids[:limit], out_labels[:limit]
            if not add_generation_prompt and all(lab == IGNORE for lab in out_labels):
                raise SampleTooLong(
                    f"no supervised token left after truncation to max_length {limit}", source, record_id, code="too_long"
                )
        return Encoded(out_ids, out_labels, want)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    # -- samples ------------------------------------------------------------------------------------
    def media_limits(self) -> MediaLimits:
        """How polyvlm.media samples this model's videos (`video_fps`, capped at `frames_upbound`)."""
        return MediaLimits(video_fps=self.config.video_fps, max_video_frames=self.config.frames_upbound)

    def placeholder_tokens(self, facts: dict[str, list[dict]]) -> dict[str, list[int]]:
        """Placeholder tokens per input from header facts (polyvlm.media probes: image `size`, video `frames` and
        `fps`), for the modalities whose count varies per input; known before anything is decoded."""
        c, out = self.config, {}
        if facts.get("image") and c.image_aspect_ratio != "pad":
            out["image"] = self.image_tokens([f["size"] for f in facts["image"]])
        if facts.get("video"):
            out["video"] = self.video_tokens([len(sample_indices(f["frames"], f["fps"], c.video_fps, c.frames_upbound))
                                              for f in facts["video"]])
        return out

    def process(self, turns: list[Turn], media: dict[str, list], language: str | None = None, source: str = "",
                record_id: str | None = None) -> Features:
        """A checked sample's turns + its decoded media (modality -> inputs in placeholder order: PIL images,
        16 kHz waveforms, lists of video frames) -> ids, labels and media tensors, in one pass."""
        tokens = self.placeholder_tokens({"image": [{"size": im.size} for im in media.get("image", [])]})
        if media.get("video"):  # the frames are already sampled: one token run per frame
            tokens["video"] = self.video_tokens([len(v) for v in media["video"]])
        enc = self.encode(turns, {m: len(v) for m, v in media.items()}, source=source, record_id=record_id,
                          media_tokens=tokens)
        return Features(enc.input_ids, enc.labels, self.to_media(media, language), language)

    def to_media(self, media: dict[str, list], language: str | None = None) -> MediaBatch | None:
        """Decoded media -> a MediaBatch (image views, audio log-mel features, video frame pixels); None when empty."""
        images, audios, videos = media.get("image", []), media.get("audio", []), media.get("video", [])
        if not any(media.values()):
            return None
        out = self.images_to_media(images, [language] * len(images)) if images else MediaBatch()
        out.audio = self.audio_features(audios) if audios else None
        out.video = [self.frames_to_pixels(frames) for frames in videos]
        for name, items in media.items():  # modalities added later: their declared `to_tensor`
            if name not in ("image", "audio", "video") and items:
                to_tensor = get_modality(name).to_tensor
                if to_tensor is None:
                    raise ValueError(f"modality '{name}' declares no to_tensor: the processor cannot feed its encoder")
                out.extra[name] = [to_tensor(x) for x in items]
        return out

    # -- media --------------------------------------------------------------------------------------
    def images_to_pixels(self, images: list[Image.Image]) -> torch.Tensor:
        """[n] PIL images -> pixels [n, 3, S, S]."""
        c = self.config
        if c.image_resize == "crop":
            from polyvlm.models.encoders.imagebind_data import image_pixels

            return image_pixels(images, c.image_size, c.image_mean, c.image_std)
        return preprocess_images(images, c.image_size, c.image_mean, c.image_std)

    def image_tokens(self, sizes: list[tuple[int, int]]) -> list[int]:
        """Placeholder tokens per image of size (w, h) of ONE sample, known before encoding (anyres grows with the
        size; under anyres_max_N the images of a multi-image sample get a base view each, as OneVision does)."""
        c = self.config
        if c.image_aspect_ratio == "pad":
            return [c.tokens_per_media["image"]] * len(sizes)
        from polyvlm.models.anyres import base_layout, base_only, layout, parse_mode, parse_pinpoints

        cap = parse_mode(c.image_aspect_ratio) or 0
        grid = c.image_size // c.patch_size
        if base_only(cap, len(sizes)):
            return [base_layout(grid).tokens] * len(sizes)
        pins = parse_pinpoints(c.image_grid_pinpoints, c.image_size)
        return [layout(w, h, pins, c.image_size, grid, cap).tokens for w, h in sizes]

    @property
    def onevision_video(self) -> bool:
        """anyres_max_N models treat videos as LLaVA-OneVision does: frames resized to the tower's square (no
        padding), pooled bilinearly to ceil(g/2) x ceil(g/2), one newline embedding after the last frame."""
        from polyvlm.models.anyres import parse_mode

        return bool(parse_mode(self.config.image_aspect_ratio))

    def video_tokens(self, n_frames: list[int]) -> list[int]:
        """Placeholder tokens per video of n sampled frames (+ OneVision's newline, see `onevision_video`)."""
        extra = 1 if self.onevision_video else 0
        return [n * self.config.tokens_per_media["video"] + extra for n in n_frames]

    def frames_to_pixels(self, frames: list[Image.Image]) -> torch.Tensor:
        """Video frames -> pixels [f, 3, S, S]: padded to a square like images, or (OneVision) resized to it."""
        if not self.onevision_video:
            return self.images_to_pixels(frames)
        c = self.config
        return preprocess_images([f.convert("RGB").resize((c.image_size, c.image_size), Image.Resampling.BICUBIC)
                                  for f in frames], c.image_size, c.image_mean, c.image_std)

    def images_to_media(self, images: list[Image.Image], langs: list[str | None] | None = None,
                        groups: list[int] | None = None) -> MediaBatch:
        """PIL images -> MediaBatch: one padded view each, or anyres base + tiles. `groups`: images per sample, in
        order (default: all one sample); under anyres_max_N a multi-image sample's images get one base view each."""
        c = self.config
        sizes = [im.size for im in images]
        langs = langs or [None] * len(images)
        if c.image_aspect_ratio == "pad":
            return MediaBatch(self.images_to_pixels(images), [1] * len(images), sizes, langs)
        from polyvlm.models.anyres import base_only, layout, parse_mode, parse_pinpoints, views

        cap = parse_mode(c.image_aspect_ratio) or 0
        pins = parse_pinpoints(c.image_grid_pinpoints, c.image_size)
        groups = groups if groups is not None else [len(images)]
        if sum(groups) != len(images):
            raise ValueError(f"groups {groups} do not add up to the {len(images)} images")
        alone = [not base_only(cap, n) for n in groups for _ in range(n)]
        parts, n_views = [], []
        for im, patched in zip(images, alone):
            if not patched:
                parts.append(self.images_to_pixels([im]))
                n_views.append(1)
                continue
            lay = layout(*im.size, pins, c.image_size, c.image_size // c.patch_size, cap)
            parts.append(views(im, lay, c.image_size, c.image_mean, c.image_std))
            n_views.append(lay.views)
        return MediaBatch(torch.cat(parts), n_views, sizes, langs)

    def audio_features(self, waves: list) -> torch.Tensor:
        """16 kHz waveforms -> Whisper log-mel features [n, mels, audio_samples // 160]."""
        from polyvlm.models.encoders.audio import LogMel

        return LogMel(self.config.audio_mels, self.config.audio_samples).features(waves)

    # -- persistence --------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        self.tokenizer.chat_template = self.template.jinja
        self.tokenizer.save_pretrained(directory)
        (directory / "processor.json").write_text(json.dumps(asdict(self.config), indent=2))

    @classmethod
    def load(cls, directory: str | Path) -> Processor:
        directory = Path(directory)
        data = json.loads((directory / "processor.json").read_text())
        data["image_mean"], data["image_std"] = tuple(data["image_mean"]), tuple(data["image_std"])
        return cls(load_tokenizer(str(directory)), ProcessorConfig(**data))
