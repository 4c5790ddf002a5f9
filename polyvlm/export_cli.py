"""`polyvlm export SRC --format hf-llava|hf-llava-next|polyvlm --out DIR`: move models between polyvlm checkpoints
and the Hugging Face Llava / LLaVA-NeXT layouts (loadable by transformers, servable by vLLM)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from polyvlm.utils import DTYPES, setup_logging

log = logging.getLogger("polyvlm.export")
FORMATS = ("hf-llava", "hf-llava-next", "polyvlm")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="polyvlm export",
        description="Export a polyvlm checkpoint to the Hugging Face Llava layout (hf-llava; hf-llava-next for "
                    "image_aspect_ratio anyres), or import a Llava directory as a polyvlm checkpoint.",
        epilog="examples:\n  polyvlm export runs/tiny/final --format hf-llava --out exports/tiny-llava\n"
               "  polyvlm export runs/tiny_anyres/final --format hf-llava-next --out exports/tiny-llava-next\n"
               "  polyvlm export hf-llava:exports/tiny-llava --format polyvlm --out runs/imported",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("src", help="a polyvlm checkpoint directory, or hf-llava:DIR (a Hugging Face Llava directory)")
    p.add_argument("--format", choices=FORMATS, default="hf-llava", help="what to write (default: hf-llava)")
    p.add_argument("--out", required=True, help="output directory (written atomically; replaced when it exists)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default=None, help="cast weights (default: keep the model's)")
    p.add_argument("--max-shard-size", default="5GB", help="hf-llava(-next): largest safetensors shard (default 5GB)")
    p.add_argument("--template", default="auto",
                   help="importing hf-llava:DIR (Llava or LLaVA-NeXT): polyvlm chat template name, or auto (recognise the directory's template)")
    p.add_argument("--max-length", type=int, default=2048, help="importing hf-llava: the processor's max_length")
    return p


def _is_llava_dir(path: Path) -> bool:
    f = path / "config.json"
    if not f.is_file():
        return False
    try:
        return json.loads(f.read_text()).get("model_type") in ("llava", "llava_next")
    except json.JSONDecodeError:
        return False


def load_source(src: str, template: str = "auto", max_length: int = 2048, dtype: str | None = None):
    """(model, processor) from a polyvlm checkpoint or `hf-llava:DIR` (a bare Llava directory works too)."""
    from polyvlm.models.checkpoint import is_checkpoint, load
    from polyvlm.models.hf_import import PREFIX, import_hf_llava

    path = Path(src[len(PREFIX):] if src.startswith(PREFIX) else src)
    if src.startswith(PREFIX) or (not is_checkpoint(path) and _is_llava_dir(path)):
        return import_hf_llava(path, template=None if template == "auto" else template, max_length=max_length,
                               dtype=dtype or "float32")
    if not is_checkpoint(path):
        raise FileNotFoundError(f"{path}: neither a polyvlm checkpoint (model.safetensors, config.yaml, processor.json) "
                                "nor a Hugging Face Llava directory (config.json with model_type llava)")
    return load(path)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging()
    from polyvlm.models.export import ExportError, export_hf_llava
    from polyvlm.models.hf_import import HFImportError

    try:
        model, processor = load_source(args.src, args.template, args.max_length, args.dtype)
        if args.format != "polyvlm":
            out = export_hf_llava(model, processor, args.out, dtype=args.dtype, max_shard_size=args.max_shard_size,
                                  fmt=args.format)
        else:
            from polyvlm.config import Config
            from polyvlm.models.checkpoint import save_checkpoint

            if args.dtype:
                model.to(DTYPES[args.dtype])
                model.cfg.dtype = args.dtype
            out = save_checkpoint(model, processor, Config(model=model.cfg), args.out, extra={"imported_from": args.src})
    except (ExportError, HFImportError, FileNotFoundError, ValueError) as e:
        print(f"polyvlm export: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.format} model to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
