"""transformers' Llava (`hf-llava`: LlavaForConditionalGeneration) and LLaVA-NeXT (`hf-llava-next`:
LlavaNextForConditionalGeneration) layouts: import through polyvlm.models.hf_import, export through
polyvlm.models.export. Recognised from config.json `model_type` llava / llava_next without the original
LLaVA code's `mm_*` keys or architectures (those are the `llava` layout)."""

from __future__ import annotations

from pathlib import Path

from polyvlm.models.layouts.base import LAYOUTS, CheckpointLayout, LoadOptions, read_config_json

# architectures of the original LLaVA / LLaVA-NeXT code, whose config.json may also say model_type "llava"
ORIGINAL_ARCHS = ("LlavaLlamaForCausalLM", "LlavaQwenForCausalLM", "LlavaMistralForCausalLM", "LlavaMixtralForCausalLM",
                  "LlavaGemmaForCausalLM", "LlavaQwenMoeForCausalLM", "LlavaMptForCausalLM")


def is_transformers_llava(path: Path, model_types: tuple[str, ...]) -> bool:
    cfg = read_config_json(path)
    if cfg is None or cfg.get("model_type") not in model_types:
        return False
    archs = cfg.get("architectures") or []
    return not any(a in ORIGINAL_ARCHS for a in archs) and not any(k.startswith("mm_") for k in cfg)


class _HFLlavaBase(CheckpointLayout):
    writes = True
    model_types: tuple[str, ...] = ()

    def detect(self, path: Path) -> bool:
        return is_transformers_llava(path, self.model_types)

    def load(self, path: Path, opts: LoadOptions):
        from polyvlm.models.hf_import import import_hf_llava

        return import_hf_llava(path, template=opts.template, max_length=opts.max_length, dtype=opts.dtype or "float32",
                               cfg=opts.cfg)

    def save(self, model, processor, out: Path, dtype: str | None = None, max_shard_size: str | int = "5GB",
             extra: dict | None = None) -> Path:
        from polyvlm.models.export import export_hf_llava

        return export_hf_llava(model, processor, out, dtype=dtype, max_shard_size=max_shard_size, fmt=self.name)


@LAYOUTS.register("hf-llava")
class HFLlavaLayout(_HFLlavaBase):
    name = "hf-llava"
    summary = ("transformers LlavaForConditionalGeneration (config.json model_type 'llava', e.g. llava-hf/llava-1.5-7b-hf); "
               "forced with hf-llava:DIR it also reads LLaVA-NeXT")
    model_types = ("llava", "llava_next")  # hf-llava:DIR of old reads LLaVA-NeXT too; detection tries hf-llava-next first


@LAYOUTS.register("hf-llava-next")
class HFLlavaNextLayout(_HFLlavaBase):
    name = "hf-llava-next"
    summary = ("transformers LlavaNextForConditionalGeneration (config.json model_type 'llava_next', e.g. "
               "llava-hf/llava-v1.6-mistral-7b-hf); an anyres model")
    model_types = ("llava_next",)
