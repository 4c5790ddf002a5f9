"""hf-llava export for every supported language model (Llama, Qwen2, Mistral) with both vision encoders (CLIP,
SigLIP): transformers logits equal polyvlm's, and export -> import -> export keeps every tensor."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from export_helpers import hf_inputs, polyvlm_inputs, read_json, square_image, tensors_of

from polyvlm.models.export import export_hf_llava
from polyvlm.models.hf_import import import_hf_llava

LM = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
      "num_key_value_heads": 2, "max_position_embeddings": 256}
VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
          "image_size": 32, "patch_size": 8}


@pytest.mark.parametrize("lm, vision, tied, arch", [
    ("llama", "clip_vision_model", True, "LlamaForCausalLM"),
    ("qwen2", "siglip_vision_model", False, "Qwen2ForCausalLM"),
    ("mistral", "clip_vision_model", False, "MistralForCausalLM"),
    ("llama", "siglip_vision_model", False, "LlamaForCausalLM"),
])
def test_backbone_export_matches_transformers(tmp_path, lm, vision, tied, arch):
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    from polyvlm.config import load_config
    from polyvlm.models import factory
    from polyvlm.testing import TINY_RECIPE

    base = load_config(TINY_RECIPE, ["model.max_length=128"]).model
    torch.manual_seed(11)
    cfg = dataclasses.replace(base, llm_config={"model_type": lm, "tie_word_embeddings": tied, **LM},
                              vision_config={"model_type": vision, **VISION})
    model, processor = factory.build(cfg)
    model.eval()
    out = export_hf_llava(model, processor, tmp_path / "llava")
    config = read_json(out / "config.json")
    assert config["text_config"]["architectures"] == [arch] and config["vision_config"]["model_type"] == vision
    strategy = "default" if vision.startswith("clip") else "full"  # drop CLIP's CLS; SigLIP has none
    assert config["vision_feature_select_strategy"] == strategy and config["image_seq_length"] == 16
    assert ("language_model.lm_head.weight" in tensors_of(out)) is not tied

    hf = LlavaForConditionalGeneration.from_pretrained(str(out)).eval()
    hf_proc = AutoProcessor.from_pretrained(str(out))
    img = square_image(32, seed=6)
    ids, pixels = polyvlm_inputs(processor, "Which colour?", img)
    inputs = hf_inputs(hf_proc, "Which colour?", img)
    assert inputs["input_ids"].tolist() == ids.tolist()
    with torch.no_grad():
        diff = (model(ids, pixels=pixels).logits - hf(**inputs).logits).abs().max().item()
    assert diff < 1e-4

    again = export_hf_llava(*import_hf_llava(out), tmp_path / "again")
    a, b = tensors_of(out), tensors_of(again)
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert read_json(again / "config.json") == config
