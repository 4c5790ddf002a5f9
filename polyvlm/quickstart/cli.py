"""`polyvlm quickstart [--recipe NAME] ...`: picks the built-in run by recipe name and hands it the other arguments
(`llava`, the default: polyvlm.quickstart.run; `pandagpt`: polyvlm.quickstart.pandagpt)."""

from __future__ import annotations

import argparse
import importlib
import sys

# recipe -> module whose main(argv) runs it
RECIPES = {"llava": "polyvlm.quickstart.run", "pandagpt": "polyvlm.quickstart.pandagpt"}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="polyvlm quickstart", add_help=False)
    p.add_argument("--recipe", default="llava")
    args, rest = p.parse_known_args(argv)
    if args.recipe not in RECIPES:
        print(f"polyvlm quickstart: unknown --recipe '{args.recipe}' (known: {', '.join(RECIPES)})", file=sys.stderr)
        return 2
    if args.recipe == "llava" and any(a in ("-h", "--help") for a in rest):
        print(f"--recipe {{{','.join(RECIPES)}}}: which built-in run (default llava: the one below; "
              "`polyvlm quickstart --recipe pandagpt --help` for PandaGPT's zero-shot modalities)\n")
    return int(importlib.import_module(RECIPES[args.recipe]).main(rest) or 0)
