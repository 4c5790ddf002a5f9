"""One command that checks polyvlm on a CUDA machine at real model shapes, and says what it ran:

    PYTHONPATH=. python benchmarks/gpu_check.py [--quick]

1. training: a SigLIP-so400m-shaped tower + Qwen2-0.5B-shaped LM (benchmarks/train_throughput.py, shape `gpu`),
   polyvlm (packing: flash-attn's varlen kernel when installed, chunked or Liger loss) against Hugging Face
   Llava fed padded, length-grouped and packed (the strongest of them is the baseline);
2. eval: greedy generation of 64 image questions at batch 1 and batch 32 (the in-process batching generator);
3. serve: `polyvlm serve`'s app on loopback, 64 concurrent streaming-free requests, batching on and off.

Each part prints tokens/s, peak memory, MFU (model FLOPs / (time x the GPU's dense bf16 peak)) and its ratio;
optional packages (flash-attn, liger-kernel) are used when present and named. Nothing is installed at run time:
a standard CUDA PyTorch image (torch, transformers, peft, safetensors, numpy, Pillow, pyyaml, tqdm, pyarrow,
fastapi, uvicorn, httpx) is enough. Without CUDA it says so and exits 0. About 5 minutes on one H100.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# dense bf16 tensor-core peaks (TFLOP/s, no sparsity), from the vendors' data sheets; matched on the device name
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100 SXM": 989.0, "H100 80GB HBM3": 989.0, "H100 NVL": 835.0, "H100 PCIe": 756.0,
                    "H100": 989.0,
                    "GH200": 989.0, "B200": 2250.0, "A100": 312.0, "A800": 312.0, "L40S": 362.0, "L40": 181.0,
                    "A10G": 70.0, "A10": 125.0, "L4": 121.0, "RTX 4090": 165.0, "RTX 3090": 71.0, "A6000": 155.0}


def peak_tflops(name: str) -> float | None:
    for key in sorted(PEAK_BF16_TFLOPS, key=len, reverse=True):
        if key.lower() in name.lower():
            return PEAK_BF16_TFLOPS[key]
    return None


def mfu(flops_per_s: float, peak: float | None) -> str:
    return "n/a (unknown GPU peak)" if not peak else f"{100 * flops_per_s / (peak * 1e12):.1f}%"


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def lm_params(llm: dict) -> int:
    """Parameters of a Qwen2/Llama-shaped decoder + its (tied) head: what each token's 6N / 2N FLOPs count."""
    d, f, L, h, kv = (llm["hidden_size"], llm["intermediate_size"], llm["num_hidden_layers"],
                      llm["num_attention_heads"], llm["num_key_value_heads"])
    head_dim = d // h
    per_layer = d * d * 2 + 2 * d * kv * head_dim + 3 * d * f  # q, o, k, v, gate/up/down
    return L * per_layer + llm["vocab_size"] * d


