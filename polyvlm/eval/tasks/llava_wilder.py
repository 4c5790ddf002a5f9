"""LLaVA-Bench-Wilder (small) as lmms-eval defines it (EvolvingLMMs-Lab/lmms-eval at 3b686384, lmms_eval/tasks/
llava_wilder/: llava_wilder_small.yaml, _default_template_wilder_yaml, utils.py): the question alone as the prompt,
and the official score the `--judge` model's 1-10 ratings of the reference GPT-4V answer and the model's, the judge
shown the picture; reported as the ratio of the mean ratings x 100."""

from __future__ import annotations

import base64
import io
import logging
import math
import random
from typing import Any

from polyvlm.eval.judge import parse_pair
from polyvlm.eval.metrics import judged
from polyvlm.eval.tasks.base import Sample
from polyvlm.eval.tasks.pangea_chat import _JudgedTask
from polyvlm.eval.tasks.published import Official, register_published

log = logging.getLogger("polyvlm.eval")
CITES = "EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/llava_wilder/ (llava_wilder_small.yaml, " \
    "_default_template_wilder_yaml, utils.py judge_rules, get_chat_response, parse_score, llava_process_results, " \
    "llava_aggregation)"
# utils.py judge_rules: the [System] part of the review request (the image is shown to the judge)
JUDGE_RULES = (
    "We would like to request your feedback on the performance of two AI assistants in response to the user question "
    "displayed above. The user asks the question on observing an image shown to you. \nPlease rate the helpfulness, "
    "relevance, accuracy, level of details of their responses. Each assistant receives an overall score on a scale of "
    "1 to 10, where a higher score indicates better overall performance. Assume assistant 1 always receive a score of "
    "10 and is the correct answer.\nPlease first output a single line containing only two values indicating the scores "
    "for Assistant 1 and 2, respectively. The two scores are separated by a space.\nIn the subsequent line, please "
    "provide a comprehensive explanation of your evaluation, avoiding any potential bias and ensuring that the order "
    "in which the responses were presented does not affect your judgment.")
JUDGE_SETTINGS: dict[str, Any] = {"temperature": 0.0, "max_tokens": 1024}  # get_chat_response's payload, no system


def judge_picture(sample: Sample) -> str | None:
    """The sample's picture as the official scorers send it to the judge: the decoded image (not converted to RGB)
    saved as PNG, base64 in a data URI; None when it cannot be saved so (the scorer's request then fails). The
    bytes are the official ones; the wrapping is the standard part `{"url": "data:image/png;base64,..."}` where
    llava_wilder's get_chat_response gives `image_url` as a bare string labelled image/jpeg and WildVision's
    `{"url": "data:image/jpeg;base64, ..."}` (a space after the comma), forms a strict server may refuse."""
    if not sample.images:
        return None
    try:
        buf = io.BytesIO()
        sample.images[0].open().save(buf, format="PNG")
    except (OSError, ValueError, KeyError):
        return None
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


@register_published
class LlavaWilder(_JudgedTask):
    """lmms-lab/LLaVA-Bench-Wilder split test: columns `Question`, `Answer` (GPT-4V's reference), `image`; the
    official scorer reads doc.get("Question", "") and doc.get("Answer", "") for the judge."""

    task_name, repo, kind = "llava_wilder", "lmms-lab/LLaVA-Bench-Wilder", "judge"
    splits = {"test": "en"}
    cites = CITES
    max_new_tokens = 4096  # _default_template_wilder_yaml generation_kwargs (temperature 0)
    default_metrics = ["judge_relative"]

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        return Sample(id=f"{split}/{row}", prompt=f"{record['Question']}", target=f"{record.get('Answer', '')}",
                      language=language, extra={"question_id": record.get("question_id")})

    def judge_prompt(self, s: Sample, answer: str) -> str:
        """llava_process_results' content: the question, the reference (Assistant 1), the answer (Assistant 2), the
        rules."""
        return (f"[Question]\n{s.prompt}\n\n[Assistant 1]\n{s.target}\n\n[End of Assistant 1]\n\n"
                f"[Assistant 2]\n{answer}\n\n[End of Assistant 2]\n\n[System]\n{JUDGE_RULES}\n\n")

    def _ask(self, samples: list[Sample], answers: list[str]) -> list[str | None]:
        """The judge's replies; a sample whose picture cannot be sent gets None without asking (the official
        scorer catches that error and records the sample as [-1, -1])."""
        pictures = [judge_picture(s) for s in samples]
        todo = [i for i, p in enumerate(pictures) if p is not None]
        got = self._client().ask([self.judge_prompt(samples[i], answers[i]) for i in todo], **JUDGE_SETTINGS,
                                 images=[pictures[i] for i in todo]) if todo else []
        replies: list[str | None] = [None] * len(samples)
        for i, r in zip(todo, got):
            replies[i] = r
        self.replies.update({s.id: r for s, r in zip(samples, replies)})
        return replies

    def sample_scores(self, samples: list[Sample], answers: list[str | None]) -> dict[str, list[float]]:
        """Robust: the same replies read strictly (a first line `X Y` after stripping, both 1-10; anything else left
        out and counted), answer score / reference score per sample; the corpus ratio of the sums."""
        self.pairs: dict[str, tuple[float, float]] = {}
        out = []
        for s, r in zip(samples, self._ask(samples, [a or "" for a in answers])):
            pair = parse_pair(r)
            if pair is None:
                out.append(math.nan)
                continue
            self.pairs[s.id] = pair
            out.append(pair[1] / pair[0])
        return {"judge_relative": out}

    def corpus_score(self, metric: str, samples: list[Sample], answers: list[str | None],
                     per_sample: list[float]) -> float:
        pairs = [self.pairs[s.id] for s in samples if s.id in self.pairs]
        return 100.0 * sum(p[1] for p in pairs) / sum(p[0] for p in pairs) if pairs else math.nan

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        replies = self._ask(samples, predictions)  # cached: the replies the robust reading used
        self.official_pairs = {s.id: judged.wilder_score_pair(r) for s, r in zip(samples, replies)}
        failed = sum(r is None for r in replies)
        note = f"{failed} judge request(s) failed or could not carry the picture: [-1, -1] as the official " \
            "scorer records them (still averaged)" if failed else ""
        return Official("gpt_eval_llava_all", [self.official_pairs[s.id][1] for s in samples],
                        [{"scores": self.official_pairs[s.id]} for s in samples], note=note)

    def official_corpus(self, samples: list[Sample], predictions: list[str], per_sample: list[float]) -> float:
        return judged.wilder_ratio([self.official_pairs[s.id] for s in samples])
