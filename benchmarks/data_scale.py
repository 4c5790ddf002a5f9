"""Benchmark: polyvlm's streaming validate / stats / random access against a plain streaming loop.

Generates an N-record LLaVA JSONL in a temp directory (default 1,000,000 records, ~800 MB), then runs each
job in its own subprocess and reads its peak RSS (ru_maxrss), so memory figures do not leak between jobs:

- polyvlm validate (no media checks), polyvlm stats, RecordIndex + 10,000 random reads, and the same reads
  through `LazyRecords`, the torch Dataset over it (media decoding off: the generated file names no real images);
- the streaming loop a competent user writes instead: line by line, `json.loads`, the same per-record checks
  (`parse_record` + `check_placeholders`, language tags normalised) and a Python set of ids for duplicates.

Last line: `ratio: <polyvlm validate records/s / streaming loop records/s>` (CPU time: the machine is shared), with
both peak memories printed beside it (polyvlm's must be no higher).

    python benchmarks/data_scale.py                 # 1M records
    python benchmarks/data_scale.py --records 20000 # quick
    python benchmarks/data_scale.py --double        # also validate and describe 2N records (peak memory should not grow)

Before the ratio it prints the issue's targets (>= 50,000 rec/s, peak < 1 GB, same peak at 2N) as met or not.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD_PRELUDE = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
path = {path!r}


def cpu():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def start():  # called after the imports: only the work is timed
    global t0, c0
    t0, c0 = time.perf_counter(), cpu()
"""
CHILD_END = """
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"records": n, "seconds": dt, "cpu_seconds": cpu() - c0, "peak_mb": peak}}))
"""
JOBS = {
    "polyvlm validate": """
from polyvlm.data.validate import validate
start()
rep = validate([path], progress=False)
n = rep.records
assert rep.errors == 0, rep.to_dict()["by_code"]
""",
    "polyvlm stats": """
from polyvlm.data.stats import compute_stats
start()
n = compute_stats([path], progress=False).records
""",
    "polyvlm index + 10k random reads": """
import random
from polyvlm.data.index import RecordIndex
start()
ix = RecordIndex(path, cache=False)
rng = random.Random(0)
for _ in range(10000):
    ix[rng.randrange(len(ix))]
n = 10000
""",
    "LazyRecords (training dataset) + 10k random reads": """
import random
from polyvlm.data.dataset import LazyRecords
start()
ds = LazyRecords(path, decode_images=False)  # the generated file names no real images
rng = random.Random(0)
for _ in range(10000):
    assert ds[rng.randrange(len(ds))] is not None
n = 10000
""",
    # what a competent user writes without polyvlm: one pass, line by line, the same per-record rules
    # (polyvlm's own parse + placeholder check, language tags normalised) and a set of ids for duplicates
    "streaming loop": """
from collections import Counter
from polyvlm.data.langs import normalize_language
from polyvlm.data.records import RecordError, check_placeholders, parse_record
start()
ids, langs, bad, dupes, n = set(), Counter(), 0, 0, 0
with open(path, encoding="utf-8") as f:
    for i, line in enumerate(f, 1):
        if not line.strip():
            continue
        n += 1
        try:
            rec = parse_record(json.loads(line), f"{{path}}:{{i}}")
            check_placeholders(rec)
        except (RecordError, ValueError):
            bad += 1
            continue
        if rec.id in ids:
            dupes += 1
        ids.add(rec.id)
        langs[normalize_language(rec.language)[0]] += 1
assert bad == 0 and dupes == 0, (bad, dupes)
""",
}

LANGS = ["en", "zh_simplified", "urdu", "vi", "fr", "ja", "es", "ar", "hi", "ru"]


