"""Resumable training state inside a checkpoint: optimizer and scheduler, step, RNG states; finding the
latest complete checkpoint and rotating old ones. Saved as safetensors + JSON: nothing is unpickled."""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

STATE = "trainer_state.json"


def _flat_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"state.{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def save_state(directory: Path, step: int, opt: torch.optim.Optimizer, sched, extra: dict | None = None) -> None:
    """Write optimizer, scheduler, step and RNG states into `directory` (inside an atomic checkpoint dir)."""
    tensors, meta = _flat_optimizer(opt)
    save_file(tensors, str(directory / "optimizer.safetensors"))
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state()
    save_file(rng, str(directory / "rng.safetensors"))
    np_state = np.random.get_state()
    state = {
        "step": step, "optimizer": meta, "scheduler": {k: v for k, v in sched.state_dict().items() if k != "lr_lambdas"},
        "python_random": repr(random.getstate()), "numpy_random": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        **(extra or {}),
    }
    (directory / STATE).write_text(json.dumps(state))


def load_state(directory: Path, opt: torch.optim.Optimizer, sched) -> dict:
    """Restore what `save_state` wrote; returns the JSON state (with `step`)."""
    state = json.loads((directory / STATE).read_text())
    tensors = load_file(str(directory / "optimizer.safetensors"))
    per: dict[int, dict] = {}
    for key, t in tensors.items():
        _, pid, name = key.split(".", 2)
        per.setdefault(int(pid), {})[name] = t
    for key, v in state["optimizer"]["scalars"].items():
        pid, name = key.split(".", 1)
        per.setdefault(int(pid), {})[name] = v
    groups = state["optimizer"]["param_groups"]
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    opt.load_state_dict({"state": per, "param_groups": groups})
    sd = sched.state_dict()
    sd.update(state["scheduler"])
    sched.load_state_dict(sd)
    rng = load_file(str(directory / "rng.safetensors"))
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda"])
    import ast

    random.setstate(ast.literal_eval(state["python_random"]))
    npst = state["numpy_random"]
    np.random.set_state((npst[0], np.asarray(npst[1], dtype=np.uint32), *npst[2:]))
    return state


_CKPT = re.compile(r"^checkpoint-(\d+)$")


def checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """Complete resumable checkpoints in `run_dir`, oldest first (half-written ones are `.tmp` dirs)."""
    out = []
    if run_dir.is_dir():
        for p in run_dir.iterdir():
            m = _CKPT.match(p.name)
            if m and (p / STATE).is_file() and (p / "model.safetensors").is_file():
                out.append((int(m.group(1)), p))
    return sorted(out)


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = checkpoints(run_dir)
    return found[-1][1] if found else None


def rotate(run_dir: Path, keep_last: int) -> None:
    """Delete all but the newest `keep_last` checkpoints (0 keeps all); stale temp dirs go too."""
    if keep_last > 0:
        for _, p in checkpoints(run_dir)[:-keep_last]:
            shutil.rmtree(p, ignore_errors=True)
    for p in run_dir.glob(".checkpoint-*.tmp"):
        shutil.rmtree(p, ignore_errors=True)
