"""Shared helpers for the serve tests: media bytes, data URIs, a live uvicorn server, `polyvlm serve` as a process."""

from __future__ import annotations

import base64
import contextlib
import io
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf
import uvicorn
from PIL import Image


def png_bytes(color: tuple[int, int, int] = (220, 20, 20), size: tuple[int, int] = (32, 24)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def data_uri(raw: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(raw).decode()}"


def wav_bytes(seconds: float = 0.5, rate: int = 8000, channels: int = 1) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, np.stack([wave] * channels, 1) if channels > 1 else wave, rate, format="WAV")
    return buf.getvalue()


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@contextlib.contextmanager
def live_server(app) -> Iterator[str]:
    """Run `app` under uvicorn on a free loopback port in a thread; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def write_webm(path: Path, n_frames: int = 10, color: tuple[int, int, int] = (10, 10, 230)) -> Path:
    """A VP9 WebM clip of one colour (a codec Chromium plays, so the demo shows no 'not playable' error)."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libvpx-vp9", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        frame = np.zeros((32, 32, 3), np.uint8)
        frame[...] = color
        for _ in range(n_frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def serve_process(ckpt: Path, *flags: str, env: dict | None = None, timeout: float = 120) -> Iterator[str]:
    """`python -m polyvlm serve CKPT --port P FLAGS` as a child process; yields its base URL once /health answers."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "polyvlm", "serve", str(ckpt), "--port", str(port), *flags],
                            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"polyvlm serve exited with {proc.returncode}: {proc.stdout.read()}")
            if time.monotonic() > deadline:
                raise RuntimeError("polyvlm serve did not come up")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url
        assert proc.poll() is None, f"polyvlm serve died: {proc.stdout.read()}"
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
