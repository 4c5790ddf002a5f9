"""The built-in scenes in ImageBind's other modalities (the PandaGPT quick start): a sound, a thermal picture, a
depth map and an IMU trace of each `Scene`, and held-out questions asked about one modality at a time.

What each rendering carries (and so what may be asked about it):

- sound: 2 s at 16 kHz; the pitch names the colour (one note per colour), the number of beeps the count;
- thermal: grey heat blobs (blurred, bright on a dark, noisy background): shape, count and side, no colour;
- depth: a 16-bit disparity map, a floor receding upwards with the shapes standing out in relief (circles as
  domes, squares as flat boxes, triangles as ramps): shape, count and side, no colour;
- IMU: 6 x 2000 samples (accelerometer xyz, gyroscope xyz) of a hand shaking `count` times towards the side.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from polyvlm.data.scenes import (
    COLORS,
    LANGUAGES,
    QTYPES,
    QUESTIONS,
    SHAPES,
    Scene,
    _save_png,
    draw_scene,
    random_scene,
)

SAMPLE_RATE = 16_000
SOUND_SECONDS = 2.0  # one ImageBind audio clip
IMU_SAMPLES = 2000  # ImageBind's IMU input length
# one note per colour, a fifth apart (C4 G4 D5 A5 E6 B6): far apart on the mel scale
PITCHES = {"red": 261.6, "orange": 392.0, "yellow": 587.3, "green": 880.0, "blue": 1318.5, "purple": 1975.5}
MODALITIES = ("image", "audio", "thermal", "depth", "imu")
# what a question about each modality may ask: only what its rendering carries
CARRIES: dict[str, tuple[str, ...]] = {
    "image": ("color", "shape", "count", "side"),
    "audio": ("color", "count"),
    "thermal": ("shape", "count", "side"),
    "depth": ("shape", "count", "side"),
    "imu": ("count", "side"),
}
SUFFIX = {"image": "png", "audio": "wav", "thermal": "png", "depth": "png", "imu": "npy"}
DIRS = {"image": "images", "audio": "audio", "thermal": "thermal", "depth": "depth", "imu": "imu"}
assert set(PITCHES) == set(COLORS)


def scene_sound(scene: Scene, rng: random.Random, sr: int = SAMPLE_RATE) -> np.ndarray:
    """`scene.count` beeps (150 ms, about 0.4 s apart, random start) at the colour's pitch (detuned by up to
    2%, with its octave), in 2 s of quiet noise -> float32 [2 * sr]."""
    wave = np.zeros(int(SOUND_SECONDS * sr), dtype=np.float32)
    freq = PITCHES[scene.color] * rng.uniform(0.98, 1.02)
    n = int(0.15 * sr)
    t = np.arange(n) / sr
    amp = rng.uniform(0.2, 0.5)
    beep = amp * (np.sin(2 * np.pi * freq * t) + 0.3 * np.sin(4 * np.pi * freq * t)) * np.hanning(n)
    at = int(rng.uniform(0.0, 0.25) * sr)
    for _ in range(scene.count):
        wave[at : at + n] += beep.astype(np.float32)
        at += int(rng.uniform(0.37, 0.43) * sr)
    noise = np.random.default_rng(rng.randrange(2**31)).normal(0, 0.01, wave.shape)
    return (wave + noise).astype(np.float32)


def _centres(scene: Scene, rng: random.Random, size: int) -> list[tuple[float, float]]:
    """`count` distinct cells of a 2 x 4 grid in the scene's half, jittered (as `draw_scene` places shapes)."""
    half = size // 2
    x0 = 0 if scene.side == "left" else half
    cells = [(cx, cy) for cx in range(2) for cy in range(4)]
    rng.shuffle(cells)
    cw, ch = half / 2, size / 4
    return [(x0 + cw * cx + cw / 2 + rng.uniform(-1.5, 1.5), ch * cy + ch / 2 + rng.uniform(-1.5, 1.5))
            for cx, cy in cells[: scene.count]]


