"""Quick start stage 0: CLIP-style contrastive pre-training of the tiny encoders against the scenes' captions.

A real pipeline starts from a CLIP / SigLIP (or Whisper) encoder made by a generic objective, not from one trained
for the questions it will be asked. Stage 0 does the same at toy scale: a small caption encoder (token embeddings of
the polyvlm tokenizer's ids, one transformer layer, masked mean) and the media encoder's summary (the CLS token of
the layer the connector reads; the mean frame state for audio) are projected to a shared space and trained with the
symmetric InfoNCE loss (`polyvlm.models.loss.contrastive_loss`) under a learnable log temperature, as CLIP does.
There are no attribute labels and no classifier: the captions name every attribute (count, colour, shape, side;
beeps and pitch for tones), so telling a batch's captions apart makes the embedding carry them. The captions are
English, as the CLIP / SigLIP towers that multilingual LLaVA models (Pangea, Parrot) start from were trained on
English captions; mixing the six languages at this scale (600 steps) left side and count near chance (measured:
28% whole-caption zero-shot accuracy, against 90-98% in English in 500 steps). The caption encoder is dropped
afterwards, as LLaVA drops CLIP's text tower; the languages come in with stages 1 and 2.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from polyvlm.data.scenes import COLORS, COUNTS, SHAPES, SIDES, Scene, draw_scene, tone_caption, tones
from polyvlm.models.loss import contrastive_loss
from polyvlm.train.optim import warmup_cosine

log = logging.getLogger("polyvlm.quickstart")
MAX_LOGIT_SCALE = math.log(100.0)  # CLIP clamps its learnt temperature at 100


class CaptionEncoder(nn.Module):
    """Token ids [n, s] and attention mask [n, s] -> caption embeddings [n, dim].

    Embedding + learnt positions, one pre-norm transformer layer, mean over the real tokens, linear projection.
    """

    def __init__(self, vocab_size: int, dim: int, width: int = 64, max_len: int = 32):
        super().__init__()
        self.tok = nn.Embedding(vocab_size, width)
        self.pos = nn.Parameter(torch.zeros(max_len, width))
        self.layer = nn.TransformerEncoderLayer(width, 4, 2 * width, dropout=0.0, batch_first=True, norm_first=True)
        self.proj = nn.Linear(width, dim)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if ids.shape[1] > self.pos.shape[0]:
            raise ValueError(f"caption of {ids.shape[1]} tokens is longer than the caption encoder's {self.pos.shape[0]}")
        h = self.layer(self.tok(ids) + self.pos[: ids.shape[1]], src_key_padding_mask=~mask)
        m = mask.unsqueeze(-1).to(h.dtype)
        return self.proj((h * m).sum(1) / m.sum(1).clamp(min=1))


@dataclass
class Task:
    """What one modality's stage 0 needs: every distinct content `key`, its caption in a language, how to draw
    media inputs for keys (encoder input tensor), how the encoder summarises them ([n, d]) and the attribute
    names of a key (for the zero-shot report)."""

    name: str
    keys: list[tuple]
    attrs: tuple[str, ...]
    caption: Callable[[tuple, str], str]
    draw: Callable[[Sequence[tuple], random.Random], torch.Tensor]
    summary: Callable[[torch.Tensor], torch.Tensor]
    width: int


def _tokenize(tokenizer, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Captions -> ids [n, s] (padded with 0) and mask [n, s] from the polyvlm tokenizer."""
    rows = [tokenizer(t, add_special_tokens=False)["input_ids"] or [0] for t in texts]
    s = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), s, dtype=torch.long)
    mask = torch.zeros(len(rows), s, dtype=torch.bool)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = True
    return ids, mask


def _draw_keys(task: Task, rng: random.Random, n: int, group: int) -> list[tuple]:
    """`n` keys, distinct within each run of `group`: no caption of a group is another item's positive."""
    out: list[tuple] = []
    while len(out) < n:
        out += rng.sample(task.keys, min(group, n - len(out)))
    return out


def _group_loss(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor, group: int) -> torch.Tensor:
    """Mean InfoNCE over consecutive groups of rows of a [n, d] and b [n, d]."""
    parts = [contrastive_loss(a[i : i + group], b[i : i + group], scale) for i in range(0, a.shape[0], group)]
    return torch.stack(parts).mean()


