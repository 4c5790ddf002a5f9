"""A tiny TIGER-Lab/MEGA-Bench in its published layout: `<config>/test-00000-of-00001.parquet` (the Hub repo's
config folders; every column a string, lists and dicts as Python literals) and `data.zip` at the repo root holding
the media under `data/...` (rows name them `./data/...`, as MEGA-Bench's results files show)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from PIL import Image

COLUMNS = ("id", "task_name", "task_description", "example_text", "example_media", "query_text", "query_media",
           "global_media", "answer", "metric_info", "eval_context")


def png(colour: tuple[int, int, int] = (10, 200, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buf, format="PNG")
    return buf.getvalue()


def info(fields: dict[str, str], aggregation: str = "mean", parser: str = "json",
         weights: dict[str, float] | None = None, aux: dict[str, str] | None = None) -> str:
    """A metric_info literal as the dataset stores it."""
    value: dict[str, Any] = {"field_score_function": fields, "aggregation": {
        "function": aggregation, "field_weights": weights or {k: 1 for k in fields}}, "response_parse_function": parser}
    if aux:
        value["global_aux_metrics"] = aux
    return repr(value)


def row(id_: int, task: str, answer: dict[str, Any], metric_info: str, query_media: list[str] | None = None,
        query_text: str = "Question: <image>", description: str = "Answer in JSON.", example_text: str = "",
        example_media: list[str] | None = None, global_media: list[str] | None = None,
        eval_context: dict[str, Any] | None = None) -> dict[str, str]:
    return {"id": id_, "task_name": task, "task_description": description, "example_text": example_text,
            "example_media": repr(example_media or []), "query_text": query_text,
            "query_media": repr(query_media if query_media is not None else ["./data/t/q.png"]),
            "global_media": repr(global_media or []), "answer": repr(answer), "metric_info": metric_info,
            "eval_context": repr(eval_context or {})}


def write_repo(root: Path, config: str, rows: list[dict[str, Any]], media: dict[str, bytes] | None = None) -> Path:
    """The repo folder `root/TIGER-Lab/MEGA-Bench` with one config's parquet and data.zip."""
    from datasets import Dataset, Features, Value

    repo = root / "TIGER-Lab" / "MEGA-Bench"
    (repo / config).mkdir(parents=True, exist_ok=True)
    features = Features({c: Value("int64") if c == "id" else Value("string") for c in COLUMNS})
    Dataset.from_dict({c: [r[c] for r in rows] for c in COLUMNS}, features=features).to_parquet(
        str(repo / config / "test-00000-of-00001.parquet"))
    with zipfile.ZipFile(repo / "data.zip", "w") as zf:
        for name, data in (media or {"data/t/q.png": png()}).items():
            zf.writestr(name, data)
    return repo
