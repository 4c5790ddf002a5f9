"""`model.llm: PATH` / `model.vision: PATH` from local Hugging Face directories, and their hf-llava export
(SigLIP + Mistral: strategy `full`, no CLS)."""

from __future__ import annotations

import copy

import pytest
import torch
from export_helpers import hf_inputs, polyvlm_inputs, read_json, square_image

from polyvlm.config import ModelConfig
from polyvlm.models import factory
from polyvlm.models.export import export_hf_llava


@pytest.fixture(scope="module")
def hf_parts(tiny, tmp_path_factory):
    """A tiny Mistral causal LM (+ tokenizer) directory, a SigLIP vision directory and a full CLIP directory."""
    from transformers import (
        CLIPConfig,
        CLIPModel,
        MistralConfig,
        MistralForCausalLM,
        SiglipVisionConfig,
        SiglipVisionModel,
    )

    root = tmp_path_factory.mktemp("parts")
    tok = copy.deepcopy(tiny[1].tokenizer)
    torch.manual_seed(4)
    lm = MistralForCausalLM(MistralConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                          num_key_value_heads=2, vocab_size=len(tok), max_position_embeddings=256))
    lm.save_pretrained(str(root / "lm"))
    tok.save_pretrained(str(root / "lm"))
    vis = SiglipVisionModel(SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                               num_attention_heads=2, image_size=32, patch_size=8))
    vis.save_pretrained(str(root / "siglip"))
    clip = CLIPModel(CLIPConfig(
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        text_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                     "vocab_size": 99}, projection_dim=16))
    clip.save_pretrained(str(root / "clip"))
    return root, lm, vis, clip


def test_llm_and_vision_from_local_dirs(hf_parts):
    root, lm, vis, _ = hf_parts
    model, processor = factory.build(ModelConfig(llm=str(root / "lm"), vision=str(root / "siglip"), max_length=128))
    assert model.llm.config.model_type == "mistral" and model.vision.family == "siglip"
    for k, v in lm.state_dict().items():
        assert torch.equal(model.llm.state_dict()[k], v), k
    for k, v in vis.state_dict().items():
        assert torch.equal(model.vision.tower.state_dict()[k], v), k
    assert processor.config.tokens_per_media["image"] == 16 and processor.config.image_size == 32


def test_vision_tower_from_a_full_clip_dir(hf_parts):
    root, _, _, clip = hf_parts
    model, _ = factory.build(ModelConfig(llm=str(root / "lm"), vision=str(root / "clip")))
    assert model.vision.family == "clip" and model.vision.tokens_per_image == 16
    ours = model.vision.tower.state_dict()
    theirs = clip.vision_model.state_dict()
    assert set(ours) == set(theirs)
    for k, v in theirs.items():
        assert torch.equal(ours[k], v), k


def test_siglip_mistral_export_matches_transformers(hf_parts, tmp_path):
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    root, *_ = hf_parts
    model, processor = factory.build(ModelConfig(llm=str(root / "lm"), vision=str(root / "siglip"), max_length=128))
    model.eval()
    out = export_hf_llava(model, processor, tmp_path / "llava")
    cfg = read_json(out / "config.json")
    assert cfg["vision_feature_select_strategy"] == "full" and cfg["image_seq_length"] == 16
    assert cfg["text_config"]["architectures"] == ["MistralForCausalLM"]
    assert read_json(out / "processor_config.json")["num_additional_image_tokens"] == 0
    hf = LlavaForConditionalGeneration.from_pretrained(str(out)).eval()
    hf_proc = AutoProcessor.from_pretrained(str(out))
    image = square_image(32, seed=5)
    ids, pixels = polyvlm_inputs(processor, "Which shape?", image)
    inputs = hf_inputs(hf_proc, "Which shape?", image)
    assert inputs["input_ids"].tolist() == ids.tolist()
    with torch.no_grad():
        diff = (model(ids, pixels=pixels).logits - hf(**inputs).logits).abs().max().item()
    assert diff < 1e-4
