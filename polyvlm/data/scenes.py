"""Built-in synthetic multilingual data: scene pictures, questions, captions, audio tones, tokenizer corpus.

Pictures of simple scenes (shapes of one colour, a count, a side) with questions and one-word answers in en, zh,
pt, ar, tr, ru, and captions for stage 1. Used by the quick start, the `builtin:tiny` tokenizers, the
`builtin:scenes` data paths and the `quickstart` eval task.

Everything is generated from a seed, so the same seed gives the same pictures, questions and answers.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from polyvlm.atomic import mkstemp
from polyvlm.data.records import Record, Turn

LANGUAGES = ["en", "zh", "pt", "ar", "tr", "ru"]
COLORS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220),
          "yellow": (235, 210, 40), "purple": (150, 60, 190), "orange": (245, 140, 30)}
SHAPES = ["circle", "square", "triangle"]
COUNTS = [1, 2, 3, 4]
SIDES = ["left", "right"]
QTYPES = ["color", "shape", "count", "side"]

WORDS: dict[str, dict[str, str]] = {
    "en": {"red": "red", "green": "green", "blue": "blue", "yellow": "yellow", "purple": "purple", "orange": "orange",
           "circle": "circle", "square": "square", "triangle": "triangle", "1": "one", "2": "two", "3": "three",
           "4": "four", "left": "left", "right": "right"},
    "zh": {"red": "红色", "green": "绿色", "blue": "蓝色", "yellow": "黄色", "purple": "紫色", "orange": "橙色",
           "circle": "圆形", "square": "正方形", "triangle": "三角形", "1": "一", "2": "二", "3": "三", "4": "四",
           "left": "左边", "right": "右边"},
    "pt": {"red": "vermelho", "green": "verde", "blue": "azul", "yellow": "amarelo", "purple": "roxo",
           "orange": "laranja", "circle": "círculo", "square": "quadrado", "triangle": "triângulo", "1": "um",
           "2": "dois", "3": "três", "4": "quatro", "left": "esquerda", "right": "direita"},
    "ar": {"red": "أحمر", "green": "أخضر", "blue": "أزرق", "yellow": "أصفر", "purple": "بنفسجي", "orange": "برتقالي",
           "circle": "دائرة", "square": "مربع", "triangle": "مثلث", "1": "واحد", "2": "اثنان", "3": "ثلاثة",
           "4": "أربعة", "left": "اليسار", "right": "اليمين"},
    "tr": {"red": "kırmızı", "green": "yeşil", "blue": "mavi", "yellow": "sarı", "purple": "mor", "orange": "turuncu",
           "circle": "daire", "square": "kare", "triangle": "üçgen", "1": "bir", "2": "iki", "3": "üç", "4": "dört",
           "left": "sol", "right": "sağ"},
    "ru": {"red": "красный", "green": "зелёный", "blue": "синий", "yellow": "жёлтый", "purple": "фиолетовый",
           "orange": "оранжевый", "circle": "круг", "square": "квадрат", "triangle": "треугольник", "1": "один",
           "2": "два", "3": "три", "4": "четыре", "left": "слева", "right": "справа"},
}
QUESTIONS: dict[str, dict[str, str]] = {
    "en": {"color": "What colour are the shapes?", "shape": "What shape are they?",
           "count": "How many shapes are there?", "side": "Which side of the picture are they on?"},
    "zh": {"color": "这些图形是什么颜色？", "shape": "它们是什么形状？", "count": "有几个图形？", "side": "它们在图片的哪一边？"},
    "pt": {"color": "De que cor são as formas?", "shape": "Que forma elas têm?", "count": "Quantas formas há?",
           "side": "Em que lado da imagem elas estão?"},
    "ar": {"color": "ما لون الأشكال؟", "shape": "ما شكلها؟", "count": "كم عدد الأشكال؟", "side": "في أي جانب من الصورة هي؟"},
    "tr": {"color": "Şekiller ne renk?", "shape": "Bunlar hangi şekil?", "count": "Kaç şekil var?",
           "side": "Resmin hangi tarafındalar?"},
    "ru": {"color": "Какого цвета фигуры?", "shape": "Какой они формы?", "count": "Сколько здесь фигур?",
           "side": "С какой стороны картинки они находятся?"},
}
CHANCE = {"color": 1 / len(COLORS), "shape": 1 / len(SHAPES), "count": 1 / len(COUNTS), "side": 1 / len(SIDES)}


@dataclass
class Scene:
    color: str
    shape: str
    count: int
    side: str

    def answer(self, qtype: str, lang: str) -> str:
        key = {"color": self.color, "shape": self.shape, "count": str(self.count), "side": self.side}[qtype]
        return WORDS[lang][key]

    def caption(self, lang: str) -> str:
        w = WORDS[lang]
        return f"{w[str(self.count)]} {w[self.color]} {w[self.shape]} {w[self.side]}"


def random_scene(rng: random.Random) -> Scene:
    return Scene(rng.choice(list(COLORS)), rng.choice(SHAPES), rng.choice(COUNTS), rng.choice(SIDES))



def _save_png(img: Image.Image, path: Path) -> None:
    """Write a picture through a temporary file and a rename, so processes that build the same split at once
    (the ranks of a data-parallel eval) never read a half-written file."""
    fd, tmp = mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            img.save(f, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

def draw_scene(scene: Scene, rng: random.Random, size: int = 64) -> Image.Image:
    """Draw `count` shapes of one colour in the scene's half of a `size` x `size` picture, not overlapping."""
    bg = tuple(rng.randint(200, 250) for _ in range(3))
    img = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(img)
    half = size // 2
    x0 = 0 if scene.side == "left" else half
    r = max(3, size // 11)
    # candidate centres on a 2 x 4 grid inside the half, with jitter; pick `count` distinct cells
    cells = [(cx, cy) for cx in range(2) for cy in range(4)]
    rng.shuffle(cells)
    cw, ch = half / 2, size / 4
    color = COLORS[scene.color]
    for cx, cy in cells[: scene.count]:
        x = x0 + cw * cx + cw / 2 + rng.uniform(-1.5, 1.5)
        y = ch * cy + ch / 2 + rng.uniform(-1.5, 1.5)
        rr = r + rng.uniform(-0.5, 0.8)
        if scene.shape == "circle":
            d.ellipse([x - rr, y - rr, x + rr, y + rr], fill=color)
        elif scene.shape == "square":
            d.rectangle([x - rr * 0.85, y - rr * 0.85, x + rr * 0.85, y + rr * 0.85], fill=color)
        else:
            d.polygon([(x, y - rr), (x - rr, y + rr * 0.8), (x + rr, y + rr * 0.8)], fill=color)
    return img


def make_split(out_dir: str | Path, n_scenes: int, seed: int, kind: str = "qa", size: int = 64,
               langs: list[str] | None = None, prefix: str = "scene") -> list[dict]:
    """Write `n_scenes` pictures under `out_dir/images/` and return LLaVA records.

    kind `qa`: one record per scene with a random language and question type (its `language`, `qtype` and
    `answer` are kept as extra keys); kind `caption`: a stage-1 caption record in a random language.
    """
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    langs = langs or LANGUAGES
    records = []
    for i in range(n_scenes):
        scene = random_scene(rng)
        img = draw_scene(scene, rng, size)
        rel = f"images/{prefix}_{seed}_{i:06d}.png"
        _save_png(img, out_dir / rel)
        lang = langs[i % len(langs)]
        rec = {"id": f"{prefix}-{seed}-{i}", "image": rel, "language": lang}
        if kind == "caption":
            rec["conversations"] = [{"from": "human", "value": "<image>"}, {"from": "gpt", "value": scene.caption(lang)}]
        else:
            qtype = QTYPES[(i // len(langs)) % len(QTYPES)] if rng.random() < 0.5 else rng.choice(QTYPES)
            ans = scene.answer(qtype, lang)
            rec["conversations"] = [{"from": "human", "value": "<image>\n" + QUESTIONS[lang][qtype]},
                                    {"from": "gpt", "value": ans}]
            rec.update(qtype=qtype, answer=ans)
        rec["scene"] = {"color": scene.color, "shape": scene.shape, "count": scene.count, "side": scene.side}
        records.append(rec)
    return records


def write_jsonl(records: list[dict], path: str | Path) -> Path:
    from polyvlm.utils import atomic_write_text

    atomic_write_text(Path(path), "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return Path(path)


def make_eval_records(out_dir: str | Path, n_per_language: int = 40, seed: int = 1234) -> list[Record]:
    """Held-out evaluation set: every language gets `n_per_language` questions spread over the four types.

    Returns Records whose `extra` holds `answer`, `qtype` and `image_root` (the `quickstart` eval task).
    """
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    recs = []
    for lang in LANGUAGES:
        for i in range(n_per_language):
            scene = random_scene(rng)
            qtype = QTYPES[i % len(QTYPES)]
            rel = f"images/eval_{seed}_{lang}_{i:04d}.png"
            _save_png(draw_scene(scene, rng), out_dir / rel)
            ans = scene.answer(qtype, lang)
            recs.append(Record(
                id=f"eval-{lang}-{i}", turns=[Turn("user", "<image>\n" + QUESTIONS[lang][qtype]), Turn("assistant", ans)],
                media={"image": [rel]}, language=lang, source=f"quickstart-eval#{lang}-{i}",
                extra={"answer": ans, "qtype": qtype, "image_root": str(out_dir)},
            ))
    return recs


def corpus() -> list[str]:
    """Every word and sentence the scenes use, for training the quick start's tokenizer."""
    texts = []
    for lang in LANGUAGES:
        texts.extend(QUESTIONS[lang].values())
        texts.extend(WORDS[lang].values())
    return texts


# -- multi-image questions and the audio tones task (`polyvlm quickstart --multi-image --modalities image,audio`) --

EXTRA_WORDS: dict[str, dict[str, str]] = {
    "en": {"high": "high", "low": "low", "first": "first", "second": "second"},
    "zh": {"high": "高", "low": "低", "first": "第一张", "second": "第二张"},
    "pt": {"high": "agudo", "low": "grave", "first": "primeira", "second": "segunda"},
    "ar": {"high": "عالية", "low": "منخفضة", "first": "الأولى", "second": "الثانية"},
    "tr": {"high": "ince", "low": "kalın", "first": "birinci", "second": "ikinci"},
    "ru": {"high": "высокий", "low": "низкий", "first": "первая", "second": "вторая"},
}
EXTRA_QUESTIONS: dict[str, dict[str, str]] = {
    "en": {"more": "Which picture has more shapes?", "beeps": "How many beeps are there?", "pitch": "Is the pitch high or low?"},
    "zh": {"more": "哪张图片里的图形更多？", "beeps": "有几声哔声？", "pitch": "音调是高还是低？"},
    "pt": {"more": "Qual imagem tem mais formas?", "beeps": "Quantos bipes há?", "pitch": "O som é agudo ou grave?"},
    "ar": {"more": "أي صورة فيها أشكال أكثر؟", "beeps": "كم عدد الصفارات؟", "pitch": "هل النغمة عالية أم منخفضة؟"},
    "tr": {"more": "Hangi resimde daha çok şekil var?", "beeps": "Kaç bip sesi var?", "pitch": "Ses ince mi kalın mı?"},
    "ru": {"more": "На какой картинке больше фигур?", "beeps": "Сколько здесь сигналов?", "pitch": "Звук высокий или низкий?"},
}
TONE_SECONDS = 1.0  # the quick start's Whisper encoder reads 1 s (50 positions)
EXTRA_CHANCE = {"more": 1 / 2, "beeps": 1 / len(COUNTS), "pitch": 1 / 2}


def corpus_av() -> list[str]:
    """`corpus()` plus the multi-image and tones vocabulary (the `builtin:tiny-av` tokenizer)."""
    texts = corpus()
    for lang in LANGUAGES:
        texts.extend(EXTRA_QUESTIONS[lang].values())
        texts.extend(EXTRA_WORDS[lang].values())
    return texts


def tones(count: int, high: bool, rng: random.Random, sr: int = 16_000):
    """`count` beeps (120 ms, 100 ms apart) of a high (1.5-2.5 kHz) or low (300-500 Hz) pitch in 1 s of 16 kHz audio."""
    import numpy as np

    wave = np.zeros(int(TONE_SECONDS * sr), dtype=np.float32)
    freq = rng.uniform(1500, 2500) if high else rng.uniform(300, 500)
    n = int(0.12 * sr)
    t = np.arange(n) / sr
    beep = (0.4 * np.sin(2 * np.pi * freq * t) * np.hanning(n)).astype(np.float32)
    start = int(rng.uniform(0.0, 0.12) * sr)
    for k in range(count):
        at = start + k * int(0.22 * sr)
        wave[at : at + n] += beep
    noise = np.random.default_rng(rng.randrange(2**31)).normal(0, 0.005, wave.shape).astype(np.float32)
    return wave + noise


def tone_caption(count: int, high: bool, lang: str) -> str:
    """A tone clip's description "<count> <high|low>" in `lang` (stage 1 captions, stage 0 contrastive pairs)."""
    return f"{WORDS[lang][str(count)]} {EXTRA_WORDS[lang]['high' if high else 'low']}"


def make_tone_records(out_dir: str | Path, n: int, seed: int, langs: list[str] | None = None, prefix: str = "tone",
                      kind: str = "qa") -> list[dict]:
    """Write `n` WAV files under `out_dir/audio/` and return records asking how many beeps or which pitch
    (kind `caption`: the stage-1 description "<count> <high|low>")."""
    import soundfile as sf

    out_dir = Path(out_dir)
    (out_dir / "audio").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    langs = langs or LANGUAGES
    recs = []
    for i in range(n):
        count, high = rng.choice(COUNTS), rng.random() < 0.5
        rel = f"audio/{prefix}_{seed}_{i:06d}.wav"
        sf.write(out_dir / rel, tones(count, high, rng), 16_000)
        lang = langs[i % len(langs)]
        pitch = EXTRA_WORDS[lang]["high" if high else "low"]
        if kind == "caption":
            conv = [{"from": "human", "value": "<audio>"}, {"from": "gpt", "value": tone_caption(count, high, lang)}]
            recs.append({"id": f"{prefix}-{seed}-{i}", "audio": rel, "language": lang, "conversations": conv})
            continue
        qtype = "beeps" if (i // len(langs)) % 2 == 0 else "pitch"
        ans = WORDS[lang][str(count)] if qtype == "beeps" else pitch
        recs.append({"id": f"{prefix}-{seed}-{i}", "audio": rel, "language": lang, "qtype": qtype, "answer": ans,
                     "conversations": [{"from": "human", "value": "<audio>\n" + EXTRA_QUESTIONS[lang][qtype]},
                                       {"from": "gpt", "value": ans}]})
    return recs


def make_multi_image_records(out_dir: str | Path, n: int, seed: int, size: int = 64, langs: list[str] | None = None,
                             prefix: str = "pair") -> list[dict]:
    """Write `n` picture pairs with different counts; records ask which picture has more shapes."""
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    langs = langs or LANGUAGES
    recs = []
    for i in range(n):
        a, b = random_scene(rng), random_scene(rng)
        while b.count == a.count:
            b.count = rng.choice(COUNTS)
        rels = []
        for k, scene in enumerate((a, b)):
            rel = f"images/{prefix}_{seed}_{i:06d}_{k}.png"
            _save_png(draw_scene(scene, rng, size), out_dir / rel)
            rels.append(rel)
        lang = langs[i % len(langs)]
        ans = EXTRA_WORDS[lang]["first" if a.count > b.count else "second"]
        recs.append({"id": f"{prefix}-{seed}-{i}", "image": rels, "language": lang, "qtype": "more", "answer": ans,
                     "conversations": [{"from": "human", "value": "<image>\n<image>\n" + EXTRA_QUESTIONS[lang]["more"]},
                                       {"from": "gpt", "value": ans}]})
    return recs


def as_eval_records(recs: list[dict], root: str | Path, source: str) -> list[Record]:
    """Quick start records (with `qtype` and `answer`) -> Records for scoring (prompt turn only matters)."""
    from polyvlm.data.records import parse_record

    out = []
    for r in recs:
        rec = parse_record(r, f"{source}#{r['id']}")
        rec.extra["image_root"] = str(root)
        out.append(rec)
    return out
