"""Config: recipes, key=value overrides, rejected keys and types, the resolved copy per run."""

from __future__ import annotations

import pytest
import yaml

from polyvlm.config import ConfigError, load_config


def test_recipe_and_overrides(repo_root):
    cfg = load_config(repo_root / "recipes/tiny.yaml", ["train.lr=1e-3", "model.connector=linear", "train.max_steps=7"])
    assert cfg.train.lr == pytest.approx(1e-3)
    assert cfg.model.connector == "linear"
    assert cfg.train.max_steps == 7
    assert cfg.model.llm_config["model_type"] == "qwen2"


def test_unknown_key_named(repo_root):
    with pytest.raises(ConfigError, match="unknown config key 'train.lrr'"):
        load_config(repo_root / "recipes/tiny.yaml", ["train.lrr=1"])


def test_unknown_key_in_recipe_names_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("train:\n  nope: 3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown config key 'train.nope'"):
        load_config(p)


def test_wrong_type_named():
    with pytest.raises(ConfigError, match="config key 'train.max_steps': expected int"):
        load_config(None, ["train.max_steps=many"])
    with pytest.raises(ConfigError, match="train.batch_size"):
        load_config(None, ["train.batch_size=true"])


def test_resolved_config_saved(tmp_path):
    cfg = load_config(None, ["train.seed=5"])
    cfg.save(tmp_path / "config.yaml")
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["train"]["seed"] == 5


def test_cli_config_lists_keys(capsys):
    from polyvlm.cli import main

    assert main(["config"]) == 0
    out = capsys.readouterr().out
    for key in ("train.output_dir", "train.max_steps", "train.save_every", "train.lr", "train.batch_size",
                "train.grad_accum", "train.seed", "model.connector", "data.path"):
        assert key in out
