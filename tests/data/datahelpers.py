"""Helpers for the data tests: crafted records, JSONL files, the location of the real Pangea sample."""

from __future__ import annotations

import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PANGEA_ENV = "POLYVLM_PANGEA_SAMPLE"
_SAMPLE = "datasets/pangea-sample"


def pangea_candidates(env: dict[str, str] | None = None, repo: Path = REPO) -> list[Path]:
    """Where the Pangea sample may be, in order: `$POLYVLM_PANGEA_SAMPLE`, `../shared` beside the clone, `/work/shared`.

    CI clones the project elsewhere (e.g. /check/work/main) with or without a `shared/` beside it, so the
    location relative to the repo is only one of the places looked at.
    """
    env = os.environ if env is None else env
    out = [Path(env[PANGEA_ENV]).expanduser()] if env.get(PANGEA_ENV) else []
    out += [repo.parent / "shared" / _SAMPLE, Path("/work/shared") / _SAMPLE]
    return out


def find_pangea(env: dict[str, str] | None = None, repo: Path = REPO) -> Path | None:
    """The first candidate holding `sample_data.json`, or None (the tests that need it then skip)."""
    return next((p for p in pangea_candidates(env, repo) if (p / "sample_data.json").is_file()), None)


PANGEA: Path | None = find_pangea()


def rec(rid: str = "r0", q: str = "<image>\nWhat is this?", a: str = "A cat.", **kw) -> dict:
    """One valid LLaVA record (with an image unless image=None is passed)."""
    out = {"id": rid, "image": "img.png", "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}],
           "language": "en"}
    out.update(kw)
    return {k: v for k, v in out.items() if v is not None}


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in records), encoding="utf-8")
    return path
