"""The checkpoint-layout registry: detection from the files, FORMAT:DIR forcing, the error for an unrecognised
directory, writing every writable layout, and `model.init_from` / merge-lora going through `load_checkpoint`."""

from __future__ import annotations

import json

import pytest
import torch
from export_helpers import polyvlm_inputs, square_image

from polyvlm.models.layouts import (
    LAYOUTS,
    LayoutError,
    detect_layout,
    load_checkpoint,
    resolve,
    save_layout,
    split_spec,
    writable_layouts,
)


def test_every_layout_is_registered_and_the_writable_ones_are_export_formats():
    assert {"polyvlm", "hf-llava", "hf-llava-next"} <= set(LAYOUTS.names())
    assert {"polyvlm", "hf-llava", "hf-llava-next"} <= set(writable_layouts())
    assert split_spec("hf-llava:/a/b") == ("hf-llava", split_spec("/a/b")[1])
    assert split_spec("weird:/a/b") == (None, split_spec("weird:/a/b")[1])  # not a layout: part of the path


def test_detects_polyvlm_and_transformers_llava_and_loads_them_alike(tiny_ckpt, exported, tiny):
    assert detect_layout(tiny_ckpt) == "polyvlm" and detect_layout(exported) == "hf-llava"
    layout, path = resolve(f"hf-llava:{exported}")
    assert (layout.name, path) == ("hf-llava", exported)
    model, processor = load_checkpoint(exported)  # detected, no prefix needed any more
    ids, pixels = polyvlm_inputs(processor, "What is it?", square_image())
    with torch.no_grad():
        assert torch.allclose(model(ids, pixels=pixels).logits, tiny[0](ids, pixels=pixels).logits, atol=1e-5)


def test_unrecognised_directory_lists_layouts_and_what_it_found(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    with pytest.raises(LayoutError) as e:
        load_checkpoint(tmp_path)
    msg = str(e.value)
    assert f"{tmp_path}: not a polyvlm checkpoint, nor one in another layout polyvlm reads" in msg
    assert "model_type 'bert', architectures ['BertModel'], no mm_* keys" in msg and "files: config.json" in msg
    assert all(f"  {n}: " in msg for n in LAYOUTS.names())
    with pytest.raises(LayoutError, match="not a polyvlm checkpoint .*model_type 'bert'"):
        load_checkpoint(f"polyvlm:{tmp_path}")


def test_save_layout_writes_each_format_and_polyvlm_roundtrips(tiny, tmp_path):
    model, processor = tiny
    out = save_layout("polyvlm", model, processor, tmp_path / "copy", extra={"why": "test"})
    assert detect_layout(out) == "polyvlm"
    again, _ = load_checkpoint(out)
    for (k, a), (k2, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    with pytest.raises(LayoutError, match="unknown checkpoint layout 'nope'"):
        save_layout("nope", model, processor, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_init_from_any_layout_goes_through_load_checkpoint(exported, tiny):
    """`model.init_from` accepts a transformers Llava directory without a prefix, and a polyvlm checkpoint."""
    from polyvlm.models.factory import build

    cfg = tiny[0].cfg.__class__(**{**tiny[0].cfg.__dict__, "init_from": str(exported)})
    model, processor = build(cfg)
    assert model.training and processor.config.template == cfg.template
    assert torch.equal(model.connector.linear_1.weight, tiny[0].connector.linear_1.weight)


def test_merge_lora_refuses_a_transformers_directory(exported, tmp_path):
    from polyvlm.lora_cli import merge_checkpoint

    with pytest.raises(ValueError, match="a hf-llava checkpoint has no polyvlm LoRA adapters"):
        merge_checkpoint(exported, tmp_path / "m")
    assert not (tmp_path / "m").exists()
