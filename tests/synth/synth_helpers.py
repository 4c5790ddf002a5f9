"""Helpers for synth tests: an in-process scripted backend, record builders, reading final shards."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from polyvlm.infer import ChatRequest
from polyvlm.synth.backends import Backend, BackendConfig
from polyvlm.synth.fake_server import scripted_reply


class ScriptBackend(Backend):
    """In-process backend: `fn(request) -> text`; every request is kept for assertions."""

    kind = "script"

    def __init__(self, fn: Callable[[ChatRequest], str]):
        super().__init__(BackendConfig(type="script", model="script"))
        self.fn = fn
        self.requests: list[ChatRequest] = []

    async def complete(self, req: ChatRequest) -> str:
        self.requests.append(req)
        return self.fn(req)


def scripted(req: ChatRequest) -> str:
    """The fake server's stage-aware answers, without HTTP."""
    return scripted_reply({"messages": req.messages}, req.tag, 0)


def conv(rid: str, question: str, answer: str, image: str | list | None = "red.png", **extra) -> dict:
    rec = {"id": rid, "conversations": [{"from": "human", "value": ("<image>\n" if image else "") + question},
                                        {"from": "gpt", "value": answer}], **extra}
    if image is not None:
        rec["image"] = image
    return rec


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def read_final(out: Path) -> list[dict]:
    return [json.loads(x) for p in sorted((out / "final").glob("part-*.jsonl")) for x in p.read_text().splitlines()]
