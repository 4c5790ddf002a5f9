"""The `llava` layout (original LLaVA / LLaVA-NeXT / LLaVA-OneVision checkpoints; see original_llava.py for the
original file behind every name): polyvlm's logits and greedy tokens equal transformers' LlavaOnevision / Llava
after transformers' own conversion; sharded safetensors and `.bin`; vision towers by hub id; refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from original_llava import original_tokenizer, save_hf, write_shards
from PIL import Image

from polyvlm.data.records import Turn
from polyvlm.models.generate import SampleParams, generate_ids
from polyvlm.models.layouts import LayoutError, detect_layout, load_checkpoint

PINS = [[32, 32], [32, 64], [64, 32], [64, 64], [64, 96]]
SIGLIP = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3, "num_attention_heads": 2,
          "image_size": 32, "patch_size": 8}  # the tower's own config (3 layers; the LLaVA code drops the last)
QWEN = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "vocab_size": 320, "max_position_embeddings": 512, "tie_word_embeddings": True,
        "rms_norm_eps": 1e-6, "rope_theta": 1000000.0}


def image(w: int, h: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def ov_dir(tmp_path_factory):
    """A tiny lmms-lab/llava-onevision-qwen2-*-ov as the LLaVA-NeXT code saves it: Qwen2 (tied) + SigLIP (last layer
    dropped, no head) + mlp2x_gelu + image_newline, anyres_max_4, two safetensors shards; the tower's config in a
    local folder (the hub id google/siglip-so400m-patch14-384 resolved through --vision-tower)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM, SiglipVisionConfig, SiglipVisionModel

    root = tmp_path_factory.mktemp("ov")
    out, tower_dir = root / "llava-onevision-qwen2-tiny-ov", root / "siglip"
    out.mkdir()
    torch.manual_seed(0)
    tcfg = SiglipVisionConfig(**SIGLIP, vision_use_head=False)
    tcfg.save_pretrained(str(tower_dir))  # only the config: the trained tower is inside the checkpoint
    tower = SiglipVisionModel(SiglipVisionConfig(**{**SIGLIP, "num_hidden_layers": 2}, vision_use_head=False))
    lm = Qwen2ForCausalLM(Qwen2Config(**QWEN))
    state = {k: v for k, v in lm.state_dict().items() if k != "lm_head.weight"}  # tied: not saved
    state.update({f"model.vision_tower.vision_tower.{k}": v for k, v in tower.state_dict().items()})
    state.update({"model.mm_projector.0.weight": torch.randn(64, 32) * 0.2, "model.mm_projector.0.bias": torch.randn(64) * 0.1,
                  "model.mm_projector.2.weight": torch.randn(64, 64) * 0.2, "model.mm_projector.2.bias": torch.randn(64) * 0.1,
                  "model.image_newline": torch.randn(64)})
    write_shards(state, out, 2)
    config = {**Qwen2Config(**QWEN).to_diff_dict(), "architectures": ["LlavaQwenForCausalLM"], "model_type": "llava",
              "mm_vision_tower": "google/siglip-so400m-patch14-384", "mm_hidden_size": 32, "mm_projector_type": "mlp2x_gelu",
              "mm_vision_select_layer": -2, "mm_vision_select_feature": "patch", "mm_patch_merge_type": "spatial_unpad",
              "image_aspect_ratio": "anyres_max_4", "image_grid_pinpoints": PINS, "mm_newline_position": "one_token",
              "mm_spatial_pool_mode": "bilinear", "mm_spatial_pool_stride": 2, "mm_use_im_start_end": False,
              "mm_use_im_patch_token": False, "mm_tunable_parts": "mm_vision_tower,mm_mlp_adapter,mm_language_model",
              "tokenizer_model_max_length": 512, "tokenizer_padding_side": "right", "use_mm_proj": True,
              "vision_tower_pretrained": None, "torch_dtype": "float32"}
    (out / "config.json").write_text(json.dumps(config, indent=2))
    original_tokenizer(out, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], eos="<|im_end|>")
    return out, tower_dir, state