def generate(path: Path, n: int, seed: int = 0) -> None:
    """Write n realistic LLaVA records: 60% single image, 10% multi-image, 30% text-only, 1-3 exchanges."""
    rng = random.Random(seed)
    words = "the a red blue car tree person building sky street dog cat table window left right near behind small large".split()
    with open(path, "w", encoding="utf-8", buffering=1 << 20) as f:
        for i in range(n):
            k = rng.random()
            n_img = 1 if k < 0.6 else 2 if k < 0.7 else 0
            conv = []
            for t in range(rng.randint(1, 3)):
                q = " ".join(rng.choices(words, k=rng.randint(8, 30))) + "?"
                if t == 0 and n_img:
                    q = "<image>\n" * n_img + q
                conv.append({"from": "human", "value": q})
                conv.append({"from": "gpt", "value": " ".join(rng.choices(words, k=rng.randint(10, 60))) + "."})
            rec: dict = {"id": f"sample_{i}"}
            if n_img == 1:
                rec["image"] = f"images/{i % 5000:05d}.jpg"
            elif n_img > 1:
                rec["image"] = [f"images/{(i + j) % 5000:05d}.jpg" for j in range(n_img)]
            rec["conversations"] = conv
            rec["language"] = LANGS[i % len(LANGS)]
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def run_job(name: str, path: Path) -> dict:
    code = CHILD_PRELUDE.format(root=str(ROOT), path=str(path)) + JOBS[name] + CHILD_END.format()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _line(name: str, r: dict) -> str:
    """Wall-clock and CPU-time throughput (CPU time is what to compare on a busy shared machine)."""
    return (f"{name:<50} {r['records']:>10,} rec  wall {r['seconds']:7.2f} s ({r['records'] / r['seconds']:>8,.0f} rec/s)  "
            f"cpu {r['cpu_seconds']:7.2f} s ({r['records'] / r['cpu_seconds']:>8,.0f} rec/s)  peak {r['peak_mb']:6.0f} MB")


def targets(results: dict[str, dict]) -> str:
    """The issue's targets against the figures above (>= 50,000 rec/s, < 1 GB, the same peak at 2x records)."""
    out = ["targets:"]
    for name in ("polyvlm validate", "polyvlm stats"):
        r = results[name]
        wall, cpu = r["records"] / r["seconds"], r["records"] / r["cpu_seconds"]
        out.append(f"  {name}: {wall:,.0f} rec/s wall, {cpu:,.0f} rec/s cpu (>= 50,000: {'met' if wall >= 50_000 else 'cpu only' if cpu >= 50_000 else 'NOT met'}); "
                   f"peak {r['peak_mb']:.0f} MB (< 1 GB: {'met' if r['peak_mb'] < 1024 else 'NOT met'})")
        if f"{name} 2x" in results:
            big = results[f"{name} 2x"]["peak_mb"]
            out.append(f"  {name} at 2x records: peak {big:.0f} MB vs {r['peak_mb']:.0f} MB "
                       f"({'same (within 10%)' if big <= 1.1 * r['peak_mb'] else 'GROWS'})")
    for name in ("polyvlm index + 10k random reads", "LazyRecords (training dataset) + 10k random reads"):
        r = results[name]
        out.append(f"  {name}: peak {r['peak_mb']:.0f} MB (< 1 GB: {'met' if r['peak_mb'] < 1024 else 'NOT met'})")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--double", action="store_true", help="also validate and describe a file twice as large")
    ap.add_argument("--only-ratio", action="store_true", help="run only polyvlm validate and the streaming loop")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="polyvlm-bench-") as tmp:
        path = Path(tmp) / "data.jsonl"
        t0 = time.perf_counter()
        generate(path, a.records)
        print(f"generated {a.records:,} records ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s")
        results = {}
        for name in JOBS:
            if a.only_ratio and name not in ("polyvlm validate", "streaming loop"):
                continue
            r = run_job(name, path)
            results[name] = r
            print(_line(name, r))
        if a.double:
            big = Path(tmp) / "data2.jsonl"
            path.unlink()
            generate(big, 2 * a.records, seed=1)
            for name in ("polyvlm validate", "polyvlm stats"):
                results[f"{name} 2x"] = r = run_job(name, big)
                print(_line(f"{name} (2x records)", r))
        if not a.only_ratio:
            print(targets(results))
        ours, loop = results["polyvlm validate"], results["streaming loop"]
        rate = {k: r["records"] / r["cpu_seconds"] for k, r in (("ours", ours), ("loop", loop))}
        print(f"polyvlm validate {rate['ours']:,.0f} rec/s cpu ({ours['records'] / ours['seconds']:,.0f} wall), "
              f"peak {ours['peak_mb']:.0f} MB; streaming loop {rate['loop']:,.0f} rec/s cpu "
              f"({loop['records'] / loop['seconds']:,.0f} wall), peak {loop['peak_mb']:.0f} MB "
              f"({'no higher' if ours['peak_mb'] <= loop['peak_mb'] else 'HIGHER'} peak for polyvlm)")
        print(f"ratio: {rate['ours'] / rate['loop']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
