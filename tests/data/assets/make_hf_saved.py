"""Makes `hf_saved/`: a real `datasets` DatasetDict written by `save_to_disk` (the layout the HF reader reads).

Checked in so the tests need no `datasets` install; rerun to refresh it after a `datasets` format change:

    pip install --target /tmp/hfds datasets dill xxhash multiprocess
    PYTHONPATH=/tmp/hfds python tests/data/assets/make_hf_saved.py
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import datasets
from PIL import Image


def png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buf, format="PNG")
    return buf.getvalue()


def main() -> None:
    out = Path(__file__).with_name("hf_saved")
    shutil.rmtree(out, ignore_errors=True)
    features = datasets.Features({
        "id": datasets.Value("string"),
        "image": datasets.Image(),
        "conversations": [{"from": datasets.Value("string"), "value": datasets.Value("string")}],
        "language": datasets.Value("string"),
    })
    turns = lambda q, a: [{"from": "human", "value": q}, {"from": "gpt", "value": a}]  # noqa: E731
    train = datasets.Dataset.from_dict({
        "id": ["t0", "t1", "t2"],
        "image": [png((255, 0, 0)), png((0, 255, 0)), None],
        "conversations": [turns("<image>\nWhat colour?", "Red."), turns("<image>\nКакой цвет?", "Зелёный."),
                          turns("Say hi.", "Hi.")],
        "language": ["en", "ru", "en"],
    }, features=features)
    test = datasets.Dataset.from_dict({
        "id": ["v0", "v1"],
        "image": [png((0, 0, 255)), png((9, 9, 9))],
        "conversations": [turns("<image>\n这是什么颜色？", "蓝色。"), turns("<image>\nQue cor?", "Preto.")],
        "language": ["zh_simplified", "pt"],
    }, features=features)
    datasets.DatasetDict({"train": train, "test": test}).save_to_disk(str(out))
    print(f"wrote {out} with datasets {datasets.__version__}")


if __name__ == "__main__":
    main()
