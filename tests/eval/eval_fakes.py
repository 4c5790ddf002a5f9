"""Test doubles for eval: a deterministic fake Generator that looks at the picture's colour and answers in the
question's language and style, and a loopback OpenAI-compatible HTTP server built on it."""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from PIL import Image

from polyvlm.infer import ChatRequest, Completion

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "eval"
RGB = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 170, 50)}
NAMES = {
    "en": {"red": "red", "blue": "blue", "green": "green"},
    "zh": {"red": "红色", "blue": "蓝色", "green": "绿色"},
    "pt": {"red": "vermelho", "blue": "azul", "green": "verde"},
    "ar": {"red": "أحمر", "blue": "أزرق", "green": "أخضر"},
    "tr": {"red": "kırmızı", "blue": "mavi", "green": "yeşil"},
    "ru": {"red": "красный", "blue": "синий", "green": "зелёный"},
}
STYLE = {"en": "The answer is {}.", "zh": "答案：{}", "pt": "Resposta: {}", "ar": "الإجابة: {}", "tr": "Cevap: {}",
         "ru": "Ответ: {}"}
STATEMENT_NAMES = {"id": {"red": "merah", "blue": "biru", "green": "hijau"},
                   "sw": {"red": "nyekundu", "blue": "bluu", "green": "kijani"}}
YES_NO = {"tr": ("Evet.", "Hayır."), "zh": ("是的。", "不是。"), "id": ("Ya, benar.", "Tidak."), "sw": ("Ndiyo.", "Hapana.")}
CYRILLIC = {"A": "А", "B": "В", "C": "С"}


def colour_of(image: Image.Image) -> str:
    px = image.convert("RGB").getpixel((image.width // 2, image.height // 2))
    return min(RGB, key=lambda c: sum((a - b) ** 2 for a, b in zip(RGB[c], px)))


def answer(text: str, images: list[Image.Image]) -> str:
    """What the fake model says about `text` and its pictures."""
    colour = colour_of(images[0]) if images else None
    options = dict(re.findall(r"^([A-Z])\. (.+)$", text, re.MULTILINE))
    if options and colour:
        for lang, names in NAMES.items():
            for letter, opt in options.items():
                if opt.strip() == names[colour]:
                    shown = CYRILLIC.get(letter, letter) if lang == "ru" else letter
                    return STYLE[lang].format(shown)
        return "I cannot tell."
    if "Tom has" in text:
        return "3 + 4 = 7. The answer is 7."
    if re.search(r"\d", text):
        return "The answer is 42."
    if colour:
        for lang, names in {**NAMES, **STATEMENT_NAMES}.items():
            if any(n in text for n in names.values()):  # a statement to verify (MaRVL style)
                yes, no = YES_NO.get(lang, ("yes", "no"))
                return yes if names[colour] in text else no
        markers = {"zh": "图片", "tr": "Resim", "pt": "De que cor", "ar": "ما لون", "ru": "Какого цвета"}
        for lang, marker in markers.items():
            if marker in text:
                return NAMES[lang][colour]
        return NAMES["en"][colour]
    return "hello"


class FakeGenerator:
    """Implements `polyvlm.infer.Generator`; records the batches it was given."""

    name = "fake"
    modalities = {"image"}
    max_context = 4096

    def __init__(self, fail_on: str | None = None, stop_after_batches: int | None = None):
        self.batches: list[int] = []
        self.prompts: list[str] = []
        self.fail_on, self.stop_after = fail_on, stop_after_batches

    def count_prompt_tokens(self, request: ChatRequest) -> int:
        return sum(len(m["content"].split()) for m in request.messages)

    def generate(self, requests: list[ChatRequest], on_token: Any = None) -> list[Completion]:
        if self.stop_after is not None and len(self.batches) >= self.stop_after:
            raise KeyboardInterrupt("simulated interruption")
        text = [r.messages[-1]["content"] for r in requests]
        if self.fail_on and any(self.fail_on in t for t in text):
            raise ValueError("prompt too long")
        self.batches.append(len(requests))
        self.prompts.extend(text)
        outs = [answer(t, r.images) for t, r in zip(text, requests)]
        return [Completion(o, self.count_prompt_tokens(r), len(o.split()), "stop") for o, r in zip(outs, requests)]


class FakeServer:
    """An OpenAI-compatible server on 127.0.0.1: answers like FakeGenerator, plays judge, and misbehaves on
    request: `FLAKY` fails with 503 on its first attempt, `RATE` with 429 and `Retry-After: 1`, `BROKEN` always
    gets a 400."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[str] = []
        self.attempts: dict[str, int] = {}
        self.delay, self.in_flight, self.max_in_flight = delay, 0, 0
        self.times: list[float] = []  # when the `RATE` request arrived
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, obj: Any, headers: dict[str, str] | None = None) -> None:
                body = json.dumps(obj).encode()
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._send(200, {"data": [{"id": "fake-model"}]})

            def do_POST(self) -> None:
                with server.lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    if server.delay:
                        time.sleep(server.delay)
                    self._answer()
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _answer(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                text, images = "", []
                for m in body["messages"]:
                    parts = m["content"] if isinstance(m["content"], list) else [{"type": "text", "text": m["content"]}]
                    for p in parts:
                        if p["type"] == "text":
                            text += p["text"]
                        else:
                            data = p["image_url"]["url"].split(",", 1)[1]
                            images.append(Image.open(io.BytesIO(base64.b64decode(data))))
                server.calls.append(text)
                n = server.attempts[text] = server.attempts.get(text, 0) + 1
                if "BROKEN" in text:
                    return self._send(400, {"error": "bad request"})
                if "FLAKY" in text and n == 1:
                    return self._send(503, {"error": "busy"})
                if "RATE" in text and n == 1:
                    server.times.append(time.monotonic())
                    return self._send(429, {"error": "slow down"}, {"Retry-After": "1"})
                if "RATE" in text:
                    server.times.append(time.monotonic())
                if "Decide which option" in text:  # MCQ judge
                    reply = "A" if "blood" in text else "Z"
                elif "Score: N" in text:
                    reply = "Good and fluent.\nScore: 4" if "red" in text or "红" in text else "Unclear reply."
                elif "Assistant 1" in text:
                    reply = "8 6\nThe second answer is shorter."
                else:
                    reply = answer(text, images)
                self._send(200, {"choices": [{"message": {"role": "assistant", "content": reply},
                                              "finish_reason": "stop"}],
                                 "usage": {"prompt_tokens": len(text.split()), "completion_tokens": len(reply.split())}})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.handle_error = lambda *a: None  # type: ignore[method-assign]  # a killed client's broken pipe
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# Seeds 0 and 2 of the tiny model happen to give one answer whatever they are shown, which would make a
# batch-invariance check vacuous; seed 3 answers almost every prompt differently (the tests check it).
VARIED_SEED = 3


def tiny_checkpoint(path: Path) -> Path:
    """A tiny random-init polyvlm checkpoint whose greedy answers differ from prompt to prompt."""
    from polyvlm.testing import make_tiny_checkpoint

    return Path(make_tiny_checkpoint(path, seed=VARIED_SEED))
