"""Config: recipes, key=value overrides, rejected keys and types, the resolved copy per run."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import pytest
import yaml

from polyvlm.config import ConfigError, apply_overrides, load_config


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


def test_renamed_key_still_read_with_a_warning(tmp_path):
    """train.precision became train.dtype (the values of --dtype): recipes, overrides and the config.yaml of old
    runs keep working, with a FutureWarning naming the new key; giving both names is an error."""
    old = tmp_path / "old.yaml"
    old.write_text("train:\n  precision: bf16\n")
    with pytest.warns(FutureWarning, match="'train.precision' is deprecated, use 'train.dtype'"):
        assert load_config(old).train.dtype == "bf16"
    with pytest.warns(FutureWarning, match="use 'train.dtype'"):
        assert load_config(None, ["train.precision=fp32"]).train.dtype == "fp32"
    assert load_config(None, ["train.dtype=bf16"]).train.dtype == "bf16"
    both = tmp_path / "both.yaml"
    both.write_text("train:\n  precision: bf16\n  dtype: fp32\n")
    with pytest.warns(FutureWarning), pytest.raises(ConfigError, match="give only 'train.dtype'"):
        load_config(both)
    assert not hasattr(load_config(None).train, "precision")


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


# ---- one `key=value` override syntax for every command (train, config, serve, eval, synth) ----------------------

@pytest.mark.parametrize(("typed", "meant"), [
    ("train.learning_rate", "train.lr"),  # Hugging Face TrainingArguments' names lead to polyvlm's
    ("train.num_train_epochs", "train.epochs"), ("train.gradient_accumulation_steps", "train.grad_accum"),
    ("model.mm_projector_type", "model.connector"),  # LLaVA's train.py
    ("data.image_folder", "data.image_root"), ("train.max_step", "train.max_steps"),
    ("model.zzz", None),  # nothing near: no suggestion (the shared 'model.' made every key look close)
])
def test_unknown_key_suggests_by_its_last_part_and_the_fields_usual_names(typed, meant):
    with pytest.raises(ConfigError) as e:
        load_config(None, [f"{typed}=1"])
    msg = str(e.value)
    assert msg.startswith(f"unknown config key '{typed}'" + (f" (did you mean '{meant}'?)" if meant else " (known: ")), msg


def test_override_suggests_the_nearest_key_and_keeps_nested_dict_keys(repo_root):
    with pytest.raises(ConfigError, match=r"unknown config key 'train.lrr' \(did you mean 'train.lr'\?\) \(known: "):
        load_config(None, ["train.lrr=1"])
    with pytest.raises(ConfigError, match=r"unknown config key 'modle' \(did you mean 'model'\?\)"):
        load_config(None, ["modle.connector=linear"])
    with pytest.raises(ConfigError, match=r"config key 'train.lr' is a float; it has no key 'x'"):
        load_config(None, ["train.lr.x=1"])
    with pytest.raises(ConfigError, match="override 'train.lr' is not of the form key=value"):
        load_config(None, ["train.lr"])
    cfg = load_config(repo_root / "recipes/tiny.yaml", ["model.llm_config.num_hidden_layers=1"])
    assert cfg.model.llm_config["num_hidden_layers"] == 1 and cfg.model.llm_config["model_type"] == "qwen2"


@dataclasses.dataclass
class Item:
    open_keys: ClassVar[bool] = True
    name: str = ""


@dataclasses.dataclass
class Inner:
    rate: float = 0.0
    on: bool = False


@dataclasses.dataclass
class Schema:
    inner: Inner = dataclasses.field(default_factory=Inner)
    named: dict[str, Inner] = dataclasses.field(default_factory=dict)
    items: list[Item] = dataclasses.field(default_factory=list)
    n: int | None = None


def test_apply_overrides_types_lists_and_open_sections():
    data = {"items": [{"name": "a"}], "named": {"x": {"rate": 1.0}}}
    out = apply_overrides(data, ["inner.rate=1e-3", "inner.on=true", "named.x.on=yes", "items.0.extra=[1, 2]",
                                 "n=null"], Schema)
    assert out == {"items": [{"name": "a", "extra": [1, 2]}], "named": {"x": {"rate": 1.0, "on": True}},
                   "inner": {"rate": 0.001, "on": True}, "n": None}
    with pytest.raises(ConfigError, match=r"config key 'inner.on': expected bool, got str 'maybe'"):
        apply_overrides({}, ["inner.on=maybe"], Schema)
    with pytest.raises(ConfigError, match=r"unknown config key 'named.x.rat' \(did you mean 'named.x.rate'\?\)"):
        apply_overrides({}, ["named.x.rat=2"], Schema)
    with pytest.raises(ConfigError, match=r"override 'items.3.name=b': index 3 is out of range \(1 items\)"):
        apply_overrides({"items": [{}]}, ["items.3.name=b"], Schema)
    with pytest.raises(ConfigError, match=r"config key 'items.first': 'first' is not a list index"):
        apply_overrides({}, ["items.first.name=b"], Schema)


def test_train_and_config_commands_report_the_suggestion(repo_root, capsys):
    from polyvlm.cli import main

    assert main(["config", str(repo_root / "recipes/tiny.yaml"), "train.max_step=3"]) == 2
    assert "unknown config key 'train.max_step' (did you mean 'train.max_steps'?)" in capsys.readouterr().out


def test_serve_takes_key_value_overrides_after_its_flags(capsys):
    from polyvlm.config import parse_args_with_overrides
    from polyvlm.serve.cli import main, parser
    from polyvlm.serve.config import config_from_args

    args = parse_args_with_overrides(parser(), ["ckpt", "--port", "9000", "max_batch_size=3", "port=8001",
                                                "allowed_media_domains=[a.org, B.com]", "ui=false", "--no-batching"])
    cfg = config_from_args(args)
    assert (args.checkpoint, cfg.port, cfg.max_batch_size, cfg.allowed_media_domains) == ("ckpt", 8001, 3,
                                                                                         ["a.org", "b.com"])
    assert cfg.no_batching and not cfg.ui
    assert main(["ckpt", "prot=8001"]) == 2
    assert "polyvlm serve: unknown config key 'prot' (did you mean 'port'?)" in capsys.readouterr().err
    assert main(["ckpt", "port=high"]) == 2
    assert "config key 'port': expected int, got str 'high'" in capsys.readouterr().err
    assert main(["ckpt", "log_level=loud"]) == 2
    assert "config key 'log_level': expected one of debug, info, warning, error, got 'loud'" in capsys.readouterr().err


def test_eval_takes_key_value_overrides_after_its_flags(tmp_path, capsys):
    from polyvlm.config import parse_args_with_overrides
    from polyvlm.eval.cli import main, parser

    args = parse_args_with_overrides(parser(), ["--predictions", "p.jsonl", "limit=5", "--tasks", "a,b",
                                                "batch_size=4", "max_new_tokens=null", "out=runs/x"])
    assert (args.limit, args.batch_size, args.max_new_tokens, args.out, args.tasks) == (5, 4, None, "runs/x", "a,b")
    assert main(["--predictions", "p.jsonl", "--tasks", "a", "limt=3"]) == 2
    assert "polyvlm eval: unknown config key 'limt' (did you mean 'limit'?)" in capsys.readouterr().err
    assert main(["--predictions", "p.jsonl", "--tasks", "a", "batch_size=1.5"]) == 2
    assert "config key 'batch_size': expected int, got float 1.5" in capsys.readouterr().err


def test_eval_required_and_exclusive_flags_take_overrides_too(tmp_path, capsys):
    """`tasks=...` stands for the required `--tasks`, `predictions=...` for the source flag; the one-of rule
    between --model / --endpoint / --predictions holds for overrides as well."""
    from polyvlm.config import parse_args_with_overrides
    from polyvlm.eval.cli import main, parser

    args = parse_args_with_overrides(parser(), ["tasks=a,b", "predictions=p.jsonl", "limit=2"])
    assert (args.tasks, args.predictions, args.limit) == ("a,b", "p.jsonl", 2)
    assert main(["tasks=list"]) == 0 and "suites:" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--predictions", "p.jsonl"])
    assert "the following arguments are required: --tasks (or tasks=VALUE)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--tasks", "a", "--predictions", "p.jsonl", "endpoint=http://x/v1"])
    assert "argument --predictions: not allowed with argument --endpoint" in capsys.readouterr().err
    assert main(["tasks=a", "predictions=p.jsonl", "taks=b"]) == 2
    assert "polyvlm eval: unknown config key 'taks' (did you mean 'tasks'?)" in capsys.readouterr().err
