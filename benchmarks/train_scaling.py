"""Training throughput on 1 process (2 threads) vs 2 processes (1 thread each, DDP over gloo) on this machine,
same model, data and global batch, through the real `polyvlm train` command.

    python benchmarks/train_scaling.py [--steps 12] [--batch-size 16]

Prints supervised tokens/s and wall time for both; the last line is `ratio: <2 processes / 1 process>`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(out: Path, data: Path, nproc: int, steps: int, batch: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(2 // nproc)}
    cmd = [sys.executable, "-m", "polyvlm", "train", str(ROOT / "recipes/tiny.yaml"), f"data.path={data}",
           f"train.output_dir={out}", f"train.max_steps={steps}", f"train.batch_size={batch // nproc}",
           "train.log_every=1", "train.tensorboard=false", "--no-progress", f"--nproc={nproc}"]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"{nproc}-process run failed:\n{r.stderr[-3000:]}")
    rows = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    return {"supervised_tokens_per_s": rows[-1]["supervised_tokens_per_s"], "wall_s": time.time() - t0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=16, help="global batch (split over the processes)")
    args = p.parse_args()
    from polyvlm.data.scenes import make_split, write_jsonl

    work = Path(tempfile.mkdtemp(prefix="polyvlm-scaling-"))
    data = write_jsonl(make_split(work, 256, seed=0), work / "qa.jsonl")
    one = run(work / "p1", data, 1, args.steps, args.batch_size)
    two = run(work / "p2", data, 2, args.steps, args.batch_size)
    print(f"{'':14}{'supervised tok/s':>18}{'wall s':>10}")
    print(f"{'1 process':14}{one['supervised_tokens_per_s']:>18.0f}{one['wall_s']:>10.1f}")
    print(f"{'2 processes':14}{two['supervised_tokens_per_s']:>18.0f}{two['wall_s']:>10.1f}")
    print(f"cores: {os.cpu_count()}, steps: {args.steps}, global batch: {args.batch_size}")
    print(f"ratio: {two['supervised_tokens_per_s'] / one['supervised_tokens_per_s']:.2f}")


if __name__ == "__main__":
    main()
