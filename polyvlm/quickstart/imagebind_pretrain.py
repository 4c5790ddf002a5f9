"""PandaGPT quick start stage 0: pre-train a tiny ImageBind contrastively, as ImageBind was built: the image and
text towers on image-caption pairs (CLIP, which ImageBind starts from), then each other modality's tower bound
to the frozen image embeddings of the same scenes (symmetric InfoNCE, `polyvlm.models.loss.contrastive_loss`)."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from polyvlm.data.scenes import COLORS, COUNTS, SHAPES, SIDES, Scene, random_scene
from polyvlm.data.scenes_modal import CARRIES, render
from polyvlm.models.encoders import imagebind_data as ib
from polyvlm.models.encoders.imagebind import ImageBindModel
from polyvlm.models.loss import contrastive_loss
from polyvlm.train.optim import warmup_cosine

log = logging.getLogger("polyvlm.quickstart")
BOUND = ("audio", "thermal", "depth", "imu")  # modalities bound to the image (ImageBind's tower names)
_IB = {"image": "vision"}
# caption vocabulary of the tiny text tower: one id per attribute value; end-of-text is the largest id (the
# head reads the argmax position, as CLIP's tokenizer puts EOT last in its vocabulary); 0 pads
WORD_IDS = {w: i + 1 for i, w in enumerate([*COLORS, *SHAPES, *map(str, COUNTS), *SIDES])}


def caption_ids(scene: Scene, context: int, vocab: int) -> list[int]:
    """"<count> <colour> <shape> <side> EOT" as ids, padded with 0 to `context`."""
    ids = [WORD_IDS[str(scene.count)], WORD_IDS[scene.color], WORD_IDS[scene.shape], WORD_IDS[scene.side], vocab - 1]
    return ids + [0] * (context - len(ids))


@dataclass
class Pool:
    """Scenes rendered in every modality, as ImageBind's inputs: `inputs[tower]` [n, ...] (vision [n, 3, S, S],
    text [n, context], audio [n, 1, mels, frames] (one 2 s clip), thermal / depth [n, 1, S, S], imu [n, 6, L])."""

    scenes: list[Scene]
    inputs: dict[str, torch.Tensor]

    def combo(self) -> list[int]:
        """One class id per scene over (colour, shape, count, side)."""
        return [hash((s.color, s.shape, s.count, s.side)) for s in self.scenes]


def make_pool(model: ImageBindModel, n: int, seed: int, show_progress: bool = True) -> Pool:
    """Render `n` random scenes in every modality and preprocess them as ImageBind's loaders do."""
    c = model.cfg
    rng = random.Random(seed)
    scenes = [random_scene(rng) for _ in range(n)]
    raw: dict[str, list] = {m: [] for m in ("image", *BOUND)}
    for s in tqdm(scenes, desc="stage 0 (render scenes)", disable=not show_progress, dynamic_ncols=True):
        for m in raw:
            raw[m].append(render(s, m, rng, c.image_size))
    audio = first_clips(np.stack(raw["audio"]), c.audio_mels, c.audio_frames)
    inputs = {
        "vision": ib.image_pixels(raw["image"], c.image_size),
        "text": torch.tensor([caption_ids(s, c.text_context, c.text_vocab) for s in scenes]),
        "audio": audio,
        "thermal": ib.thermal_pixels(raw["thermal"], c.image_size),
        "depth": ib.depth_pixels(raw["depth"], c.image_size),
        "imu": torch.stack([ib.imu_tensor(a, length=c.imu_length) for a in raw["imu"]]),
    }
    return Pool(scenes, inputs)


def first_clips(waves: np.ndarray, n_mels: int, frames: int, sr: int = ib.SAMPLE_RATE) -> torch.Tensor:
    """2 s waves [n, 2 * sr] -> their first ImageBind clip [n, 1, n_mels, frames], equal to
    `imagebind_data.audio_clips(wave)[0]` (a 2 s sound's three clips are the same) in one filter-bank call: the
    zero-mean waves are joined end to end, and as 2 s is a whole number of 10 ms shifts, frame k of wave j is
    frame j * per + k of the joined signal (the frames that straddle two waves are dropped)."""
    n, length = waves.shape
    shift, size = sr // 100, sr * 25 // 1000
    if length != 2 * sr:
        raise ValueError(f"first_clips takes 2 s waves ({2 * sr} samples), got {length}")
    w = torch.from_numpy(waves.astype(np.float32))
    w = w - w.mean(dim=1, keepdim=True)
    per, own = length // shift, (length - size) // shift + 1  # frames per wave in the join, frames of one wave
    mel = ib.kaldi_fbank(w.flatten(), n_mels, sr)  # [n * per - (per - own), n_mels]
    mel = torch.nn.functional.pad(mel, (0, 0, 0, per - own)).view(n, per, n_mels)[:, :own]
    mel = mel.transpose(1, 2)  # [n, n_mels, own]
    mel = torch.nn.functional.pad(mel, (0, frames - own)) if own < frames else mel[:, :, :frames]
    return ((mel - ib.AUDIO_MEAN) / ib.AUDIO_STD).unsqueeze(1)


def _distinct(combo: list[int], batch: int, rng: random.Random) -> list[int]:
    """A batch of pool indices whose scenes all differ (InfoNCE's negatives must not be positives)."""
    by: dict[int, list[int]] = {}
    for i, k in enumerate(combo):
        by.setdefault(k, []).append(i)
    keys = rng.sample(list(by), min(batch, len(by)))
    return [rng.choice(by[k]) for k in keys]


