"""Regenerates the crafted evaluation assets in this folder (run once; the outputs are committed)."""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path

from PIL import Image

HERE = Path(__file__).parent
COLORS = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 170, 50)}
NAMES = {
    "en": {"red": "red", "blue": "blue", "green": "green", "yellow": "yellow"},
    "zh": {"red": "红色", "blue": "蓝色", "green": "绿色", "yellow": "黄色"},
    "pt": {"red": "vermelho", "blue": "azul", "green": "verde", "yellow": "amarelo"},
    "ar": {"red": "أحمر", "blue": "أزرق", "green": "أخضر", "yellow": "أصفر"},
    "tr": {"red": "kırmızı", "blue": "mavi", "green": "yeşil", "yellow": "sarı"},
    "ru": {"red": "красный", "blue": "синий", "green": "зелёный", "yellow": "жёлтый"},
}
QUESTION = {"en": "What colour is the picture?", "zh": "图片是什么颜色？", "pt": "De que cor é a imagem?",
            "ar": "ما لون الصورة؟", "tr": "Resim ne renk?", "ru": "Какого цвета картинка?"}


def png_b64(color: str) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), COLORS[color]).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def write_tsv(path: Path, rows: list[dict]) -> None:
    cols = ["index", "image", "question", "hint", "A", "B", "C", "D", "answer", "category", "l2-category", "split"]
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, cols, delimiter="\t")
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in cols})


def main() -> None:
    (HERE / "images").mkdir(exist_ok=True)
    for c, rgb in COLORS.items():
        Image.new("RGB", (16, 16), rgb).save(HERE / "images" / f"{c}.png")
    order = ["red", "blue", "green", "yellow"]
    (HERE / "mmmb").mkdir(exist_ok=True)
    for lang, names in NAMES.items():
        rows = []
        for i, color in enumerate(["red", "blue", "green"]):
            # row 2 refers to row 0's picture by index, as VLMEvalKit files do for repeated images
            image = png_b64(color) if i != 2 else ""
            opts = {k: names[c] for k, c in zip("ABCD", order)}
            rows.append({"index": i, "image": image, "question": QUESTION[lang], **opts,
                         "answer": "ABCD"[order.index(color)], "category": "colour" if i < 2 else "reuse",
                         "l2-category": "perception", "split": "dev"})
        rows[2]["image"] = "0"
        rows[2]["answer"] = "A"  # the picture of row 0 is red
        write_tsv(HERE / "mmmb" / f"mmmb_{lang}.tsv", rows)
    # CircularEval: each question has copies whose options are rotated (index + k * 1e6)
    rows = []
    for q, color in enumerate(["red", "blue"]):
        base = ["red", "blue", "green"]
        for k in range(3):
            opts = base[k:] + base[:k]
            rows.append({"index": q + k * 1_000_000, "image": png_b64(color), "question": QUESTION["en"],
                         "A": opts[0], "B": opts[1], "C": opts[2], "answer": "ABC"[opts.index(color)],
                         "category": "colour"})
    write_tsv(HERE / "circular_en.tsv", rows)
    vqa = [
        {"id": "v1", "image": "images/red.png", "question": "What colour is it?", "answers": ["red"] * 8 + ["pink"] * 2, "language": "en"},
        {"id": "v2", "image": "images/blue.png", "question": "What colour is it?", "answers": ["blue"] * 2 + ["navy"] * 8, "language": "en"},
        {"id": "v3", "image": "images/green.png", "question": "图片是什么颜色？", "answers": ["绿色"] * 10, "language": "zh"},
        {"id": "v4", "image": "images/red.png", "question": "Resim ne renk?", "answers": ["kırmızı"], "language": "tr"},
    ]
    (HERE / "vqa.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in vqa), encoding="utf-8")
    yesno = [
        {"id": "y1", "image": ["images/red.png", "images/blue.png"], "question": "Sol resim kırmızı.", "answer": "evet", "language": "tr"},
        {"id": "y2", "image": ["images/green.png", "images/red.png"], "question": "左图是红色的。", "answer": "否", "language": "zh"},
        {"id": "y3", "image": ["images/blue.png", "images/blue.png"], "question": "Gambar kiri berwarna biru.", "label": True, "language": "id"},
        {"id": "y4", "image": ["images/red.png", "images/green.png"], "question": "Picha ya kushoto ni ya bluu.", "answer": "hapana", "language": "sw"},
    ]
    (HERE / "marvl.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in yesno), encoding="utf-8")
    caps = [
        {"id": "c1", "image": "images/red.png", "captions": ["a plain red square", "a red picture"], "language": "en"},
        {"id": "c2", "image": "images/green.png", "captions": ["一张绿色的图片", "绿色的正方形"], "language": "zh"},
        {"id": "c3", "image": "images/blue.png", "captions": ["ภาพสีน้ำเงิน"], "language": "th"},
    ]
    (HERE / "captions.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in caps), encoding="utf-8")
    mgsm = [
        {"id": "m1", "question": "Tom has 3 apples and buys 4 more. How many apples does he have?", "answer": "7", "language": "en"},
        {"id": "m2", "question": "小明有5本书，又买了6本。他一共有几本书？", "answer": "11", "language": "zh"},
        {"id": "m3", "question": "У Маши 10 конфет, она съела 3. Сколько осталось?", "answer": "7", "language": "ru"},
    ]
    (HERE / "mgsm.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in mgsm), encoding="utf-8")
    chat = [
        {"id": "j1", "image": "images/red.png", "question": "Describe the picture.", "reference": "A plain red square.", "language": "en"},
        {"id": "j2", "image": "images/blue.png", "question": "描述这张图片。", "reference": "一张蓝色的图片。", "language": "zh"},
    ]
    (HERE / "chat.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chat), encoding="utf-8")


if __name__ == "__main__":
    main()