def _outline(d: ImageDraw.ImageDraw, shape: str, x: float, y: float, r: float, fill: int) -> None:
    if shape == "circle":
        d.ellipse([x - r, y - r, x + r, y + r], fill=fill)
    elif shape == "square":
        d.rectangle([x - r * 0.85, y - r * 0.85, x + r * 0.85, y + r * 0.85], fill=fill)
    else:
        d.polygon([(x, y - r), (x - r, y + r * 0.8), (x + r, y + r * 0.8)], fill=fill)


def draw_thermal(scene: Scene, rng: random.Random, size: int = 64) -> Image.Image:
    """Heat blobs: each shape a blurred warm silhouette with a hotter core, on a cool background with a vertical
    gradient and sensor noise -> a grey ("L") picture. No colour: a red and a blue shape are equally warm."""
    nrng = np.random.default_rng(rng.randrange(2**31))
    cool = rng.uniform(20, 60)
    bg = cool + np.linspace(0, rng.uniform(0, 30), size)[:, None] * np.ones((1, size))
    heat = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(heat)
    r = max(3, size // 11)
    for x, y in _centres(scene, rng, size):
        rr = r + rng.uniform(-0.5, 0.8)
        _outline(d, scene.shape, x, y, rr, int(rng.uniform(150, 190)))
        _outline(d, scene.shape, x, y, rr * 0.55, 255)
    heat = heat.filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 1.1)))
    arr = bg + np.asarray(heat, np.float32) * rng.uniform(0.7, 0.9) + nrng.normal(0, 4, (size, size))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))  # mode "L"


