"""Atomic writes respect the umask: files 0666 and folders 0777 less it, like `open` and `mkdir`, through the
helpers every writer uses (text, checkpoint folders, record files)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from polyvlm.data.records import Record, Turn
from polyvlm.data.writers import RecordWriter
from polyvlm.utils import atomic_dir, atomic_write_text


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture(params=[0o022, 0o002, 0o077])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_written_files_and_folders_get_the_umask_modes(tmp_path: Path, umask: int) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # what a plain open gives: the reference
    atomic_write_text(tmp_path / "report.json", "{}")
    assert _mode(tmp_path / "report.json") == _mode(plain) == 0o666 & ~umask
    with atomic_dir(tmp_path / "ckpt") as d:
        (d / "model.safetensors").write_bytes(b"0")
    (tmp_path / "ref").mkdir()
    assert _mode(tmp_path / "ckpt") == _mode(tmp_path / "ref") == 0o777 & ~umask
    for name in ("d.parquet", "d.jsonl"):
        with RecordWriter(tmp_path / name) as w:
            w.write(Record(id="a", turns=[Turn("user", "hi"), Turn("assistant", "yo")]))
        assert _mode(tmp_path / name) == 0o666 & ~umask, name



def _private(root: Path, umask: int) -> list[str]:
    """Files and folders under `root` whose mode is not what `open` / `mkdir` give under `umask`."""
    return [f"{p.relative_to(root)} {oct(_mode(p))}" for p in sorted(root.rglob("*"))
            if _mode(p) != (0o777 if p.is_dir() else 0o666) & ~umask]


def test_checkpoints_and_exports_get_the_umask_modes(tmp_path: Path) -> None:
    """Through the commands: a LoRA run's step checkpoint (base weights, adapter, optimizer and RNG state:
    safetensors writes its files 0600 itself), a plain checkpoint and its Hugging Face export."""
    from polyvlm.cli import main
    from polyvlm.testing import TINY_RECIPE, make_tiny_checkpoint

    old = os.umask(0o002)
    try:
        run = tmp_path / "run"
        assert main(["train", str(TINY_RECIPE), "data.path=builtin:scenes:qa:4", "train.batch_size=2", "train.max_steps=2",
                     "train.save_every=1", "model.lora_r=4", "train.stage=lora", f"train.output_dir={run}", "--no-progress"]) == 0
        written = {p.name for p in run.rglob("*.safetensors")}
        assert {"model.safetensors", "adapter_model.safetensors", "optimizer.safetensors", "rng.safetensors"} <= written
        ckpt = make_tiny_checkpoint(tmp_path / "tiny")
        assert main(["export", str(ckpt), "--format", "hf-llava", "--out", str(tmp_path / "exports" / "llava")]) == 0
    finally:
        os.umask(old)
    assert _private(run, 0o002) == [] and _private(ckpt, 0o002) == [] and _private(tmp_path / "exports", 0o002) == []
