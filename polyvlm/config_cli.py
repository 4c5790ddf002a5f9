"""`polyvlm config`: list config keys with help and defaults, or print a recipe resolved with overrides."""

from __future__ import annotations

import argparse

import yaml

from polyvlm.config import ConfigError, help_keys, load_config


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="polyvlm config", description="Show config keys or a resolved recipe.")
    p.add_argument("recipe", nargs="?", help="YAML recipe to resolve")
    p.add_argument("overrides", nargs="*", help="key=value overrides")
    args = p.parse_args(argv)
    if not args.recipe:
        for key, help_, default in help_keys():
            print(f"{key} = {default!r}\n    {help_}")
        return 0
    try:
        cfg = load_config(args.recipe, args.overrides)
    except ConfigError as e:
        print(f"polyvlm config: {e}")
        return 2
    print(yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True), end="")
    return 0
