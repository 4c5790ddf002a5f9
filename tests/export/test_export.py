"""hf-llava export: files and configs, transformers logits / greedy parity, chat templates, refusals, round trip."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from export_helpers import hf_inputs, offline_forward, polyvlm_inputs, read_json, square_image, tensors_of
from torch import nn

from polyvlm.data.records import Turn
from polyvlm.models.export import ExportError, check_exportable, export_hf_llava, hf_chat_template
from polyvlm.models.templates import TEMPLATES, get_template


def test_export_writes_llava_layout(tiny, exported):
    model, processor = tiny
    for name in ("config.json", "generation_config.json", "model.safetensors", "preprocessor_config.json",
                 "processor_config.json", "tokenizer_config.json", "tokenizer.json", "chat_template.jinja"):
        assert (exported / name).is_file(), name
    cfg = read_json(exported / "config.json")
    assert cfg["architectures"] == ["LlavaForConditionalGeneration"] and cfg["model_type"] == "llava"
    # what vLLM's LlavaForConditionalGeneration reads besides the sub-configs
    assert cfg["projector_hidden_act"] == "gelu" and cfg["multimodal_projector_bias"] is True
    assert cfg["text_config"]["architectures"] == ["Qwen2ForCausalLM"]
    assert cfg["image_token_index"] == processor.tokenizer.convert_tokens_to_ids("<image>")
    assert cfg["image_seq_length"] == model.vision.tokens_per_image == 64
    assert cfg["vision_feature_layer"] == -2 and cfg["vision_feature_select_strategy"] == "default"
    assert cfg["vision_config"]["patch_size"] == 8 and cfg["vision_config"]["image_size"] == 64
    pre = read_json(exported / "preprocessor_config.json")
    assert pre["image_processor_type"] == "LlavaImageProcessor" and pre["do_pad"] is True
    assert pre["crop_size"] == {"height": 64, "width": 64} and pre["resample"] == 3
    assert pre["image_mean"] == pytest.approx(list(processor.config.image_mean))
    chat = (exported / "chat_template.jinja").read_text()
    assert read_json(exported / "tokenizer_config.json")["chat_template"] == chat
    assert read_json(exported / "chat_template.json") == {"chat_template": chat}  # processors of transformers < 4.52
    proc = read_json(exported / "processor_config.json")
    assert proc["patch_size"] == 8 and proc["num_additional_image_tokens"] == 1
    gen = read_json(exported / "generation_config.json")
    assert set(gen["eos_token_id"]) == processor.stop_ids
    keys = set(tensors_of(exported))
    assert "language_model.lm_head.weight" in keys and "multi_modal_projector.linear_2.bias" in keys
    assert any(k.startswith("vision_tower.vision_model.encoder.layers.0.") for k in keys)
    assert not any(k.startswith(("vision.", "connector.", "llm.")) for k in keys)


def test_transformers_logits_match(tiny, hf_loaded):
    model, processor = tiny
    hf, hf_proc = hf_loaded
    image = square_image(64)
    ids, pixels = polyvlm_inputs(processor, "What colour is the ball?", image)
    inputs = hf_inputs(hf_proc, "What colour is the ball?", image)
    assert inputs["input_ids"].tolist() == ids.tolist()
    assert torch.allclose(inputs["pixel_values"], pixels, atol=1e-5)
    with torch.no_grad():
        ours = model(ids, pixels=pixels).logits
        theirs = hf(**inputs).logits
    assert ours.shape == theirs.shape
    assert (ours - theirs).abs().max().item() < 1e-4


def test_resized_square_image_gives_same_pixels(tiny, hf_loaded):
    """A larger square image goes through the same bicubic resize on both sides."""
    _, processor = tiny
    _, hf_proc = hf_loaded
    image = square_image(150, seed=3)
    ours = processor.images_to_pixels([image])
    theirs = hf_proc.image_processor(images=image, return_tensors="pt")["pixel_values"]
    assert (ours - theirs).abs().max().item() < 1e-4


def test_greedy_generation_same_tokens(tiny, hf_loaded):
    """12 greedy tokens with stopping off on both sides (a random model may end its turn at once), then the
    same decode with the exported generation config's stop ids: both sides stop at the same place."""
    from polyvlm.models.generate import SampleParams, generate_ids

    model, processor = tiny
    hf, hf_proc = hf_loaded
    image = square_image(64, seed=1)
    ids, pixels = polyvlm_inputs(processor, "Describe the scene.", image)
    inputs = hf_inputs(hf_proc, "Describe the scene.", image)

    def ours(stop_ids: set[int]) -> list[int]:
        return generate_ids(model, [ids[0].tolist()], pixels, [SampleParams(max_new_tokens=12)], stop_ids,
                            processor.pad_id)[0]

    def theirs(eos: list[int]) -> list[int]:
        with torch.no_grad():
            out = hf.generate(**inputs, max_new_tokens=12, do_sample=False, eos_token_id=eos, pad_token_id=processor.pad_id)
        return out[0, inputs["input_ids"].shape[1]:].tolist()

    free = theirs([-1])  # an id no token has: transformers never stops early
    assert len(free) == 12 and ours(set()) == free
    new = theirs(list(processor.stop_ids))
    cut = next((i for i, t in enumerate(free) if t in processor.stop_ids), 12)
    assert ours(processor.stop_ids) == new[:cut] == free[:cut]


