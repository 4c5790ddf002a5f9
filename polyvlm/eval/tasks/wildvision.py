"""WildVision-Bench 0617 as lmms-eval defines it (EvolvingLMMs-Lab/lmms-eval at 3b686384, lmms_eval/tasks/
wild_vision_bench/: wild_vision_bench0617.yaml, _default_template_yaml, utils.py): the instruction as the prompt; the
`--judge` model, shown the picture, compares the reply (assistant B) with claude-3-sonnet-20240229's (assistant A)
and ends with a verdict `[[A>>B]]` ... `[[B>>A]]`; the official score is the Elo-predicted win rate against that
baseline (`elo_scores`), with lmms-eval's other metrics beside it."""

from __future__ import annotations

import math
import random
from typing import Any

from polyvlm.eval.metrics import judged
from polyvlm.eval.tasks.base import Sample, TaskError
from polyvlm.eval.tasks.hub import ENV, MissingSplit, download_command
from polyvlm.eval.tasks.llava_wilder import judge_picture
from polyvlm.eval.tasks.pangea_chat import _JudgedTask
from polyvlm.eval.tasks.published import Official, register_published

BASELINE = "claude-3-sonnet-20240229"  # _default_template_yaml metadata baseline_model: the column of its answers
# utils.py system_prompt (the arena-hard judge prompt) and prompt_template
SYSTEM_PROMPT = """\
Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants to the \
user prompt displayed below. You will be given assistant A's answer and assistant B's answer. Your job is to evaluate \
which assistant's answer is better.

Begin your evaluation by generating your own answer to the prompt. You must provide your answers before judging any \
answers.

When evaluating the assistants' answers, compare both assistants' answers with your answer. You must identify and \
correct any mistakes or inaccurate information.

Then consider if the assistant's answers are helpful, relevant, and concise. Helpful means the answer correctly \
responds to the prompt or follows the instructions. Note when user prompt has any ambiguity or more than one \
interpretation, it is more helpful and appropriate to ask for clarifications or more information from the user than \
providing an answer based on assumptions. Relevant means all parts of the response closely connect or are \
appropriate to what is being asked. Concise means the response is clear and not verbose or excessive.

Then consider the creativity and novelty of the assistant's answers when needed. Finally, identify any missing \
important information in the assistants' answers that would be beneficial to include when responding to the user \
prompt.

After providing your explanation, you must output only one of the following choices as your final verdict with a \
label:

1. Assistant A is significantly better: [[A>>B]]
2. Assistant A is slightly better: [[A>B]]
3. Tie, relatively the same: [[A=B]]
4. Assistant B is slightly better: [[B>A]]
5. Assistant B is significantly better: [[B>>A]]

Example output: "My final verdict is tie: [[A=B]]"."""
PROMPT_TEMPLATE = ("<|User Prompt|>\n{question_1}\n\n<|The Start of Assistant A's Answer|>\n{answer_1}\n"
                   "<|The End of Assistant A's Answer|>\n\n<|The Start of Assistant B's Answer|>\n{answer_2}\n"
                   "<|The End of Assistant B's Answer|>")
JUDGE_SETTINGS: dict[str, Any] = {"system": SYSTEM_PROMPT, "temperature": 0.0, "max_tokens": 1024}


