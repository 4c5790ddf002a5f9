"""PangeaBench's judged chat benchmarks: M-LlavaBench (neulab/PangeaBench-multilingual-llava-bench, lmms-eval's
multilingual-llava-bench task) and xChatBench (the xchat folder of neulab/Pangea's lmms-eval tasks), each scored by
an LLM judge the way its official scorer asks and reads it, beside polyvlm's strict reading of the same replies."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any, ClassVar

from polyvlm.eval.extract import Extraction
from polyvlm.eval.judge import JudgeClient, prompt_file
from polyvlm.eval.metrics import judged
from polyvlm.eval.tasks.base import Sample, TaskError
from polyvlm.eval.tasks.hub import ENV, local_dir
from polyvlm.eval.tasks.published import Official, PublishedTask, register_published

PANGEA = "neulab/Pangea evaluation/lmms-eval/lmms_eval/tasks/"


class _JudgedTask(PublishedTask):
    """A published task whose replies an LLM judge scores: `client` is set by the runner from `--judge`."""

    judged: ClassVar[bool] = True
    open_ended = True  # the results give the rate of replies in the question's language
    client: JudgeClient | None = None

    def __init__(self, spec: Any = None):
        super().__init__(spec)
        self.replies: dict[str, str | None] = {}  # sample id -> the judge's (last) reply

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        return Extraction(prediction, "raw")  # the judge reads the reply as generated

    def _client(self) -> JudgeClient:
        if self.client is None:
            raise TaskError(f"task {self.name} is scored by an LLM judge: pass --judge URL")
        return self.client


def _language_ok(answer: str, language: str | None) -> bool:
    """polyvlm's wrong-language check (py3langid): False only when the identifier covers `language`, the reply is
    long enough to identify and it is identified as another language."""
    from polyvlm.data.langs import language_status
    from polyvlm.eval.metrics.language import MIN_LETTERS

    return not language or language_status(answer, language, MIN_LETTERS)[0] != "wrong"


# ---- M-LlavaBench ------------------------------------------------------------------------------------------------
_LLAVA_SYSTEM = "You are a helpful and precise assistant for checking the quality of the answer."
_LLAVA_CATEGORIES = ("conv", "detail", "complex")  # rule.json's llava_bench_<category> (one text for the three)


@register_published
class MLlavaBench(_JudgedTask):
    """Questions about in-the-wild pictures, each judged against GPT-4's reference answer (`gpt_answer`) with the
    image's `caption` as context: the judge rates both answers 1-10 and the score is the ratio of the means."""

    task_name, repo, kind = "m_llavabench", "neulab/PangeaBench-multilingual-llava-bench", "judge"
    splits = {s: s for s in ("ar", "bn", "zh", "en", "fr", "hi", "ja", "ru", "es", "ur")}
    cites = PANGEA + "multilingual-llava-bench/ (multilingual_llava_bench_<lang>.yaml, _default_template.yaml, " \
        "rule.json, utils.py llava_process_results / parse_score / llava_aggregation)"
    max_new_tokens = 1024  # _default_template.yaml generation_kwargs
    default_metrics = ["judge_relative"]

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        caption = record.get("caption", [])  # a list is joined by lines; anything else printed as it is ("None")
        return Sample(id=f"{split}/{row}", prompt=str(record["question"]), target=str(record["gpt_answer"]),
                      language=language, category=record.get("category") or None,
                      extra={"question_id": record.get("question_id"),
                             "context": "\n".join(caption) if isinstance(caption, list) else str(caption)})

    def judge_prompt(self, s: Sample, answer: str) -> str:
        """llava_process_results' review request: context, question, the two answers, then the category's rule."""
        known = s.category in _LLAVA_CATEGORIES
        rule, role = (prompt_file("llava_bench_wild"), "Assistant") if known else ("", "user")
        return (f"[Context]\n{s.extra['context']}\n\n[Question]\n{s.prompt}\n\n[{role} 1]\n{s.target}\n\n"
                f"[End of {role} 1]\n\n[{role} 2]\n{answer}\n\n[End of {role} 2]\n\n[System]\n{rule}\n\n")

    def _ask(self, samples: list[Sample], answers: list[str]) -> list[str | None]:
        replies = self._client().ask([self.judge_prompt(s, a) for s, a in zip(samples, answers)],
                                     system=_LLAVA_SYSTEM, temperature=0.2, max_tokens=1024)
        self.replies.update({s.id: r for s, r in zip(samples, replies)})
        return replies

    def sample_scores(self, samples: list[Sample], answers: list[str | None]) -> dict[str, list[float]]:
        """Robust: the same replies read strictly (a first line `X Y`, both 1-10, else left out and counted), a
        reply py3langid finds in another language than the question's scoring 0."""
        from polyvlm.eval.judge import parse_pair

        self.pairs: dict[str, tuple[float, float]] = {}
        out = []
        for s, a, r in zip(samples, answers, self._ask(samples, [a or "" for a in answers])):
            pair = parse_pair(r)
            if pair is None:
                out.append(math.nan)
                continue
            pair = (pair[0], pair[1] if _language_ok(a or "", s.language) else 0.0)
            self.pairs[s.id] = pair
            out.append(pair[1] / pair[0])
        return {"judge_relative": out}

    def corpus_score(self, metric: str, samples: list[Sample], answers: list[str | None],
                     per_sample: list[float]) -> float:
        pairs = [self.pairs[s.id] for s in samples if s.id in self.pairs]
        return 100.0 * sum(p[1] for p in pairs) / sum(p[0] for p in pairs) if pairs else math.nan

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        replies = self._ask(samples, predictions)  # cached: the replies the robust reading used
        self.official_pairs: dict[str, list[float]] = {}
        answers = []
        for s, p, r in zip(samples, predictions, replies):
            pair, lang = judged.llava_official_pair(r, str(s.target), p, s.prompt)
            self.official_pairs[s.id] = pair
            answers.append({"scores": pair, "answer_language": lang})
        return Official("gpt_eval_llava_all", [self.official_pairs[s.id][1] for s in samples], answers)

    def official_corpus(self, samples: list[Sample], predictions: list[str], per_sample: list[float]) -> float:
        """Each language is its own lmms-eval task (ratio of its means); several languages: the mean of theirs."""
        by_lang: dict[str, list[list[float]]] = {}
        for s in samples:
            by_lang.setdefault(s.language or "", []).append(self.official_pairs[s.id])
        scores = [judged.llava_ratio(p) for p in by_lang.values()]
        return sum(scores) / len(scores) if scores else math.nan