def check_training(shape: str, samples: int | None, peak: float | None) -> None:
    from benchmarks.train_throughput import SHAPES

    cmd = [sys.executable, str(ROOT / "benchmarks/train_throughput.py"), "--shape", shape, "--device", "cuda"]
    if samples:
        cmd += ["--samples", str(samples)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        print(f"training: FAILED\n{r.stderr[-3000:]}")
        return
    lines = r.stdout.splitlines()
    results = json.loads(next(x for x in lines if x.startswith("RESULTS "))[8:])
    n = lm_params(SHAPES[shape]["llm"])
    print("training (" + SHAPES[shape]["describe"] + ")")
    for side, res in results.items():
        print(f"  {side:12} {res['supervised_tokens_per_s']:>10.0f} supervised tok/s {res['tokens_per_s']:>10.0f} tok/s "
              f"peak {res['peak_mb']:>7.0f} MB  MFU {mfu(6 * n * res['tokens_per_s'], peak)}")
    print("  " + next(x for x in lines if x.startswith("ratio: ")) + "  (polyvlm / fastest HF baseline, supervised tok/s)")


def _generator(shape: str):
    import torch

    from benchmarks.train_throughput import SHAPES
    from polyvlm.config import ModelConfig
    from polyvlm.models import factory
    from polyvlm.models.generate import VLMGenerator

    s = SHAPES[shape]
    cfg = ModelConfig(vision_config=dict(s["vision"]), llm_config=dict(s["llm"]), tokenizer="builtin:tiny",
                      template="chatml", max_length=2048, vision_feature_layer=-1, vision_select="full")
    model, proc = factory.build(cfg)
    model = model.to("cuda", torch.bfloat16).eval()
    return VLMGenerator(model, proc, name=f"polyvlm-{shape}")


def _requests(n: int, image_size: int, max_new: int):
    from PIL import Image

    from polyvlm.infer import ChatRequest

    img = Image.new("RGB", (image_size, image_size), (200, 30, 30))
    return [ChatRequest([{"role": "user", "content": f"Describe the picture, part {i}."}], images=[img],
                        max_new_tokens=max_new, temperature=0.0) for i in range(n)]


def check_eval(gen, shape: str, n: int, peak: float | None) -> dict[int, float]:
    import torch

    from benchmarks.train_throughput import SHAPES

    size = SHAPES[shape]["vision"]["image_size"]
    n_params = lm_params(SHAPES[shape]["llm"])
    rates = {}
    print("eval (greedy generation, 32 new tokens per request)")
    for bs in (1, 32):
        reqs = _requests(n, size, 32)
        gen.generate(reqs[:1])  # warm-up (kernels, allocator)
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
        t0 = time.time()
        tokens = 0
        for i in range(0, n, bs):
            tokens += sum(c.completion_tokens + c.prompt_tokens for c in gen.generate(reqs[i : i + bs]))
        torch.cuda.synchronize()
        dt = time.time() - t0
        rates[bs] = n / dt
        print(f"  batch {bs:>2}: {n / dt:8.2f} samples/s {tokens / dt:10.0f} tok/s  peak "
              f"{torch.cuda.max_memory_allocated() / 2**20:7.0f} MB  MFU {mfu(2 * n_params * tokens / dt, peak)}")
    print(f"  ratio: {rates[32] / rates[1]:.2f}  (batch 32 / batch 1 samples/s)")
    return rates


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _load(url: str, n: int, size: int) -> tuple[float, int]:
    import base64
    import io

    import httpx
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), (30, 30, 200)).save(buf, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    body = lambda i: {"model": "m", "max_tokens": 32, "temperature": 0, "messages": [{"role": "user", "content": [  # noqa: E731
        {"type": "text", "text": f"What is in picture {i}?"}, {"type": "image_url", "image_url": {"url": uri}}]}]}
    async with httpx.AsyncClient(timeout=600) as client:
        t0 = time.time()
        outs = await asyncio.gather(*[client.post(f"{url}/v1/chat/completions", json=body(i)) for i in range(n)])
        dt = time.time() - t0
    bad = [o.status_code for o in outs if o.status_code != 200]
    if bad:
        raise RuntimeError(f"serve: {len(bad)} of {n} requests failed ({bad[:5]})")
    return dt, sum(o.json()["usage"]["completion_tokens"] for o in outs)


def check_serve(gen, shape: str, n: int) -> None:
    import uvicorn

    from benchmarks.train_throughput import SHAPES
    from polyvlm.serve.app import create_app
    from polyvlm.serve.config import ServeConfig

    size = SHAPES[shape]["vision"]["image_size"]
    rates = {}
    print(f"serve ({n} concurrent requests on loopback, 32 new tokens each)")
    for name, batch in (("batched", 32), ("one at a time", 1)):
        port = _free_port()
        app = create_app(gen, ServeConfig(port=port, max_batch_size=batch, served_model_name="m"))
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            dt, tokens = asyncio.run(_load(f"http://127.0.0.1:{port}", n, size))
        finally:
            server.should_exit = True
            thread.join(30)
        rates[name] = n / dt
        print(f"  {name:14} {n / dt:8.2f} requests/s {tokens / dt:10.0f} completion tok/s")
    print(f"  ratio: {rates['batched'] / rates['one at a time']:.2f}  (batched / one at a time requests/s)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="the 2-layer `real` shape and fewer samples (a smoke run)")
    args = p.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        print(f"gpu_check: no CUDA device here (torch {torch.__version__}, {built}); nothing to check. "
              "Run it on a GPU machine: PYTHONPATH=. python benchmarks/gpu_check.py")
        return 0
    name = torch.cuda.get_device_name(0)
    peak = peak_tflops(name)
    print(f"device: {name} (capability {'.'.join(map(str, torch.cuda.get_device_capability(0)))}, "
          f"bf16 {'yes' if torch.cuda.is_bf16_supported() else 'no'}, peak bf16 {peak or '?'} TFLOP/s), torch "
          f"{torch.__version__}")
    print("paths: packed attention " + ("flash-attn varlen" if _has("flash_attn") else "SDPA per sample (no flash-attn)")
          + "; loss " + ("Liger fused linear cross-entropy" if _has("liger_kernel") else "chunked cross-entropy (no liger-kernel)"))
    shape = "real" if args.quick else "gpu"
    check_training(shape, 64 if args.quick else None, peak)
    gen = _generator(shape)
    n = 32 if args.quick else 64
    check_eval(gen, shape, n, peak)
    check_serve(gen, shape, n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
