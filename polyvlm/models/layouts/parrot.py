"""Parrot's layout (`parrot`, AIDC-AI/Parrot): a LLaVA-style checkpoint of `ParrotQwen2ForCausalLM` (Qwen1.5 +
CLIP, `mm_vision_select_feature: cls_patch`, so all 577 tokens with CLS go to the LM) plus the multilingual MoE
that re-weights the projected visual tokens, read onto polyvlm's `moe` connector.

From Parrot's code: parrot/model/language_model/parrot_qwen2.py (architecture, model_type parrot_qwen2),
parrot/model/parrot_arch.py (`model.moe_model` built when config has moe_hidden_size; the MoE sees the projected
image features and the embeddings of the non-answer text tokens), parrot/model/moe_model/moe.py (`gate` without
bias, `experts.N.{gate,up,down}_proj` without bias, `use_moe`, `use_moe_residual`, `moe_weight`),
parrot/model/conversation_formatter.py (Qwen ChatML with "You are a helpful assistant." = polyvlm's chatml).
"""

from __future__ import annotations

import logging
from pathlib import Path

from polyvlm.models.layouts.base import LAYOUTS, CheckpointLayout, LayoutError, LoadOptions, read_config_json
from polyvlm.models.layouts.llava import build_llava, check_init_cfg, lm_type, load_weights
from polyvlm.models.layouts.vision_tower import read_tower

log = logging.getLogger("polyvlm.layouts.parrot")
ARCHS = {"ParrotQwen2ForCausalLM": "qwen2"}
_PROJ = {"0.": "projector.linear_1.", "2.": "projector.linear_2."}


def moe_key(k: str) -> str | None:
    """Parrot's `model.moe_model.*` -> polyvlm's moe connector (`gate` is its router)."""
    if k.startswith("model.moe_model.gate."):
        return "connector.router." + k[len("model.moe_model.gate."):]
    if k.startswith("model.moe_model."):
        return "connector." + k[len("model.moe_model."):]
    return None


@LAYOUTS.register("parrot")
class ParrotLayout(CheckpointLayout):
    name = "parrot"
    summary = ("Parrot (AIDC-AI/Parrot; config.json architectures ParrotQwen2ForCausalLM, model_type parrot_qwen2, "
               "mm_* keys + num_experts / moe_*; e.g. AIDC-AI/Parrot-7B)")

    def detect(self, path: Path) -> bool:
        raw = read_config_json(path)
        if raw is None:
            return False
        return raw.get("model_type") == "parrot_qwen2" or any(a in ARCHS for a in raw.get("architectures") or [])

    def load(self, path: Path, opts: LoadOptions):
        raw = read_config_json(path)
        if raw is None:
            raise LayoutError(f"{path}: no readable config.json")
        f = path / "config.json"
        lm = lm_type(path, {**raw, "model_type": None}, ARCHS) if raw.get("architectures") else "qwen2"
        if raw.get("mm_projector_type", "linear") != "mlp2x_gelu":
            raise LayoutError(f"{f}: mm_projector_type '{raw.get('mm_projector_type', 'linear')}' is not one polyvlm "
                              "reads for Parrot (mlp2x_gelu, the projector in front of polyvlm's moe connector)")
        if "num_experts" not in raw or "moe_hidden_size" not in raw:
            raise LayoutError(f"{f}: no num_experts / moe_hidden_size: a Parrot checkpoint without its MoE")
        if raw["moe_hidden_size"] != raw.get("hidden_size"):
            raise LayoutError(f"{f}: moe_hidden_size {raw['moe_hidden_size']} differs from hidden_size "
                              f"{raw.get('hidden_size')} (the MoE acts on projected tokens)")
        tower = read_tower(path, raw, opts.vision_tower)
        if tower.select != "full":
            log.warning("%s: mm_vision_select_feature is not cls_patch; Parrot's MoE takes the first token as CLS", f)
        residual = raw.get("use_moe_residual", True)
        extra = {"moe_experts": int(raw["num_experts"]), "moe_intermediate": int(raw.get("moe_intermediate_size", 4096)),
                 "moe_weight": float(raw.get("moe_weight", 1.0)) if residual else 0.0}
        model, processor = build_llava(path, raw, opts, lm, tower, "moe", layout="parrot", extra_cfg=extra)
        model.connector.set_active(bool(raw.get("use_moe", True)))
        load_weights(model, path, tower, _PROJ, "parrot", extra_map=moe_key, optional=("connector.active",))
        from polyvlm.utils import DTYPES

        model.to(DTYPES[model.cfg.dtype])
        processor = check_init_cfg(path, model, processor, opts)
        log.info("read Parrot checkpoint %s (%d experts, moe_weight %g, tower %s)", path, extra["moe_experts"],
                 extra["moe_weight"], tower.directory)
        return model, processor
