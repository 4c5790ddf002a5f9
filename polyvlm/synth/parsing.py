"""Reading structured answers out of model text: the first JSON object (fenced or bare), scores, QA pairs."""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


class ParseError(ValueError):
    """The model's text does not contain the structure the prompt asked for."""


def _balanced(text: str, start: int) -> str | None:
    """The bracketed span starting at `start` ({ or [), honouring strings; None if unbalanced."""
    open_ch = text[start]
    close_ch = "}" if open_ch == "{" else "]"
    depth, in_str, esc = 0, False, False
    for i in range(start, len(text)):
        c = text[i]
        if in_str:
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c == open_ch:
            depth += 1
        elif c == close_ch:
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    return None


def extract_json(text: str) -> Any:
    """The first JSON object or array in `text` (inside a ``` fence if there is one)."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for cand in candidates:
        for i, c in enumerate(cand):
            if c not in "{[":
                continue
            span = _balanced(cand, i)
            if span is None:
                continue
            try:
                return json.loads(span)
            except json.JSONDecodeError:
                continue
    raise ParseError(f"no JSON object in model output: {text[:120]!r}")


def get_pairs(obj: Any, max_pairs: int = 32) -> list[tuple[str, str]]:
    """`{"pairs": [{"question", "answer"}, ...]}` or a bare list -> [(question, answer)], empties dropped."""
    items = obj.get("pairs") if isinstance(obj, dict) else obj
    if not isinstance(items, list):
        raise ParseError("expected a list of question/answer pairs")
    pairs = []
    for it in items[:max_pairs]:
        if isinstance(it, dict):
            q = it.get("question", it.get("instruction", ""))
            a = it.get("answer", it.get("response", ""))
            if isinstance(q, str) and isinstance(a, str) and q.strip() and a.strip():
                pairs.append((q.strip(), a.strip()))
    if not pairs:
        raise ParseError("no non-empty question/answer pair")
    return pairs


_SCORE = re.compile(r"score\W{0,3}(\d+(?:\.\d+)?)", re.I)


def get_score(text: str, key: str = "score", lo: float = 1, hi: float = 5) -> tuple[float, dict]:
    """A numeric score in [lo, hi] from `{"score": n, ...}` or `score: n` text; returns (score, json or {})."""
    obj: dict = {}
    try:
        parsed = extract_json(text)
        if isinstance(parsed, dict):
            obj = parsed
    except ParseError:
        pass
    value: Any = obj.get(key)
    if value is None:
        m = _SCORE.search(text)
        value = m.group(1) if m else None
    try:
        score = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ParseError(f"no '{key}' in model output: {text[:120]!r}") from None
    if not lo <= score <= hi:
        raise ParseError(f"'{key}' {score} outside [{lo}, {hi}]")
    return score, obj
