"""`model.connector_init: PATH`: initialise the connector's projector from a LLaVA / LLaVA-NeXT stage-1 projector
state (`mm_projector.bin` or `.safetensors`), a Hugging Face Llava/LLaVA-NeXT directory, or a polyvlm checkpoint.

Accepted key spellings (any prefix before them is ignored):
  LLaVA `mm_projector.0.*` / `mm_projector.2.*` (mlp2x_gelu) and `mm_projector.weight|bias` (linear);
  Hugging Face `multi_modal_projector.linear_{1,2}.*`; polyvlm `connector.linear_{1,2}.*` / `connector.proj.*`.
Torch files are read with `torch.load(weights_only=True)`, so no code in them runs.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from polyvlm.models.connectors import LinearConnector, MLP2xGelu

log = logging.getLogger("polyvlm.projector_import")
_KEY = re.compile(r"(?:^|\.)(mm_projector|multi_modal_projector|connector)\.(.+)$")
_MLP = {"0.weight": "linear_1.weight", "0.bias": "linear_1.bias", "2.weight": "linear_2.weight", "2.bias": "linear_2.bias",
        "linear_1.weight": "linear_1.weight", "linear_1.bias": "linear_1.bias",
        "linear_2.weight": "linear_2.weight", "linear_2.bias": "linear_2.bias"}
_LINEAR = {"weight": "proj.weight", "bias": "proj.bias", "proj.weight": "proj.weight", "proj.bias": "proj.bias"}
_DIR_FILES = ("mm_projector.safetensors", "mm_projector.bin", "model.safetensors.index.json", "model.safetensors")


class ProjectorInitError(ValueError):
    """The projector file is missing, unreadable, or does not fit the connector; the message names the file."""


def _files(path: Path) -> list[Path]:
    """The weight file(s) to read for `path` (a file, or a directory holding one of _DIR_FILES)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ProjectorInitError(f"{path}: no such file or directory")
    for name in _DIR_FILES:
        f = path / name
        if f.is_file():
            if name.endswith(".index.json"):
                try:
                    weight_map = json.loads(f.read_text())["weight_map"]
                except (json.JSONDecodeError, KeyError, TypeError) as e:
                    raise ProjectorInitError(f"{f}: not a safetensors index with a weight_map ({e!r})") from None
                shards = {v for k, v in weight_map.items() if _KEY.search(k)}
                return [path / s for s in sorted(shards)]
            return [f]
    raise ProjectorInitError(f"{path}: holds none of {', '.join(_DIR_FILES)}")


def read_projector_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Projector tensors of `path` keyed by what follows the projector prefix (e.g. `0.weight`, `linear_1.bias`).

    From safetensors only the projector tensors are read, so a full multi-GB checkpoint costs little.
    """
    path = Path(path)
    out: dict[str, torch.Tensor] = {}
    ignored: list[str] = []
    for f in _files(path):
        if f.suffix == ".safetensors":
            try:
                with safe_open(str(f), "pt") as st:
                    for k in st.keys():
                        m = _KEY.search(k)
                        if m:
                            out[m.group(2)] = st.get_tensor(k)
            except Exception as e:
                raise ProjectorInitError(f"{f}: not a readable safetensors file ({e})") from None
            continue
        try:
            state = torch.load(str(f), map_location="cpu", weights_only=True)
        except Exception as e:
            raise ProjectorInitError(f"{f}: not a torch state dict loadable with weights_only=True ({type(e).__name__}: {e})") from None
        if not isinstance(state, dict):
            raise ProjectorInitError(f"{f}: holds a {type(state).__name__}, not a state dict")
        for k, v in state.items():
            m = _KEY.search(k) if isinstance(k, str) else None
            if m and isinstance(v, torch.Tensor):
                out[m.group(2)] = v
            else:
                ignored.append(str(k))
    if ignored:
        log.info("%s: ignoring %d non-projector tensor(s), e.g. %s", path, len(ignored), ignored[:3])
    if not out:
        raise ProjectorInitError(f"{path}: no projector tensors (keys with mm_projector., multi_modal_projector. or connector.)")
    return out


def _target(connector: nn.Module) -> nn.Module:
    """The one linear/mlp2x_gelu projector inside `connector` (the connector itself for those two)."""
    found = [m for m in connector.modules() if isinstance(m, (MLP2xGelu, LinearConnector))]
    if len(found) != 1:
        raise ProjectorInitError(
            f"connector {type(connector).__name__} has {len(found)} linear/mlp2x_gelu projectors; connector_init needs exactly one"
        )
    return found[0]


def init_connector(connector: nn.Module, path: str | Path) -> list[str]:
    """Copy the projector state at `path` into `connector`'s projector. Returns the parameter names set."""
    state = read_projector_state(path)
    target = _target(connector)
    names = _MLP if isinstance(target, MLP2xGelu) else _LINEAR
    kind = "mlp2x_gelu" if isinstance(target, MLP2xGelu) else "linear"
    mapped = {names[k]: v for k, v in state.items() if k in names}
    own = target.state_dict()
    if set(mapped) != set(own):
        raise ProjectorInitError(
            f"{path}: projector keys {sorted(state)} do not form a {kind} projector (needs {sorted(own)}; "
            "mm_projector.0/2 is LLaVA's mlp2x_gelu, mm_projector.weight its linear)"
        )
    for k, v in mapped.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise ProjectorInitError(
                f"{path}: {k} has shape {list(v.shape)} but the connector expects {list(own[k].shape)} "
                "(vision encoder width -> LM width must match the projector's)"
            )
    with torch.no_grad():
        for k, p in target.state_dict(keep_vars=True).items():
            p.copy_(mapped[k].to(p.dtype))
    log.info("initialised the %s connector from %s", kind, path)
    return sorted(mapped)