@pytest.fixture(scope="module")
def ov_pair(ov_dir, tmp_path_factory):
    """(polyvlm model, processor) read from the original directory, and transformers' LlavaOnevision built from
    the same tensors through transformers' conversion."""
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration

    out, tower_dir, state = ov_dir
    model, processor = load_checkpoint(out, vision_tower=str(tower_dir))
    image_id = processor.media_token_ids["image"]
    full = dict(state, **{"lm_head.weight": state["model.embed_tokens.weight"].clone()})  # as the conversion does
    hcfg = LlavaOnevisionConfig(
        text_config={"model_type": "qwen2", **QWEN}, image_token_index=image_id, vision_feature_layer=-1,
        vision_config={"model_type": "siglip_vision_model", **SIGLIP, "num_hidden_layers": 2, "vision_use_head": False},
        vision_feature_select_strategy="full", vision_aspect_ratio="anyres_max_4", image_grid_pinpoints=PINS,
        use_image_newline_parameter=True, tie_word_embeddings=True)
    hf_dir = save_hf(hcfg, full, tmp_path_factory.mktemp("hf") / "ov-hf")
    hf = LlavaOnevisionForConditionalGeneration.from_pretrained(str(hf_dir)).eval()
    return model, processor, hf


def inputs(processor, img: Image.Image, question: str = "What is shown in the picture?"):
    n = processor.image_tokens([img.size])
    enc = processor.encode([Turn("user", f"<image>\n{question}")], {"image": 1}, add_generation_prompt=True,
                           media_tokens={"image": n})
    media = processor.images_to_media([img])
    hf = {"input_ids": torch.tensor([enc.input_ids]), "pixel_values": media.pixels[None],
          "image_sizes": torch.tensor([[img.size[1], img.size[0]]])}
    return enc.input_ids, media, hf


def test_onevision_layout_is_recognised_not_mistaken_for_transformers_llava(ov_dir):
    out, _, _ = ov_dir
    assert json.loads((out / "config.json").read_text())["model_type"] == "llava"
    assert detect_layout(out) == "llava"


@pytest.mark.parametrize("size", [(50, 30), (30, 70), (40, 40), (96, 40)])
def test_onevision_logits_match_transformers(ov_pair, size):
    model, processor, hf = ov_pair
    assert processor.config.template == "chatml" and model.cfg.image_aspect_ratio == "anyres_max_4"
    assert model.vision.tower.config.num_hidden_layers == 2 and model.vision.feature_layer == -1
    img = image(*size, seed=sum(size))
    ids, media, hf_in = inputs(processor, img)
    with torch.no_grad():
        ours = model(torch.tensor([ids]), pixels=media).logits[0, -1]
        theirs = hf(**hf_in).logits[0, -1]
    assert (ours - theirs).abs().max().item() <= 1e-4


def test_onevision_greedy_tokens_match_transformers(ov_pair):
    model, processor, hf = ov_pair
    ids, media, hf_in = inputs(processor, image(64, 40, seed=9), "Describe the image in one sentence.")
    ours = generate_ids(model, [ids], media, [SampleParams(max_new_tokens=8)], set(), processor.pad_id)[0]
    with torch.no_grad():
        out = hf.generate(**hf_in, max_new_tokens=8, do_sample=False, eos_token_id=None)
    assert ours == out[0, len(ids):].tolist() and len(ours) == 8


def test_vision_tower_by_hub_id_needs_a_local_copy(ov_dir, monkeypatch):
    out, tower_dir, _ = ov_dir
    monkeypatch.delenv("POLYVLM_VISION_TOWER", raising=False)
    with pytest.raises(LayoutError, match="mm_vision_tower 'google/siglip-so400m-patch14-384' is a hub id"):
        load_checkpoint(out)
    monkeypatch.setenv("POLYVLM_VISION_TOWER", f"other/id=/nowhere,google/siglip-so400m-patch14-384={tower_dir}")
    model, _ = load_checkpoint(f"llava:{out}")
    assert model.vision.tower.config.hidden_size == 32


