"""The `polyvlm` command: one table from subcommand to the function that runs it (imported lazily)."""

from __future__ import annotations

import importlib
import sys

# subcommand -> ("module:function", one-line help). Each function takes argv (list[str]) and returns an exit code.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("polyvlm.train.cli:main", "train a model from a YAML recipe with key=value overrides"),
    "chat": ("polyvlm.serve.chat:main", "ask a checkpoint about an image (one-shot or interactive)"),
    "quickstart": ("polyvlm.quickstart.cli:main", "generate multilingual data, train a tiny model in stages, evaluate (--recipe llava|pandagpt)"),
    "serve": ("polyvlm.serve.cli:main", "serve a checkpoint over the OpenAI API (+ web demo at /ui with --ui)"),
    "data": ("polyvlm.data.cli:main", "validate, describe, mix and convert datasets (validate|stats|mix|convert)"),
    "eval": ("polyvlm.eval.cli:main", "evaluate a checkpoint, endpoint or predictions file on multilingual benchmarks"),
    "synth": ("polyvlm.synth.cli:main", "synthesise instruction data with open models from a pipeline YAML (resumable)"),
    "export": ("polyvlm.export_cli:main", "export a checkpoint to Hugging Face Llava (transformers, vLLM) or import one"),
    "merge-lora": ("polyvlm.lora_cli:main", "fold a stage-lora checkpoint's adapters into the LM and save a plain checkpoint"),
    "config": ("polyvlm.config_cli:main", "print every config key with its help and default, or a resolved recipe"),
}


def usage() -> str:
    width = max(len(k) for k in COMMANDS)
    rows = "\n".join(f"  {k.ljust(width)}  {h}" for k, (_, h) in COMMANDS.items())
    return (f"usage: polyvlm COMMAND [args]\n       polyvlm --version\n\ncommands:\n{rows}\n\n"
            "`polyvlm COMMAND --help` for each command's options.")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] in ("--version", "-V"):
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"polyvlm {version('polyvlm')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            print("polyvlm (not installed; run `pip install -e .`)")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"polyvlm: unknown command '{name}'\n\n{usage()}", file=sys.stderr)
        return 2
    target, _ = COMMANDS[name]
    module, func = target.split(":")
    return int(getattr(importlib.import_module(module), func)(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
