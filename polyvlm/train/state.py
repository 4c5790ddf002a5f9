"""Resumable training state inside a checkpoint: optimizer (keyed by parameter name, full and unsharded, so any
number of processes can load it), scheduler, step, data position and per-rank RNG states; finding the latest
complete checkpoint and rotating old ones. Saved as safetensors + JSON: nothing is unpickled."""

from __future__ import annotations

import ast
import json
import logging
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from polyvlm.atomic import save_safetensors

STATE = "trainer_state.json"
log = logging.getLogger("polyvlm.train")


def optimizer_state(model: nn.Module, opt: torch.optim.Optimizer, sharded: bool) -> dict:
    """The optimizer state keyed by parameter name: {"state": {name: {k: tensor}}, "param_groups": [...]}.

    `sharded` (FSDP): every rank must call; the full, gathered state is returned on rank 0 (CPU).
    """
    if sharded:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        return get_optimizer_state_dict(model, opt, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    names = {id(p): n for n, p in model.named_parameters()}
    sd = opt.state_dict()
    order = [names[id(p)] for g in opt.param_groups for p in g["params"]]
    groups = [{**g, "params": [order[i] for i in g["params"]]} for g in sd["param_groups"]]
    return {"state": {order[i]: st for i, st in sd["state"].items()}, "param_groups": groups}


# how this run's optimizer steps (fused kernel, for-each), not what it learnt: kept when a saved state is loaded, so a
# checkpoint of a fused single-process run resumes under FSDP (whose sharded parameters take the for-each step)
_IMPLEMENTATION_KEYS = ("fused", "foreach", "capturable", "differentiable")


def _load_optimizer(model: nn.Module, opt: torch.optim.Optimizer, osd: dict, sharded: bool, where: Path) -> None:
    how = [{k: g[k] for k in _IMPLEMENTATION_KEYS if k in g} for g in opt.param_groups]
    osd = {**osd, "param_groups": [{**g, **h} for g, h in zip(osd["param_groups"], how)]}
    saved = [g["params"] for g in osd["param_groups"]]
    names = {id(p): n for n, p in model.named_parameters()}
    current = [[names[id(p)] for p in g["params"]] for g in opt.param_groups]
    if saved != current:
        raise ValueError(f"{where}: its optimizer holds other parameters than this run trains (was train.stage, "
                         f"train.vision_lr or the model changed?): {sum(map(len, saved))} vs {sum(map(len, current))}")
    if sharded:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        set_optimizer_state_dict(model, opt, osd, options=StateDictOptions(full_state_dict=True))
        return
    index = {n: i for i, n in enumerate(n for g in current for n in g)}
    groups = [{**g, "params": [index[n] for n in g["params"]]} for g in osd["param_groups"]]
    opt.load_state_dict({"state": {index[n]: st for n, st in osd["state"].items()}, "param_groups": groups})


def rng_state() -> dict:
    """This process's RNG states (torch, CUDA, Python, NumPy) in a JSON/safetensors-friendly form."""
    np_state = np.random.get_state()
    out = {"torch": torch.get_rng_state(), "python": repr(random.getstate()),
           "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]]}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state()
    return out


def _set_rng(st: dict) -> None:
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state(st["cuda"])
    random.setstate(ast.literal_eval(st["python"]))
    npst = st["numpy"]
    np.random.set_state((npst[0], np.asarray(npst[1], dtype=np.uint32), *npst[2:]))


def save_state(directory: Path, step: int, osd: dict, sched, rngs: list[dict], extra: dict | None = None) -> None:
    """Write optimizer state `osd` (from `optimizer_state`), scheduler, step and each rank's RNG states `rngs`
    into `directory` (inside an atomic checkpoint dir)."""
    tensors, scalars = {}, {}
    for name, st in osd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"{name}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{name}.{k}"] = v
    save_safetensors(tensors, directory / "optimizer.safetensors")
    rng_t = {f"{k}.{r}": st[k] for r, st in enumerate(rngs) for k in ("torch", "cuda") if k in st}
    save_safetensors(rng_t, directory / "rng.safetensors")
    state = {
        "step": step, "optimizer": {"param_groups": osd["param_groups"], "scalars": scalars},
        "scheduler": {k: v for k, v in sched.state_dict().items() if k != "lr_lambdas"},
        "rng": [{"python": st["python"], "numpy": st["numpy"]} for st in rngs], **(extra or {}),
    }
    (directory / STATE).write_text(json.dumps(state))


def read_state(directory: Path) -> dict:
    """The JSON part of a resumable checkpoint (step, data position, ...)."""
    return json.loads((directory / STATE).read_text())


def load_state(directory: Path, model: nn.Module, opt: torch.optim.Optimizer, sched, sharded: bool = False,
               rank: int = 0) -> dict:
    """Restore what `save_state` wrote into `opt`, `sched` and this rank's RNGs; returns the JSON state.

    The optimizer state is full, so it loads on any number of processes; a rank the checkpoint has no RNG
    state for (more processes than when it was written) takes rank `rank % saved` (logged).
    """
    state = read_state(directory)
    per: dict[str, dict] = {}
    for key, t in load_file(str(directory / "optimizer.safetensors")).items():
        name, k = key.rsplit(".", 1)
        per.setdefault(name, {})[k] = t
    for key, v in state["optimizer"]["scalars"].items():
        name, k = key.rsplit(".", 1)
        per.setdefault(name, {})[k] = v
    groups = state["optimizer"]["param_groups"]
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    _load_optimizer(model, opt, {"state": per, "param_groups": groups}, sharded, directory)
    sd = sched.state_dict()
    sd.update(state["scheduler"])
    sched.load_state_dict(sd)
    rng_t = load_file(str(directory / "rng.safetensors"))
    saved = state["rng"]
    r = rank % len(saved)
    if r != rank:
        log.warning("%s holds RNG states of %d process(es): rank %d takes rank %d's", directory, len(saved), rank, r)
    _set_rng({**saved[r], **{k: rng_t[f"{k}.{r}"] for k in ("torch", "cuda") if f"{k}.{r}" in rng_t}})
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
