"""The `parrot` layout: a tiny AIDC-AI/Parrot checkpoint written as Parrot's code saves it, loaded by polyvlm and
compared with a reference forward written from Parrot's published model code (random weights).

Names, with the Parrot file defining each: parrot/model/language_model/parrot_qwen2.py (architectures
ParrotQwen2ForCausalLM, model_type parrot_qwen2, `model.*` / `lm_head.weight`); parrot/model/parrot_arch.py
(`model.vision_tower.vision_tower.*`, `model.mm_projector.{0,2}.*`, `model.moe_model.*`, config keys num_experts,
moe_hidden_size, moe_intermediate_size, use_moe, use_moe_residual, moe_top_k, moe_weight); parrot/model/moe_model/
moe.py (`gate.weight`, `experts.N.{gate,up,down}_proj.weight`); parrot/train/arguments.py and scripts/train/
finetune.sh (mm_vision_select_feature cls_patch, mm_vision_select_layer -2, image_aspect_ratio pad, mlp2x_gelu);
parrot/utils/constants.py (IMAGE_TOKEN_INDEX -200 spliced instead of an <image> token).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from original_llava import original_tokenizer, write_shards
from PIL import Image

from polyvlm.data.records import Turn
from polyvlm.models.generate import SampleParams, generate_ids
from polyvlm.models.layouts import detect_layout, load_checkpoint

CLIP = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3, "num_attention_heads": 2,
        "image_size": 28, "patch_size": 7, "projection_dim": 16}
QWEN = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 4, "vocab_size": 320, "max_position_embeddings": 512, "tie_word_embeddings": False}
EXPERTS, INTER, MOE_WEIGHT = 3, 48, 0.1


@pytest.fixture(scope="module")
def parrot_dir(tmp_path_factory):
    from transformers import CLIPVisionConfig, CLIPVisionModel, Qwen2Config, Qwen2ForCausalLM

    root = tmp_path_factory.mktemp("parrot")
    out, tower_dir = root / "Parrot-tiny", root / "clip-vit-large-patch14-336"
    out.mkdir()
    torch.manual_seed(4)
    tower = CLIPVisionModel(CLIPVisionConfig(**CLIP))
    CLIPVisionConfig(**CLIP).save_pretrained(str(tower_dir))
    lm = Qwen2ForCausalLM(Qwen2Config(**QWEN))
    state = dict(lm.state_dict())
    state.update({f"model.vision_tower.vision_tower.{k}": v for k, v in tower.state_dict().items()})
    state.update({"model.mm_projector.0.weight": torch.randn(64, 32) * 0.2, "model.mm_projector.0.bias": torch.randn(64) * 0.1,
                  "model.mm_projector.2.weight": torch.randn(64, 64) * 0.2, "model.mm_projector.2.bias": torch.randn(64) * 0.1,
                  "model.moe_model.gate.weight": torch.randn(EXPERTS, 64) * 0.5})
    for i in range(EXPERTS):
        for name, shape in (("gate_proj", (INTER, 64)), ("up_proj", (INTER, 64)), ("down_proj", (64, INTER))):
            state[f"model.moe_model.experts.{i}.{name}.weight"] = torch.randn(*shape) * 0.15
    write_shards(state, out, 3)
    config = {**Qwen2Config(**QWEN).to_diff_dict(), "architectures": ["ParrotQwen2ForCausalLM"],
              "model_type": "parrot_qwen2", "mm_vision_tower": "/playgound/models/clip-vit-large-patch14-336",
              "mm_hidden_size": 32, "mm_projector_type": "mlp2x_gelu", "mm_vision_select_layer": -2,
              "mm_vision_select_feature": "cls_patch", "mm_patch_merge_type": "flat", "image_aspect_ratio": "pad",
              "use_mm_proj": True, "num_experts": EXPERTS, "moe_hidden_size": 64, "moe_intermediate_size": INTER,
              "use_moe": True, "use_moe_residual": True, "moe_top_k": EXPERTS, "moe_weight": MOE_WEIGHT,
              "tokenizer_model_max_length": 2048, "tokenizer_padding_side": "right", "torch_dtype": "float32"}
    (out / "config.json").write_text(json.dumps(config, indent=2))
    original_tokenizer(out, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], eos="<|im_end|>")
    return out, tower_dir, state, tower, lm


def parrot_reference(state, tower, lm, ids: list[int], pixels: torch.Tensor) -> torch.Tensor:
    """Parrot's input embeddings for one sample with one image (parrot_arch.py prepare_inputs_labels_for_multimodal
    with no labels, moe.py MultilingualMoE.forward) -> [1, s, d]. `ids` holds -200 where the image goes."""
    hs = tower(pixel_values=pixels, output_hidden_states=True).hidden_states[-2][0]  # cls_patch: [577, d]
    h = F.linear(F.gelu(F.linear(hs, state["model.mm_projector.0.weight"], state["model.mm_projector.0.bias"])),
                 state["model.mm_projector.2.weight"], state["model.mm_projector.2.bias"])
    pos = ids.index(-200)
    text = torch.tensor(ids[:pos] + ids[pos + 1:])
    emb = lm.model.embed_tokens(text)  # labels None: every text token is a question token
    cls = h[0:1]
    attn = torch.softmax(cls @ emb.T / torch.sqrt(torch.tensor(cls.size(-1))), dim=-1)
    routing = torch.softmax(attn @ emb @ state["model.moe_model.gate.weight"].T, dim=-1)  # [1, X]
    outs = []
    for i in range(EXPERTS):
        g, u, dn = (state[f"model.moe_model.experts.{i}.{n}_proj.weight"] for n in ("gate", "up", "down"))
        outs.append(F.linear(F.silu(F.linear(h, g)) * F.linear(h, u), dn))
    moe = (routing[0][:, None, None] * torch.stack(outs)).sum(0) + MOE_WEIGHT * h
    return torch.cat([emb[:pos], moe, emb[pos:]])[None]


def test_parrot_matches_its_reference_forward(parrot_dir):
    out, tower_dir, state, tower, lm = parrot_dir
    assert detect_layout(out) == "parrot"
    model, processor = load_checkpoint(out, vision_tower=str(tower_dir))
    assert model.cfg.connector == "moe" and model.vision.select == "full" and model.vision.tokens_per_image == 17
    assert processor.config.template == "chatml"
    img = Image.fromarray(np.random.default_rng(3).integers(0, 256, (20, 34, 3), dtype=np.uint8))
    enc = processor.encode([Turn("user", "<image>\nWhat is shown in the picture?")], {"image": 1}, add_generation_prompt=True)
    pixels = processor.images_to_pixels([img])
    image_id = processor.media_token_ids["image"]
    first = enc.input_ids.index(image_id)
    orig = enc.input_ids[:first] + [-200] + [t for t in enc.input_ids[first:] if t != image_id]
    with torch.no_grad():
        ours = model(torch.tensor([enc.input_ids]), pixels=pixels).logits[0]
        embeds = parrot_reference(state, tower.eval(), lm.eval(), orig, pixels)
        ref = lm(inputs_embeds=embeds).logits[0]
    assert ours.shape[0] == ref.shape[0]
    assert (ours[-1, :QWEN["vocab_size"]] - ref[-1]).abs().max().item() <= 1e-4
    # greedy: Parrot embeds (and routes) the prompt once; each new token is then embedded as text
    greedy = generate_ids(model, [enc.input_ids], pixels, [SampleParams(max_new_tokens=6)], set(), processor.pad_id)[0]
    new: list[int] = []
    with torch.no_grad():
        for _ in range(6):
            new.append(int(lm(inputs_embeds=embeds).logits[0, -1].argmax()))
            embeds = torch.cat([embeds, lm.model.embed_tokens(torch.tensor([[new[-1]]]))], dim=1)
    assert greedy == new
    assert math.isclose(model.connector.moe_weight, MOE_WEIGHT)


def test_chat_reads_a_parrot_directory_with_the_tower_from_the_environment(parrot_dir, monkeypatch, capsys, tmp_path):
    from polyvlm.cli import main

    out, tower_dir, *_ = parrot_dir
    img = tmp_path / "x.png"
    Image.fromarray(np.zeros((20, 30, 3), dtype=np.uint8)).save(img)
    monkeypatch.delenv("POLYVLM_VISION_TOWER", raising=False)
    assert main(["chat", str(out), "--image", str(img), "What is it?", "--max-tokens", "3"]) == 1
    assert "mm_vision_tower '/playgound/models/clip-vit-large-patch14-336' is a path that does not exist here" in capsys.readouterr().err
    monkeypatch.setenv("POLYVLM_VISION_TOWER", str(tower_dir))
    assert main(["chat", str(out), "--image", str(img), "What is it?", "--max-tokens", "3"]) == 0
