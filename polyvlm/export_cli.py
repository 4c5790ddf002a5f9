"""`polyvlm export SRC --format FORMAT --out DIR`: read a checkpoint in any layout polyvlm reads and write it in
one polyvlm writes (its own, or the transformers Llava / LLaVA-NeXT layouts that transformers and vLLM load)."""

from __future__ import annotations

import argparse
import logging
import sys

from polyvlm.utils import DTYPES, setup_logging

log = logging.getLogger("polyvlm.export")


def _formats() -> list[str]:
    from polyvlm.models.layouts import writable_layouts

    return writable_layouts()


def _parser() -> argparse.ArgumentParser:
    from polyvlm.models.layouts import known_layouts

    p = argparse.ArgumentParser(
        prog="polyvlm export",
        description="Convert a checkpoint between layouts: export a polyvlm checkpoint to the Hugging Face Llava "
                    "layout (hf-llava; hf-llava-next for image_aspect_ratio anyres), or import a released model "
                    "as a polyvlm checkpoint (--format polyvlm).",
        epilog="examples:\n  polyvlm export runs/tiny/final --format hf-llava --out exports/tiny-llava\n"
               "  polyvlm export runs/tiny_anyres/final --format hf-llava-next --out exports/tiny-llava-next\n"
               "  polyvlm export hf-llava:exports/tiny-llava --format polyvlm --out runs/imported\n\n"
               f"layouts read (recognised from the files, or forced with FORMAT:DIR):\n{known_layouts()}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("src", help="a checkpoint directory in any layout polyvlm reads, or FORMAT:DIR to force one")
    p.add_argument("--format", choices=_formats(), default="hf-llava", help="what to write (default: hf-llava)")
    p.add_argument("--out", required=True, help="output directory (written atomically; replaced when it exists)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default=None, help="cast weights (default: keep the model's)")
    p.add_argument("--check", action="store_true",
                   help="after writing, load the output back and compare its logits with the source's on a probe "
                        "prompt with a picture, on --check-device in --check-dtype (exit 1 when they differ)")
    p.add_argument("--check-device", default="auto", help="where --check runs: auto (cuda, then mps, then cpu), cpu, cuda:N, mps")
    p.add_argument("--check-dtype", default="auto", help="dtype of --check: auto (bf16 on a GPU that has it, else fp32), bf16, fp16, fp32")
    p.add_argument("--max-shard-size", default="5GB", help="Hugging Face layouts: largest safetensors shard (default 5GB)")
    p.add_argument("--template", default="auto",
                   help="importing a released model: polyvlm chat template name, or auto (the layout's own or the "
                        "one recognised from the directory's chat template)")
    p.add_argument("--max-length", type=int, default=2048, help="importing: the processor's max_length")
    p.add_argument("--vision-tower", default=None,
                   help="importing a model whose config names its vision tower by hub id: the tower's local "
                        "directory (default: $POLYVLM_VISION_TOWER)")
    return p


def load_source(src: str, template: str = "auto", max_length: int = 2048, dtype: str | None = None,
                vision_tower: str | None = None):
    """(model, processor) from `src` in any layout (`FORMAT:DIR` forces one)."""
    from polyvlm.models.layouts import load_checkpoint

    return load_checkpoint(src, template=None if template == "auto" else template, max_length=max_length,
                           dtype=dtype, vision_tower=vision_tower)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging()
    from polyvlm.models.layouts import save_layout

    try:
        model, processor = load_source(args.src, args.template, args.max_length, args.dtype, args.vision_tower)
        out = save_layout(args.format, model, processor, args.out, dtype=args.dtype,
                          max_shard_size=args.max_shard_size, extra={"imported_from": args.src})
    except (FileNotFoundError, ValueError) as e:  # LayoutError, ExportError, HFImportError are ValueErrors
        print(f"polyvlm export: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.format} model to {out}")
    if args.check:
        try:
            diff, tol, where = parity(model, processor, f"{args.format}:{out}", args.check_device, args.check_dtype)
        except (FileNotFoundError, ValueError) as e:
            print(f"polyvlm export: error: --check: {e}", file=sys.stderr)
            return 2
        print(f"check: max |logit difference| {diff:.2e} on {where} (tolerance {tol:g})")
        if not diff <= tol:
            print(f"polyvlm export: error: {out} does not reproduce the source's logits ({diff:.2e} > {tol:g})",
                  file=sys.stderr)
            return 1
    return 0


def parity(model, processor, written: str, device: str = "auto", dtype: str = "auto") -> tuple[float, float, str]:
    """Max |logits(source) - logits(written)| on one prompt with a picture, both on `device` in `dtype` (the
    values of --device / --dtype); returns (difference, tolerance for that dtype, "device dtype")."""
    import torch
    from PIL import Image

    from polyvlm.infer import ChatRequest
    from polyvlm.models.generate import VLMGenerator
    from polyvlm.models.layouts import load_checkpoint
    from polyvlm.utils import dtype_name, resolve_device, resolve_dtype

    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    back, _ = load_checkpoint(written, dev, dtype=dtype_name(dt))
    src = model.to(dev, dt).eval()
    req = ChatRequest([{"role": "user", "content": "What is in the picture?"}],
                      images=[Image.new("RGB", (48, 40), (200, 40, 40))])
    gen = VLMGenerator(src, processor)
    ids = torch.tensor([gen._encode(req)], device=dev)
    with torch.no_grad():
        a = src(ids, torch.ones_like(ids), gen._media([req])).logits.float()
        b = back(ids, torch.ones_like(ids), gen._media([req])).logits.float()
    tol = 1e-4 if dt == torch.float32 else 5e-2
    return float((a - b).abs().max()), tol, f"{dev} {str(dt).removeprefix('torch.')}"


if __name__ == "__main__":
    sys.exit(main())
