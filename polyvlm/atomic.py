"""Temporary files and directories for atomic writes that come out with the modes the umask allows (0666 /
0777 less the umask, as `open` and `mkdir` give), not tempfile's private 0600 / 0700; safetensors files the
same (safetensors' writer makes them 0600 whatever the umask). No heavy imports."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def _umask() -> int:
    """The process umask, read without changing it (Linux), else by setting and restoring it."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/self/status", encoding="ascii") as f:
            return int(next(line for line in f if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def mkstemp(dir: Path | str, prefix: str = "", suffix: str = "") -> tuple[int, str]:
    """`tempfile.mkstemp` whose file gets the mode a plain `open` would give it (0666 less the umask), not
    0600: a file renamed into place from it stays readable by colleagues on a shared machine."""
    fd, tmp = tempfile.mkstemp(dir=dir, prefix=prefix, suffix=suffix)
    os.fchmod(fd, 0o666 & ~_umask())
    return fd, tmp


def mkdtemp(dir: Path | str, prefix: str = "", suffix: str = "") -> str:
    """`tempfile.mkdtemp` with the mode `mkdir` would give (0777 less the umask), not 0700."""
    tmp = tempfile.mkdtemp(dir=dir, prefix=prefix, suffix=suffix)
    os.chmod(tmp, 0o777 & ~_umask())
    return tmp


def respect_umask(path: Path | str) -> None:
    """Give a file a library wrote private (0600) the mode a plain `open` would have given it."""
    os.chmod(path, 0o666 & ~_umask())


def save_safetensors(tensors: dict, path: Path | str, metadata: dict[str, str] | None = None) -> None:
    """`safetensors.torch.save_file`, the file readable as the umask allows (safetensors' own is 0600)."""
    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata=metadata)
    respect_umask(path)