LLAMA = {"hidden_size": 48, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 4, "vocab_size": 300, "max_position_embeddings": 512, "tie_word_embeddings": False}
CLIP = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3, "num_attention_heads": 2,
        "image_size": 28, "patch_size": 7, "projection_dim": 16}


@pytest.fixture(scope="module")
def v15_dir(tmp_path_factory):
    """A tiny liuhaotian/llava-v1.5-7b as haotian-liu/LLaVA saves it: LlavaLlamaForCausalLM, pad, mlp2x_gelu,
    `.bin` shards without the frozen CLIP tower (llava/model/multimodal_encoder/clip_encoder.py loads it from
    `mm_vision_tower` = openai/clip-vit-large-patch14-336), vicuna tokenizer without <image>."""
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModel,
        LlamaConfig,
        LlamaForCausalLM,
    )

    root = tmp_path_factory.mktemp("v15")
    out, tower_dir = root / "llava-v1.5-tiny", root / "clip-vit-large-patch14-336"
    out.mkdir()
    torch.manual_seed(2)
    tower = CLIPVisionModel(CLIPVisionConfig(**CLIP))
    tower.save_pretrained(str(tower_dir))  # a local copy of the hub tower: config + weights
    CLIPImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}).save_pretrained(str(tower_dir))
    lm = LlamaForCausalLM(LlamaConfig(**LLAMA))
    state = dict(lm.state_dict())
    state.update({"model.mm_projector.0.weight": torch.randn(48, 32) * 0.2, "model.mm_projector.0.bias": torch.randn(48) * 0.1,
                  "model.mm_projector.2.weight": torch.randn(48, 48) * 0.2, "model.mm_projector.2.bias": torch.randn(48) * 0.1})
    write_shards(state, out, 2, fmt="bin")
    config = {**LlamaConfig(**LLAMA).to_diff_dict(), "architectures": ["LlavaLlamaForCausalLM"], "model_type": "llava_llama",
              "mm_vision_tower": "openai/clip-vit-large-patch14-336", "mm_hidden_size": 32, "mm_projector_type": "mlp2x_gelu",
              "mm_vision_select_layer": -2, "mm_vision_select_feature": "patch", "mm_patch_merge_type": "flat",
              "image_aspect_ratio": "pad", "mm_use_im_start_end": False, "mm_use_im_patch_token": False,
              "tune_mm_mlp_adapter": False, "freeze_mm_mlp_adapter": False, "use_mm_proj": True, "torch_dtype": "float32"}
    (out / "config.json").write_text(json.dumps(config, indent=2))
    original_tokenizer(out, ["<unk>", "<s>", "</s>"], eos="</s>", bos="<s>")
    return out, tower_dir, state, tower


