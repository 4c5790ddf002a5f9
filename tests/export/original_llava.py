"""Tiny checkpoints written exactly as the original LLaVA / LLaVA-NeXT code writes them, and their conversion by
transformers' own key mapping (the reference the `llava` layout is compared with).

Names, with the original file that defines each:
- config.json = the LM's own config + `mm_*` keys: LLaVA-NeXT llava/model/llava_arch.py `initialize_vision_modules`
  (mm_vision_tower, mm_projector_type, mm_hidden_size, mm_vision_select_layer, mm_vision_select_feature,
  mm_patch_merge_type) and llava/train/train.py (image_aspect_ratio, image_grid_pinpoints, mm_newline_position,
  mm_spatial_pool_*, tokenizer_model_max_length, mm_tunable_parts); architectures `LlavaQwenForCausalLM`
  (llava/model/language_model/llava_qwen.py) with model_type "llava" as published for lmms-lab/llava-onevision-*,
  `LlavaLlamaForCausalLM` (llava_llama.py).
- weights: `model.*` + `lm_head.weight` (LlavaQwenForCausalLM.model / .lm_head), `model.vision_tower.vision_tower.*`
  (multimodal_encoder/siglip_encoder.py SigLipVisionTower.vision_tower, its last layer deleted in load_model, head
  = Identity), `model.mm_projector.{0,2}.*` (multimodal_projector/builder.py nn.Sequential), `model.image_newline`
  (llava_arch.py LlavaMetaModel), sharded as `save_pretrained` shards (model-0000i-of-0000n.safetensors + index).
- the tokenizer has no <image> token (llava/constants.py IMAGE_TOKEN_INDEX = -200 is spliced instead).
- reference: KEYS_TO_MODIFY_MAPPING of transformers' models/llava_onevision/convert_llava_onevision_weights_to_hf.py
  and models/llava/convert_llava_weights_to_hf.py, applied in order, then `from_pretrained`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

# transformers' convert_llava_onevision_weights_to_hf.py / convert_llava_weights_to_hf.py (same map, in order)
HF_KEYS = {
    "model.vision_tower.": "",
    ".vision_resampler": "",
    "model.mm_projector": "multi_modal_projector",
    "model": "model.model",
    "vision_model.model": "vision_model",
    "lm_head": "language_model.lm_head",
    "model.model": "language_model.model",
    "multi_modal_projector.0": "multi_modal_projector.linear_1",
    "multi_modal_projector.2": "multi_modal_projector.linear_2",
    "language_model.model.image_newline": "image_newline",
}
CORPUS = ["What is shown in the picture? A red ball on a green table.", "Describe the image in one sentence.",
          "USER: ASSISTANT: system user assistant You are a helpful assistant."] * 20


def original_tokenizer(out: Path, specials: list[str], eos: str, bos: str | None = None) -> PreTrainedTokenizerFast:
    """A byte-level BPE saved like the base LM's tokenizer: no <image>, <video> or <audio> token."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=300, special_tokens=specials, show_progress=False,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, pad_token=specials[0], bos_token=bos)
    fast.save_pretrained(str(out))
    return fast


def write_shards(state: dict[str, torch.Tensor], out: Path, n: int, fmt: str = "safetensors") -> None:
    """`n` shards named as `save_pretrained` names them, with the index mapping every key to its shard."""
    keys = sorted(state)
    stem, ext = ("model", "safetensors") if fmt == "safetensors" else ("pytorch_model", "bin")
    weight_map = {}
    for i in range(n):
        part = {k: state[k].contiguous() for k in keys[i::n]}
        name = f"{stem}-{i + 1:05d}-of-{n:05d}.{ext}"
        if fmt == "safetensors":
            save_file(part, str(out / name), metadata={"format": "pt"})
        else:
            torch.save(part, str(out / name))
        weight_map.update(dict.fromkeys(part, name))
    index = {"metadata": {"total_size": sum(t.numel() * t.element_size() for t in state.values())},
             "weight_map": weight_map}
    (out / f"{stem}.{ext}.index.json").write_text(json.dumps(index, indent=2))


def to_hf(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers' conversion of an original state dict (each mapping applied in order, inv_freq dropped)."""
    out = {}
    for key, value in state.items():
        if key.endswith(".inv_freq"):
            continue
        for old, new in HF_KEYS.items():
            if old in key:
                key = key.replace(old, new)
        out[key] = value
    return out


def save_hf(config, state: dict[str, torch.Tensor], out: Path) -> Path:
    """A transformers directory (config + converted weights) that `from_pretrained` reads like the conversion's."""
    out.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(str(out))
    save_file({k: v.contiguous() for k, v in to_hf(state).items()}, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out
