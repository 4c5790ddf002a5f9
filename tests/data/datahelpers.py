"""Helpers for the data tests: crafted records, JSONL files, the path of the real Pangea sample."""

from __future__ import annotations

import json
from pathlib import Path

PANGEA = Path(__file__).resolve().parents[2].parent / "shared/datasets/pangea-sample"


def rec(rid: str = "r0", q: str = "<image>\nWhat is this?", a: str = "A cat.", **kw) -> dict:
    """One valid LLaVA record (with an image unless image=None is passed)."""
    out = {"id": rid, "image": "img.png", "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}],
           "language": "en"}
    out.update(kw)
    return {k: v for k, v in out.items() if v is not None}


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in records), encoding="utf-8")
    return path