def test_llava15_bin_shards_and_external_tower_match_transformers(v15_dir, monkeypatch, tmp_path):
    from transformers import LlavaConfig, LlavaForConditionalGeneration

    out, tower_dir, state, tower = v15_dir
    monkeypatch.setenv("POLYVLM_VISION_TOWER", str(tower_dir))
    assert detect_layout(out) == "llava"  # not parrot, though both are LLaVA-style with mm_* keys
    model, processor = load_checkpoint(out)
    assert processor.config.template == "vicuna_v1" and model.cfg.image_aspect_ratio == "pad"
    assert processor.config.image_size == 28 and model.vision.feature_layer == -2 and model.vision.select == "patch"
    emb = model.llm.get_input_embeddings().weight
    image_id = processor.media_token_ids["image"]
    full = dict(state, **{f"model.vision_tower.vision_tower.{k}": v for k, v in tower.state_dict().items()})
    # transformers' conversion loads the tower into the state dict, then resizes the vocabulary for <image>
    full["model.embed_tokens.weight"] = emb.detach().clone()
    full["lm_head.weight"] = model.llm.lm_head.weight.detach().clone()
    hcfg = LlavaConfig(text_config={"model_type": "llama", **LLAMA, "vocab_size": emb.shape[0]},
                       vision_config={"model_type": "clip_vision_model", **CLIP}, image_token_index=image_id,
                       vision_feature_layer=-2, vision_feature_select_strategy="default", image_seq_length=16)
    hf = LlavaForConditionalGeneration.from_pretrained(str(save_hf(hcfg, full, tmp_path / "hf"))).eval()
    img = image(40, 22, seed=5)
    enc = processor.encode([Turn("user", "<image>\nWhat is shown in the picture?")], {"image": 1}, add_generation_prompt=True)
    assert enc.input_ids[0] == processor.tokenizer.convert_tokens_to_ids("<s>")  # vicuna_v1 starts with bos
    ids, pixels = torch.tensor([enc.input_ids]), processor.images_to_pixels([img])
    with torch.no_grad():
        ours, theirs = model(ids, pixels=pixels).logits[0, -1], hf(input_ids=ids, pixel_values=pixels).logits[0, -1]
    assert (ours - theirs).abs().max().item() <= 1e-4
    greedy = generate_ids(model, [enc.input_ids], pixels, [SampleParams(max_new_tokens=6)], set(), processor.pad_id)[0]
    with torch.no_grad():
        ref = hf.generate(input_ids=ids, pixel_values=pixels, max_new_tokens=6, do_sample=False, eos_token_id=None)
    assert greedy == ref[0, ids.shape[1]:].tolist()


def test_import_then_polyvlm_checkpoint_keeps_every_tensor(ov_pair, ov_dir, tmp_path):
    """`polyvlm export DIR --format polyvlm`: the saved checkpoint reloads without the original directory or tower."""
    from polyvlm.export_cli import main

    out, tower_dir, _ = ov_dir
    model, processor, _ = ov_pair
    assert main([str(out), "--format", "polyvlm", "--out", str(tmp_path / "ckpt"), "--vision-tower", str(tower_dir)]) == 0
    again, proc2 = load_checkpoint(tmp_path / "ckpt")
    a, b = model.state_dict(), again.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert proc2.config == processor.config and again.cfg.init_from == f"llava:{out}"


def test_init_from_an_original_checkpoint(ov_dir, ov_pair, monkeypatch):
    """`model.init_from: DIR` (no prefix): the run's settings must match the checkpoint's, then rule the processor."""
    import dataclasses

    from polyvlm.models.factory import build

    out, tower_dir, _ = ov_dir
    monkeypatch.setenv("POLYVLM_VISION_TOWER", str(tower_dir))
    cfg = dataclasses.replace(ov_pair[0].cfg, init_from=str(out), max_length=300)
    model, processor = build(cfg)
    assert model.training and model.cfg is cfg and processor.config.max_length == 300
    assert torch.equal(model.image_newline, ov_pair[0].image_newline)
    with pytest.raises(LayoutError, match="the checkpoint has model.image_aspect_ratio='anyres_max_4'; the config says 'pad'"):
        build(dataclasses.replace(cfg, image_aspect_ratio="pad"))


def test_eval_takes_an_original_directory(ov_dir, monkeypatch, tmp_path):
    """`polyvlm eval --model DIR` recognises the layout and answers; a wrong FORMAT:DIR is refused before loading."""
    from polyvlm.cli import main

    out, tower_dir, _ = ov_dir
    monkeypatch.setenv("POLYVLM_VISION_TOWER", str(tower_dir))
    assert main(["eval", "--model", str(out), "--tasks", "quickstart", "--limit", "2", "--max-new-tokens", "3",
                 "--out", str(tmp_path / "e")]) == 0
    assert json.loads((tmp_path / "e" / "results.json").read_text())["tasks"]["quickstart"]["n"] == 2
    assert main(["eval", "--model", f"parrot:{out}", "--tasks", "quickstart", "--out", str(tmp_path / "bad")]) == 2
