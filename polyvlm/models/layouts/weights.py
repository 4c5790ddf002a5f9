"""Reading a checkpoint's weight files as published: one or sharded safetensors (`model.safetensors.index.json`),
or `pytorch_model*.bin` through `torch.load(weights_only=True)` only. Every failure names the file and the reason."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from polyvlm.models.layouts.base import LayoutError

INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
SINGLE = ("model.safetensors", "pytorch_model.bin")


def weight_files(path: Path) -> list[Path]:
    """The weight files of `path`: the shards its index names (each must exist), or the single file."""
    for name in INDEXES:
        index = path / name
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
                shards = sorted(set(weight_map.values()))
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
                raise LayoutError(f"{index}: not a weight index with a weight_map ({type(e).__name__}: {e})") from None
            for s in shards:
                if not (path / s).is_file():
                    keys = [k for k, v in weight_map.items() if v == s]
                    raise LayoutError(f"{index}: shard '{s}' is missing (it holds {len(keys)} tensors, e.g. '{keys[0]}')")
            return [path / s for s in shards]
    for name in SINGLE:
        if (path / name).is_file():
            return [path / name]
    raise LayoutError(f"{path}: no weights (none of {', '.join(INDEXES + SINGLE)})")


def _read_safetensors(f: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError, safe_open

    out = {}
    try:
        with safe_open(str(f), "pt") as st:
            for k in st.keys():
                out[k] = st.get_tensor(k)
    except (SafetensorError, OSError, RuntimeError, ValueError) as e:
        raise LayoutError(f"{f}: not a readable safetensors file (truncated or corrupt?): {e}") from None
    return out


def _read_bin(f: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(str(f), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types (UnpicklingError for anything but tensors and containers)
        lines = [x.strip() for x in str(e).splitlines() if x.strip()]
        why = next((x for x in lines if "Unsupported global" in x), lines[0] if lines else "")
        raise LayoutError(f"{f}: not a state dict loadable with torch.load(weights_only=True), so polyvlm does not "
                          f"read it ({type(e).__name__}: {why[:200]})") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise LayoutError(f"{f}: holds a {type(state).__name__}, not a state dict of named tensors")
    return state


def read_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Path]]:
    """Every tensor of the checkpoint at `path` -> (state dict, key -> file it came from)."""
    state: dict[str, torch.Tensor] = {}
    source: dict[str, Path] = {}
    for f in weight_files(path):
        part = _read_safetensors(f) if f.suffix == ".safetensors" else _read_bin(f)
        for k, v in part.items():
            state[k] = v
            source[k] = f
    return state, source


def load_mapped(module: torch.nn.Module, state: dict[str, torch.Tensor], source: dict[str, Path], root: Path,
                what: str, optional: tuple[str, ...] = (), names: dict[str, str] | None = None) -> None:
    """Copy `state` (already in `module`'s names; `source` maps them back to files) into `module`, strictly:
    a missing key, an unexpected key or a shape mismatch raises LayoutError naming the file, key and reason.
    Keys starting with one of `optional` may be missing (they keep their values). `names` maps polyvlm's names
    back to the file's, for the messages."""
    own = module.state_dict()
    names = names or {}
    for k, v in state.items():
        where = source.get(k, root)
        label = f"'{names[k]}' (polyvlm '{k}')" if names.get(k, k) != k else f"'{k}'"
        if k not in own:
            raise LayoutError(f"{where}: tensor {label} has no place in the {what} model (unexpected key)")
        if tuple(v.shape) != tuple(own[k].shape):
            raise LayoutError(f"{where}: tensor {label} has shape {list(v.shape)} but the config gives "
                              f"{list(own[k].shape)} (shape mismatch)")
    missing = [k for k in own if k not in state and not k.startswith(optional)]
    if missing:
        raise LayoutError(f"{root}: the weights lack {len(missing)} tensor(s) the config needs, e.g. {missing[:4]}")
    module.load_state_dict(state, strict=False, assign=False)