@pytest.mark.parametrize("name", TEMPLATES.names())
def test_chat_template_renders_like_polyvlm(tiny, name):
    """String content and OpenAI-style content lists both render exactly as polyvlm's template."""
    tok = tiny[1].tokenizer
    template = get_template(name, tok.bos_token)
    jinja = hf_chat_template(template)
    turns = [Turn("user", "<image>\nWhat is it?"), Turn("assistant", "A cat."), Turn("user", "Its colour?")]
    want = template.render(turns, add_generation_prompt=True).text
    as_strings = [{"role": t.role, "content": t.text} for t in turns]
    as_parts = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is it?"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]},
                {"role": "user", "content": "Its colour?"}]
    for messages in (as_strings, as_parts):
        got = tok.apply_chat_template(messages, chat_template=jinja, tokenize=False, add_generation_prompt=True)
        assert got == want


@pytest.mark.parametrize("change, words", [
    ({"connector": "moe"}, ["moe", "mixture of experts", "polyvlm serve"]),
    ({"connector": "pool1"}, ["pool1", "polyvlm serve"]),
    ({"image_aspect_ratio": "anyres"}, ["'anyres'", "LLaVA-NeXT", "--format hf-llava-next"]),
    ({"image_aspect_ratio": "anyres_max_9"}, ["anyres_max_9", "LLaVA-OneVision", "--format hf-llava-onevision"]),
])
def test_refuses_other_architectures(tiny_ckpt, change, words):
    from polyvlm.models.checkpoint import load

    model, processor = load(tiny_ckpt)
    model.cfg = dataclasses.replace(model.cfg, **change)
    with pytest.raises(ExportError) as e:
        check_exportable(model, processor)
    for w in words:
        assert w in str(e.value)


def test_refuses_extra_encoder_and_linear_connector(tmp_path):
    from polyvlm.config import load_config
    from polyvlm.models import factory
    from polyvlm.testing import TINY_RECIPE

    model, processor = factory.build(load_config(TINY_RECIPE, ["model.connector=linear"]).model)
    with pytest.raises(ExportError, match="Linear-GELU-Linear"):
        export_hf_llava(model, processor, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    model.cfg = dataclasses.replace(model.cfg, connector="mlp2x_gelu")
    model.audio = nn.Linear(2, 2)  # a part Llava has no place for
    with pytest.raises(ExportError, match="audio"):
        check_exportable(model, processor)


def test_bf16_sharded_export_loads(tiny, tmp_path):
    from transformers import LlavaForConditionalGeneration

    model, processor = tiny
    out = export_hf_llava(model, processor, tmp_path / "bf16", dtype="bfloat16", max_shard_size="300KB")
    assert (out / "model.safetensors.index.json").is_file()
    assert len(list(out.glob("model-*.safetensors"))) > 1
    tensors = tensors_of(out)
    assert all(t.dtype == torch.bfloat16 for t in tensors.values())
    assert read_json(out / "config.json")["dtype"] == "bfloat16"
    assert set(read_json(out / "model.safetensors.index.json")["weight_map"]) == set(tensors)
    hf = LlavaForConditionalGeneration.from_pretrained(str(out))
    assert hf.dtype == torch.bfloat16
    ref = model.state_dict()["connector.linear_1.weight"].to(torch.bfloat16)
    assert torch.equal(hf.model.multi_modal_projector.linear_1.weight, ref)


@pytest.mark.slow
def test_fresh_offline_process_loads_export(exported):
    """A separate Python with the hub switched off loads model and processor and runs a forward pass."""
    vocab = read_json(exported / "config.json")["text_config"]["vocab_size"]  # every placeholder token included
    assert offline_forward(exported, "LlavaForConditionalGeneration", (64, 64)) == [str(vocab), "LlavaProcessor"]