def draw_depth(scene: Scene, rng: random.Random, size: int = 64) -> np.ndarray:
    """A disparity map [size, size] uint16 (near = large): a floor whose disparity grows towards the bottom, and
    the shapes in relief above it, each by its shape: a dome (circle), a flat box (square), a ramp rising to
    its apex (triangle). No colour."""
    nrng = np.random.default_rng(rng.randrange(2**31))
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    depth = 0.15 + 0.25 * ys / size * rng.uniform(0.8, 1.2)
    r = max(3, size // 11)
    for x, y in _centres(scene, rng, size):
        rr = r + rng.uniform(-0.5, 0.8)
        mask = Image.new("L", (size, size), 0)
        _outline(ImageDraw.Draw(mask), scene.shape, x, y, rr, 255)
        inside = np.asarray(mask) > 0
        near = rng.uniform(0.75, 0.95)
        if scene.shape == "circle":
            rel = np.sqrt(np.clip(1 - ((xs - x) ** 2 + (ys - y) ** 2) / rr**2, 0, 1))
            height = 0.55 + 0.45 * rel
        elif scene.shape == "square":
            height = np.full_like(xs, 0.85)
        else:
            height = 0.5 + 0.5 * np.clip((y + rr * 0.8 - ys) / (1.8 * rr), 0, 1)
        depth = np.where(inside, near * height, depth)
    depth = depth + nrng.normal(0, 0.01, depth.shape)
    return (np.clip(depth, 0, 1) * 65535).astype(np.uint16)


def imu_trace(scene: Scene, rng: random.Random, n: int = IMU_SAMPLES) -> np.ndarray:
    """A hand shaken `count` times towards the scene's side -> float32 [6, n] (m/s^2 and rad/s): each shake a
    full-period acceleration pulse along x (first towards the side), a matching turn about z, gravity on z."""
    nrng = np.random.default_rng(rng.randrange(2**31))
    sign = -1.0 if scene.side == "left" else 1.0
    out = nrng.normal(0, 0.15, (6, n)).astype(np.float32)
    out[2] += 9.81
    width = int(n * rng.uniform(0.12, 0.16))
    period = int(n * rng.uniform(0.2, 0.23))
    at = int(n * rng.uniform(0.0, 0.08))
    pulse = np.sin(2 * np.pi * np.arange(width) / width) * np.hanning(width)
    for _ in range(scene.count):
        amp = rng.uniform(3.0, 6.0)
        out[0, at : at + width] += sign * amp * pulse[: n - at]
        out[5, at : at + width] += sign * 0.3 * amp * np.hanning(width)[: n - at]
        out[1, at : at + width] += rng.uniform(-0.5, 0.5) * pulse[: n - at]
        at += period
    return out


def render(scene: Scene, modality: str, rng: random.Random, size: int = 64):
    """One rendering of `scene`: PIL image (image, thermal), uint16 array (depth), float32 array (audio, imu)."""
    if modality == "image":
        return draw_scene(scene, rng, size)
    return {"audio": scene_sound, "thermal": draw_thermal, "depth": draw_depth, "imu": imu_trace}[modality](
        scene, rng, **({"size": size} if modality in ("thermal", "depth") else {}))


def save_rendering(data, modality: str, path: Path) -> None:
    """Write one rendering: PNG (image, thermal; depth as 16-bit), WAV (16-bit PCM), .npy (imu)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if modality in ("image", "thermal"):
        _save_png(data, path)
    elif modality == "depth":
        _save_png(Image.fromarray(data), path)  # uint16 -> mode "I;16"
    elif modality == "audio":
        import soundfile as sf

        sf.write(str(path), data, SAMPLE_RATE, subtype="PCM_16")
    else:
        np.save(path, data, allow_pickle=False)


def make_modal_eval(out_dir: str | Path, n_per_language: int, seed: int, size: int = 64,
                    modalities: tuple[str, ...] = MODALITIES) -> list[dict]:
    """Held-out scenes, each rendered in every modality under `out_dir/{images,audio,thermal,depth,imu}/`, and
    per modality and language `n_per_language` questions cycling over what that modality carries.

    Returns records in polyvlm's data format: `{"id", "<modality>": rel_path, "conversations": [<placeholder>
    question, answer], "language", "modality", "qtype", "answer", "scene"}`."""
    out_dir = Path(out_dir)
    rng = random.Random(seed)
    recs = []
    for lang in LANGUAGES:
        for i in range(n_per_language):
            scene = random_scene(rng)
            for m in modalities:
                rel = f"{DIRS[m]}/eval_{seed}_{lang}_{i:04d}.{SUFFIX[m]}"
                save_rendering(render(scene, m, rng, size), m, out_dir / rel)
                qtype = CARRIES[m][i % len(CARRIES[m])]
                ans = scene.answer(qtype, lang)
                recs.append({"id": f"eval-{m}-{lang}-{i}", m: rel, "language": lang, "modality": m, "qtype": qtype,
                             "answer": ans, "scene": vars(scene).copy(),
                             "conversations": [{"from": "human", "value": f"<{m}>\n{QUESTIONS[lang][qtype]}"},
                                               {"from": "gpt", "value": ans}]})
    return recs


def make_text_qa(n: int, seed: int) -> list[dict]:
    """Text only, for the language model's own pre-training (the quick start's stand-in for Vicuna): the scene
    written as words inside PandaGPT's `<Img>...</Img>` (a caption in a random one of the six languages), a
    question in a random language drawn on its own, its one-word answer in the question's language. No picture, sound or
    other rendering: `{"id", "language", "qtype", "answer", "conversations"}`."""
    rng = random.Random(seed)
    recs = []
    for i in range(n):
        scene = random_scene(rng)
        lang, caption_lang, qtype = rng.choice(LANGUAGES), rng.choice(LANGUAGES), rng.choice(QTYPES)
        ans = scene.answer(qtype, lang)
        recs.append({"id": f"text-{seed}-{i}", "language": lang, "qtype": qtype, "answer": ans,
                     "conversations": [{"from": "human", "value": f"<Img>{scene.caption(caption_lang)}</Img> "
                                                                    f"{QUESTIONS[lang][qtype]}"},
                                       {"from": "gpt", "value": ans}]})
    return recs


def chance(modality: str) -> float:
    """A uniform guess among the possible answers, averaged over the question types asked about `modality`."""
    from polyvlm.data.scenes import CHANCE

    return sum(CHANCE[q] for q in CARRIES[modality]) / len(CARRIES[modality])


__all__ = ["CARRIES", "MODALITIES", "PITCHES", "SHAPES", "chance", "draw_depth", "draw_thermal", "imu_trace",
           "make_modal_eval", "make_text_qa", "render", "save_rendering", "scene_sound"]
