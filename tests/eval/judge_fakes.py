"""A scripted LLM judge on loopback: an OpenAI-compatible `/v1/chat/completions` whose reply to a request is chosen
by a function of the last user text (and, if it takes two arguments, how many times that text was asked), recording
every request body, prompt and the number of pictures sent with it. Stands in for the GPT judges of Pangea's and
lmms-eval's LLM-scored tasks."""

from __future__ import annotations

import inspect
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ScriptedJudge:
    """`reply(text, n)` (or `reply(text)`) -> the judge's answer to the n-th (1-based) request carrying user text
    `text`."""

    def __init__(self, reply: Callable[[str, int], str] | Callable[[str], str]) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.asked: dict[str, int] = {}
        self.prompts: list[str] = []
        self.pictures: dict[str, int] = {}  # prompt -> number of image parts sent with it
        two = len(inspect.signature(reply).parameters) >= 2
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
                content = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
                text = content if isinstance(content, str) else "".join(p.get("text", "") for p in content)
                with lock:
                    judge.bodies.append(body)
                    judge.prompts.append(text)
                    judge.pictures[text] = 0 if isinstance(content, str) else sum(p.get("type") == "image_url"
                                                                                 for p in content)
                    n = judge.asked[text] = judge.asked.get(text, 0) + 1
                out = reply(text, n) if two else reply(text)
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
