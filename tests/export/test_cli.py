"""`polyvlm export`: polyvlm -> hf-llava -> polyvlm through the command line, and its error messages."""

from __future__ import annotations

import pytest
import torch
from export_helpers import polyvlm_inputs, read_json, square_image

from polyvlm.cli import main as polyvlm_main
from polyvlm.export_cli import main


def test_cli_round_trip(tiny, tiny_ckpt, tmp_path, capsys):
    from polyvlm.models.checkpoint import load

    llava = tmp_path / "llava"
    assert polyvlm_main(["export", str(tiny_ckpt), "--format", "hf-llava", "--out", str(llava)]) == 0
    assert f"wrote hf-llava model to {llava}" in capsys.readouterr().out
    assert read_json(llava / "config.json")["model_type"] == "llava"
    back = tmp_path / "back"
    assert main([f"hf-llava:{llava}", "--format", "polyvlm", "--out", str(back), "--max-length", "300"]) == 0
    model, processor = load(back)
    assert processor.config.template == "chatml" and processor.config.max_length == 300
    ids, pixels = polyvlm_inputs(processor, "Where is the cat?", square_image(64, seed=7))
    with torch.no_grad():
        assert torch.equal(model(ids, pixels=pixels).logits, tiny[0](ids, pixels=pixels).logits)


def test_cli_errors_are_one_clear_line(tmp_path, capsys):
    from polyvlm.testing import make_tiny_checkpoint

    assert main([str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "nothing: no such checkpoint directory" in err and "Traceback" not in err
    ckpt = make_tiny_checkpoint(tmp_path / "linear", overrides=["model.connector=linear"])
    assert main([str(ckpt), "--out", str(tmp_path / "o")]) == 2
    assert "cannot export to hf-llava: the `linear` connector" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert main([f"hf-llava:{tmp_path / 'nothing'}", "--format", "polyvlm", "--out", str(tmp_path / "o")]) == 2
    assert "nothing: no such checkpoint directory (given as hf-llava:" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([f"hf-llava:{tmp_path / 'empty'}", "--format", "polyvlm", "--out", str(tmp_path / "o")]) == 2
    assert "empty: not a hf-llava checkpoint" in (err := capsys.readouterr().err) and "no config.json" in err
    assert main([str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err  # auto-detection lists every layout polyvlm reads
    assert "empty: not a polyvlm checkpoint, nor one in another layout" in err
    assert all(f"  {name}: " in err for name in ("polyvlm", "hf-llava", "hf-llava-next"))


WHISPER = ("model.audio_config={model_type: whisper, d_model: 32, encoder_layers: 1, encoder_attention_heads: 2, "
           "encoder_ffn_dim: 64, num_mel_bins: 16, max_source_positions: 25}")


@pytest.mark.parametrize("overrides, words", [
    (["model.connector=moe", "model.moe_experts=2", "model.moe_intermediate=32"],
     ["mixture of experts", "LlavaForConditionalGeneration has no place for", "polyvlm serve"]),
    ([WHISPER], ["audio", "Llava has no place for", "polyvlm serve"]),
    (["model.connector=pool1"], ["pool1", "one pooled token", "polyvlm serve"]),
])
def test_cli_refuses_models_llava_cannot_hold(tmp_path, capsys, overrides, words):
    """`polyvlm export` on Parrot (moe), audio and pool1 checkpoints: exit 2, why, and what to use instead."""
    from polyvlm.testing import make_tiny_checkpoint

    ckpt = make_tiny_checkpoint(tmp_path / "ckpt", overrides=overrides)
    assert main([str(ckpt), "--format", "hf-llava", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("polyvlm export: error: cannot export to hf-llava") and "Traceback" not in err
    for w in words:
        assert w in err
    assert not (tmp_path / "out").exists()


def test_cli_refuses_unmerged_lora_and_names_merge_lora(tmp_path, capsys):
    from polyvlm.config import load_config
    from polyvlm.models import factory
    from polyvlm.models.checkpoint import save_checkpoint
    from polyvlm.models.lora import apply_lora
    from polyvlm.testing import TINY_RECIPE

    cfg = load_config(TINY_RECIPE, ["model.lora_r=4", "train.stage=lora"])
    model, processor = factory.build(cfg.model)
    apply_lora(model)
    ckpt = save_checkpoint(model, processor, cfg, tmp_path / "lora")
    assert main([str(ckpt), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "LoRA adapters" in err and "polyvlm merge-lora" in err
    merged = tmp_path / "merged"
    assert polyvlm_main(["merge-lora", str(ckpt), "--out", str(merged)]) == 0
    assert main([str(merged), "--out", str(tmp_path / "out")]) == 0