def pretrain(task: Task, encoder: nn.Module, tokenizer, steps: int, batch_size: int, lr: float, seed: int,
             dim: int = 64, languages: Sequence[str] = ("en",), show_progress: bool = True) -> dict[str, float]:
    """Train `encoder` in place against `task`'s captions in `languages` (one drawn per pair); returns the
    zero-shot report of `zero_shot`. One intra-op thread: at this width (64) a second thread costs more in
    synchronisation than it gains, and on a shared machine far more (measured 10x the CPU time per step)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _pretrain(task, encoder, tokenizer, steps, batch_size, lr, seed, dim, list(languages), show_progress)
    finally:
        torch.set_num_threads(threads)


def _pretrain(task: Task, encoder: nn.Module, tokenizer, steps: int, batch_size: int, lr: float, seed: int, dim: int,
              languages: list[str], show_progress: bool) -> dict[str, float]:
    torch.manual_seed(seed)
    rng = random.Random(seed + 17)
    group = min(batch_size, len(task.keys))
    text = CaptionEncoder(len(tokenizer), dim)
    proj = nn.Linear(task.width, dim)
    log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
    encoder.train().requires_grad_(True)
    params = [*encoder.parameters(), *text.parameters(), *proj.parameters(), log_scale]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, steps, max(1, steps // 10)))
    bar = tqdm(range(steps), desc=f"stage 0 ({task.name} encoder, contrastive)", disable=not show_progress,
               dynamic_ncols=True)
    for _ in bar:
        keys = _draw_keys(task, rng, batch_size, group)
        inputs = task.draw(keys, rng)
        ids, mask = _tokenize(tokenizer, [task.caption(k, rng.choice(languages)) for k in keys])
        scale = log_scale.clamp(max=MAX_LOGIT_SCALE).exp()
        loss = _group_loss(proj(task.summary(inputs)), text(ids, mask), scale, group)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{float(loss.detach()):.3f}", scale=f"{float(scale.detach()):.1f}")
    encoder.eval()
    report = zero_shot(task, lambda x: proj(task.summary(x)), lambda i, m: text(i, m), tokenizer, seed, languages)
    log.info("stage 0 %s encoder, zero-shot accuracy on held-out inputs (%%): %s", task.name, report)
    return report


@torch.no_grad()
def zero_shot(task: Task, embed_media: Callable, embed_text: Callable, tokenizer, seed: int,
              languages: Sequence[str] = ("en",), n: int = 240) -> dict[str, float]:
    """CLIP's zero-shot classification on `n` held-out inputs: each is given the key whose caption (among all
    keys' captions in one of `languages`, each in turn) is nearest. Returns percentages: `<name>_<attr>` per
    attribute of the chosen key and `<name>_caption` (the whole caption right), 0-100 like every polyvlm accuracy."""
    rng = random.Random(seed + 99)
    keys = [rng.choice(task.keys) for _ in range(n)]
    media = F.normalize(embed_media(task.draw(keys, rng)), dim=-1)  # [n, dim]
    hits: dict[str, int] = dict.fromkeys(["caption", *task.attrs], 0)
    for lang in languages:
        bank = F.normalize(embed_text(*_tokenize(tokenizer, [task.caption(k, lang) for k in task.keys])), dim=-1)
        best = (media @ bank.T).argmax(-1).tolist()
        for i, key in enumerate(keys):
            got = task.keys[best[i]]
            hits["caption"] += got == key
            for j, a in enumerate(task.attrs):
                hits[a] += got[j] == key[j]
    return {f"{task.name}_{k}": round(100 * v / (n * len(languages)), 1) for k, v in hits.items()}


def scene_task(enc) -> Task:
    """The vision encoder's stage 0: a scene's picture <-> "<count> <colour> <shape> <side>" in a language."""
    keys = list(itertools.product(COLORS, SHAPES, COUNTS, SIDES))

    def draw(ks: Sequence[tuple], rng: random.Random) -> torch.Tensor:
        return enc.preprocess([draw_scene(Scene(*k), rng, enc.image_size) for k in ks])

    return Task("image", keys, ("color", "shape", "count", "side"), lambda k, lang: Scene(*k).caption(lang), draw,
                lambda px: enc.forward_with_cls(px)[1], enc.hidden_size)


def tone_task(enc, processor) -> Task:
    """The audio encoder's stage 0: a tone clip <-> "<count> <high|low>" in a language (mean frame state)."""
    keys = list(itertools.product(COUNTS, (False, True)))

    def draw(ks: Sequence[tuple], rng: random.Random) -> torch.Tensor:
        return processor.audio_features([tones(c, h, rng) for c, h in ks])

    return Task("audio", keys, ("beeps", "pitch"), lambda k, lang: tone_caption(k[0], k[1], lang), draw,
                lambda x: enc(x).mean(1), enc.hidden_size)


def pretrain_encoder(enc, tokenizer, steps: int = 500, batch_size: int = 32, lr: float = 3e-3, seed: int = 0,
                     show_progress: bool = True) -> dict[str, float]:
    """Contrastive stage 0 of the vision encoder (in place); returns `zero_shot`'s percentages (`image_*`)."""
    return pretrain(scene_task(enc), enc, tokenizer, steps, batch_size, lr, seed, show_progress=show_progress)


def pretrain_audio_encoder(enc, processor, steps: int = 150, batch_size: int = 32, lr: float = 3e-3, seed: int = 0,
                           show_progress: bool = True) -> dict[str, float]:
    """Contrastive stage 0 of the audio encoder (in place), standing in for a pre-trained Whisper; a batch is
    groups of the 8 distinct tone captions. Returns `zero_shot`'s percentages (`audio_*`)."""
    return pretrain(tone_task(enc, processor), enc, processor.tokenizer, steps, batch_size, lr, seed,
                    show_progress=show_progress)
