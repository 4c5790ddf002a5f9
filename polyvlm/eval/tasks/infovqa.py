"""InfographicVQA validation as lmms-eval defines it (lmms_eval/tasks/infovqa/ at 3b686384: infovqa_val.yaml,
_default_template_infovqa_yaml, utils.py): lmms-lab/DocVQA config InfographicVQA, scored as docvqa_val is."""

from __future__ import annotations

from polyvlm.eval.tasks.docvqa import LmmsDocVQA
from polyvlm.eval.tasks.published import register_published


@register_published
class InfoVQAVal(LmmsDocVQA):
    task_name, config = "infovqa_val", "InfographicVQA"
    cites = ("EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/infovqa/ (infovqa_val.yaml, _default_template_infovqa_yaml), "
             "lmms_eval/api/metrics.py anls, lmms_eval/api/task.py process_results (all answers to anls since b5c99bc2)")
