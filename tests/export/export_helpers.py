"""Helpers shared by the export/import tests: images, the same prompt through polyvlm and through HF, tensors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from polyvlm.data.records import Turn


def square_image(size: int = 64, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def polyvlm_inputs(processor, question: str, image: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
    """input_ids [1, s] (generation prompt, placeholders expanded) and pixels [1, 3, S, S] from polyvlm."""
    enc = processor.encode([Turn("user", f"<image>\n{question}")], {"image": 1}, add_generation_prompt=True)
    return torch.tensor([enc.input_ids]), processor.images_to_pixels([image])


def hf_inputs(hf_processor, question: str, image: Image.Image) -> dict:
    """The same prompt through the exported chat template (OpenAI-style content list) and LlavaProcessor."""
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    text = hf_processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return hf_processor(images=image, text=text, return_tensors="pt")


def tensors_of(directory: Path) -> dict[str, torch.Tensor]:
    """Every tensor in a directory's safetensors files (sharded or not)."""
    from safetensors.torch import load_file

    out: dict[str, torch.Tensor] = {}
    for f in sorted(Path(directory).glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


OFFLINE = """
import sys, numpy as np, torch, transformers; from PIL import Image
d, cls, w, h = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
m = getattr(transformers, cls).from_pretrained(d); p = transformers.AutoProcessor.from_pretrained(d)
img = Image.fromarray(np.zeros((h, w, 3), dtype=np.uint8))
msgs = [{'role': 'user', 'content': [{'type': 'image'}, {'type': 'text', 'text': 'hi'}]}]
x = p(images=img, text=p.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False), return_tensors='pt')
print(m(**x).logits.shape[-1], type(p).__name__)
"""


def offline_forward(directory: Path, model_class: str, size: tuple[int, int]) -> list[str]:
    """In a fresh Python with the hub switched off: `model_class.from_pretrained` + `AutoProcessor.from_pretrained`
    of `directory`, one forward pass on a (w, h) image through the directory's chat template -> [vocab, processor]."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    res = subprocess.run([sys.executable, "-c", OFFLINE, str(directory), model_class, *map(str, size)],
                         capture_output=True, text=True, env=env, timeout=180)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout.split()[-2:]
