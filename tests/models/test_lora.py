"""LoRA through peft: stage lora trains adapters + connector only; checkpoints keep adapters apart; loading
gives the same logits; `polyvlm merge-lora` writes a plain checkpoint with the same logits as the unmerged one."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import polyvlm
from polyvlm.config import load_config
from polyvlm.data.records import Turn
from polyvlm.models import factory
from polyvlm.models.checkpoint import save_checkpoint
from polyvlm.models.lora import has_lora
from polyvlm.testing import TINY_RECIPE
from polyvlm.train.stages import apply_stage

LORA = ["model.lora_r=4", "model.lora_alpha=8", "model.lora_dropout=0.0", "train.stage=lora"]


def _inputs(proc):
    enc = proc.encode([Turn("user", "<image>\nWhat colour are the shapes?"), Turn("assistant", "red")], {"image": 1})
    ids = torch.tensor([enc.input_ids])
    return ids, proc.images_to_pixels([Image.new("RGB", (64, 64), "red")])


def _logits(model, ids, pixels):
    model.eval()
    with torch.no_grad():
        return model(ids, torch.ones_like(ids), pixels).logits


@pytest.fixture(scope="module")
def lora_ckpt(tmp_path_factory):
    """A stage-lora model with non-zero adapters (B starts at zero, which would make merging trivial), saved."""
    torch.manual_seed(0)
    cfg = load_config(TINY_RECIPE, LORA)
    model, proc = factory.build(cfg.model)
    groups = apply_stage(model, "lora", 1e-3)
    assert [g["name"] for g in groups] == ["connector", "lora"]
    with torch.no_grad():
        for n, p in model.llm.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    ids, pixels = _inputs(proc)
    path = save_checkpoint(model, proc, cfg, tmp_path_factory.mktemp("lora") / "ck")
    return path, _logits(model, ids, pixels), model


def test_stage_lora_trains_adapters_and_connector_only(lora_ckpt):
    _, _, model = lora_ckpt
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith("connector.") for n in trainable)
    assert any("q_proj.lora_A" in n for n in trainable) and any("o_proj.lora_B" in n for n in trainable)
    assert not any("mlp" in n for n in trainable if n.startswith("llm."))


def test_checkpoint_holds_adapters_apart_and_reloads(lora_ckpt):
    path, before, _ = lora_ckpt
    base = load_file(str(path / "model.safetensors"))
    assert not any("lora_" in k for k in base) and "llm.model.layers.0.self_attn.q_proj.weight" in base
    adapters = load_file(str(path / "adapter" / "adapter_model.safetensors"))
    assert adapters and all("lora_" in k for k in adapters)
    assert (path / "adapter" / "adapter_config.json").is_file()
    model, proc = polyvlm.load(path)
    assert has_lora(model)
    torch.testing.assert_close(_logits(model, *_inputs(proc)), before)


def test_merge_lora_same_logits(lora_ckpt, tmp_path):
    from polyvlm.cli import main

    path, before, _ = lora_ckpt
    assert main(["merge-lora", str(path), "--out", str(tmp_path / "merged")]) == 0
    assert not (tmp_path / "merged" / "adapter").exists()
    model, proc = polyvlm.load(tmp_path / "merged")
    assert not has_lora(model)
    after = _logits(model, *_inputs(proc))
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)
    # the adapters mattered: the base weights alone give other logits
    plain, _ = factory.build(load_config(TINY_RECIPE).model)
    plain.load_state_dict(load_file(str(path / "model.safetensors")), strict=False)
    assert not torch.allclose(_logits(plain, *_inputs(proc)), before, atol=1e-4)
    # a checkpoint without adapters is refused with one clear line
    assert main(["merge-lora", str(tmp_path / "merged"), "--out", str(tmp_path / "again")]) == 1


def test_lora_needs_a_rank():
    model, _ = factory.build(load_config(TINY_RECIPE).model)
    with pytest.raises(ValueError, match="model.lora_r >= 1"):
        apply_stage(model, "lora", 1e-3)
    model.cfg.lora_r, model.cfg.lora_targets = 2, ["nope_proj"]
    with pytest.raises(ValueError, match=r"lora_targets \['nope_proj'\]"):
        apply_stage(model, "lora", 1e-3)


def test_train_stage_lora_two_steps(tmp_path):
    from polyvlm.data.scenes import make_split, write_jsonl
    from polyvlm.train.loop import train

    data = write_jsonl(make_split(tmp_path, 8, seed=2), tmp_path / "qa.jsonl")
    cfg = load_config(TINY_RECIPE, [*LORA, f"data.path={data}", f"train.output_dir={tmp_path / 'run'}",
                                    "train.max_steps=2", "train.batch_size=4"])
    res = train(cfg, show_progress=False)
    assert len(res.history) == 2 and (res.checkpoint / "adapter" / "adapter_model.safetensors").is_file()
    gen = polyvlm.load_generator(res.checkpoint)
    from models_helpers import greedy_by_hand

    from polyvlm.infer import ChatRequest

    assert has_lora(gen.model)  # the generator runs the adapters, not just the base weights
    trained = [p for n, p in gen.model.llm.named_parameters() if "lora_B" in n]
    assert trained and any(p.abs().sum() > 0 for p in trained)  # two steps moved B off its zero init
    req = ChatRequest([{"role": "user", "content": "What colour?"}], images=[Image.new("RGB", (64, 64), "blue")],
                      max_new_tokens=3)
    (out,) = gen.generate([req])
    want = greedy_by_hand(gen, req, 3)
    assert out.completion_tokens == len(want)
    assert out.text == gen.processor.tokenizer.decode(want, skip_special_tokens=True)
    assert out.finish_reason == ("length" if len(want) == 3 else "stop")


def test_resume_loads_base_and_adapters_into_a_wrapped_model(lora_ckpt):
    from polyvlm.models.checkpoint import load_weights_into

    path, before, _ = lora_ckpt
    torch.manual_seed(1)
    model, proc = factory.build(load_config(TINY_RECIPE, LORA).model)
    apply_stage(model, "lora", 1e-3)  # what a resumed stage-lora run builds before loading its checkpoint
    load_weights_into(model, path)
    torch.testing.assert_close(_logits(model, *_inputs(proc)), before)


def test_tied_embeddings_save_once_under_safetensors_names_and_reload(tmp_path):
    """A tied LM head (Qwen2's `tie_word_embeddings`) shares the input embedding's storage: the base weights hold
    it once, under the name safetensors' public `save_model` keeps for the same plain model (so checkpoints written
    before load unchanged), and reloading re-ties the head and gives the same logits."""
    from safetensors.torch import save_model

    tied = [*LORA, "model.llm_config.tie_word_embeddings=true"]
    torch.manual_seed(0)
    plain, proc = factory.build(load_config(TINY_RECIPE, tied).model)
    assert plain.llm.lm_head.weight is plain.llm.get_input_embeddings().weight
    save_model(plain, str(tmp_path / "reference.safetensors"))  # the reference: safetensors' own choice of names
    reference = set(load_file(str(tmp_path / "reference.safetensors")))
    apply_stage(plain, "lora", 1e-3)
    with torch.no_grad():
        for n, p in plain.llm.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    ids, pixels = _inputs(proc)
    before = _logits(plain, ids, pixels)
    path = save_checkpoint(plain, proc, load_config(TINY_RECIPE, tied), tmp_path / "ck")
    base = load_file(str(path / "model.safetensors"))
    assert set(base) == reference and len(reference) == len(plain.state_dict()) - 1 - sum(
        "lora_" in k for k in plain.state_dict())  # one name of the tied pair left out, nothing else
    model, proc = polyvlm.load(path)
    head = model.llm.get_output_embeddings().weight
    assert head.data_ptr() == model.llm.get_input_embeddings().weight.data_ptr()
    torch.testing.assert_close(_logits(model, *_inputs(proc)), before)
    merged = tmp_path / "merged"
    from polyvlm.cli import main

    assert main(["merge-lora", str(path), "--out", str(merged)]) == 0
    torch.testing.assert_close(_logits(polyvlm.load(merged)[0], *_inputs(proc)), before, rtol=1e-4, atol=1e-4)


def test_dedupe_copies_overlapping_views_instead_of_dropping_them():
    """Only true aliases are written once; a tensor that merely overlaps another's storage is kept (copied)."""
    from polyvlm.models.lora import _dedupe

    w = torch.arange(12.0).reshape(3, 4)
    out = _dedupe({"b": w, "a": w, "half": w[1:], "alone": torch.ones(2)})
    assert sorted(out) == ["a", "alone", "half"]
    torch.testing.assert_close(out["half"], w[1:])
    assert out["half"].untyped_storage().data_ptr() != w.untyped_storage().data_ptr()
