"""A loopback OpenAI-compatible server whose replies come from a Python function of the prompt: stands in for the
GPT judge of lmms-eval's LLM-scored tasks (or for a model), and records every prompt it was sent and how many
pictures came with it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ScriptedJudge:
    def __init__(self, reply: Callable[[str], str]) -> None:
        self.prompts: list[str] = []
        self.pictures: dict[str, int] = {}  # prompt -> number of image parts sent with it
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

            def do_GET(self) -> None:
                self._send({"data": [{"id": "scripted-judge"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                content = body["messages"][-1]["content"]
                text = content if isinstance(content, str) else "".join(p.get("text", "") for p in content)
                judge.prompts.append(text)
                judge.pictures[text] = 0 if isinstance(content, str) else sum(p.get("type") == "image_url"
                                                                             for p in content)
                out = reply(text)
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
