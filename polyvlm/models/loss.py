"""Cross-entropy of the LM head over supervised positions, in chunks: the `[tokens, vocab]` logits (fp32) are never
held at once, and gradients are computed in the same pass (no recomputation); Liger's fused Triton kernel on
CUDA when `liger-kernel` is installed."""

from __future__ import annotations

import contextlib
import functools
import logging

import torch
import torch.nn.functional as F

log = logging.getLogger("polyvlm.models")

CHUNK_BYTES = 256 << 20  # fp32 logits of one chunk (the softmax gradient reuses their memory)


def chunk_tokens(vocab: int, budget: int = CHUNK_BYTES) -> int:
    """Tokens per chunk so that one chunk's fp32 logits take about `budget` bytes (at least 16 tokens)."""
    return max(16, budget // (4 * vocab))


def _compute_dtype(t: torch.Tensor) -> torch.dtype:
    """The matmul dtype autocast would pick here (bf16 under bf16 autocast), else the tensor's own."""
    dev = t.device.type
    if torch.is_autocast_enabled(dev):
        return torch.get_autocast_dtype(dev)
    return t.dtype


class _ChunkedLinearCrossEntropy(torch.autograd.Function):
    """(hidden [n, d], weight [V, d], bias [V] | None, targets [n]) -> (summed loss [], per-token loss [n]).

    Per chunk of rows: logits in the compute dtype, log-sum-exp and the softmax gradient in fp32 (in place),
    then the chunk's gradients for hidden, weight and bias. Only the summed loss is differentiable, so the
    saved gradients are exact whatever it is scaled by."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, chunk: int, cdt: torch.dtype):
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        n = hidden.shape[0]
        losses = torch.empty(n, dtype=torch.float32, device=hidden.device)
        gh = torch.empty_like(hidden) if need_h else None
        # [V, d] / [V] in fp32; the first chunk writes them (beta=0 ignores their garbage): no separate zero fill
        gw = torch.empty(weight.shape, dtype=torch.float32, device=weight.device) if need_w else None
        gb = torch.empty(bias.shape, dtype=torch.float32, device=bias.device) if need_b else None
        if n == 0:
            for g in (gh, gw, gb):
                if g is not None:
                    g.zero_()
        w = weight.to(cdt)
        b = None if bias is None else bias.to(cdt)
        for s in range(0, n, chunk):
            h = hidden[s : s + chunk].to(cdt)
            t = targets[s : s + chunk]
            logits = F.linear(h, w, b).float()  # [c, V]
            lse = torch.logsumexp(logits, -1)
            losses[s : s + chunk] = lse - logits.gather(1, t.unsqueeze(1)).squeeze(1)
            if not (need_h or need_w or need_b):
                continue
            g = logits.sub_(lse.unsqueeze(1)).exp_()  # softmax, in the logits' memory
            g[torch.arange(len(t), device=g.device), t] -= 1.0  # d loss_i / d logits_i
            gc = g.to(cdt)
            first = s == 0
            if need_h:
                if gh.dtype == gc.dtype:
                    torch.mm(gc, w, out=gh[s : s + chunk])
                else:
                    gh[s : s + chunk] = (gc @ w).to(hidden.dtype)
            if need_w:
                if gc.dtype == torch.float32:
                    gw.addmm_(gc.t(), h, beta=0.0 if first else 1.0)
                else:
                    (gw.copy_ if first else gw.add_)((gc.t() @ h).float())
            if need_b:
                (gb.copy_ if first else gb.add_)(g.sum(0))
        # kept on ctx, not saved tensors: they belong to no graph, and backward hands them over (scaled in place)
        ctx.grads = (gh, gw, gb)
        ctx.dtypes = (weight.dtype, None if bias is None else bias.dtype)
        ctx.mark_non_differentiable(losses)
        return losses.sum(), losses

    @staticmethod
    def backward(ctx, grad_sum, _grad_losses):
        if ctx.grads is None:
            raise RuntimeError("linear_cross_entropy: its gradients were computed in the forward and are handed over "
                               "once; backward through it twice (retain_graph) is not supported")
        gh, gw, gb = ctx.grads
        ctx.grads = None  # the last reference: autograd may add a tied embedding's gradient into gw in place
        wd, bd = ctx.dtypes
        return (None if gh is None else gh.mul_(grad_sum.to(gh.dtype)),
                None if gw is None else gw.mul_(grad_sum).to(wd),
                None if gb is None else gb.mul_(grad_sum).to(bd), None, None, None)


@functools.cache
def _liger():
    """Liger's fused linear cross-entropy, or None when `liger-kernel` is not installed."""
    try:
        from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy
    except ImportError:
        return None
    return liger_fused_linear_cross_entropy


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                         targets: torch.Tensor, chunk: int | None = None, use_liger: bool | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """hidden [n, d] (the positions that predict a supervised token), LM head weight [V, d] (+ bias [V]), targets
    [n] -> (summed cross-entropy [] (differentiable), per-token loss [n] fp32 (not differentiable)).

    Equal, within rounding, to `F.cross_entropy(F.linear(hidden, weight, bias).float(), targets, reduction="sum")`,
    at about `chunk` x V x 4 bytes of transient memory. `use_liger` (default: on CUDA when installed) computes
    the differentiable sum with Liger's kernel; the per-token losses (for logs) then come from a no-grad pass.
    """
    chunk = chunk or chunk_tokens(weight.shape[0])
    cdt = _compute_dtype(hidden)
    if use_liger is None:
        use_liger = hidden.is_cuda and _liger() is not None
    if use_liger:
        fn = _liger()
        if fn is None:
            raise ImportError("use_liger=True needs liger-kernel: pip install 'polyvlm[liger]'")
        total = fn(hidden.to(cdt), weight.to(cdt), targets, bias=None if bias is None else bias.to(cdt), reduction="sum")
        with torch.no_grad():
            _, losses = _ChunkedLinearCrossEntropy.apply(hidden.detach(), weight.detach(), None if bias is None else
                                                         bias.detach(), targets, chunk, cdt)
        return total.float(), losses
    with torch.autocast(hidden.device.type, enabled=False) if torch.is_autocast_enabled(hidden.device.type) \
            else contextlib.nullcontext():
        return _ChunkedLinearCrossEntropy.apply(hidden, weight, bias, targets, chunk, cdt)


def contrastive_loss(a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor | float) -> torch.Tensor:
    """Symmetric InfoNCE of CLIP / ImageBind: a [n, d], b [n, d] (row i of each is a matching pair) -> mean loss [].

    Rows are L2-normalised; logits = scale x cosine similarity [n, n]; the loss is the mean of cross-entropy from
    a to b and from b to a with the diagonal as targets (CLIP's `clip_loss`, ImageBind's per-modality objective).
    `logit_scale` is the multiplier itself (CLIP keeps its log and exponentiates before the call).
    """
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(f"contrastive_loss needs two [n, d] tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    logits = logit_scale * F.normalize(a.float(), dim=-1) @ F.normalize(b.float(), dim=-1).T
    targets = torch.arange(a.shape[0], device=a.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
