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

