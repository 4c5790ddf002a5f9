"""Helpers shared by the export/import tests: images, the same prompt through polyvlm and through HF, tensors."""

from __future__ import annotations

import json
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
