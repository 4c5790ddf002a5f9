"""Evaluation throughput: batched (batch 16) vs batch-1 greedy evaluation of a tiny polyvlm model on the
quickstart task, through the same runner; prints samples/s of both and `ratio: <batched / batch-1>`.

The batch-1 row is polyvlm itself at batch 1 (how lmms-eval runs most models: one sample per forward), so the
ratio is what batching buys; the predictions of both runs must be identical.
Usage: python benchmarks/eval_throughput.py [--samples 1920] [--max-new-tokens 16]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    # 1,920 (a benchmark's size: AI2D has 3,088 questions): at 480 the ~0.5 s of writing results.{md,png} is a fifth
    # of the batched run on an idle machine
    ap.add_argument("--samples", type=int, default=1920)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()
    logging.disable(logging.INFO)
    import polyvlm
    from polyvlm.eval.backends import GeneratorBackend
    from polyvlm.eval.runner import evaluate
    from polyvlm.eval.tasks import resolve
    from polyvlm.testing import make_tiny_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        # seed 5: with the 600-token tiny vocabulary its greedy answers differ from prompt to prompt (53 distinct in
        # 96) and run to max_new_tokens, as long answers do; seeds 0 and 6 say the same to every prompt (which would
        # make the identical-predictions check vacuous: checked below) and seed 3 stops after ~9 tokens
        ckpt = make_tiny_checkpoint(Path(tmp) / "ckpt", seed=5)
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
            tokens = speed["tokens_per_s"] * speed["seconds"]  # generated tokens; both rates over the same wall time
            rows[bs] = (speed["samples"] / wall, tokens / wall, wall)
            preds[bs] = [json.loads(x)["prediction"] for x in (out / "samples_quickstart.jsonl").read_text().splitlines()]
    same = preds[args.batch_size] == preds[1]
    distinct = len(set(preds[1]))
    print(f"{'setting':<24}{'samples/s':>12}{'tokens/s':>12}{'seconds':>10}")
    for bs, label in ((args.batch_size, f"polyvlm at batch {args.batch_size}"), (1, "polyvlm at batch 1")):
        sps, tps, wall = rows[bs]
        print(f"{label:<24}{sps:>12.2f}{tps:>12.1f}{wall:>10.2f}")
    print(f"samples: {args.samples}, max_new_tokens: {args.max_new_tokens}, identical predictions: {same} ({distinct} distinct)")
    if not same:  # a speed-up that changes the answers is not a speed-up
        a, b = preds[args.batch_size], preds[1]
        i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        print(f"predictions differ at sample {i} ({len(a)} vs {len(b)} samples)", file=sys.stderr)
    print(f"ratio: {rows[args.batch_size][0] / rows[1][0]:.2f}")
    if distinct < max(2, len(preds[1]) // 4):  # answers that barely vary prove nothing about identical batching
        print(f"only {distinct} distinct predictions in {len(preds[1])}: the comparison is vacuous", file=sys.stderr)
        sys.exit(1)
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
