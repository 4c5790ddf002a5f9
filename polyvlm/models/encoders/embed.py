"""Media features into the LM's input embeddings: images (pad or anyres; through the moe connector with its
prompt summary), audio and video, each scattered over its placeholder tokens in order; router statistics."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from typing import TYPE_CHECKING

import torch

from polyvlm.media import modalities
from polyvlm.models.anyres import Layout, base_layout, layout, merge, parse_mode, parse_pinpoints
from polyvlm.models.encoders.media import MediaBatch
from polyvlm.models.encoders.modality import modality_features, tokens_per_input
from polyvlm.models.encoders.video import pool_frames, pooled_side
from polyvlm.registry import Registry

if TYPE_CHECKING:
    from polyvlm.models.vlm import PolyVLM

IGNORE = -100


class RouterStats:
    """Sum and count of moe router distributions per language (`und` when unknown)."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = defaultdict(int)

    def add(self, routing: torch.Tensor, langs: list[str | None]) -> None:
        """routing [n, X] (one row per image), langs [n]."""
        for w, lang in zip(routing.float().cpu(), langs):
            key = lang or "und"
            self.sums[key] = self.sums.get(key, torch.zeros_like(w)) + w
            self.counts[key] += 1

    def mean(self) -> dict[str, list[float]]:
        return {k: [round(float(v), 4) for v in self.sums[k] / self.counts[k]] for k in sorted(self.sums)}

    def pop(self) -> dict[str, list[float]]:
        """Mean distribution per language since the last pop, then reset."""
        out = self.mean()
        self.sums, self.counts = {}, defaultdict(int)
        return out


def _frozen(module: torch.nn.Module):
    """No autograd graph through an encoder that does not train."""
    frozen = not any(p.requires_grad for p in module.parameters())
    return torch.no_grad() if frozen else contextlib.nullcontext()


def anyres_layouts(model: PolyVLM, sizes: list[tuple[int, int]], views: list[int] | None = None) -> list[Layout]:
    """Layouts of anyres images of `sizes` (w, h) for this model's encoder and settings; an image given as one
    view under anyres_max_N (`views`) is a multi-image sample's base-only image."""
    v = model.vision
    cap = parse_mode(model.cfg.image_aspect_ratio)
    pins = parse_pinpoints(model.cfg.image_grid_pinpoints, v.image_size)
    grid = v.image_size // v.patch_size
    views = views or [0] * len(sizes)
    return [base_layout(grid) if (cap and n == 1) else layout(w, h, pins, v.image_size, grid, cap or 0)
            for (w, h), n in zip(sizes, views)]


def _project(model: PolyVLM, feats: torch.Tensor, cls: torch.Tensor, prompt: torch.Tensor | None,
             prompt_mask: torch.Tensor | None, langs: list[str | None]) -> torch.Tensor:
    """Vision features [n, t, d_enc] (+ CLS [n, d_enc]) -> [n, t, d_lm]; the moe connector gets its prompt."""
    c = model.connector
    dt = c.dtype
    if c.needs_prompt and prompt is not None:
        out = c(feats.to(dt), cls.to(dt), prompt, prompt_mask)
        if c.last_routing is not None:
            model.router_stats.add(c.last_routing, langs)
        return out
    return c(feats.to(dt))


