"""Fixtures for the media tests: a loopback HTTP server with an image, a redirect, a large file and a 404."""

from __future__ import annotations

import http.server
import threading

import pytest
from media_helpers import png_bytes


@pytest.fixture(scope="module")
def http_server():
    png = png_bytes((10, 200, 10))
    big = b"\0" * 50_000

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = {"/img.png": png, "/big.bin": big}.get(self.path)
            if body is not None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "/img.png")
                self.end_headers()
            else:
                self.send_error(404)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
