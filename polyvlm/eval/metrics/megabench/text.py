"""MEGA-Bench's text-generation metrics: bleu (sacrebleu), gleu_cn (jieba + nltk GLEU), multi_ref_phrase and
nli_entailment (lmms_eval/tasks/megabench/metrics/scoring/sacrebleu_bleu.py, gleu.py, multi_ref_phrase.py,
nli_entailment.py)."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from polyvlm.eval.metrics.megabench import register, requires

NLI_MODEL_ENV = "POLYVLM_NLI_MODEL"
NLI_DEFAULT_MODEL = "microsoft/deberta-large-mnli"


@register("bleu")
def bleu(response: Any, answer: Any) -> float:
    """SacreBLEU corpus BLEU / 100 between two strings (one segment each) or two lists (one segment per item,
    same length); any other pair of types scores 0. As the official does, the ANSWER is passed as the
    hypotheses and the response as the single reference stream."""
    if isinstance(response, str) and isinstance(answer, str):
        responses, answers = [response], [answer]
    elif isinstance(response, (list, tuple)) and isinstance(answer, (list, tuple)):
        responses, answers = tuple(response), tuple(answer)
    else:
        return 0
    sacrebleu = requires("sacrebleu", "bleu")
    return sacrebleu.corpus_bleu(answers, [responses]).score / 100


@register("gleu_cn")
def gleu_cn(response: Any, answer: Any) -> float:
    """Sentence GLEU over jieba's search-mode tokens. As the official does, the RESPONSE is the reference and
    the ANSWER the hypothesis (GLEU is min(precision, recall), so only the n-gram counts' roles swap). Non-string
    input scores 0."""
    if not (isinstance(response, str) and isinstance(answer, str)):
        return 0
    jieba = requires("jieba", "gleu_cn")
    gleu = requires("nltk.translate.gleu_score", "gleu_cn")
    return gleu.sentence_gleu([list(jieba.cut_for_search(response))], list(jieba.cut_for_search(answer)))


class NliModelUnavailable(ImportError):
    """The NLI model cannot be loaded; an ImportError so that score_field stops the run instead of scoring 0."""


@lru_cache(maxsize=1)
def _nli_pipeline() -> Any:
    """The text-classification pipeline of $POLYVLM_NLI_MODEL (default microsoft/deberta-large-mnli), built on
    first use, on CUDA when there is one."""
    model = os.environ.get(NLI_MODEL_ENV, NLI_DEFAULT_MODEL)
    torch = requires("torch", "nli_entailment")
    transformers = requires("transformers", "nli_entailment")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return transformers.pipeline("text-classification", model=model, device=device)
    except (OSError, ValueError) as e:
        raise NliModelUnavailable(
            f"MEGA-Bench metric nli_entailment needs the NLI model {model!r} and could not load it ({e}); "
            f"set {NLI_MODEL_ENV} to a local copy of {NLI_DEFAULT_MODEL}") from e


@register("nli_entailment")
def nli_entailment(response: Any, answer: Any) -> int:
    """1 when the NLI model labels '[CLS] answer [SEP] response [SEP]' ENTAILMENT (the answer is the premise).
    The official's type check is inverted: a string answer (what the evaluator always passes) or a non-string
    response scores 0 before any model is loaded, and that rule is kept."""
    if not isinstance(response, str) or isinstance(answer, str):
        return 0
    premise = answer.strip()  # a non-string answer without strip() raises, the official's 0
    result = _nli_pipeline()(f"[CLS] {premise} [SEP] {response.strip()} [SEP]")
    return 1 if result[0]["label"] == "ENTAILMENT" else 0


@register("multi_ref_phrase")
def multi_ref_phrase(response: Any, targets: Any) -> int:
    """1 when the response simple_str_match-es any of the references listed in `targets` (a list literal or a
    comma-separated string; full-width commas read as commas), else 0. A non-string `targets` raises (the
    official scorer's 0)."""
    from polyvlm.eval.metrics.megabench import FIELD_METRICS
    from polyvlm.eval.metrics.megabench.convert import str_to_iterable

    simple = FIELD_METRICS.get("simple_str_match").fn
    refs = str_to_iterable(list, targets.replace("，", ","))
    return 1 if any(simple(response, ref if isinstance(ref, str) else str(ref)) for ref in refs) else 0
