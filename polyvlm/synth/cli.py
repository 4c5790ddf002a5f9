"""`polyvlm synth PIPELINE.yaml [--resume]`: run a data synthesis pipeline and write its report."""

from __future__ import annotations

import argparse
import sys

from polyvlm.config import add_overrides_argument
from polyvlm.data.records import RecordError
from polyvlm.synth.config import PipelineError, load_pipeline
from polyvlm.synth.pipeline import Pipeline, PipelineIncomplete
from polyvlm.synth.templates import PromptError
from polyvlm.utils import setup_logging


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
    args = ap.parse_intermixed_args(argv)
    setup_logging()
    overrides = [*args.sets, *args.overrides] + (["progress=false"] if args.no_progress else [])
    try:
        cfg = load_pipeline(args.pipeline, overrides)
        summary = Pipeline(cfg).run(resume=args.resume)
    except (PipelineError, PromptError, RecordError) as e:
        print(f"polyvlm synth: {e}", file=sys.stderr)
        return 2
    except PipelineIncomplete as e:
        print(f"polyvlm synth: {e}", file=sys.stderr)
        return 3
    for row in summary["stages"]:
        print(f"{row['index']:2d} {row['stage']:<13} in {row['in']:>8}  out {row['out']:>8}  "
              f"rejected {row['rejected']:>7}  failed {row['failed']:>5}  {row['elapsed_s']:8.2f} s")
    print(f"final records: {summary['final_records']} -> {cfg.output}/final/ ; report: {cfg.output}/report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
