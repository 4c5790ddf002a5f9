"""`polyvlm train RECIPE [key=value ...]`: resolve the recipe, train, print where the checkpoint is."""

from __future__ import annotations

import argparse
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
    args = p.parse_args(argv)
    setup_logging()
    try:
        cfg = load_config(args.recipe, args.overrides)
    except ConfigError as e:
        print(f"polyvlm train: {e}", file=sys.stderr)
        return 2
    from polyvlm.train.loop import train

    try:
        res = train(cfg, show_progress=not args.no_progress)
    except (RecordError, ValueError, FileNotFoundError) as e:
        print(f"polyvlm train: {e}", file=sys.stderr)
        return 1
    last = res.history[-1] if res.history else {}
    print(f"checkpoint: {res.checkpoint}  (final loss {last.get('loss')}, {res.wall_seconds:.1f}s)")
    return 0
