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
    args = p.parse_intermixed_args(argv)
    setup_logging()
    try:
        cfg = load_config(args.recipe, args.overrides)
    except ConfigError as e:
        print(f"polyvlm train: {e}", file=sys.stderr)
        return 2
    nproc = args.nproc if args.nproc is not None else cfg.train.nproc
    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "polyvlm", "train", args.recipe, *args.overrides] + (["--no-progress"] if args.no_progress else [])
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
