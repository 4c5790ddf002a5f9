"""Open-ended chat tasks scored by an LLM judge: rubric 1-5 (xChatBench style) and relative (LLaVA-Bench)."""

from __future__ import annotations

import math

from polyvlm.data.langs import language_name
from polyvlm.eval.judge import JudgeClient, parse_pair, parse_rubric, prompt_file
from polyvlm.eval.tasks.base import Sample, TaskError, TaskSpec
from polyvlm.eval.tasks.jsonl import JsonlTask


class JudgeTask(JsonlTask):
    """Open-ended chat scored by an LLM judge. `judge_rubric`: 1-5 reported as (mean - 1) / 4 x 100
    (xChatBench style); `judge_relative`: answer score over reference-answer score x 100 (LLaVA-Bench)."""

    default_metrics = ["judge_rubric"]
    needs_answers = False
    judged = True
    client: JudgeClient | None = None

    def __init__(self, spec: TaskSpec):
        super().__init__(spec)
        self.pairs: dict[str, tuple[float, float]] = {}  # sample id -> (reference score, answer score)

    def sample_scores(self, samples: list[Sample], answers: list[str | None]) -> dict[str, list[float]]:
        if self.client is None:
            raise TaskError(f"task {self.name} is scored by an LLM judge: pass --judge URL")
        out: dict[str, list[float]] = {}
        for metric in self.metrics:
            mode = "judge_rubric" if metric == "judge_rubric" else "judge_reference"
            try:
                template = prompt_file(self.spec.judge.get(f"{metric}_prompt", mode))
            except ValueError as e:
                raise TaskError(f"task {self.name}: {e}") from None
            prompts = []
            for s, a in zip(samples, answers):
                if metric == "judge_relative" and not s.references():
                    raise TaskError(f"task {self.name} id={s.id}: judge_relative needs a reference answer")
                question = s.prompt.replace("<image>", "").strip()
                prompts.append(template.format(question=question, answer=a or "", reference=" / ".join(s.references()),
                                               language=language_name(s.language or "en")))
            replies = self.client.ask(prompts)
            if metric == "judge_rubric":
                scores = [parse_rubric(r) for r in replies]
                out[metric] = [math.nan if v is None else (v - 1) / 4 for v in scores]
            else:
                pairs = [parse_pair(r) for r in replies]
                out[metric] = [math.nan if p is None else p[1] / p[0] for p in pairs]
                self.pairs.update({s.id: p for s, p in zip(samples, pairs) if p is not None})
        return out

    def corpus_score(self, metric: str, samples: list[Sample], answers: list[str | None],
                     per_sample: list[float]) -> float:
        """Judge replies that could not be parsed (NaN) are left out and counted as `judge_unparsed`."""
        if metric == "judge_relative":  # LLaVA-Bench: total answer score over total reference score
            pairs = [self.pairs[s.id] for s in samples if s.id in self.pairs]
            return 100.0 * sum(p[1] for p in pairs) / sum(p[0] for p in pairs) if pairs else math.nan
        vals = [v for v in per_sample if not math.isnan(v)]
        return 100.0 * sum(vals) / len(vals) if vals else math.nan
