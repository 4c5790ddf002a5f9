"""`polyvlm synth PIPELINE.yaml [--resume]`: run a data synthesis pipeline and write its report."""

from __future__ import annotations

import argparse
import sys

from polyvlm.config import add_overrides_argument
from polyvlm.data.records import RecordError
from polyvlm.synth.config import PipelineConfig, PipelineError, check_backend, load_pipeline
from polyvlm.synth.pipeline import Pipeline, PipelineIncomplete
from polyvlm.synth.templates import PromptError
from polyvlm.utils import DEVICE_CHOICES, setup_logging


def apply_device_flags(cfg: PipelineConfig, device: str | None, dtype: str | None) -> None:
    """--device / --dtype set every in-process (`transformers`) backend's device and dtype, checked here."""
    for name, b in cfg.backends.items():
        if b.type != "transformers":
            continue
        b.device, b.dtype = device or b.device, dtype or b.dtype
        check_backend(b, f"{cfg.path or 'pipeline'}: backends.{name} (--device/--dtype)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="polyvlm synth",
        description="Run a synth pipeline (categorize, rewrite, judge, translate, dedup, balance, media_filter, "
                    "score, recaption) over records; resumable, every output exactly once.")
    ap.add_argument("pipeline", help="pipeline YAML file (see recipes/synth/)")
    ap.add_argument("--resume", action="store_true",
                    help="continue a run in an existing output directory, skipping finished work")
    add_overrides_argument(ap, "output=runs/x concurrency=8 backends.main.model=qwen2-vl")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="the same as a positional KEY=VALUE, e.g. --set output=runs/x --set concurrency=8")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    ap.add_argument("--device", default=None, help=f"every `transformers` backend runs here: {DEVICE_CHOICES} "
                    "(default: each backend's `device`, auto)")
    ap.add_argument("--dtype", default=None, help="every `transformers` backend's dtype: auto (bf16 on a GPU that "
                    "supports it, else fp32), bf16, fp16, fp32 (default: each backend's `dtype`, auto)")
    args = ap.parse_intermixed_args(argv)
    setup_logging()
    overrides = [*args.sets, *args.overrides] + (["progress=false"] if args.no_progress else [])
    try:
        cfg = load_pipeline(args.pipeline, overrides)
        apply_device_flags(cfg, args.device, args.dtype)
        summary = Pipeline(cfg).run(resume=args.resume)
    except (PipelineError, PromptError, RecordError) as e:
        print(f"polyvlm synth: {e}", file=sys.stderr)
        return 2
    except PipelineIncomplete as e:
        print(f"polyvlm synth: {e}", file=sys.stderr)
        return 3
    if summary.get("up_to_date"):
        print(f"nothing left to do: every stage of {cfg.output} finished earlier and final/ is up to date; "
              "its summary:")
    for row in summary["stages"]:
        print(f"{row['index']:2d} {row['stage']:<13} in {row['in']:>8}  out {row['out']:>8}  "
              f"rejected {row['rejected']:>7}  failed {row['failed']:>5}  {row['elapsed_s']:8.2f} s")
    print(f"final records: {summary['final_records']} -> {cfg.output}/final/ ; report: {cfg.output}/report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
