"""Test and benchmark helpers: a tiny random-init checkpoint built offline in a second or two; a loopback HTTP
server of fixed files."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from polyvlm.config import load_config
from polyvlm.models import factory
from polyvlm.models.checkpoint import is_checkpoint, save_checkpoint

TINY_RECIPE = Path(__file__).resolve().parent / "quickstart" / "tiny.yaml"


def make_tiny_checkpoint(path: str | Path, seed: int = 0, overrides: list[str] | None = None) -> Path:
    """Build the tiny quick start model (CLIP-config ViT 64px, mlp2x_gelu, 2-layer Qwen2, builtin:tiny
    tokenizer) with a fixed seed and save it at `path` (reused when already there). Returns `path`."""
    path = Path(path)
    if is_checkpoint(path) and not overrides:
        return path
    torch.manual_seed(seed)
    cfg = load_config(TINY_RECIPE, overrides)
    model, processor = factory.build(cfg.model)
    save_checkpoint(model, processor, cfg, path)
    return path


def make_tiny_pandagpt(path: str | Path, seed: int = 0) -> Path:
    """A tiny PandaGPT release at `path`: `vicuna/` (a 2-layer Llama with the builtin:tiny tokenizer),
    `imagebind.pth` (the tiny ImageBind, joint width 24) and `delta/` holding the released delta layout
    (`pytorch_model.pt`: fp16 `llama_proj.*` + LoRA r 32 on q/k/v/o) with `pandagpt.json` naming the other two;
    random weights, fixed seed. Returns the delta directory (what `pandagpt:DIR` and `polyvlm chat DIR` take)."""
    import json
    from collections import OrderedDict

    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from polyvlm.models.encoders.imagebind import ImageBindModel, imagebind_tiny_config

    root, delta_dir = Path(path), Path(path) / "delta"
    if (delta_dir / "pytorch_model.pt").is_file():
        return delta_dir
    torch.manual_seed(seed)
    tok = factory.builtin_tokenizer("builtin:tiny")
    llama = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=4, bos_token_id=tok.bos_token_id,
                                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                                         initializer_range=0.5))  # sharp logits: greedy answers follow the input
    llama.save_pretrained(root / "vicuna")
    tok.save_pretrained(root / "vicuna")
    ib = ImageBindModel(imagebind_tiny_config(out_dim=24))
    with torch.no_grad():
        for p in ib.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    torch.save(ib.state_dict(), root / "imagebind.pth")
    peft = get_peft_model(llama, LoraConfig(r=32, lora_alpha=32, lora_dropout=0.1, task_type="CAUSAL_LM",
                                            target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    delta = OrderedDict(("llama_model." + k, (torch.randn_like(v) * 0.05).half())
                        for k, v in peft.state_dict().items() if "lora_" in k)
    delta["llama_proj.weight"] = (torch.randn(64, 24) * 3.0).half()  # a strong row: answers follow the media
    delta["llama_proj.bias"] = (torch.randn(64) * 0.1).half()
    delta_dir.mkdir(parents=True, exist_ok=True)
    (delta_dir / "pandagpt.json").write_text(json.dumps({"llm": "../vicuna", "imagebind": "../imagebind.pth",
                                                        "imagebind_arch": {"variant": "tiny", "out_dim": 24},
                                                        "max_tgt_len": 128}))
    torch.save(delta, delta_dir / "pytorch_model.pt")
    return delta_dir


def write_pandagpt_media(directory: str | Path, seed: int = 0) -> dict[str, Path]:
    """One small file per ImageBind modality in `directory` (random content, fixed seed): `photo.png` (RGB),
    `heat.png` (grey thermal), `depth.png` (16-bit), `beep.wav` (3 s, 16 kHz), `walk.npy` (IMU [6, 2000]) and
    `clip.mp4` (2.5 s, 10 fps). Returns modality -> path."""
    import av
    import numpy as np
    import soundfile as sf
    from PIL import Image

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)).save(d / "photo.png")
    Image.fromarray(rng.integers(0, 255, (96, 96), dtype=np.uint8)).save(d / "heat.png")
    Image.fromarray(rng.integers(0, 65535, (80, 100), dtype=np.uint16)).save(d / "depth.png")
    sf.write(d / "beep.wav", (0.3 * np.sin(np.arange(48_000) * (0.05 + 0.2 * rng.random()))).astype(np.float32), 16_000)
    np.save(d / "walk.npy", rng.standard_normal((6, 2000)).astype(np.float32))
    with av.open(str(d / "clip.mp4"), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        for _ in range(25):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (32, 48, 3), dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return {"image": d / "photo.png", "thermal": d / "heat.png", "depth": d / "depth.png", "audio": d / "beep.wav",
            "imu": d / "walk.npy", "video": d / "clip.mp4"}


@contextmanager
def loopback_http(files: dict[str, bytes], redirects: dict[str, str] | None = None) -> Iterator[str]:
    """A server on 127.0.0.1 answering GET `path` with `files[path]`, 302 to `redirects[path]`, else 404;
    yields its base URL (`http://127.0.0.1:PORT`) and stops on exit."""
    moved = redirects or {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = files.get(self.path)
            if body is not None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif self.path in moved:
                self.send_response(302)
                self.send_header("Location", moved[self.path])
                self.end_headers()
            else:
                self.send_error(404)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
