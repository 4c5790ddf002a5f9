"""Process-group set-up for torchrun (gloo on CPU, NCCL on GPU), rank helpers, and model wrapping
(DDP, or FSDP2 `fully_shard` per decoder layer) with a full state dict gathered for checkpoints."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

log = logging.getLogger("polyvlm.train")


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def init_distributed(device: torch.device) -> Dist:
    """Join the torchrun process group when WORLD_SIZE > 1; a single process needs nothing."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    d = Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(d.local_rank)
    return d


def all_sum(value: float | int, d: Dist) -> float:
    """Sum a number over ranks (identity in one process)."""
    return all_sums([value], d)[0]


def all_sums(values: list[float], d: Dist) -> list[float]:
    """Sum each number of a list over ranks, in one all-reduce (identity in one process)."""
    if not d.enabled:
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def gather_objects(obj, d: Dist) -> list:
    """`obj` of every rank, in rank order, on every rank ([obj] in one process)."""
    if not d.enabled:
        return [obj]
    out = [None] * d.world
    dist.all_gather_object(out, obj)
    return out


def barrier(d: Dist) -> None:
    if d.enabled:
        dist.barrier()


def sharded(strategy: str, d: Dist) -> bool:
    """True when parameters are FSDP shards (DTensors): state dicts must be gathered and scattered."""
    return d.enabled and strategy == "fsdp"


def wrap(model: nn.Module, strategy: str, d: Dist, groups: list[dict] | None = None) -> nn.Module:
    """DDP or FSDP2 around `model` for multi-process runs; the model itself in one process.

    FSDP2 replaces every parameter by a sharded one, so the optimizer `groups` built before are pointed at
    the new parameters (by name) here; an optimizer holding the old ones would train nothing.
    """
    if strategy not in ("ddp", "fsdp"):
        raise ValueError(f"train.strategy must be ddp or fsdp, got '{strategy}'")
    if not d.enabled:
        return model
    if strategy == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[d.local_rank] if torch.cuda.is_available() else None)
    if strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        names = {id(p): n for n, p in model.named_parameters()}
        group_names = [[names[id(p)] for p in g["params"]] for g in groups or []]
        layers = getattr(getattr(model.llm, "model", model.llm), "layers", [])
        for layer in layers:
            fully_shard(layer)
        fully_shard(model)
        by_name = dict(model.named_parameters())
        for g, ns in zip(groups or [], group_names):
            g["params"] = [by_name[n] for n in ns]
    return model


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


def full_state_dict(model: nn.Module, strategy: str, d: Dist) -> dict[str, torch.Tensor] | None:
    """A full (unsharded) CPU state dict, on rank 0 only for FSDP; every rank must call it."""
    if sharded(strategy, d):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        sd = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        return sd if d.main else None
    return None


def load_full_state_dict(model: nn.Module, sd: dict[str, torch.Tensor]) -> None:
    """Scatter a full (unsharded) state dict into an FSDP-sharded model; every rank passes the same `sd`."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    set_model_state_dict(model, sd, options=StateDictOptions(full_state_dict=True, strict=True))


def cleanup(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()