def _loop(name: str, params: list[torch.nn.Parameter], steps: int, lr: float, loss_fn, show_progress: bool) -> list[float]:
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.05)
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, steps, warm))
    bar = tqdm(range(steps), desc=name, disable=not show_progress, dynamic_ncols=True)
    losses = []
    for step in bar:
        loss = loss_fn(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    return losses


def train_image_text(model: ImageBindModel, pool: Pool, steps: int, batch: int = 96, lr: float = 3e-3,
                     seed: int = 0, show_progress: bool = True) -> list[float]:
    """CLIP-style: the vision and text towers (and the text logit scale) on the pool's image-caption pairs."""
    rng = random.Random(seed)
    combo = pool.combo()
    towers = [model.stems[m] for m in ("vision", "text")] + [model.trunks[m] for m in ("vision", "text")]
    towers += [model.heads[m] for m in ("vision", "text")]
    params = [p for t in towers for p in t.parameters()] + [model.text_log_scale]

    def loss(_step: int) -> torch.Tensor:
        idx = _distinct(combo, batch, rng)
        img = model.embed("vision", pool.inputs["vision"][idx], scale=False)
        txt = model.embed("text", pool.inputs["text"][idx], scale=False)
        return contrastive_loss(img, txt, model.text_log_scale.exp().clamp(max=100.0))

    model.train()
    return _loop("stage 0 (image-text)", params, steps, lr, loss, show_progress)


def image_targets(model: ImageBindModel, pool: Pool, chunk: int = 256) -> torch.Tensor:
    """The frozen image embeddings of the pool [n, out] (normalised)."""
    model.eval()
    with torch.no_grad():
        return torch.cat([model.embed("vision", x, scale=False) for x in pool.inputs["vision"].split(chunk)])


def bind(model: ImageBindModel, pool: Pool, targets: torch.Tensor, steps: int, modalities: tuple[str, ...] = BOUND,
         batch: int = 96, lr: float = 2e-3, scale: float = 20.0, seed: int = 0, show_progress: bool = True) -> list[float]:
    """ImageBind's emergent alignment: each modality's tower learns to meet the frozen image embedding of the
    same scene (InfoNCE with a fixed logit `scale`, summed over `modalities`)."""
    rng = random.Random(seed + 1)
    params = [p for m in modalities for part in (model.stems, model.trunks, model.heads) for p in part[m].parameters()]
    n = targets.shape[0]

    def loss(_step: int) -> torch.Tensor:
        idx = rng.sample(range(n), min(batch, n))
        tgt = targets[idx]
        return sum(contrastive_loss(model.embed(m, pool.inputs[m][idx], scale=False), tgt, scale) for m in modalities)

    model.train()
    return _loop("stage 0 (bind " + ", ".join(modalities) + ")", params, steps, lr, loss, show_progress)


def probe(model: ImageBindModel, pool: Pool, held_out: Pool) -> dict[str, float]:
    """How well each modality lands in the image's space: a held-out input's attribute is read as the attribute
    value whose mean image embedding (over `pool`) is nearest; accuracy (%) per `modality/attribute`."""
    model.eval()
    img = image_targets(model, pool)
    values = {"color": list(COLORS), "shape": SHAPES, "count": COUNTS, "side": SIDES}
    out = {}
    with torch.no_grad():
        for m, tower in (("image", "vision"), *((b, b) for b in BOUND)):
            emb = torch.nn.functional.normalize(model.embed(tower, held_out.inputs[tower], scale=False), dim=-1)
            for attr in CARRIES[m]:
                truth = np.array([values[attr].index(getattr(s, attr)) for s in held_out.scenes])
                owner = np.array([values[attr].index(getattr(s, attr)) for s in pool.scenes])
                means = torch.stack([img[torch.from_numpy(owner == k)].mean(0) for k in range(len(values[attr]))])
                pred = (emb @ torch.nn.functional.normalize(means, dim=-1).T).argmax(-1).numpy()
                out[f"{m}/{attr}"] = 100 * float((pred == truth).mean())
    return out


def pretrain(model: ImageBindModel, pool_size: int, image_steps: int, bind_steps: int, seed: int = 0,
             batch: int = 96, show_progress: bool = True) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Stage 0 in full: render a pool, train image-text, bind the other modalities, probe on held-out scenes.
    Returns (probe accuracy in percent per `modality/attribute`, loss curves per phase). The model ends frozen, in eval."""
    torch.manual_seed(seed)
    model.requires_grad_(True)
    pool = make_pool(model, pool_size, seed + 7, show_progress)
    curves = {"image-text": train_image_text(model, pool, image_steps, batch, seed=seed, show_progress=show_progress)}
    model.requires_grad_(False)
    targets = image_targets(model, pool)
    for m in BOUND:
        for part in (model.stems, model.trunks, model.heads):
            part[m].requires_grad_(True)
    curves["bind"] = bind(model, pool, targets, bind_steps, batch=batch, seed=seed, show_progress=show_progress)
    model.requires_grad_(False)
    acc = probe(model, pool, make_pool(model, max(64, pool_size // 8), seed + 8, show_progress=False))
    log.info("stage 0 ImageBind probe (held-out scenes, nearest image-attribute centroid): %s",
             {k: round(v, 1) for k, v in acc.items()})
    model.eval()
    return acc, curves
