"""`polyvlm eval`: score a checkpoint, an OpenAI-compatible endpoint or a predictions file on tasks."""

from __future__ import annotations

import argparse
import logging
import sys

from polyvlm.utils import setup_logging

log = logging.getLogger("polyvlm.eval")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="polyvlm eval", description=__doc__)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="polyvlm checkpoint directory (in-process, batched greedy generation)")
    src.add_argument("--endpoint", help="OpenAI-compatible base URL, e.g. http://localhost:8000/v1")
    src.add_argument("--predictions", help="JSONL of existing predictions (`id` or `index`, `prediction`)")
    p.add_argument("--tasks", required=True, help="comma-separated task names and .tsv/.jsonl/.yaml paths (suites too)")
    p.add_argument("--out", default="runs/eval", help="output directory (re-running with it resumes)")
    p.add_argument("--batch-size", type=int, default=16, help="requests per batch for --model")
    p.add_argument("--limit", type=int, default=None, help="only the first N samples of each task")
    p.add_argument("--endpoint-model", default="", help="model name sent to --endpoint (default: its first /models)")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight to --endpoint")
    p.add_argument("--retries", type=int, default=3, help="retries of a failed endpoint request (with back-off)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per endpoint request")
    p.add_argument("--api-key", default="", help="bearer token for --endpoint and --judge")
    p.add_argument("--judge", default="", help="OpenAI-compatible URL of an LLM judge (open chat; unparsed MCQ answers)")
    p.add_argument("--judge-model", default="", help="judge model name (default: its first /models)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="override every task's generation length")
    p.add_argument("--device", default="auto", help="device for --model: auto, cpu, cuda")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging()
    from polyvlm.eval.backends import EndpointBackend, GeneratorBackend, read_predictions
    from polyvlm.eval.judge import JudgeClient
    from polyvlm.eval.runner import evaluate
    from polyvlm.eval.tasks import TaskError, resolve

    try:
        tasks, suites = resolve(args.tasks.split(","))
        if not tasks:
            raise TaskError("--tasks names no task")
        for t in tasks:
            if args.max_new_tokens:
                t.spec.max_new_tokens = args.max_new_tokens
            t.samples()  # load and validate all data before any model is asked anything
        predictions = read_predictions(args.predictions) if args.predictions else None
    except (TaskError, ValueError) as e:
        print(f"polyvlm eval: {e}", file=sys.stderr)
        return 2
    backend = None
    model_name = args.model or args.endpoint or args.predictions
    if args.model:
        import polyvlm

        loader = getattr(polyvlm, "load_generator", None)
        if loader is None:
            print("polyvlm eval: polyvlm.load_generator is not available in this build", file=sys.stderr)
            return 2
        kwargs = {"device": args.device} if args.device != "auto" else {}
        backend = GeneratorBackend(loader(args.model, **kwargs), args.batch_size)
    elif args.endpoint:
        backend = EndpointBackend(args.endpoint, args.endpoint_model, args.concurrency, args.retries, args.timeout,
                                  api_key=args.api_key)
    judge = None
    if args.judge:
        judge = JudgeClient(EndpointBackend(args.judge, args.judge_model, args.concurrency, args.retries,
                                            args.timeout, api_key=args.api_key), f"{args.out}/judge_cache.jsonl")
    try:
        results = evaluate(tasks, args.out, backend=backend, predictions=predictions, limit=args.limit, suites=suites,
                           judge=judge, model=model_name,
                           extra={"batch_size": args.batch_size if args.model else None})
    except TaskError as e:
        print(f"polyvlm eval: {e}", file=sys.stderr)
        return 2
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    if results is not None:
        print(f"results: {args.out}/results.json, {args.out}/results.md")
    return 0
