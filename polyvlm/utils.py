"""Small shared helpers: atomic writes, seeding, device and dtype choice (one resolver for every command and
training), logging set-up."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from polyvlm.atomic import mkdtemp, mkstemp

log = logging.getLogger("polyvlm")


def setup_logging(level: int = logging.INFO) -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("polyvlm").setLevel(level)


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success it replaces `path` in one rename.

    An interrupted writer leaves only a `.tmp` directory behind, never a half-written `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


DEVICE_CHOICES = "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps"
DTYPE_CHOICES = {"auto": None, "bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
_DTYPE_ALIASES = {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float32": "fp32", "float": "fp32"}


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(name: str = "auto") -> torch.device:
    """`--device` / `train.device` -> a torch device. `auto`: CUDA, then Apple MPS, then the CPU; `cuda` (and
    `auto` on a GPU machine) is this process's GPU under torchrun (LOCAL_RANK), `cuda:N` a given one.

    Raises ValueError naming the value and the reason (unknown name, no such device on this machine)."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not _mps_available():
            raise ValueError("device 'mps': Apple's Metal backend is not available on this machine (use cpu)")
        return torch.device("mps")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"device '{name}': no CUDA device is available here (torch {torch.__version__}, "
                             f"built {'with CUDA ' + torch.version.cuda if torch.version.cuda else 'without CUDA'})")
        index = name.partition(":")[2]
        if index and not index.isdigit():
            raise ValueError(f"device '{name}': expected cuda:N with N a GPU index")
        i = int(index) if index else int(os.environ.get("LOCAL_RANK", "0"))
        if i >= torch.cuda.device_count():
            raise ValueError(f"device '{name}': GPU {i} does not exist ({torch.cuda.device_count()} visible)")
        return torch.device("cuda", i)
    raise ValueError(f"unknown device '{name}' (expected {DEVICE_CHOICES})")


def pick_device(name: str = "auto") -> torch.device:
    """Alias of `resolve_device` (older name)."""
    return resolve_device(name)


def supports_bf16(device: torch.device) -> bool:
    """Whether `device` computes in bfloat16: every CPU, Ampere and newer GPUs, MPS on macOS 14+."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "mps":
        try:
            torch.ones(1, dtype=torch.bfloat16, device=device)
        except (RuntimeError, TypeError):
            return False
        return True
    return device.type == "cpu"


def resolve_dtype(name: str = "auto", device: torch.device | str = "cpu") -> torch.dtype:
    """`--dtype` / `train.dtype` -> a torch dtype for `device`. `auto`: bf16 on a GPU (CUDA or MPS) that
    supports it, else fp32 (the CPU: bf16 matmuls there are slower than fp32 on most machines); `bf16`,
    `fp16`, `fp32` (or their torch names). An explicit bf16 on a device without it is an error."""
    key = (name or "auto").strip().lower()
    key = _DTYPE_ALIASES.get(key, key)
    if key not in DTYPE_CHOICES:
        raise ValueError(f"unknown dtype '{name}' (expected {', '.join(DTYPE_CHOICES)})")
    device = torch.device(device)
    if key == "auto":
        return torch.bfloat16 if device.type != "cpu" and supports_bf16(device) else torch.float32
    if key == "bf16" and not supports_bf16(device):
        raise ValueError(f"dtype 'bf16': device {device} has no bfloat16 support (use fp16 or fp32)")
    return DTYPE_CHOICES[key]


def dtype_name(dtype: torch.dtype) -> str:
    """torch dtype -> its name in `DTYPES` (what checkpoint loaders take): float32, bfloat16, float16."""
    return next(k for k, v in DTYPES.items() if v == dtype)


def add_device_flags(parser, what: str = "the model") -> None:
    """`--device` and `--dtype` on a command that runs a model (chat, serve, eval, synth, export, train's
    `train.device` / `train.dtype` take the same values)."""
    parser.add_argument("--device", default="auto", help=f"where {what} runs: {DEVICE_CHOICES}")
    parser.add_argument("--dtype", default="auto",
                        help=f"weights and compute dtype of {what}: auto (bf16 on a GPU that supports it, else fp32), "
                             "bf16, fp16, fp32")


def device_from_args(args) -> tuple[torch.device, torch.dtype]:
    """(device, dtype) of parsed `add_device_flags` arguments; ValueError names the flag and the reason."""
    try:
        device = resolve_device(args.device)
    except ValueError as e:
        raise ValueError(f"--device: {e}") from None
    try:
        return device, resolve_dtype(args.dtype, device)
    except ValueError as e:
        raise ValueError(f"--dtype: {e}") from None


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
_MMAP_THRESHOLD_MAX = 32 << 20  # glibc refuses larger values on 64-bit
_NEVER_TRIM = 2**31 - 1  # the largest value mallopt takes (a C int)


@functools.cache
def reuse_freed_memory() -> bool:
    """Make glibc malloc keep freed memory for reuse: blocks up to 32 MB come from the heap instead of their own
    mmap, and the heap is never trimmed. A training step frees and reallocates the same activation sizes every
    step; by default each large block goes back to the OS and returns as fresh pages the kernel must zero on
    first touch. Process-wide, applied once; returns False where malloc is not glibc's (macOS, musl, Windows).
    """
    import ctypes

    try:
        libc = ctypes.CDLL(None)  # the symbols already loaded into this process, libc's among them
        libc.gnu_get_libc_version  # glibc only  # noqa: B018
    except (OSError, AttributeError, TypeError):
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM))


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _looks_like_hub_id(spec: str) -> bool:
    """`owner/name` (one slash, no leading `.`, `/` or `~`): how a Hugging Face repo id is written."""
    parts = spec.split("/")
    return len(parts) == 2 and all(parts) and not spec.startswith((".", "~")) and "\\" not in spec


def hub_path(spec: str | Path, repo_type: str = "model") -> Path:
    """A local directory for `spec`: the directory itself when it exists, else, for a Hugging Face repo id
    (`owner/name`), its snapshot through `huggingface_hub.snapshot_download` (the local cache first; a download
    when online). Offline (HF_HUB_OFFLINE=1) and not cached, or not found: FileNotFoundError naming the command
    that downloads it. Anything else comes back unchanged (the caller reports the missing directory)."""
    path = Path(spec)
    if path.exists() or not _looks_like_hub_id(str(spec)):
        return path
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # transformers depends on it, so this is rare
        return path
    flag = "" if repo_type == "model" else f" --repo-type {repo_type}"
    try:
        return Path(snapshot_download(str(spec), repo_type=repo_type))
    except Exception as e:  # offline without a cached copy, unknown repo, gated repo, network error
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
        why = "offline (HF_HUB_OFFLINE=1) and not in the Hugging Face cache" if offline else \
            f"not a local directory, and the hub gave {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        raise FileNotFoundError(f"{spec}: {why}; download it with\n  huggingface-cli download{flag} {spec} "
                                f"--local-dir DIR\nand pass DIR (or run once online)") from None