def embed_media(model: PolyVLM, input_ids: torch.Tensor, media: MediaBatch | torch.Tensor | None,
                attention_mask: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None) -> torch.Tensor:
    """input_ids [b, s] + media -> inputs_embeds [b, s, d].

    The moe router of an image reads the static embeddings of its own sample's prompt: tokens that are
    real (attention mask), not media, not supervised (labels), and in the same packed segment (position ids
    restart at 0 per sample).
    """
    media = MediaBatch.of(media)
    ids = {m.name: model.media_token_ids.get(m.name) for m in modalities()}
    is_media = torch.zeros_like(input_ids, dtype=torch.bool)
    for t in ids.values():
        if t is not None:
            is_media |= input_ids == t
    embeds = model.llm.get_input_embeddings()(input_ids.masked_fill(is_media, 0))
    static = embeds
    prompt_mask = ~is_media
    if attention_mask is not None:
        prompt_mask &= attention_mask.bool()
    if labels is not None:
        prompt_mask &= labels == IGNORE
    segment = (position_ids == 0).cumsum(1) if position_ids is not None else torch.zeros_like(input_ids)

    def prompts_for(slots: torch.Tensor, counts: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per item (counts[i] slots each, in order) its sample's prompt [n, s, d] and mask [n, s]."""
        where = slots.nonzero()  # [n_slots, 2] row-major
        starts = torch.tensor([0, *counts[:-1]], device=where.device).cumsum(0).clamp(max=max(len(where) - 1, 0))
        rows, cols = where[starts, 0], where[starts, 1]
        mask = prompt_mask[rows] & (segment[rows] == segment[rows, cols].unsqueeze(1))
        return static[rows], mask

    for modality, tok in ids.items():
        if tok is None:
            continue
        slots = input_ids == tok
        n_slots = int(slots.sum())
        feats = _features(model, modality, media, slots, n_slots, prompts_for)
        if not feats:
            if n_slots:
                raise ValueError(f"{n_slots} {modality} placeholder tokens but no {modality} inputs")
            continue
        flat = torch.cat(feats).to(embeds.dtype)
        if flat.shape[0] != n_slots:
            raise ValueError(f"{n_slots} {modality} placeholder tokens but {len(feats)} {modality} input(s) give "
                             f"{flat.shape[0]} feature rows")
        embeds = embeds.masked_scatter(slots.unsqueeze(-1), flat)
    return embeds


def _image_features(model: PolyVLM, media: MediaBatch, slots: torch.Tensor, n_slots: int, prompts_for) -> list[torch.Tensor]:
    """Per image its feature rows [t_i, d_lm] (pad: one view; anyres: base + tiles merged)."""
    if media.pixels is None or media.n_images == 0:
        return []
    with _frozen(model.vision):
        feats, cls = model.vision.forward_with_cls(media.pixels.to(model.device))  # [v, t, d_enc], [v, d_enc]
    anyres = parse_mode(model.cfg.image_aspect_ratio) is not None
    lays = anyres_layouts(model, media.image_sizes, media.image_views) if anyres else []
    counts = [lay.tokens for lay in lays] if anyres else [feats.shape[1]] * media.n_images
    prompt = mask = None
    if model.connector.needs_prompt and sum(counts) == n_slots:
        prompt, mask = prompts_for(slots, counts)  # per image
        rep = torch.tensor(media.image_views, device=prompt.device)
        prompt, mask = prompt.repeat_interleave(rep, 0), mask.repeat_interleave(rep, 0)  # per view
    langs = [lang for lang, n in zip(media.image_langs, media.image_views) for _ in range(n)]
    out = _project(model, feats, cls, prompt, mask, langs)  # [v, t, d_lm]
    if not anyres:
        return list(out)
    res, at = [], 0
    for lay in lays:
        res.append(merge(out[at : at + lay.views], lay, model.image_newline))
        at += lay.views
    return res


def _video_features(model: PolyVLM, media: MediaBatch, *_) -> list[torch.Tensor]:
    """Per video its frames' pooled feature rows [f * t', d_lm]."""
    if not media.video:
        return []
    frames = torch.cat(media.video).to(model.device)
    with _frozen(model.vision):
        feats, _ = model.vision.forward_with_cls(frames)
    if model.vision.has_cls and model.vision.select == "full":
        feats = feats[:, 1:]
    out = model.connector.project(feats.to(model.connector.dtype))  # the moe mixture routes images only
    onevision = bool(parse_mode(model.cfg.image_aspect_ratio))  # LLaVA-OneVision's video rule (Processor.onevision_video)
    if out.shape[1] > 1:
        out = pool_frames(out, "bilinear" if onevision else "average")  # 2x2 over the patch grid
    sizes = [v.shape[0] for v in media.video]
    rows = [x.flatten(0, 1) for x in torch.split(out, sizes)]
    if onevision:  # one newline embedding after the last frame
        rows = [torch.cat([x, model.image_newline.to(x.dtype)[None]]) for x in rows]
    return rows


def _audio_features(model: PolyVLM, media: MediaBatch, *_) -> list[torch.Tensor]:
    """Per clip its feature rows [P', d_lm]."""
    if media.audio is None or media.audio.shape[0] == 0:
        return []
    if model.audio is None:
        raise ValueError("audio inputs given but this model has no audio encoder (set model.audio or model.audio_config)")
    with _frozen(model.audio):
        feats = model.audio(media.audio.to(model.device))  # [n, P', d_a]
    out = model.audio_connector(feats.to(next(model.audio_connector.parameters()).dtype))
    return list(out)


# modality -> features(model, media, slots, n_slots, prompts_for) -> feature rows per input, in placeholder order;
# a modality added in polyvlm/media registers its encoder's function here
FEATURES: Registry = Registry("modality features")
FEATURES.register("image")(_image_features)
FEATURES.register("video")(_video_features)
FEATURES.register("audio")(_audio_features)


def _features(model: PolyVLM, modality: str, media: MediaBatch, slots: torch.Tensor, n_slots: int, prompts_for) -> list[torch.Tensor]:
    """Feature rows per input of `modality` ([t_i, d] each), in placeholder order: the registered function of a
    built-in modality, or the model's encoder of a configured one (`model.encoders`)."""
    encoders = getattr(model, "encoders", None)  # the bare stand-ins of some tests have none
    if modality not in FEATURES and encoders is not None and modality in encoders:
        return modality_features(model, modality, media.extra.get(modality, []))
    if modality not in FEATURES:
        if n_slots:
            raise ValueError(f"{n_slots} {modality} placeholder tokens but this model has no {modality} encoder")
        return []
    return FEATURES.get(modality)(model, media, slots, n_slots, prompts_for)


def media_tokens(model: PolyVLM) -> dict[str, int]:
    """Placeholder tokens per input (image: per pad image or per anyres base view; video: per frame; a configured
    modality: what its encoder declares)."""
    v = model.vision
    single = model.connector.tokens_out == 1
    grid = v.image_size // v.patch_size
    out = {"image": 1 if single else v.tokens_per_image, "video": 1 if single else pooled_side(grid) ** 2}
    if model.audio is not None:
        out["audio"] = 1 if model.audio_connector.tokens_out == 1 else model.audio.frames_out
    for m, enc in model.encoders.items():
        out[m] = tokens_per_input(enc, model.encoder_connectors[m])
    return out
