"""`polyvlm export`: polyvlm -> hf-llava -> polyvlm through the command line, and its error messages."""

from __future__ import annotations

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
    assert "nothing: neither a polyvlm checkpoint" in err and "Traceback" not in err
    ckpt = make_tiny_checkpoint(tmp_path / "linear", overrides=["model.connector=linear"])
    assert main([str(ckpt), "--out", str(tmp_path / "o")]) == 2
    assert "cannot export to hf-llava: the `linear` connector" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert main([f"hf-llava:{tmp_path / 'nothing'}", "--format", "polyvlm", "--out", str(tmp_path / "o")]) == 2
    assert "no config.json" in capsys.readouterr().err
