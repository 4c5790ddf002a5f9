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
