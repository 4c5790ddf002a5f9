"""Bad released checkpoints get one error naming the file, the key and the reason, and `polyvlm export` writes
nothing: a missing shard, a truncated safetensors file, a `.bin` holding more than tensors, an unknown projector
or tower, shapes that do not match the config."""

from __future__ import annotations

import json
import shutil

import torch
from test_original_llava import ov_dir, v15_dir  # noqa: F401  (fixtures)

from polyvlm.export_cli import main


def copy(src, tmp_path):
    out = tmp_path / src.name
    shutil.copytree(src, out)
    return out


def export_error(capsys, src, tmp_path, *extra: str) -> str:
    assert main([str(src), "--format", "polyvlm", "--out", str(tmp_path / "written"), *extra]) == 2
    assert not (tmp_path / "written").exists()
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


def edit_config(d, **kv):
    cfg = json.loads((d / "config.json").read_text())
    cfg.update(kv)
    (d / "config.json").write_text(json.dumps(cfg))


def test_missing_shard(ov_dir, tmp_path, capsys):  # noqa: F811
    d = copy(ov_dir[0], tmp_path)
    (d / "model-00002-of-00002.safetensors").unlink()
    err = export_error(capsys, d, tmp_path, "--vision-tower", str(ov_dir[1]))
    assert "model.safetensors.index.json: shard 'model-00002-of-00002.safetensors' is missing" in err


def test_truncated_safetensors(ov_dir, tmp_path, capsys):  # noqa: F811
    d = copy(ov_dir[0], tmp_path)
    f = d / "model-00001-of-00002.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    err = export_error(capsys, d, tmp_path, "--vision-tower", str(ov_dir[1]))
    assert "model-00001-of-00002.safetensors: not a readable safetensors file" in err


def test_bin_with_code_is_refused(v15_dir, tmp_path, capsys, monkeypatch):  # noqa: F811
    d = copy(v15_dir[0], tmp_path)
    monkeypatch.setenv("POLYVLM_VISION_TOWER", str(v15_dir[1]))
    torch.save({"model.norm.weight": torch.ones(3), "evil": shutil.rmtree}, str(d / "pytorch_model-00001-of-00002.bin"))
    err = export_error(capsys, d, tmp_path)
    assert "pytorch_model-00001-of-00002.bin: not a state dict loadable with torch.load(weights_only=True)" in err


def test_unknown_projector_and_tower(ov_dir, tmp_path, capsys):  # noqa: F811
    d = copy(ov_dir[0], tmp_path)
    edit_config(d, mm_projector_type="qformer")
    err = export_error(capsys, d, tmp_path, "--vision-tower", str(ov_dir[1]))
    assert "config.json: mm_projector_type 'qformer' is not one polyvlm reads (mlp2x_gelu, linear)" in err
    edit_config(d, mm_projector_type="mlp2x_gelu")
    tower = tmp_path / "eva"
    tower.mkdir()
    (tower / "config.json").write_text(json.dumps({"model_type": "eva_clip"}))
    err = export_error(capsys, d, tmp_path, "--vision-tower", str(tower))
    assert "eva/config.json: vision tower 'google/siglip-so400m-patch14-384' has model_type 'eva_clip'" in err


def test_shape_mismatch_names_file_and_key(ov_dir, tmp_path, capsys):  # noqa: F811
    d = copy(ov_dir[0], tmp_path)
    edit_config(d, intermediate_size=100)
    err = export_error(capsys, d, tmp_path, "--vision-tower", str(ov_dir[1]))
    assert ("safetensors: tensor 'model.layers.0.mlp.gate_proj.weight' (polyvlm 'llm.model.layers.0.mlp.gate_proj.weight') "
            "has shape [128, 64] but the config gives [100, 64] (shape mismatch)") in err
    edit_config(d, intermediate_size=128, mm_hidden_size=48)
    err = export_error(capsys, d, tmp_path, "--vision-tower", str(ov_dir[1]))
    assert "mm_hidden_size 48 differs from the vision tower's hidden_size 32" in err
