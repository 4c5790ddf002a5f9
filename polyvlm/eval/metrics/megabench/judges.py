"""MEGA-Bench's judged field metrics, gpt_4o_as_judge and ascii_art_gpt4o_judge (lmms_eval/tasks/megabench/metrics/
scoring/vlm_as_judge.py, ascii_art_vlm_judge.py): registered with call="judge", scored by the task through
polyvlm's `--judge` client; without a judge the task leaves their tasks out and names them."""

from __future__ import annotations

from typing import Any

from polyvlm.eval.metrics.megabench import register


class JudgeUnavailable(RuntimeError):
    """A judged MEGA-Bench metric was asked for a score with no judge to ask."""


@register("gpt_4o_as_judge", call="judge")
def gpt_4o_as_judge(response: Any, correct_answer: Any, images: Any, query_text: str, context: Any,
                    judge: Any = None) -> Any:
    """vlm_as_judge.VLMJudgeScore.match: needs a judge (the task passes polyvlm's --judge client)."""
    raise JudgeUnavailable("gpt_4o_as_judge needs --judge")


@register("ascii_art_gpt4o_judge", call="judge")
def ascii_art_gpt4o_judge(response: Any, correct_answer: Any, images: Any, query_text: str, context: Any,
                          judge: Any = None) -> Any:
    """ascii_art_vlm_judge.AsciiArtVLMJudgeScore.match: needs a judge (the task passes polyvlm's --judge client)."""
    raise JudgeUnavailable("ascii_art_gpt4o_judge needs --judge")
