"""Load benchmark for `polyvlm serve`: concurrent image requests, dynamic batching vs one request at a time.

    python benchmarks/serve_load.py                     # 200 requests, 16 clients, the tiny model
    python benchmarks/serve_load.py --ckpt runs/x/final --requests 400 --clients 32

Both servers are `polyvlm serve` child processes on loopback (one at a time) running the same checkpoint and get
the same requests (streaming and plain alternate; seeded sampling, so both modes generate the same completion
tokens: equal work, checked and printed):

- closed loop: `--clients` concurrent HTTP clients, each sending its next request when the last one is answered,
  all requests once per round, in `--rounds` alternating rounds so that a change in machine load hits both alike;
- open loop: `--open-requests` requests arriving as a Poisson process at `--rate` requests/s (default: 0.9 x the
  unbatched closed-loop throughput, near what one-at-a-time serving sustains) whatever the server's progress,
  latency counted from each request's scheduled arrival (no coordinated omission).

Prints p50/p90/p99 latency, throughput, completion tokens and failures side by side for both; the last line is
`ratio: <batched / unbatched closed-loop throughput>`.

The clients run on the same machine as the server, so by default the server's torch gets one thread
(`--threads 1`, both modes alike): on 2 cores, a second OpenMP thread fights the clients for the CPU, and a
stalled OpenMP thread stalls the whole batch (`--threads 0` keeps torch's default).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@dataclass
class Run:
    name: str
    latencies: list[float]
    failures: list[str]
    wall: float
    completion_tokens: int
    batch_sizes: dict[int, int]

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.wall

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) if self.latencies else float("nan")


def image_uri(i: int, size: int) -> str:
    rng = np.random.default_rng(i)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def body(i: int, max_tokens: int, size: int) -> dict:
    return {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": image_uri(i, size)}},
        {"type": "text", "text": f"Describe picture {i}."}]}],
        # sampling with a fixed seed per request: the random-init tiny model would otherwise stop at once
        "max_tokens": max_tokens, "temperature": 1.0, "seed": i, "stream": i % 2 == 1,
        "stream_options": {"include_usage": True}}


class Server:
    """`polyvlm serve CKPT` in a child process on a free loopback port, as users run it."""

    def __init__(self, ckpt: Path, flags: list[str], threads: int):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        self.cmd = [sys.executable, "-m", "polyvlm", "serve", str(ckpt), "--port", str(self.port),
                    "--log-level", "warning", *flags]
        self.env = env

    def __enter__(self) -> Server:
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read()}")
            if time.monotonic() > deadline:
                raise RuntimeError("server did not come up in 300 s")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.3)

    def batch_sizes(self) -> dict[int, int]:
        return {int(k): v for k, v in httpx.get(f"{self.url}/health", timeout=10).json()["batch_sizes"].items()}

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def one(client: httpx.AsyncClient, payload: dict) -> int:
    """Send one request; returns completion tokens, raises on any failure."""
    if not payload["stream"]:
        r = await client.post("/v1/chat/completions", json=payload)
        r.raise_for_status()
        return r.json()["usage"]["completion_tokens"]
    tokens, done = None, False
    async with client.stream("POST", "/v1/chat/completions", json=payload) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if line == "data: [DONE]":
                done = True
            elif line.startswith('data: {"error"'):
                raise RuntimeError(line)
            elif '"usage"' in line:
                tokens = json.loads(line[6:])["usage"]["completion_tokens"]
    if not done or tokens is None:
        raise RuntimeError("stream ended without usage and [DONE]")
    return tokens


async def load(url: str, payloads: list[dict], clients: int, name: str) -> tuple[list[float], list[str], float, int]:
    todo = list(range(len(payloads)))
    latencies, failures, tokens = [], [], 0
    bar = tqdm(total=len(payloads), desc=name, unit="req", file=sys.stderr, leave=False)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal tokens
        while todo:
            i = todo.pop(0)
            t0 = time.perf_counter()
            try:
                n = await one(client, payloads[i])  # not `tokens += await ...`: that reads `tokens` before awaiting
                latencies.append(time.perf_counter() - t0)
                tokens += n
            except Exception as e:  # counted, reported, and the run fails
                failures.append(f"request {i}: {type(e).__name__}: {e}")
            bar.update()

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        await one(client, {**payloads[0], "max_tokens": 2})  # warm-up, not timed
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        wall = time.perf_counter() - t0
    bar.close()
    return latencies, failures, wall, tokens


async def open_load(url: str, payloads: list[dict], rate: float, name: str, seed: int = 0
                    ) -> tuple[list[float], list[str], float, int]:
    """Poisson arrivals at `rate` requests/s, each request sent at its time whatever is still in flight;
    a latency runs from the scheduled arrival to the last byte."""
    rng = random.Random(seed)
    latencies, failures, tokens = [], [], 0
    bar = tqdm(total=len(payloads), desc=f"{name} (open loop)", unit="req", file=sys.stderr, leave=False)

    async def send(client: httpx.AsyncClient, i: int, due: float) -> None:
        nonlocal tokens
        try:
            n = await one(client, payloads[i])
            latencies.append(time.perf_counter() - due)
            tokens += n
        except Exception as e:
            failures.append(f"request {i}: {type(e).__name__}: {e}")
        bar.update()

    limits = httpx.Limits(max_connections=len(payloads) + 1, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        await one(client, {**payloads[0], "max_tokens": 2})  # warm-up, not timed
        t0 = due = time.perf_counter()
        tasks = []
        for i in range(len(payloads)):
            due += rng.expovariate(rate)
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(send(client, i, due)))
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - t0
    bar.close()
    return latencies, failures, wall, tokens


def run_mode(ckpt: Path, name: str, flags: list[str], payloads: list[dict], clients: int, threads: int,
             rate: float = 0.0) -> Run:
    """One server; closed loop with `clients`, or open loop at `rate` requests/s when `rate` > 0."""
    with Server(ckpt, flags, threads) as srv:
        if rate > 0:
            lat, fail, wall, tokens = asyncio.run(open_load(srv.url, payloads, rate, name))
        else:
            lat, fail, wall, tokens = asyncio.run(load(srv.url, payloads, clients, name))
        sizes = srv.batch_sizes()
    sizes[1] = sizes.get(1, 0) - 1  # the untimed warm-up request
    return Run(name, lat, fail, wall, tokens, {k: v for k, v in sorted(sizes.items()) if v})


def table(runs: list[Run], sent: str) -> None:
    print(f"{'':<20}" + "".join(f"{r.name:>20}" for r in runs))
    rows = [
        ("requests ok", lambda r: f"{len(r.latencies)}"),
        ("failed", lambda r: f"{len(r.failures)}"),
        ("p50 latency (s)", lambda r: f"{r.pct(50):.2f}"),
        ("p90 latency (s)", lambda r: f"{r.pct(90):.2f}"),
        ("p99 latency (s)", lambda r: f"{r.pct(99):.2f}"),
        ("mean latency (s)", lambda r: f"{statistics.fmean(r.latencies):.2f}" if r.latencies else "nan"),
        ("wall time (s)", lambda r: f"{r.wall:.1f}"),
        ("requests / s", lambda r: f"{r.throughput:.2f}"),
        ("completion tokens", lambda r: f"{r.completion_tokens}"),
        ("tokens / s", lambda r: f"{r.completion_tokens / r.wall:.1f}"),
        ("mean batch size", lambda r: f"{sum(k * v for k, v in r.batch_sizes.items()) / max(1, sum(r.batch_sizes.values())):.1f}"),
        ("requests sent", lambda r: f"{len(r.latencies) + len(r.failures)} ({sent})"),
    ]
    for label, fmt in rows:
        print(f"{label:<20}" + "".join(f"{fmt(r):>20}" for r in runs))
    for r in runs:
        print(f"{r.name} batch sizes (size: count): {dict(sorted(r.batch_sizes.items()))}")
        for f in r.failures[:5]:
            print(f"{r.name} failure: {f}")
    work = {r.completion_tokens for r in runs}
    print(f"equal work: {'yes' if len(work) == 1 else 'NO'} (completion tokens {', '.join(f'{r.name} {r.completion_tokens}' for r in runs)})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ckpt", help="checkpoint directory (default: build the tiny test model in a temp dir)")
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--max-batch-size", type=int, default=16)
    p.add_argument("--batch-wait-ms", type=float, default=10.0)
    p.add_argument("--rounds", type=int, default=2, help="send all requests to each mode this many times, alternating")
    p.add_argument("--threads", type=int, default=1, help="server's torch threads (OMP_NUM_THREADS; 0: torch's default)")
    p.add_argument("--open-requests", type=int, default=100, help="requests of the open-loop run (0: skip it)")
    p.add_argument("--rate", type=float, default=0.0,
                   help="open-loop arrival rate, requests/s (default: 0.9 x the unbatched closed-loop throughput)")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        if args.ckpt:
            ckpt = Path(args.ckpt)
        else:
            from polyvlm.testing import make_tiny_checkpoint

            ckpt = make_tiny_checkpoint(Path(tmp) / "tiny")
        payloads = [body(i, args.max_tokens, args.image_size) for i in range(args.requests)]
        print(f"model {ckpt.name}: {args.requests} image requests ({args.image_size}px, max_tokens "
              f"{args.max_tokens}, seeded sampling, half streamed) from {args.clients} concurrent clients; "
              f"server threads: {args.threads or 'torch default'}")
        modes = {"batched": ["--max-batch-size", str(args.max_batch_size), "--batch-wait-ms", str(args.batch_wait_ms)],
                 "unbatched": ["--no-batching"]}
        runs = {name: Run(name, [], [], 0.0, 0, {}) for name in modes}
        # alternate the modes in rounds, so a change in machine load hits both alike
        per_round: list[float] = []
        for k in range(args.rounds):  # every round sends all the requests to each mode in turn
            tput = {}
            for name, flags in modes.items():
                r = run_mode(ckpt, name, flags, payloads, args.clients, args.threads)
                tput[name] = r.throughput
                agg = runs[name]
                agg.latencies += r.latencies
                agg.failures += r.failures
                agg.wall += r.wall
                agg.completion_tokens += r.completion_tokens
                for size, v in r.batch_sizes.items():
                    agg.batch_sizes[size] = agg.batch_sizes.get(size, 0) + v
            per_round.append(tput["batched"] / tput["unbatched"])
            print(f"round {k + 1}: batched {tput['batched']:.1f} req/s, unbatched {tput['unbatched']:.1f} req/s "
                  f"({per_round[-1]:.2f}x)", flush=True)
        runs = list(runs.values())
        print("closed loop:")
        table(runs, f"{args.rounds} x {args.requests}")
        rate = args.rate or 0.9 * runs[1].throughput
        open_runs = []
        if args.open_requests:
            print(f"open loop: {args.open_requests} requests, Poisson arrivals at {rate:.2f} req/s", flush=True)
            open_payloads = [body(args.requests + i, args.max_tokens, args.image_size) for i in range(args.open_requests)]
            open_runs = [run_mode(ckpt, name, flags, open_payloads, args.clients, args.threads, rate=rate)
                         for name, flags in modes.items()]
            table(open_runs, f"at {rate:.2f} req/s")
    failed = any(r.failures for r in [*runs, *open_runs])
    unequal = len({r.completion_tokens for r in runs}) > 1 or len({r.completion_tokens for r in open_runs}) > 1
    print(f"ratio: {runs[0].throughput / runs[1].throughput:.2f}")
    return 1 if failed or unequal else 0


if __name__ == "__main__":
    sys.exit(main())
