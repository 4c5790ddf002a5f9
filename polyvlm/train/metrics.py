"""Step metrics, kept in one place: supervised-token counting (the loss normaliser), per-language loss,
real/padding token counts and throughput, summed over micro-batches and ranks in one all-reduce."""

from __future__ import annotations

import time

import torch

from polyvlm.models.processor import IGNORE
from polyvlm.train import distributed as D
from polyvlm.train.batch import Batch


def supervised_tokens(batch: Batch) -> int:
    """Tokens whose next token is a target (labels shifted by one, as the loss reads them)."""
    return int((batch.labels[:, 1:] != IGNORE).sum())


def sample_losses(token_loss: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed loss [n] and supervised tokens [n] of each sample of `batch` (via its segment ids).

    `token_loss` [b, s-1] is the model's per-token loss; a packed row holds several samples, a padded batch
    one per row; either way `segment_ids` [b, s] numbers them 0..n-1 (-1 for padding).
    """
    seg = batch.segment_ids[:, 1:].to(token_loss.device)
    sup = (batch.labels[:, 1:].to(seg.device) != IGNORE) & (seg >= 0)
    n = len(batch.languages)
    idx = seg[sup]
    loss = torch.zeros(n, dtype=torch.float64).index_add_(0, idx.cpu(), token_loss.detach()[sup].double().cpu())
    count = torch.zeros(n, dtype=torch.float64).index_add_(0, idx.cpu(), torch.ones(len(idx), dtype=torch.float64))
    return loss, count


class StepStats:
    """Accumulates one optimizer step's micro-batches on this rank; `finish` sums over ranks into a log row.

    Throughput is cumulative since the run (or its resumption) started: tokens/s counts real tokens (no
    padding) of all ranks, supervised tokens/s the tokens that carry a loss.
    """

    def __init__(self, languages: list[str]):
        self.languages = languages
        self.index = {lang: i for i, lang in enumerate(languages)}
        self.t0 = time.time()
        self.totals = {"supervised": 0.0, "real": 0.0, "padding": 0.0}
        self._reset()

    def _reset(self) -> None:
        self.loss = 0.0
        self.real = self.padding = 0
        self.lang = torch.zeros(2, len(self.languages), dtype=torch.float64)

    def add(self, batch: Batch, loss_sum: float, token_loss: torch.Tensor) -> None:
        self.loss += loss_sum
        real = int((batch.segment_ids >= 0).sum())
        self.real += real
        self.padding += batch.input_ids.numel() - real
        loss, count = sample_losses(token_loss, batch)
        for k, lang in enumerate(batch.languages):
            j = self.index[lang or "und"]
            self.lang[0, j] += loss[k]
            self.lang[1, j] += count[k]

    def finish(self, n_sup: float, d: D.Dist) -> dict:
        """The step's row: loss (over the step's `n_sup` supervised tokens), token counts and fractions."""
        L = len(self.languages)
        sums = D.all_sums([self.loss, self.real, self.padding, *self.lang[0].tolist(), *self.lang[1].tolist()], d)
        loss, real, padding = sums[:3]
        lang_loss, lang_n = sums[3 : 3 + L], sums[3 + L :]
        t = self.totals
        t["supervised"] += n_sup
        t["real"] += real
        t["padding"] += padding
        cells = max(t["real"] + t["padding"], 1.0)
        elapsed = max(time.time() - self.t0, 1e-9)
        self._reset()
        return {
            "loss": round(loss / max(n_sup, 1.0), 6), "supervised_tokens": int(n_sup),
            "tokens_per_s": round(t["real"] / elapsed, 1), "supervised_tokens_per_s": round(t["supervised"] / elapsed, 1),
            "supervised_fraction": round(t["supervised"] / cells, 4), "padding_fraction": round(t["padding"] / cells, 4),
            "loss_by_language": {lang: round(s / n, 5) for lang, s, n in zip(self.languages, lang_loss, lang_n) if n > 0},
        }
