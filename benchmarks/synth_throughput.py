"""Synth throughput: 2,000 records through rewrite + judge at concurrency 32 against a loopback
OpenAI-compatible server that answers after a fixed 50 ms, compared with the ideal (requests x delay /
concurrency) and, side by side, with a plain `openai.AsyncOpenAI` + semaphore loop sending the same requests
(no storage, no checks: what one would write by hand).

    .venv/bin/python benchmarks/synth_throughput.py [--records 2000] [--concurrency 32] [--delay 0.05]

The last line is `ratio: <achieved / ideal>` for the polyvlm pipeline (target >= 0.8); achieved is measured over
the two stages (as `report.json` records them); the end-to-end time with the final shards and the report is
printed too. The machine is shared: CPU taken by other processes lowers every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from polyvlm.synth.config import pipeline_from_dict  # noqa: E402
from polyvlm.synth.pipeline import Pipeline  # noqa: E402


def make_records(d: Path, n: int) -> Path:
    Image.new("RGB", (64, 64), (30, 120, 200)).save(d / "img.png")
    with open(d / "seed.jsonl", "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"s{i}", "image": "img.png", "conversations": [
                {"from": "human", "value": f"<image>\nHow many objects are in picture {i}?"},
                {"from": "gpt", "value": str(i % 7)}]}) + "\n")
    return d / "seed.jsonl"


def start_server(delay: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "polyvlm.synth.fake_server", "--port", "0", "--delay", str(delay)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if "http://" not in line:
        proc.kill()
        raise RuntimeError(f"fake server did not start: {line!r}")
    return proc, line.split()[4]


async def plain_openai(url: str, records: list[dict], concurrency: int) -> float:
    """The hand-written alternative: AsyncOpenAI, a semaphore, rewrite then judge per record."""
    import openai

    client = openai.AsyncOpenAI(base_url=url, api_key="EMPTY", max_retries=3)
    sem = asyncio.Semaphore(concurrency)

    async def call(stage: str, text: str) -> str:
        async with sem:
            r = await client.chat.completions.create(model="fake", messages=[{"role": "user", "content": text}],
                                                     max_tokens=512, extra_headers={"X-Polyvlm-Stage": stage})
        return r.choices[0].message.content or ""

    async def one(rec: dict) -> None:
        out = await call("rewrite", "Original question: " + rec["conversations"][0]["value"])
        await call("judge", out)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(r) for r in records))
    await client.close()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--delay", type=float, default=0.05)
    args = ap.parse_args()
    n, c = args.records, args.concurrency
    ideal_s = 2 * n * args.delay / c
    proc, url = start_server(args.delay)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            seed = make_records(d, n)
            cfg = pipeline_from_dict({
                "input": str(seed), "output": str(d / "out"), "concurrency": c, "progress": False,
                "backends": {"m": {"type": "openai", "base_url": url, "model": "fake", "concurrency": c}},
                "stages": [{"stage": "rewrite", "backend": "m"}, {"stage": "judge", "backend": "m", "threshold": 1}]})
            t0, cpu0 = time.perf_counter(), time.process_time()
            summary = Pipeline(cfg).run()
            cpu_ms = (time.process_time() - cpu0) * 1000 / (2 * n)
            total_s = time.perf_counter() - t0
            ours_s = sum(r["elapsed_s"] for r in summary["stages"])  # both stages, from their first record to done
            assert summary["stages"][1]["in"] == n and summary["stages"][1]["failed"] == 0, summary["stages"]
            records = [json.loads(x) for x in seed.read_text().splitlines()]
            plain_s = asyncio.run(plain_openai(url, records, c))
    finally:
        proc.kill()
        proc.wait()
    req = 2 * n
    print(f"records {n}, stages rewrite+judge, {req} requests, concurrency {c}, server delay {args.delay * 1000:.0f} ms")
    print(f"ideal:              {ideal_s:7.2f} s  {req / ideal_s:8.1f} req/s")
    print(f"polyvlm synth:      {ours_s:7.2f} s  {req / ours_s:8.1f} req/s  (rewrite + judge stages: keyed, sharded, "
          "resumable, with stage statistics)")
    print(f"  end to end:       {total_s:7.2f} s  (+ final shards, report and its PNG, matplotlib import)")
    print(f"  client CPU:       {cpu_ms:7.3f} ms per request -> at most {1000 / cpu_ms:6.0f} req/s on one free core; "
          f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"plain AsyncOpenAI:  {plain_s:7.2f} s  {req / plain_s:8.1f} req/s  (no storage, no checks)")
    print(f"plain AsyncOpenAI / ideal: {ideal_s / plain_s:.3f}")
    print(f"polyvlm / plain AsyncOpenAI: {plain_s / ours_s:.3f}")
    print(f"ratio: {ideal_s / ours_s:.3f}")


if __name__ == "__main__":
    main()
