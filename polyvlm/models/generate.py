"""Batched generation (greedy or sampled, KV cache, left padding, stop at end of turn) and the
`VLMGenerator` that puts a PolyVLM behind the `polyvlm.infer.Generator` interface."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from polyvlm.data.records import PLACEHOLDERS, Turn
from polyvlm.infer import ChatRequest, Completion, PromptTooLong, Video
from polyvlm.models.encoders.media import MediaBatch
from polyvlm.models.encoders.video import sample_indices
from polyvlm.models.processor import Processor
from polyvlm.models.vlm import PolyVLM


@dataclass
class SampleParams:
    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None


def _pick(logits: torch.Tensor, p: SampleParams, gen: torch.Generator | None) -> int:
    """logits [V] -> next token id (greedy when temperature is 0)."""
    return _pick_rows(logits.unsqueeze(0), [p], [gen], [0])[0]


def _pick_rows(logits: torch.Tensor, params: list[SampleParams], gens: list[torch.Generator | None],
               rows: list[int]) -> list[int]:
    """logits [b, V] -> the next token of each row in `rows`: argmax when its temperature is 0, else a draw
    from its generator after temperature and top-p. Softmax and top-p run for all sampled rows at once;
    only the draws are per row (each request's seed owns its own random stream)."""
    out: dict[int, int] = {}
    greedy = [i for i in rows if params[i].temperature <= 0]
    if greedy:
        for i, t in zip(greedy, logits[greedy].argmax(-1).tolist()):
            out[i] = t
    sampled = [i for i in rows if params[i].temperature > 0]
    if sampled:
        temps = torch.tensor([params[i].temperature for i in sampled], dtype=torch.float32).unsqueeze(1)
        probs = torch.softmax(logits[sampled].float() / temps, dim=-1)  # [k, V]
        top_p = torch.tensor([params[i].top_p for i in sampled], dtype=torch.float32).unsqueeze(1)
        if bool((top_p < 1.0).any()):
            sorted_p, order = torch.sort(probs, dim=-1, descending=True)
            keep = (torch.cumsum(sorted_p, -1) - sorted_p < top_p) | (top_p >= 1.0)  # always keeps the top token
            probs = torch.zeros_like(probs).scatter(1, order, sorted_p * keep)
        probs = probs / probs.sum(-1, keepdim=True)
        for j, i in enumerate(sampled):
            out[i] = int(torch.multinomial(probs[j], 1, generator=gens[i]))
    return [out[i] for i in rows]


@functools.cache
def _cache_arg(forward_cls: type) -> str:
    """Name of the KV-cache argument of a causal LM's forward: `cache` in transformers >= 5.2x (where
    `past_key_values` is deprecated and warns), `past_key_values` before."""
    return "cache" if "cache" in inspect.signature(forward_cls.forward).parameters else "past_key_values"


def _lm_class(llm: torch.nn.Module) -> type:
    """The class whose forward takes the cache (a peft wrapper forwards **kwargs to its base model)."""
    base = llm.get_base_model() if hasattr(llm, "get_base_model") else llm
    return type(base)


@torch.no_grad()
def generate_ids(
    model: PolyVLM, prompts: list[list[int]], pixels: torch.Tensor | MediaBatch | None, params: list[SampleParams],
    stop_ids: set[int], pad_id: int, use_cache: bool = True,
    on_step: Callable[[int, list[int]], bool] | None = None, embeds: torch.Tensor | None = None,
) -> list[list[int]]:
    """Continue each prompt (token ids with expanded placeholders). Returns new ids per prompt, stop token excluded.

    Prompts are left-padded into one batch [b, s]; position ids count only real tokens, so a row's result
    does not depend on the other rows. `on_step(i, ids_so_far)` is called after each new token of row i and
    may return True to stop that row (stop strings). `embeds` [b, s, d]: the prompts' input embeddings when the
    caller builds them (PandaGPT's summed media row); `pixels` is then unused.
    """
    dev = model.device
    b = len(prompts)
    width = max(len(p) for p in prompts)
    ids = torch.full((b, width), pad_id, dtype=torch.long)
    mask = torch.zeros((b, width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.tensor(p)
        mask[i, width - len(p):] = 1
    ids, mask = ids.to(dev), mask.to(dev)
    if embeds is None:  # the mask keeps padding out of moe prompt summaries
        embeds = model.embed(ids, pixels, attention_mask=mask)
    embeds = embeds.to(dev)
    gens = []
    for p in params:
        g = None
        if p.temperature > 0:
            g = torch.Generator(device="cpu")
            g.manual_seed(p.seed if p.seed is not None else int(torch.randint(0, 2**31 - 1, (1,))))
        gens.append(g)
    out: list[list[int]] = [[] for _ in range(b)]
    done = [False] * b
    max_new = max(p.max_new_tokens for p in params)
    cache = None
    cache_arg = _cache_arg(_lm_class(model.llm))
    all_embeds, all_mask = embeds, mask
    step_embeds, step_mask = embeds, mask
    for _ in range(max_new):
        pos = (all_mask.cumsum(-1) - 1).clamp(min=0)
        if use_cache:
            res = model.llm(inputs_embeds=step_embeds, attention_mask=all_mask,
                            position_ids=pos[:, -step_embeds.shape[1]:], use_cache=True, **{cache_arg: cache})
            cache = res[cache_arg]
        else:
            res = model.llm(inputs_embeds=all_embeds, attention_mask=all_mask, position_ids=pos, use_cache=False)
        last = res.logits[:, -1].float().cpu()
        live = [i for i in range(b) if not done[i]]
        picked = dict(zip(live, _pick_rows(last, params, gens, live)))
        nxt = []
        for i in range(b):
            if done[i]:
                nxt.append(pad_id)
                continue
            tok = picked[i]
            if tok in stop_ids:
                done[i] = True
            else:
                out[i].append(tok)
                if len(out[i]) >= params[i].max_new_tokens or (on_step is not None and on_step(i, out[i])):
                    done[i] = True
            nxt.append(tok)
        if all(done):
            break
        new = torch.tensor(nxt, device=dev).unsqueeze(1)
        step_embeds = model.llm.get_input_embeddings()(new)
        step_mask = torch.ones((b, 1), dtype=all_mask.dtype, device=dev)
        all_mask = torch.cat([all_mask, step_mask], 1)
        if not use_cache:
            all_embeds = torch.cat([all_embeds, step_embeds], 1)
    return out


def request_turns(req: ChatRequest) -> list[Turn]:
    """Messages -> turns; media without placeholders get them prepended to the first user message."""
    turns = [Turn(m["role"], m["content"]) for m in req.messages]
    for modality, items in req.media().items():
        tag = PLACEHOLDERS[modality]
        if items and not any(tag in t.text for t in turns):
            for t in turns:
                if t.role == "user":
                    t.text = (tag + "\n") * len(items) + t.text
                    break
    return turns


def read_video(source: str | bytes | Path | None, fps: float, upbound: int) -> list:
    """RGB frames of a video file, `data:` URI or encoded bytes, sampled as training samples them (`fps`, at most
    `upbound` frames; 0: no cap) by `polyvlm.media`'s seeking sampler. Raises MediaError (a ValueError)."""
    from polyvlm import media

    if source is None:
        raise ValueError("a video without source or frames")
    limits = media.MediaLimits(video_fps=fps, max_video_frames=upbound if upbound > 0 else 1 << 30)
    return media.load("video", source, limits, where="video")


def _decoded(modality: str, item: object) -> object:
    """An input of a modality beyond image/audio/video: references (path, bytes, data URI, URL) decoded by
    polyvlm.media, decoded inputs as they are."""
    from polyvlm import media

    return media.load(modality, item, where=modality) if isinstance(item, (str, bytes, Path)) else item


class VLMGenerator:
    """A PolyVLM checkpoint behind the `Generator` protocol (batched, KV cache, streaming callback)."""

    def __init__(self, model: PolyVLM, processor: Processor, name: str = "polyvlm"):
        from polyvlm.models import pandagpt

        self.model, self.processor, self.name = model, processor, name
        # a PandaGPT model (ImageBind + pool1) takes all six of ImageBind's modalities, summed into one row
        self.pandagpt = pandagpt.is_pandagpt(model)
        self.modalities = set(pandagpt.MODALITIES if self.pandagpt else processor.config.tokens_per_media)
        self.max_context = processor.config.max_length
        # PandaGPT ends a turn with "###" (its generation stops there); when that is not one token, a stop string
        eot = processor.template.eot
        multi = eot and len(processor.tokenizer.encode(eot, add_special_tokens=False)) > 1
        self.turn_stops = [eot] if self.pandagpt and multi else []

    def _encode(self, req: ChatRequest) -> list[int]:
        if self.pandagpt and any(req.media().values()):
            from polyvlm.models import pandagpt

            return pandagpt.prompt_ids(self.processor, [Turn(m["role"], m["content"]) for m in req.messages])
        tokens = {}
        if req.images:
            tokens["image"] = self.processor.image_tokens([im.size for im in req.images])
        if req.videos:
            tokens["video"] = self.processor.video_tokens([len(self.video_frames(v)) for v in req.videos])
        enc = self.processor.encode(
            request_turns(req), {m: len(v) for m, v in req.media().items()},  # a modality it lacks: RecordError
            add_generation_prompt=True, truncate=False, media_tokens=tokens or None,
        )
        return enc.input_ids

    def video_frames(self, video: Video) -> list:
        """The frames of a request's video as training samples them (`video_fps`, at most `frames_upbound`):
        decoded from its source once and cached on the `Video`; frames given with their `fps` are subsampled."""
        c = self.processor.config
        if video.frames is None:
            video.frames, video.fps = read_video(video.source, c.video_fps, c.frames_upbound), None
        elif video.fps is not None or (c.frames_upbound > 0 and len(video.frames) > c.frames_upbound):
            idx = sample_indices(len(video.frames), video.fps or c.video_fps, c.video_fps, c.frames_upbound)
            video.frames, video.fps = [video.frames[i] for i in idx], None
        return video.frames

    def _media(self, requests: list[ChatRequest]) -> MediaBatch | None:
        """Images (padded or anyres views), audio (log-mel of 16 kHz waveforms) and videos (frames [f, 3, S, S])
        of all requests, in order."""
        images = [im for r in requests for im in r.images]
        audios = [a for r in requests for a in r.audios]
        videos = [v for r in requests for v in r.videos]
        names = dict.fromkeys(m for r in requests for m in r.extra)  # modalities beyond image/audio/video
        extra = {m: [_decoded(m, x) for r in requests for x in r.extra.get(m, [])] for m in names}
        if not images and not audios and not videos and not any(extra.values()):
            return None
        langs = [r.language for r in requests for _ in r.images]  # the moe router's statistics per language
        groups = [len(r.images) for r in requests if r.images]  # images per request: OneVision's multi-image views
        media = self.processor.images_to_media(images, langs, groups) if images else MediaBatch()
        if audios:
            media.audio = self.processor.audio_features(audios)
        media.video = [self.processor.frames_to_pixels(self.video_frames(v)) for v in videos]
        media.extra = self.processor.to_media(extra).extra if any(extra.values()) else {}
        return media

    def _pandagpt_embeds(self, requests: list[ChatRequest], prompts: list[list[int]]) -> torch.Tensor:
        """PandaGPT's prompt embeddings, left-padded [b, s, d]: a request with media gets its inputs summed into
        the one row (polyvlm.models.pandagpt.prompt); a text-only one its token embeddings."""
        from polyvlm.models import pandagpt

        table = self.model.llm.get_input_embeddings()
        width = max(len(p) for p in prompts)
        rows = []
        for r, ids in zip(requests, prompts):
            inputs = pandagpt.request_inputs(r.media(), self.model.vision.tower.cfg)  # at its ImageBind's sizes
            turns = [Turn(m["role"], m["content"]) for m in r.messages]
            emb = pandagpt.prompt(self.model, self.processor, turns, inputs)[1] if inputs else (
                table(torch.tensor([ids], device=self.model.device)))
            pad = table(torch.full((1, width - len(ids)), self.processor.pad_id, device=self.model.device))
            rows.append(torch.cat([pad, emb], 1))
        return torch.cat(rows)

    def count_prompt_tokens(self, request: ChatRequest) -> int:
        return len(self._encode(request))

    def generate(self, requests: list[ChatRequest], on_token: Callable[[int, str], None] | None = None) -> list[Completion]:
        prompts = []
        for r in requests:
            ids = self._encode(r)
            if len(ids) + 1 > self.max_context:
                raise PromptTooLong(f"prompt takes {len(ids)} tokens; the context is {self.max_context}")
            prompts.append(ids)
        params = [
            SampleParams(min(r.max_new_tokens, self.max_context - len(p)), r.temperature, r.top_p, r.seed)
            for r, p in zip(requests, prompts)
        ]
        pixels, embeds = (None, self._pandagpt_embeds(requests, prompts)) if self.pandagpt else (self._media(requests), None)
        tok = self.processor.tokenizer
        sent = [""] * len(requests)
        stopped_by_string = [False] * len(requests)

        def on_step(i: int, ids: list[int]) -> bool:
            text = tok.decode(ids, skip_special_tokens=True)
            stops = [*requests[i].stop, *self.turn_stops]
            hit = min((text.find(s) for s in stops if s and s in text), default=-1)
            if hit >= 0:
                text = text[:hit]
                stopped_by_string[i] = True
            else:  # the start of the turn's end marker ("#" of "###") waits for the next token
                text = text[:len(text) - max((k for s in self.turn_stops for k in range(len(s) - 1, 0, -1)
                                              if text.endswith(s[:k])), default=0)]
            if on_token is not None and not text.endswith("\ufffd") and len(text) > len(sent[i]):
                on_token(i, text[len(sent[i]):])
                sent[i] = text
            return hit >= 0

        outs = generate_ids(self.model, prompts, pixels, params, self.processor.stop_ids, self.processor.pad_id,
                            on_step=on_step, embeds=embeds)
        results = []
        for i, (r, ids) in enumerate(zip(requests, outs)):
            text = tok.decode(ids, skip_special_tokens=True)
            for s in [*r.stop, *self.turn_stops]:
                if s and s in text:
                    text = text[: text.find(s)]
            if on_token is not None and len(text) > len(sent[i]) and text.startswith(sent[i]):
                on_token(i, text[len(sent[i]):])
            finish = "length" if len(ids) >= params[i].max_new_tokens and not stopped_by_string[i] else "stop"
            results.append(Completion(text, len(prompts[i]), len(ids), finish))
        return results
