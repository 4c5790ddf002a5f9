"""A scripted LLM judge on loopback: an OpenAI-compatible `/v1/chat/completions` whose reply to a request is chosen
by a function of (user text, how many times that text was asked), recording every request body."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ScriptedJudge:
    """`reply(text, n)` -> the judge's answer to the n-th (1-based) request carrying user text `text`."""

    def __init__(self, reply: Callable[[str, int], str]) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.asked: dict[str, int] = {}
        lock = threading.Lock()
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, obj: Any) -> None:
                body = json.dumps(obj).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                self._send({"data": [{"id": "judge-model"}]})

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                text = next(m["content"] for m in body["messages"] if m["role"] == "user")
                text = text if isinstance(text, str) else "".join(p.get("text", "") for p in text)
                with lock:
                    judge.bodies.append(body)
                    n = judge.asked[text] = judge.asked.get(text, 0) + 1
                out = reply(text, n)
                self._send({"choices": [{"message": {"role": "assistant", "content": out}, "finish_reason": "stop"}],
                            "usage": {"prompt_tokens": 1, "completion_tokens": 1}})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedJudge:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
