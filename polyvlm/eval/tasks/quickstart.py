"""The `quickstart` task: held-out synthetic scenes (fixed seed, six languages) from polyvlm.data.scenes."""

from __future__ import annotations

import importlib
import importlib.util
import os
import tempfile
from pathlib import Path
from typing import Any

from polyvlm.data.records import Record, parse_record, resolve_media
from polyvlm.eval.tasks.base import Sample, TaskError
from polyvlm.eval.tasks.jsonl import VQA_PROMPT, JsonlTask

SCENES_MODULE = "polyvlm.data.scenes"


def quickstart_available() -> bool:
    """True once the quick start's scene generator exists (the task registers only then)."""
    try:
        return importlib.util.find_spec(SCENES_MODULE) is not None
    except ModuleNotFoundError:
        return False


class QuickstartTask(JsonlTask):
    """Records from `make_eval_records(seed, n_per_language, out_dir)`: an image, a question and a one-word
    answer per language; scored by exact match and VQA accuracy. `options`: seed, n_per_language, dir."""

    default_metrics = ["exact_match", "vqa_accuracy"]
    default_prompt = VQA_PROMPT

    def load(self) -> list[Sample]:
        if not quickstart_available():
            raise TaskError(f"task {self.name}: {SCENES_MODULE} is not installed")
        scenes = importlib.import_module(SCENES_MODULE)
        seed = int(self.spec.options.get("seed", 1234))
        n = int(self.spec.options.get("n_per_language", 8))
        out_dir = Path(self.spec.options.get("dir") or Path(tempfile.gettempdir()) / "polyvlm_quickstart_eval" / f"seed{seed}_n{n}")
        out_dir.mkdir(parents=True, exist_ok=True)
        # drawn in a private folder, then each file moved in with one atomic rename: ranks and concurrent runs
        # sharing `out_dir` never read a half-written picture (the scenes of a seed are the same every time)
        with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}.") as tmp:
            records = scenes.make_eval_records(seed=seed, n_per_language=n, out_dir=Path(tmp))
            for f in sorted(Path(tmp).rglob("*")):
                if f.is_file():
                    target = out_dir / f.relative_to(tmp)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(f, target)
        return [self._from_record(r, out_dir, i) for i, r in enumerate(records)]

    def _from_record(self, rec: Any, root: Path, i: int) -> Sample:
        if not isinstance(rec, Record):
            rec = parse_record(rec, f"{SCENES_MODULE}#{i}")
        users = [t.text for t in rec.turns if t.role == "user"]
        answers = [t.text for t in rec.turns if t.role == "assistant"]
        if not users or not answers:
            raise TaskError(f"{SCENES_MODULE}#{i} id={rec.id}: needs a question and an answer turn")
        images = [str(p if Path(p).is_absolute() else resolve_media(root, p, rec.source, rec.id))
                  for p in rec.media.get("image", [])]
        question = users[0].replace("<image>", "").strip()
        template = self.spec.prompt_for(rec.language, "{question}")
        try:
            prompt = template.format(question=question)
        except (KeyError, IndexError, ValueError) as e:
            raise TaskError(f"task {self.name}: bad prompt template {template!r} ({type(e).__name__}: {e}); "
                            "it may use {question}") from None
        return Sample(id=rec.id, prompt=prompt, images=images, target=[answers[0]],
                      language=rec.language, category=rec.extra.get("category") or rec.extra.get("qtype"),
                      source=f"{SCENES_MODULE}#{i}")
