"""A loopback OpenAI-compatible test server for synth: fixed delay, scripted stage-aware answers, injected
HTTP 500s and hangs. Used by the tests, the throughput benchmark and the README demo (no model needed).

    python -m polyvlm.synth.fake_server --port 8011 --delay 0.05

The stage comes from the `X-Polyvlm-Stage` header that the `openai` backend sends; `scripted_reply` answers
each stage in the format its prompt asks for (translations are canned sentences in the target language
that keep every protected marker and number, so they pass the checks).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from polyvlm.data.langs import language_name

SENTENCES = {
    "en": "The picture shows a busy street market where people buy fresh fruit and vegetables in the morning.",
    "de": "Das Bild zeigt einen belebten Straßenmarkt, auf dem die Leute am Morgen frisches Obst und Gemüse kaufen.",
    "es": "La imagen muestra un mercado callejero muy concurrido donde la gente compra fruta y verdura fresca por la mañana.",
    "fr": "L'image montre un marché de rue animé où les gens achètent des fruits et des légumes frais le matin.",
    "zh-Hans": "这张图片展示了一个热闹的街头市场，人们早上在那里购买新鲜的水果和蔬菜。",
    "sw": "Picha inaonyesha soko la mtaani lenye shughuli nyingi ambapo watu hununua matunda na mboga mboga asubuhi.",
    "hi": "तस्वीर में एक व्यस्त सड़क बाज़ार दिखाया गया है जहाँ लोग सुबह ताज़े फल और सब्ज़ियाँ खरीदते हैं।",
    "ar": "تُظهر الصورة سوقًا مزدحمًا في الشارع حيث يشتري الناس الفواكه والخضروات الطازجة في الصباح.",
    "ja": "この写真は、人々が朝に新鮮な果物や野菜を買うにぎやかな露天市場を示しています。",
}
_BY_NAME = {language_name(tag): tag for tag in SENTENCES}
_MARK = re.compile(r"⟦\d+⟧")
_NUM = re.compile(r"\d+(?:[.,]\d+)*")


@dataclass
class Reply:
    """What a responder may return instead of text: an HTTP error status (with `headers`, e.g. Retry-After), or a
    hang of `delay` seconds."""

    status: int = 200
    text: str = ""
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


Responder = Callable[[dict, str, int], "str | Reply"]


def _digest(text: str) -> int:
    return int(hashlib.md5(text.encode()).hexdigest()[:8], 16)


def _user_text(body: dict) -> str:
    parts = []
    for m in body.get("messages", []):
        c = m.get("content")
        if isinstance(c, str):
            parts.append(c)
        elif isinstance(c, list):
            parts += [p.get("text", "") for p in c if isinstance(p, dict) and p.get("type") == "text"]
    return "\n".join(parts)


def fake_translation(source: str, target: str) -> str:
    """A canned sentence in `target` carrying every marker and number of `source`, roughly as long."""
    sentence = SENTENCES.get(target, SENTENCES["en"])
    keep = " ".join(_MARK.findall(source) + _NUM.findall(_MARK.sub(" ", source)))
    body = sentence
    while len(body) < 0.5 * len(source):
        body += " " + sentence
    return f"{keep} {body}".strip()


def scripted_reply(body: dict, stage: str, n: int) -> str:
    """Plausible answers per stage, deterministic in the request text."""
    text = _user_text(body)
    h = _digest(text)
    if stage == "categorize":
        return json.dumps({"category": "general"})
    if stage == "rewrite":
        q = re.search(r"Original (?:question|instruction): (.*)", text)
        topic = (q.group(1) if q else "the image")[:80]
        return json.dumps({"pairs": [{"question": f"Looking at the image, {topic} Explain your answer. [{h % 9973}]",
                                      "answer": f"Step 1: look at the relevant region. Step 2: reason about {topic} "
                                                f"Therefore the answer follows. [{h % 9973}]"}]})
    if stage == "judge":
        score = 1 + h % 5
        return json.dumps({"score": score, "reason": f"scripted score {score}"})
    if stage == "translate":
        m = re.search(r"into (.+?)\.\n", text)
        target = _BY_NAME.get(m.group(1).strip(), "en") if m else "en"
        src = re.search(r"<text>\n(.*)\n</text>", text, re.S)
        return fake_translation(src.group(1) if src else "", target)
    if stage == "score":
        return json.dumps({"informativeness": 1 + h % 5, "topic": "street market", "country": "Kenya"})
    if stage == "recaption":
        m = re.search(r"entirely in (.+?):", text)
        lang = _BY_NAME.get(m.group(1).strip(), "en") if m else "en"
        s = SENTENCES.get(lang, SENTENCES["en"])
        return json.dumps({"caption_prompt": s[:40], "caption": s,
                           "pairs": [{"question": s[:30] + "?", "answer": s}, {"question": s[:20] + "?", "answer": s}]},
                          ensure_ascii=False)
    return "OK"


class FakeOpenAIServer:
    """`/v1/chat/completions` on 127.0.0.1 in a background thread. `responder(body, stage, n)` gives the reply
    of the n-th request (from 0); `delay` seconds pass before every answer."""

    def __init__(self, responder: Responder = scripted_reply, delay: float = 0.0, port: int = 0):
        self.responder, self.delay, self.port = responder, delay, port
        self.requests = 0
        self.by_stage: Counter = Counter()
        self.statuses: Counter = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path = lines[0].split(" ")[:2]
                headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:] if ":" in x)}
                raw = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                status, payload, extra = await self._respond(method, path, headers, raw)
                data = json.dumps(payload, ensure_ascii=False).encode()
                more = "".join(f"{k}: {v}\r\n" for k, v in extra.items())
                writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(data)}"
                             f"\r\n{more}Connection: keep-alive\r\n\r\n".encode() + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def _respond(self, method: str, path: str, headers: dict, raw: bytes) -> tuple[int, Any, dict[str, str]]:
        if method == "GET" and path.endswith("/models"):
            return 200, {"object": "list", "data": [{"id": "fake", "object": "model"}]}, {}
        if method != "POST" or not path.endswith("/chat/completions"):
            return 404, {"error": {"message": f"no route {method} {path}"}}, {}
        n = self.requests
        self.requests += 1
        stage = headers.get("x-polyvlm-stage", "")
        self.by_stage[stage] += 1
        body = json.loads(raw or b"{}")
        reply = self.responder(body, stage, n)
        if isinstance(reply, str):
            reply = Reply(text=reply)
        await asyncio.sleep(self.delay + reply.delay)
        self.statuses[reply.status] += 1
        if reply.status != 200:
            return reply.status, {"error": {"message": reply.text or "injected error", "type": "server_error"}}, reply.headers
        return 200, {"id": f"chatcmpl-{n}", "object": "chat.completion", "created": int(time.time()),
                     "model": body.get("model", "fake"),
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.text},
                                  "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}, reply.headers

    async def _serve(self, ready: threading.Event) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        ready.set()
        async with self._server:
            await self._server.serve_forever()

    def start(self) -> FakeOpenAIServer:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self._serve(ready))
            except asyncio.CancelledError:
                pass
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=run, daemon=True, name="fake-openai")
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake OpenAI server did not start")
        return self

    def stop(self) -> None:
        def cancel_all() -> None:  # runs in the server's loop thread
            for task in asyncio.all_tasks():
                task.cancel()

        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(cancel_all)
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m polyvlm.synth.fake_server", description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=8011)
    ap.add_argument("--delay", type=float, default=0.05, help="seconds before every answer")
    args = ap.parse_args(argv)
    server = FakeOpenAIServer(delay=args.delay, port=args.port).start()
    print(f"fake OpenAI server on {server.url} (delay {args.delay}s)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
