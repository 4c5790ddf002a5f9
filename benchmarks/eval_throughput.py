"""Evaluation throughput: batched (batch 16) vs batch-1 greedy evaluation of a tiny polyvlm model on the
quickstart task, through the same runner; prints samples/s of both and `ratio: <batched / batch-1>`.

Batch 1 is how lmms-eval runs most models; the predictions of both runs must be identical.
Usage: python benchmarks/eval_throughput.py [--samples 48] [--max-new-tokens 16]
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import torch


def tiny_checkpoint(path: Path) -> Path:
    try:
        from polyvlm.testing import make_tiny_checkpoint  # type: ignore[import-not-found]

        return Path(make_tiny_checkpoint(path))
    except ImportError:
        from polyvlm.config import load_config
        from polyvlm.models.checkpoint import save_checkpoint
        from polyvlm.models.factory import build

        torch.manual_seed(0)
        cfg = load_config(Path(__file__).resolve().parents[1] / "recipes" / "tiny.yaml")
        model, processor = build(cfg.model)
        return save_checkpoint(model, processor, cfg, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=48)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()
    logging.disable(logging.INFO)
    import polyvlm
    from polyvlm.eval.backends import GeneratorBackend
    from polyvlm.eval.runner import evaluate
    from polyvlm.eval.tasks import resolve

    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = tiny_checkpoint(Path(tmp) / "ckpt")
        generator = polyvlm.load_generator(ckpt)
        rows, preds = {}, {}
        for bs in (args.batch_size, 1):
            tasks, _ = resolve(["quickstart"])
            tasks[0].spec.options["n_per_language"] = -(-args.samples // 6)
            tasks[0].spec.max_new_tokens = args.max_new_tokens
            tasks[0].samples()  # draw the pictures before timing
            out = Path(tmp) / f"bs{bs}"
            start = time.perf_counter()
            res = evaluate(tasks, out, backend=GeneratorBackend(generator, bs), limit=args.samples)
            wall = time.perf_counter() - start
            assert res is not None
            speed = res["tasks"]["quickstart"]["throughput"]
            rows[bs] = (speed["samples"] / wall, speed["tokens_per_s"], wall)
            preds[bs] = [json.loads(x)["prediction"] for x in (out / "samples_quickstart.jsonl").read_text().splitlines()]
    same = preds[args.batch_size] == preds[1]
    print(f"{'setting':<22}{'samples/s':>12}{'tokens/s':>12}{'seconds':>10}")
    for bs, label in ((args.batch_size, f"polyvlm batch {args.batch_size}"), (1, "batch 1 (lmms-eval)")):
        sps, tps, wall = rows[bs]
        print(f"{label:<22}{sps:>12.2f}{tps:>12.1f}{wall:>10.2f}")
    print(f"samples: {args.samples}, max_new_tokens: {args.max_new_tokens}, identical predictions: {same}")
    print(f"ratio: {rows[args.batch_size][0] / rows[1][0]:.2f}")


if __name__ == "__main__":
    main()