# ---- xChatBench --------------------------------------------------------------------------------------------------
XCHAT_REPO = "neulab/Pangea"
XCHAT_DIR = "evaluation/lmms-eval/lmms_eval/tasks/xchat"
XCHAT_LANGUAGES = {"English": "en", "Chinese": "zh", "Hindi": "hi", "Indonesian": "id", "Japanese": "ja",
                   "Kinyarwanda": "rw", "Korean": "ko", "Spanish": "es"}
_PROMETHEUS_SYSTEM = ("You are a fair judge assistant tasked with providing clear, objective feedback based on specific "
                      "criteria, ensuring each assessment reflects the absolute standards set for performance.")
_RUBRIC = "[{criteria}]\nScore 1: {score1_description}\nScore 2: {score2_description}\nScore 3: {score3_description}" \
          "\nScore 4: {score4_description}\nScore 5: {score5_description}"
XCHAT_RETRIES = 5  # prometheus_eval async_batch_completions_with_retries: unparsed verdicts asked again, 5 times


@register_published
class XChatBench(_JudgedTask):
    """Open-ended requests about a picture in 8 languages, graded 1-5 against a reference answer and an
    instance-specific rubric (BiGGen-Bench's absolute grading); reported as (mean - 1) / 4 x 100 per language."""

    task_name, repo, kind = "xchatbench", XCHAT_REPO, "judge"
    splits = {d: c for d, c in XCHAT_LANGUAGES.items()}
    cites = (PANGEA + "xchat/ (<Language>/<task>/data.json and <instance_idx>.jpg; prompts/<language>_prompts.jsonl: "
             "system prompt + blank line + input; responses/*-results.json: [RESULT] 1-5 verdicts) graded as "
             "prometheus-eval BiGGen-Bench/run_response_eval.py with libs/prometheus-eval/prometheus_eval/"
             "{prompts.py ABSOLUTE_PROMPT, judge.py, parser.py, utils.py}")
    max_new_tokens = 1024
    default_metrics = ["judge_rubric"]

    @classmethod
    def root(cls) -> Path | None:
        local = local_dir(cls.repo)
        return local / XCHAT_DIR if local is not None and (local / XCHAT_DIR).is_dir() else None

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {"task": cls.task_name, "repo": f"github.com/{cls.repo} {XCHAT_DIR}",
                "languages": sorted(XCHAT_LANGUAGES.values()), "data": "local" if cls.root() else "missing",
                "download": cls.download(), "follows": cls.cites}

    @staticmethod
    def download() -> str:
        return f"git clone --depth 1 https://github.com/{XCHAT_REPO} ${ENV}/{XCHAT_REPO}"

    def load(self) -> list[Sample]:
        root = self.root()
        if root is None:
            raise TaskError(f"task {self.name}: xChatBench is published in the {XCHAT_REPO} GitHub repo ({XCHAT_DIR}), "
                            f"not found under ${ENV}; get it with\n  {self.download()}")
        samples: list[Sample] = []
        self.missing_splits = [d for d in XCHAT_LANGUAGES if not (root / d).is_dir()]
        for folder, code in XCHAT_LANGUAGES.items():
            files = sorted((root / folder).glob("*/data.json")) if (root / folder).is_dir() else []
            row = 0
            for path in files:
                try:
                    records = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, json.JSONDecodeError) as e:
                    raise TaskError(f"task {self.name}: {path}: not a JSON list of records ({e})") from None
                for i, rec in enumerate(records):
                    samples.append(self._sample(rec, path, i, folder, row, code))
                    row += 1
        if not samples:
            raise TaskError(f"task {self.name}: {root} holds no <Language>/<task>/data.json; get it with\n  "
                            f"{self.download()}")
        return samples

    def _sample(self, rec: Any, path: Path, i: int, folder: str, row: int, code: str) -> Sample:
        where = f"{path} record {i}"
        try:
            idx, rubric = rec["instance_idx"], rec["score_rubric"]
            prompt = f"{rec['system_prompt']}\n\n{rec['input']}"  # prompts/<language>_prompts.jsonl "text"
            _RUBRIC.format(**rubric)
            target = str(rec["reference_answer"])
        except (KeyError, TypeError) as e:
            raise TaskError(f"task {self.name}: {where}: missing or bad key {e}") from None
        image = next((path.parent / f"{idx}{ext}" for ext in (".jpg", ".png", ".jpeg")
                      if (path.parent / f"{idx}{ext}").is_file()), None)
        if image is None:
            raise TaskError(f"task {self.name}: {where}: no picture {path.parent}/{idx}.jpg")
        return Sample(id=f"{folder}/{row}", prompt=prompt, images=[str(image)], target=target, language=code,
                      category=str(rec.get("task") or path.parent.name),
                      extra={"split": folder, "row": row, "instance_idx": idx, "input": str(rec["input"]),
                             "rubric": rubric},
                      source=where)

    def judge_prompt(self, s: Sample, answer: str) -> str:
        """BiGGen-Bench's absolute grading request: the instruction (`input`), the response, the reference answer
        (score 5) and the instance's rubric."""
        return prompt_file("prometheus_absolute").format(instruction=s.extra["input"], response=answer,
                                                         reference_answer=s.target,
                                                         rubric=_RUBRIC.format(**s.extra["rubric"]))

    def _verdicts(self, samples: list[Sample], answers: list[str]) -> list[str | None]:
        """The judge's replies, asked again (up to XCHAT_RETRIES times) while the official parser reads no score."""
        prompts = [self.judge_prompt(s, a) for s, a in zip(samples, answers)]
        ask = dict(system=_PROMETHEUS_SYSTEM, temperature=1.0, top_p=0.9, max_tokens=1024)
        replies = self._client().ask(prompts, **ask)
        for attempt in range(1, XCHAT_RETRIES + 1):
            todo = [i for i, r in enumerate(replies) if judged.prometheus_score(r) is None]
            if not todo:
                break
            for i, r in zip(todo, self._client().ask([prompts[i] for i in todo], **ask, attempt=attempt)):
                if judged.prometheus_score(r) is not None:
                    replies[i] = r
        self.replies.update({s.id: r for s, r in zip(samples, replies)})
        return replies

    def sample_scores(self, samples: list[Sample], answers: list[str | None]) -> dict[str, list[float]]:
        """Robust: the same replies read strictly (one `[RESULT] N` closing the reply), (N - 1) / 4."""
        out = []
        for r in self._verdicts(samples, [a or "" for a in answers]):
            v = judged.strict_result(r)
            out.append(math.nan if v is None else (v - 1) / 4)
        return {"judge_rubric": out}

    def corpus_score(self, metric: str, samples: list[Sample], answers: list[str | None],
                     per_sample: list[float]) -> float:
        vals = [v for v in per_sample if not math.isnan(v)]
        return 100.0 * sum(vals) / len(vals) if vals else math.nan

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        scores = [judged.prometheus_score(r) for r in self._verdicts(samples, predictions)]
        return Official("xchat_score", [math.nan if v is None else float(v) for v in scores], scores)

    def official_corpus(self, samples: list[Sample], predictions: list[str], per_sample: list[float]) -> float:
        """Per language (mean 1-5 score - 1) / 4 x 100, unparsed verdicts left out; several languages: their mean."""
        by_lang: dict[str, list[float]] = {}
        for s, v in zip(samples, per_sample):
            by_lang.setdefault(s.language or "", []).append(v)
        scores = [(sum(v) / len(v) - 1) / 4 * 100 for v in by_lang.values() if v]
        return sum(scores) / len(scores) if scores else math.nan
