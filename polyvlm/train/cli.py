"""`polyvlm train RECIPE [key=value ...]`: resolve the recipe, train, print where the checkpoint is."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys

from polyvlm.config import ConfigError, help_keys, load_config
from polyvlm.data.records import RecordError
from polyvlm.utils import setup_logging


def torchrun_command(nproc: int, nnodes: int = 1, node_rank: int = 0, master_addr: str = "",
                     master_port: int = 29500) -> list[str]:
    """The torchrun launch of `nproc` processes on this machine: standalone on one node; with `nnodes` > 1 a
    static rendezvous at `master_addr:master_port` (node 0), where this machine is `node_rank`."""
    if nproc < 1 or nnodes < 1:
        raise ValueError(f"--nproc and --nnodes must be at least 1 (got {nproc}, {nnodes})")
    run = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
    if nnodes == 1:
        return [*run, "--standalone"]
    if not 0 <= node_rank < nnodes:
        raise ValueError(f"--node-rank must be in 0..{nnodes - 1} for --nnodes {nnodes}, got {node_rank}")
    if not master_addr:
        raise ValueError(f"--nnodes {nnodes} needs --master-addr: the address of node 0, reachable from every node")
    if not 0 < master_port < 65536:
        raise ValueError(f"--master-port must be a TCP port (1..65535), got {master_port}")
    return [*run, f"--nnodes={nnodes}", f"--node-rank={node_rank}", f"--master-addr={master_addr}",
            f"--master-port={master_port}"]


def main(argv: list[str]) -> int:
    keys = "\n".join(f"  {k} (default {d!r}): {h}" for k, h, d in help_keys())
    p = argparse.ArgumentParser(
        prog="polyvlm train", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a model from a YAML recipe; any config key can be overridden as key=value.",
        epilog=f"config keys:\n{keys}",
    )
    p.add_argument("recipe", help="YAML recipe, e.g. recipes/tiny.yaml")
    p.add_argument("overrides", nargs="*", help="key=value, e.g. train.lr=1e-3 model.connector=linear")
    p.add_argument("--no-progress", action="store_true", help="log lines instead of a progress bar")
    p.add_argument("--nproc", type=int, default=None, help="processes to launch with torchrun (default: train.nproc)")
    p.add_argument("--nnodes", type=int, default=1, help="machines taking part (run the same command on each)")
    p.add_argument("--node-rank", type=int, default=0, help="this machine's rank among --nnodes (0 holds the master)")
    p.add_argument("--master-addr", default="", help="address of node 0, reachable from every node (--nnodes > 1)")
    p.add_argument("--master-port", type=int, default=29500, help="free TCP port on node 0 (default 29500)")
    args = p.parse_intermixed_args(argv)
    setup_logging()
    try:
        cfg = load_config(args.recipe, args.overrides)
    except ConfigError as e:
        print(f"polyvlm train: {e}", file=sys.stderr)
        return 2
    nproc = args.nproc if args.nproc is not None else cfg.train.nproc
    if (nproc > 1 or args.nnodes > 1) and "WORLD_SIZE" not in os.environ:
        try:
            cmd = torchrun_command(nproc, args.nnodes, args.node_rank, args.master_addr, args.master_port)
        except ValueError as e:
            print(f"polyvlm train: {e}", file=sys.stderr)
            return 2
        cmd += ["-m", "polyvlm", "train", args.recipe, *args.overrides] + (["--no-progress"] if args.no_progress else [])
        print("launching: " + " ".join(cmd), file=sys.stderr)
        return subprocess.call(cmd)
    if int(os.environ.get("RANK", "0")) > 0:
        logging.getLogger("polyvlm").setLevel(logging.WARNING)  # only rank 0 logs
    from polyvlm.train.loop import train

    try:
        res = train(cfg, show_progress=not args.no_progress)
    except (RecordError, ValueError, FileNotFoundError) as e:
        print(f"polyvlm train: {e}", file=sys.stderr)
        return 1
    last = res.history[-1] if res.history else {}
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"checkpoint: {res.checkpoint}  (final loss {last.get('loss')}, {res.wall_seconds:.1f}s)")
    return 0
