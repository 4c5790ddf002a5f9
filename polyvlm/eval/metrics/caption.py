"""Caption and translation metrics on script-aware tokens: BLEU-4 and chrF (sacrebleu), ROUGE-L, CIDEr-D."""

from __future__ import annotations

import math
from collections import Counter

import sacrebleu

from polyvlm.eval.metrics import MetricResult, mean_result, register_metric
from polyvlm.eval.metrics.text import tokenize

NGram = tuple[str, ...]


def _refs_streams(references: list[list[str]]) -> list[list[str | None]]:
    """sacrebleu wants one stream per reference slot; samples with fewer references are padded with None."""
    width = max(len(r) for r in references)
    return [[refs[k] if k < len(refs) else None for refs in references] for k in range(width)]


@register_metric("bleu4", corpus=True, help="corpus BLEU-4 (sacrebleu) on script-aware tokens (CJK/Thai per character)")
def bleu4(predictions: list[str], references: list[list[str]]) -> MetricResult:
    hyps = [" ".join(tokenize(p)) for p in predictions]
    refs = [[" ".join(tokenize(r)) for r in rs] for rs in references]
    metric = sacrebleu.BLEU(tokenize="none", force=True)
    per = [sacrebleu.BLEU(tokenize="none", force=True, effective_order=True).sentence_score(h, r).score / 100
           for h, r in zip(hyps, refs)]
    return MetricResult(per, metric.corpus_score(hyps, _refs_streams(refs)).score)


@register_metric("chrf", corpus=True, help="corpus chrF (sacrebleu defaults: character 6-grams, beta 2)")
def chrf(predictions: list[str], references: list[list[str]]) -> MetricResult:
    metric = sacrebleu.CHRF()
    per = [metric.sentence_score(p, r).score / 100 for p, r in zip(predictions, references)]
    return MetricResult(per, sacrebleu.CHRF().corpus_score(predictions, _refs_streams(references)).score)


def _lcs(a: list[str], b: list[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l_one(candidate: list[str], refs: list[list[str]], beta: float = 1.2) -> float:
    """ROUGE-L as in the COCO caption evaluation: best LCS precision and best LCS recall over the
    references, combined as an F-measure weighted by beta."""
    if not candidate or not refs:
        return 0.0
    prec = max(_lcs(candidate, r) / len(candidate) for r in refs)
    rec = max(_lcs(candidate, r) / len(r) if r else 0.0 for r in refs)
    if prec == 0 or rec == 0:
        return 0.0
    return (1 + beta**2) * prec * rec / (rec + beta**2 * prec)


@register_metric("rouge_l", help="ROUGE-L F (beta 1.2, COCO caption style) on script-aware tokens")
def rouge_l(predictions: list[str], references: list[list[str]]) -> MetricResult:
    return mean_result([rouge_l_one(tokenize(p), [tokenize(r) for r in refs]) for p, refs in zip(predictions, references)])


def _ngrams(tokens: list[str], n: int = 4) -> Counter[NGram]:
    return Counter(tuple(tokens[i:i + k]) for k in range(1, n + 1) for i in range(len(tokens) - k + 1))


def cider_d_scores(candidates: list[list[str]], references: list[list[list[str]]], n: int = 4,
                   sigma: float = 6.0) -> list[float]:
    """CIDEr-D per candidate (tokens in, scores out, on the COCO scale where 10 is the maximum).

    Document frequencies come from the references of the whole corpus; each candidate's TF-IDF n-gram
    vectors are compared with each reference's by cosine similarity with clipped candidate weights, times a
    Gaussian length penalty (sigma 6), averaged over n = 1..4 and over references, times 10. Lengths are
    counted as the reference implementation (pycocoevalcap) does, as the number of bigrams."""
    ref_counts = [[_ngrams(r, n) for r in refs] for refs in references]
    doc_freq: Counter[NGram] = Counter()
    for refs in ref_counts:
        doc_freq.update(set().union(*[set(c) for c in refs]) if refs else set())
    log_n_docs = math.log(float(len(references)))

    def vectorise(counts: Counter[NGram]) -> tuple[list[dict[NGram, float]], list[float], int]:
        vec: list[dict[NGram, float]] = [{} for _ in range(n)]
        norm = [0.0] * n
        length = 0
        for gram, tf in counts.items():
            k = len(gram) - 1
            w = float(tf) * (log_n_docs - math.log(max(1.0, float(doc_freq.get(gram, 0)))))
            vec[k][gram] = w
            norm[k] += w * w
            if k == 1:
                length += tf
        return vec, [math.sqrt(x) for x in norm], length

    scores = []
    for cand, refs in zip(candidates, ref_counts):
        vec, norm, length = vectorise(_ngrams(cand, n))
        total = [0.0] * n
        for ref in refs:
            rvec, rnorm, rlength = vectorise(ref)
            penalty = math.exp(-((length - rlength) ** 2) / (2 * sigma**2))
            for k in range(n):
                dot = sum(min(w, rvec[k].get(g, 0.0)) * rvec[k].get(g, 0.0) for g, w in vec[k].items())
                if norm[k] != 0 and rnorm[k] != 0:
                    dot /= norm[k] * rnorm[k]
                total[k] += dot * penalty
        scores.append(10.0 * (sum(total) / n) / max(1, len(refs)))
    return scores


@register_metric("cider_d", corpus=True, help="CIDEr-D (x100 in tables) on script-aware tokens, IDF over the corpus")
def cider_d(predictions: list[str], references: list[list[str]]) -> MetricResult:
    per = cider_d_scores([tokenize(p) for p in predictions], [[tokenize(r) for r in refs] for refs in references])
    return MetricResult(per, 100.0 * sum(per) / len(per))
