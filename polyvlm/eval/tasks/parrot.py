"""Parrot's benchmarks as AIDC-AI/Parrot-dataset publishes them: MMMB (`mmmb/mmmb_<lang>.tsv`) and Multilingual
MMBench (`mmbench/mmbench_dev_<lang>.tsv`), VLMEvalKit TSVs where `cn` is Chinese. Prompts as VLMEvalKit's Parrot
wrapper builds them (vlmeval/vlm/parrot.py, build_multi_choice_prompt); official scoring: VLMEvalKit's `can_infer`
with no judge model (vlmeval/dataset/utils/multiple_choice.py, extract_answer_from_item), CircularEval for MMBench."""

from __future__ import annotations

import logging
import random
import re
from typing import Any

from polyvlm.eval.extract import english_fallback
from polyvlm.eval.metrics.official import vlmeval_can_infer
from polyvlm.eval.tasks.base import Sample, TaskError
from polyvlm.eval.tasks.hub import MissingSplit, download_command, repo_file
from polyvlm.eval.tasks.mcq import MCQTask
from polyvlm.eval.tasks.published import Official, PublishedTask, register_published

log = logging.getLogger("polyvlm.eval")
PARROT_LANGUAGES = {"en": "en", "cn": "zh", "pt": "pt", "ar": "ar", "tr": "tr", "ru": "ru"}  # file suffix -> ISO
# vlmeval/vlm/parrot.py: the instruction after the options, by the dataset name's last three characters
PARROT_INSTRUCTION = {
    "en": "Answer with the option's letter from the given choices directly.",
    "cn": "请直接用给定选项中的选项字母回答。",
    "pt": "Responda diretamente com a letra da opção das escolhas dadas.",
    "ar": "أجب مباشرةً بحرف الخيار من الاختيارات المعطاة.",
    "ru": "Ответьте буквой варианта из предложенных вариантов напрямую.",
    "tr": "Verilen seçeneklerden doğrudan seçeneğin harfi ile cevap verin.",
}
_CJK = re.compile("[\u4e00-\u9fff]")  # VLMEvalKit's cn_string: any such character switches to Chinese


class ParrotTask(MCQTask, PublishedTask):
    repo = "AIDC-AI/Parrot-dataset"
    kind = "mcq"
    pattern = ""  # file name inside the repo, with {split}
    max_new_tokens = 16
    cites = "open-compass/VLMEvalKit vlmeval/vlm/parrot.py, vlmeval/utils/matching_util.py (can_infer)"
    splits = dict(PARROT_LANGUAGES)

    def load(self) -> list[Sample]:
        self.spec.prompt = {lang: "{hint}{question}\n{options}\n" + PARROT_INSTRUCTION[split]
                            for split, lang in self.splits.items()}
        samples: list[Sample] = []
        self.missing_splits = []
        for split, lang in self.splits.items():
            try:
                path = repo_file(self.repo, self.pattern.format(split=split), self.name)
            except MissingSplit as e:
                log.warning("%s (skipped)", e)
                self.missing_splits.append(split)
                continue
            for s in self._read_tsv(path, lang, multi=True):
                if split != "cn" and _CJK.search(s.prompt.rsplit("\n", 1)[0]):
                    s.prompt = s.prompt.rsplit("\n", 1)[0] + "\n" + PARROT_INSTRUCTION["cn"]
                index = s.extra["index"]
                s.id = f"{split}/{index}"
                s.group = f"{split}/{int(index) % 1_000_000 if index.isdigit() else index}"
                s.extra["split"] = split
                samples.append(s)
        if len(self.missing_splits) == len(self.splits):
            raise TaskError(f"task {self.name}: the copy of {self.repo} has none of the files "
                            f"{self.pattern.format(split='{' + ','.join(self.splits) + '}')}; download it with\n  "
                            f"{download_command(self.repo)}")
        if not any(s.extra["index"].isdigit() and int(s.extra["index"]) >= 1_000_000 for s in samples):
            for s in samples:
                s.group = None
        return samples

    @classmethod
    def describe(cls) -> dict[str, Any]:
        out = super().describe()
        out["files"] = cls.pattern.format(split="{" + ",".join(cls.splits) + "}")
        return out

    def english_fallback(self, languages: list[str | None]) -> dict[str, list[str]]:
        return {"answer_phrases": english_fallback(languages, "phrases")}  # instructions: Parrot's, every language

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        read = [vlmeval_can_infer(p, dict(s.options)) for s, p in zip(samples, predictions)]
        return Official("accuracy", [float(r == s.target) for s, r in zip(samples, read)], read)

    def official_corpus(self, samples: list[Sample], predictions: list[str], per_sample: list[float]) -> float:
        return self.corpus_score("accuracy", samples, [None] * len(samples), per_sample)


@register_published
class MMMB(ParrotTask):
    task_name, pattern = "mmmb", "mmmb/mmmb_{split}.tsv"


@register_published
class MultilingualMMBench(ParrotTask):
    task_name, pattern = "mtl_mmbench_dev", "mmbench/mmbench_dev_{split}.tsv"
