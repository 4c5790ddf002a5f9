"""`polyvlm eval`: score a checkpoint, an OpenAI-compatible endpoint or a predictions file on tasks."""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
from pathlib import Path

from polyvlm import __version__
from polyvlm.config import ConfigError, add_overrides_argument, parse_args_with_overrides
from polyvlm.utils import add_device_flags, device_from_args, setup_logging

log = logging.getLogger("polyvlm.eval")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="polyvlm eval", description=__doc__)
    add_overrides_argument(p, "limit=20 batch_size=8 max_new_tokens=16")
    src = p.add_mutually_exclusive_group(required=False)  # `--tasks list` needs none
    src.add_argument("--model", help="checkpoint directory in any layout polyvlm reads, or FORMAT:DIR (in-process, batched greedy generation)")
    src.add_argument("--endpoint", help="OpenAI-compatible base URL, e.g. http://localhost:8000/v1")
    src.add_argument("--predictions", help="JSONL of existing predictions (`id` or `index`, `prediction`)")
    p.add_argument("--tasks", required=True,
                   help="comma-separated task names, suites and .tsv/.jsonl/.yaml paths; `list` shows the built-in ones")
    # lmms-eval's spellings are accepted too: --output_path, --batch_size, --log_samples
    p.add_argument("--out", "--output_path", default="runs/eval", help="output directory (re-running with it resumes)")
    p.add_argument("--batch-size", "--batch_size", type=int, default=16, help="requests per batch for --model")
    p.add_argument("--log_samples", "--log-samples", action="store_true",
                   help="accepted for lmms-eval compatibility: samples_<task>.jsonl is always written")
    p.add_argument("--limit", type=int, default=None, help="only the first N samples of each task")
    p.add_argument("--endpoint-model", default="", help="model name sent to --endpoint (default: its first /models)")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight to --endpoint")
    p.add_argument("--retries", type=int, default=3, help="retries of a failed endpoint request (with back-off)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per endpoint request")
    p.add_argument("--api-key", default="", help="bearer token for --endpoint and --judge")
    p.add_argument("--judge", default="", help="OpenAI-compatible URL of an LLM judge (open chat; unparsed MCQ answers)")
    p.add_argument("--judge-model", default="", help="judge model name (default: its first /models)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="override every task's generation length")
    add_device_flags(p, "--model")
    return p


def checkpoint_id(path: str) -> str:
    """The checkpoint's absolute path plus a digest of its weight files (size and first MiB), so retraining
    into the same directory is not mistaken for the model whose answers an --out folder holds."""
    root = Path(path).resolve()
    digest = hashlib.sha256()
    for f in sorted(root.glob("*.safetensors")) + sorted(root.glob("*.bin")):
        digest.update(f"{f.name}:{f.stat().st_size}:".encode())
        with open(f, "rb") as fh:
            digest.update(fh.read(1 << 20))
    return f"{root}#{digest.hexdigest()[:16]}"


def print_task_list() -> None:
    """`--tasks list`: task, languages, repo, whether the data is here (else the download command)."""
    from polyvlm.eval.tasks import SUITES, listing

    rows = listing()
    print(f"{'task':<26} {'data':<8} {'repo':<34} languages")
    for r in rows:
        langs = ",".join(r["languages"]) or "-"
        print(f"{r['task']:<26} {r['data']:<8} {r['repo'] or '-':<34} {langs}")
    missing = [r for r in rows if r["data"] == "missing"]
    if missing:
        print("\nmissing data (or let `datasets` download it when online):")
        for command in dict.fromkeys(r["download"] for r in missing):
            print(f"  {command}")
    print("\nsuites: " + "; ".join(f"{k} = {','.join(v)}" for k, v in SUITES.items()))


def _load_tasks(args: argparse.Namespace) -> tuple[list, dict, dict[str, str] | None]:
    """Resolve `--tasks`, load and validate every sample before any model is asked anything, check that judged
    tasks have a judge, read `--predictions` -> (tasks, suites, predictions). Raises TaskError / ValueError."""
    from polyvlm.eval.runner import read_predictions
    from polyvlm.eval.tasks import TaskError, resolve

    tasks, suites = resolve(args.tasks.split(","))
    if not tasks:
        raise TaskError("--tasks names no task")
    for t in tasks:
        if args.max_new_tokens:
            t.spec.max_new_tokens = args.max_new_tokens
        t.samples()
    judged = [t.name for t in tasks if any(m.startswith("judge_") for m in t.metrics)]
    if judged and not args.judge:  # fail now, not after generating every answer
        raise TaskError(f"task(s) {', '.join(judged)} are scored by an LLM judge: pass --judge URL")
    return tasks, suites, read_predictions(args.predictions) if args.predictions else None


def _model_backend(args: argparse.Namespace) -> tuple[object, str, object, object]:
    """`--model` (any checkpoint layout, or FORMAT:DIR) -> (batching backend, checkpoint id, device, dtype).
    Raises ValueError naming the directory and the reason."""
    import polyvlm
    from polyvlm.eval.backends import GeneratorBackend
    from polyvlm.models.layouts import LayoutError
    from polyvlm.models.layouts import resolve as resolve_checkpoint

    try:
        model_dir = resolve_checkpoint(args.model)[1]
    except LayoutError as e:
        raise ValueError(f"--model {e}") from None  # the message starts with the directory
    device, dtype = device_from_args(args)  # auto/cuda: this rank's GPU under torchrun (LOCAL_RANK)
    generator = polyvlm.load_generator(args.model, device=device, dtype=dtype)  # HFImportError is a ValueError
    return GeneratorBackend(generator, args.batch_size), checkpoint_id(str(model_dir)), device, dtype


def _check_modalities(tasks: list, modalities: set[str]) -> None:
    """Every sample's media are of modalities the model takes (before any is asked); raises TaskError naming the
    first sample that has another."""
    from polyvlm.eval.tasks import TaskError

    for t in tasks:
        for s in t.samples():
            lacking = sorted(m for m, refs in s.media.items() if refs and m not in modalities)
            if lacking:
                raise TaskError(f"task {t.name}: {s.source or 'sample'} id={s.id} has {lacking[0]} input, which this "
                                f"model does not take (it takes {', '.join(sorted(modalities)) or 'text only'})")


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args_with_overrides(parser(), argv)
    except ConfigError as e:
        print(f"polyvlm eval: {e}", file=sys.stderr)
        return 2
    if args.tasks.strip() == "list":
        print_task_list()
        return 0
    if not (args.model or args.endpoint or args.predictions):
        parser().error("one of the arguments --model --endpoint --predictions is required")
    setup_logging()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request drowns the progress bar
    from polyvlm.eval.backends import EndpointBackend
    from polyvlm.eval.judge import JudgeClient
    from polyvlm.eval.runner import evaluate
    from polyvlm.eval.tasks import TaskError

    def fail(message: object) -> int:
        print(f"polyvlm eval: {message}", file=sys.stderr)
        return 2

    for flag in ("batch_size", "concurrency", "limit", "max_new_tokens"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            return fail(f"--{flag.replace('_', '-')} must be at least 1, not {value}")
    try:
        tasks, suites, predictions = _load_tasks(args)
    except ValueError as e:  # TaskError is one
        return fail(e)
    backend = None
    model_name, model_id = args.model or args.endpoint or args.predictions, ""
    if args.model:
        try:
            backend, model_id, device, dtype = _model_backend(args)
            _check_modalities(tasks, backend.generator.modalities)
        except ValueError as e:
            return fail(e)
    elif args.endpoint:
        backend = EndpointBackend(args.endpoint, args.endpoint_model, args.concurrency, args.retries, args.timeout,
                                  api_key=args.api_key)
        model_name = model_id = backend.name
    judge = None
    if args.judge:
        judge = JudgeClient(EndpointBackend(args.judge, args.judge_model, args.concurrency, args.retries,
                                            args.timeout, api_key=args.api_key), f"{args.out}/judge_cache.jsonl")
    settings = {"polyvlm": __version__, "tasks": args.tasks, "limit": args.limit, "batch_size": args.batch_size
                if args.model else None, "concurrency": args.concurrency if args.endpoint else None,
                "max_new_tokens": args.max_new_tokens, "judge": judge.backend.name if judge else None,
                "device": str(device) if args.model else None,
                "dtype": str(dtype).removeprefix("torch.") if args.model else None}
    try:
        results = evaluate(tasks, args.out, backend=backend, predictions=predictions, limit=args.limit, suites=suites,
                           judge=judge, model=model_name, model_id=model_id,
                           extra={"batch_size": settings["batch_size"], "settings": settings})
    except TaskError as e:
        return fail(e)
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    if results is not None:
        print(f"results: {args.out}/results.json, {args.out}/results.md")
    return 0
