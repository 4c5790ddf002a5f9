"""LoRA on the language model through peft (stage `lora`): wrapping, splitting a state dict into base weights
and adapters (saved separately, in peft's own format under `adapter/`), loading, and merging."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from polyvlm.atomic import save_safetensors

if TYPE_CHECKING:
    from polyvlm.models.vlm import PolyVLM

log = logging.getLogger("polyvlm.lora")
ADAPTER_DIR = "adapter"
_PEFT_PREFIX = "llm.base_model.model."


def has_lora(model: PolyVLM) -> bool:
    from peft import PeftModel

    return isinstance(model.llm, PeftModel)


def apply_lora(model: PolyVLM) -> list[torch.nn.Parameter]:
    """Wrap `model.llm` with LoRA adapters from `model.cfg` (lora_r, lora_alpha, lora_dropout, lora_targets);
    returns the adapter parameters (trainable). Idempotent."""
    from peft import LoraConfig, get_peft_model

    c = model.cfg
    if not has_lora(model):
        if c.lora_r < 1:
            raise ValueError("stage lora needs model.lora_r >= 1 (e.g. model.lora_r=32)")
        names = {n.rsplit(".", 1)[-1] for n, _ in model.llm.named_modules()}
        missing = [t for t in c.lora_targets if t not in names]
        if missing:
            raise ValueError(f"model.lora_targets {missing} name no module of the language model")
        cfg = LoraConfig(r=c.lora_r, lora_alpha=c.lora_alpha, lora_dropout=c.lora_dropout,
                         target_modules=list(c.lora_targets), bias="none")
        model.llm = get_peft_model(model.llm, cfg)
    params = [p for n, p in model.llm.named_parameters() if "lora_" in n]
    for p in params:
        p.requires_grad_(True)
    return params


def split_state(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """A LoRA-wrapped PolyVLM state dict -> (base weights under the plain model's names, adapter weights under
    peft's saved names `base_model.model.<path>.lora_A.weight`)."""
    base, adapter = {}, {}
    for k, v in state.items():
        if "lora_" in k:
            if k.startswith("llm."):
                adapter[k[len("llm."):].replace(".default.", ".")] = v
            continue
        if k.startswith(_PEFT_PREFIX):
            k = "llm." + k[len(_PEFT_PREFIX):].replace(".base_layer.", ".")
        base[k] = v
    return base, adapter


def _dedupe(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Shared tensors written once: names that are the same tensor (same storage, offset, shape, strides and
    dtype: a tied LM head and input embedding) keep their alphabetically first name only, the name safetensors'
    own `save_model` keeps (so files written before still load), and loading re-ties them. Other tensors that
    only overlap a storage are copied, so nothing is lost and safetensors does not refuse the file."""
    aliases: dict[tuple, list[str]] = {}
    for k, v in sd.items():
        if v.device.type != "meta" and v.numel() and v.untyped_storage().nbytes():
            aliases.setdefault((v.device, v.untyped_storage().data_ptr(), v.data_ptr(), v.dtype, tuple(v.shape),
                                v.stride()), []).append(k)
    drop = {n for names in aliases.values() for n in sorted(names)[1:]}
    kept = [(k, v) for k, v in sd.items() if k not in drop]
    storages: dict[tuple, int] = {}
    for _, v in kept:
        if v.device.type != "meta" and v.numel():
            key = (v.device, v.untyped_storage().data_ptr())
            storages[key] = storages.get(key, 0) + 1
    out = {}
    for k, v in kept:
        shared = v.device.type != "meta" and v.numel() and storages[(v.device, v.untyped_storage().data_ptr())] > 1
        out[k] = v.clone(memory_format=torch.contiguous_format) if shared else v.contiguous()
    return out


def save_split(model: PolyVLM, directory: Path, weights_name: str, state: dict[str, torch.Tensor] | None = None) -> None:
    """Write base weights to `directory/weights_name` and the adapters (+ peft config) to `directory/adapter/`."""
    base, adapter = split_state(state if state is not None else model.state_dict())
    save_safetensors(_dedupe(base), directory / weights_name)
    out = directory / ADAPTER_DIR
    out.mkdir(parents=True, exist_ok=True)
    save_safetensors({k: v.contiguous() for k, v in adapter.items()}, out / "adapter_model.safetensors")
    model.llm.peft_config["default"].save_pretrained(str(out))


def load_adapter(model: PolyVLM, directory: Path) -> None:
    """Wrap `model.llm` with the adapters saved under `directory/adapter/`."""
    from peft import PeftModel

    model.llm = PeftModel.from_pretrained(model.llm, str(directory / ADAPTER_DIR))


def merge(model: PolyVLM) -> PolyVLM:
    """Fold the adapters into the LM weights (W + B A * alpha / r) and drop peft's wrapper."""
    if has_lora(model):
        model.llm = model.llm.merge_and_unload()
    return model


def load_split_into(model: PolyVLM, directory: Path, weights_name: str) -> None:
    """Load a split checkpoint (base weights + `adapter/`) into a LoRA-wrapped model (resuming stage lora)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    plain_to_actual = {}
    for k in model.state_dict():
        if "lora_" not in k:
            plain = "llm." + k[len(_PEFT_PREFIX):].replace(".base_layer.", ".") if k.startswith(_PEFT_PREFIX) else k
            plain_to_actual[plain] = k
    base = load_file(str(directory / weights_name))
    unknown = [k for k in base if k not in plain_to_actual]
    if unknown:
        raise ValueError(f"{directory / weights_name}: unexpected weights {unknown[:5]}")
    model.load_state_dict({plain_to_actual[k]: v for k, v in base.items()}, strict=False)
    adapter_file = directory / ADAPTER_DIR / "adapter_model.safetensors"
    if adapter_file.is_file():
        set_peft_model_state_dict(model.llm, load_file(str(adapter_file)))
