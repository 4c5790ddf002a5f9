"""Chunked linear cross-entropy (polyvlm.models.loss): the loss, per-token losses and the gradients of hidden
states, head weight and bias equal the full `[tokens, vocab]` computation; chunks bound the logits held."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from polyvlm.models import loss as L


def _inputs(n=37, d=24, v=1000, bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, d, generator=g, requires_grad=True)
    w = (torch.randn(v, d, generator=g) / d**0.5).requires_grad_()
    b = torch.randn(v, generator=g).requires_grad_() if bias else None
    t = torch.randint(0, v, (n,), generator=g)
    return h, w, b, t


@pytest.mark.parametrize("chunk", [1, 8, 16, 37, 4096])
@pytest.mark.parametrize("bias", [True, False])
def test_equal_to_the_full_computation(chunk, bias):
    h, w, b, t = _inputs(bias=bias)
    params = [h, w] + ([b] if bias else [])
    ref_tok = F.cross_entropy(F.linear(h, w, b).float(), t, reduction="none")
    ref_grads = torch.autograd.grad(ref_tok.sum() * 0.37, params)
    total, tok = L.linear_cross_entropy(h, w, b, t, chunk=chunk, use_liger=False)
    grads = torch.autograd.grad(total * 0.37, params)  # any scale: the step's 1 / supervised tokens
    torch.testing.assert_close(tok, ref_tok.detach())
    torch.testing.assert_close(total, ref_tok.sum().detach())
    assert not tok.requires_grad
    for a, r in zip(grads, ref_grads):
        torch.testing.assert_close(a, r, rtol=1e-5, atol=1e-6)


def test_bf16_autocast_matches_the_full_computation_under_autocast():
    h, w, b, t = _inputs(bias=False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref = F.cross_entropy(F.linear(h, w).float(), t, reduction="sum")
        total, _ = L.linear_cross_entropy(h, w, None, t, chunk=8, use_liger=False)
    ref_g = torch.autograd.grad(ref, [h, w])
    g = torch.autograd.grad(total, [h, w])
    torch.testing.assert_close(total, ref.detach(), rtol=1e-3, atol=1e-3)
    assert g[0].dtype == torch.float32 and g[1].dtype == torch.float32  # gradients in the parameters' dtype
    for a, r in zip(g, ref_g):
        torch.testing.assert_close(a, r, rtol=2e-2, atol=2e-3)


def test_chunks_bound_the_logits(monkeypatch):
    """No matmul ever makes more than `chunk` rows of logits (the full [n, V] never exists)."""
    rows = []
    real = F.linear
    monkeypatch.setattr(L.F, "linear", lambda x, *a: rows.append(x.shape[0]) or real(x, *a))
    h, w, b, t = _inputs(n=100, v=5000)
    total, _ = L.linear_cross_entropy(h, w, b, t, chunk=16, use_liger=False)
    total.backward()
    assert max(rows) == 16 and sum(rows) == 100  # one pass: gradients come from the forward's chunks
    assert L.chunk_tokens(151_936) * 151_936 * 4 <= L.CHUNK_BYTES  # Qwen2's vocabulary: ~440 tokens a chunk


def test_tied_embedding_and_accumulated_gradients_equal_the_full_computation():
    """The head's weight is also the input embedding (Qwen2's tied 151,936 rows): autograd adds the embedding's
    gradient to the one the loss hands over (in place), and micro-batches accumulate into `.grad` as usual."""
    g = torch.Generator().manual_seed(1)
    w = (torch.randn(300, 16, generator=g) / 4).requires_grad_()
    batches = [(torch.randint(0, 300, (n,), generator=g), torch.randint(0, 300, (n,), generator=g)) for n in (9, 20)]
    for scale in (0.25, 1.0):
        w.grad = None
        for ids, t in batches:
            (F.cross_entropy(F.linear(torch.tanh(F.embedding(ids, w)), w), t, reduction="sum") * scale).backward()
        ref = w.grad.clone()
        w.grad = None
        for ids, t in batches:
            total, _ = L.linear_cross_entropy(torch.tanh(F.embedding(ids, w)), w, None, t, chunk=4, use_liger=False)
            (total * scale).backward()
        torch.testing.assert_close(w.grad, ref, rtol=1e-5, atol=1e-6)
    total, _ = L.linear_cross_entropy(torch.tanh(F.embedding(ids, w)), w, None, t, use_liger=False)
    total.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="backward through it twice"):
        total.backward()


def test_no_grad_and_empty():
    h, w, b, t = _inputs()
    with torch.no_grad():
        total, tok = L.linear_cross_entropy(h, w, b, t, use_liger=False)
    assert tok.shape == (37,) and not total.requires_grad
    total, tok = L.linear_cross_entropy(h[:0], w, b, t[:0], use_liger=False)
    total.backward()
    assert float(total.detach()) == 0.0 and tok.shape == (0,) and float(w.grad.abs().sum()) == 0.0


def test_liger_asked_without_it_says_how_to_install(monkeypatch):
    monkeypatch.setattr(L, "_liger", lambda: None)
    h, w, b, t = _inputs()
    with pytest.raises(ImportError, match=r"pip install 'polyvlm\[liger\]'"):
        L.linear_cross_entropy(h, w, b, t, use_liger=True)


def test_contrastive_loss_matches_clip_definition_and_ranks_pairs():
    """CLIP's loss (openai/CLIP `model.py` logits_per_image / logits_per_text; HF `clip_loss` in
    `modeling_clip.py`): mean of the two cross-entropies over scaled cosine logits, diagonal targets."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    an, bn = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    per_a = 10.0 * an @ bn.T
    want = (F.cross_entropy(per_a, torch.arange(6)) + F.cross_entropy(per_a.T, torch.arange(6))) / 2
    assert torch.allclose(L.contrastive_loss(a, b, 10.0), want, atol=1e-6)
    # matched pairs score lower than shuffled ones
    assert L.contrastive_loss(a, a + 0.01 * b, 10.0) < L.contrastive_loss(a, b, 10.0)
    with pytest.raises(ValueError, match="two \\[n, d\\] tensors"):
        L.contrastive_loss(a, b[:5], 10.0)