@register_published
class WildVision(_JudgedTask):
    """WildVision/wildvision-arena-data config release_bench_0617_with_modelresponse split test500: columns
    question_id, instruction, image, language, and one column of answers per arena model (the baseline's among
    them). The record's `language` is kept as the category."""

    task_name, repo, kind = "wildvision", "WildVision/wildvision-arena-data", "judge"
    config = "release_bench_0617_with_modelresponse"
    splits = {"test500": "en"}
    cites = ("EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/wild_vision_bench/ (wild_vision_bench0617.yaml, "
             "_default_template_yaml, utils.py system_prompt, prompt_template, get_score, wild_vision_process_results, "
             "compute_mle_elo, predict_win_rate, wild_vision_aggregation_*)")
    max_new_tokens = 4096  # _default_template_yaml generation_kwargs (temperature 0)
    default_metrics = ["judge_winrate"]

    @classmethod
    def download(cls) -> str:
        """Only this config (and the README): the repo's other configs are copies of the same pictures."""
        return (f"huggingface-cli download --repo-type dataset {cls.repo} README.md --include '{cls.config}/*' "
                f"--local-dir ${ENV}/{cls.repo}")

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {**super().describe(), "download": cls.download()}

    def dataset(self, split: str) -> Any:
        try:
            return super().dataset(split)
        except MissingSplit:
            raise
        except TaskError as e:  # a missing repo: the narrower download command
            raise TaskError(str(e).replace(download_command(self.repo), self.download())) from None

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        if BASELINE not in record:
            raise TaskError(f"{where}: no column '{BASELINE}' (the baseline's answers the judge compares with); is "
                            f"this the {self.config} config?")
        return Sample(id=f"{split}/{row}", prompt=str(record["instruction"]).strip(), target=f"{record[BASELINE]}",
                      language=language, category=record.get("language") or None,
                      extra={"question_id": record.get("question_id"), "instruction": f"{record['instruction']}"})

    def judge_prompt(self, s: Sample, answer: str) -> str:
        """prompt_template with the instruction as stored (not stripped), the baseline's answer, the reply."""
        return PROMPT_TEMPLATE.format(question_1=s.extra["instruction"], answer_1=s.target, answer_2=answer)

    def _ask(self, samples: list[Sample], answers: list[str]) -> list[str | None]:
        pictures = [judge_picture(s) for s in samples]
        bad = next((s for s, p in zip(samples, pictures) if p is None), None)
        if bad is not None:  # wild_vision_process_results does not catch this: the official run stops
            raise TaskError(f"task {self.name}: {bad.source} id={bad.id}: the picture cannot be sent to the judge as "
                            "PNG (the official scorer stops here too)")
        replies = self._client().ask([self.judge_prompt(s, a) for s, a in zip(samples, answers)], **JUDGE_SETTINGS,
                                     images=pictures)
        self.replies.update({s.id: r for s, r in zip(samples, replies)})
        return replies

    def sample_scores(self, samples: list[Sample], answers: list[str | None]) -> dict[str, list[float]]:
        """Robust: the verdict read strictly (the five labels only, all alike; none or conflicting left out and
        counted), the model's win 1, a tie 0.5, a loss 0; reported as the mean x 100."""
        replies = self._ask(samples, [a or "" for a in answers])
        return {"judge_winrate": [math.nan if v is None else v for v in map(judged.strict_verdict, replies)]}

    def corpus_score(self, metric: str, samples: list[Sample], answers: list[str | None],
                     per_sample: list[float]) -> float:
        vals = [v for v in per_sample if not math.isnan(v)]
        return 100.0 * sum(vals) / len(vals) if vals else math.nan

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        """Per sample the verdict's final_score (-2..2; a missing verdict is an "Unclear" tie, 0), the headline
        `elo_scores` of the battles, and raw_scores, win_rates and the judgements' shares beside it."""
        verdicts = [judged.wildvision_verdict(r) for r in self._ask(samples, predictions)]
        raw = [float(v[0]) for v in verdicts]
        answers = [{"final_score": v[0], "winner": v[1], "judgement": v[2]} for v in verdicts]
        unclear = sum(v[2] == "Unclear" for v in verdicts)
        note = f"{unclear} verdict(s) unreadable: counted as ties (\"Unclear\"), as the official scorer does" \
            if unclear else ""
        return Official("elo_scores", raw, answers, note=note,
                        other_metrics=judged.wildvision_metrics(raw, [v[2] for v in verdicts]))

    def official_corpus(self, samples: list[Sample], predictions: list[str], per_sample: list[float]) -> float:
        return judged.elo_win_rate([judged.winner_of(v) for v in per_sample])
