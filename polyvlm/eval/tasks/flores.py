"""FLORES translation from English (openlanguagedata/flores_plus: one config per language, `devtest` split, rows
aligned by `id`), scored with sacrebleu's corpus chrF++ per language (CHRF(word_order=2), the metric PangeaBench
reports for FLORES), beside chrF on the reply's first line."""

from __future__ import annotations

import random
from typing import Any

import sacrebleu

from polyvlm.eval.tasks.base import Sample
from polyvlm.eval.tasks.hub import load_split
from polyvlm.eval.tasks.published import Official, PublishedTask, register_published

SOURCE = "eng_Latn"
# flores_plus config (ISO 639-3 + ISO 15924) -> (language code, English name used in the instruction)
TARGETS = {
    "arb_Arab": ("ar", "Arabic"), "ben_Beng": ("bn", "Bengali"), "deu_Latn": ("de", "German"),
    "spa_Latn": ("es", "Spanish"), "fra_Latn": ("fr", "French"), "hin_Deva": ("hi", "Hindi"),
    "ind_Latn": ("id", "Indonesian"), "ita_Latn": ("it", "Italian"), "jpn_Jpan": ("ja", "Japanese"),
    "kor_Hang": ("ko", "Korean"), "por_Latn": ("pt", "Portuguese"), "rus_Cyrl": ("ru", "Russian"),
    "swh_Latn": ("sw", "Swahili"), "tam_Taml": ("ta", "Tamil"), "tel_Telu": ("te", "Telugu"),
    "tha_Thai": ("th", "Thai"), "tur_Latn": ("tr", "Turkish"), "vie_Latn": ("vi", "Vietnamese"),
    "cmn_Hans": ("zh", "Chinese (Simplified)"),
}


def chrf_pp(hypotheses: list[str], references: list[str]) -> float:
    """sacrebleu's corpus chrF++ (character 6-grams, word 2-grams, beta 2), one reference per sentence."""
    return sacrebleu.CHRF(word_order=2).corpus_score(hypotheses, [references]).score


@register_published
class Flores(PublishedTask):
    """English -> each language, sentence by sentence; the reference is the target config's row of the same id."""

    task_name, repo, kind = "flores", "openlanguagedata/flores_plus", "text"
    splits = {c: lang for c, (lang, _) in TARGETS.items()}  # configs
    cites = ("mjpost/sacrebleu sacrebleu/metrics/chrf.py (CHRF word_order=2: chrF++, corpus score); "
             "openlanguagedata/flores_plus dataset card (configs, dev/devtest splits, `id`, `text`)")
    max_new_tokens = 256
    image_columns = ()
    default_metrics = ["chrf"]
    split_name = "devtest"
    open_ended = True  # the results give the rate of translations identified as the target language

    def dataset(self, split: str) -> Any:
        if getattr(self, "_source", None) is None:
            self._source = load_split(self.repo, self.split_name, self.name, config=SOURCE)
        return load_split(self.repo, self.split_name, self.name, config=split)

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        if row >= len(self._source):
            raise ValueError(f"row {row} has no English source ({SOURCE} has {len(self._source)} rows)")
        source = self._source[row]
        if source["id"] != record["id"]:
            raise ValueError(f"id {record['id']} is not aligned with {SOURCE} row {row} (id {source['id']})")
        name = TARGETS[split][1]
        prompt = (f"Translate the following sentence from English to {name}. Reply with the translation only.\n"
                  f"{source['text']}")
        return Sample(id=f"{split}/{row}", prompt=prompt, target=[str(record["text"])], language=language,
                      extra={"source": source["text"]})

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        """Each reply as written (stripped), its sentence chrF++ per sample; the corpus score is per subset."""
        metric = sacrebleu.CHRF(word_order=2)
        hyps = [p.strip() for p in predictions]
        per = [metric.sentence_score(h, s.references()).score / 100 for h, s in zip(hyps, samples)]
        return Official("chrf++", per, hyps)

    def official_corpus(self, samples: list[Sample], predictions: list[str], per_sample: list[float]) -> float:
        """Corpus chrF++ of a subset (a language, or everything pooled for `overall`)."""
        return chrf_pp([p.strip() for p in predictions], [s.references()[0] for s in samples])
