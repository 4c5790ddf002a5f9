"""Packed (varlen) attention: the per-sample SDPA path (CPU, or CUDA without flash-attn) and the call into
flash-attention's `flash_attn_varlen_func` (CUDA + the `flash` extra) give the same output. flash-attn does not
run on a CPU, so its call is checked against a reference of its documented contract: q [total, h, d], k/v
[total, h_kv, d] (grouped heads read in place), int32 `cu_seqlens`, causal within each sequence
(flash_attn/flash_attn_interface.py, `flash_attn_varlen_func`)."""

from __future__ import annotations

import math

import pytest
import torch

from polyvlm.models import varlen


class _Module(torch.nn.Module):
    pass


def _reference_flash(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, dropout_p=0.0,
                     softmax_scale=None, causal=False):
    """flash_attn_varlen_func's contract, computed naively: one causal softmax attention per sequence."""
    assert q.dim() == 3 and k.dim() == 3 and q.shape[0] == k.shape[0] == int(cu_seqlens_q[-1])
    assert cu_seqlens_q.dtype == torch.int32 and causal and dropout_p == 0.0
    lens = (cu_seqlens_q[1:] - cu_seqlens_q[:-1]).tolist()
    assert max_seqlen_q == max(lens) == max_seqlen_k
    h, h_kv, d = q.shape[1], k.shape[1], q.shape[2]
    scale = softmax_scale or 1 / math.sqrt(d)
    out = torch.empty_like(q)
    for a, n in zip(cu_seqlens_q[:-1].tolist(), lens):
        for head in range(h):
            kh = head // (h // h_kv)
            s = q[a : a + n, head] @ k[a : a + n, kh].T * scale  # [n, n]
            s = s.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
            out[a : a + n, head] = s.softmax(-1) @ v[a : a + n, kh]
    return out


@pytest.mark.parametrize("h_kv", [4, 2, 1])
def test_flash_varlen_call_equals_sdpa_per_sample(monkeypatch, h_kv):
    torch.manual_seed(0)
    lens = [5, 1, 9, 3]
    s, h, d = sum(lens), 4, 8
    q, k, v = torch.randn(1, h, s, d), torch.randn(1, h_kv, s, d), torch.randn(1, h_kv, s, d)
    cu = torch.tensor([0, *torch.tensor(lens).cumsum(0).tolist()], dtype=torch.int32)
    kw = {"cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": max(lens), "max_length_k": max(lens)}
    m = _Module().eval()
    sdpa, _ = varlen.varlen_attention(m, q, k, v, None, scaling=0.3, **kw)
    assert sdpa.shape == (1, s, h, d)
    calls = []
    monkeypatch.setattr(varlen, "_flash_fn", lambda query: lambda *a, **k: calls.append(1) or _reference_flash(*a, **k))
    flash, _ = varlen.varlen_attention(m, q, k, v, None, scaling=0.3, **kw)
    assert calls and flash.shape == sdpa.shape
    torch.testing.assert_close(flash, sdpa, rtol=1e-5, atol=1e-5)
    # without boundaries the row is one causal sequence on both paths
    one, _ = varlen.varlen_attention(m, q, k, v, None)
    monkeypatch.setattr(varlen, "_flash_fn", lambda query: None)
    torch.testing.assert_close(one, varlen.varlen_attention(m, q, k, v, None)[0], rtol=1e-5, atol=1e-5)


def test_flash_only_where_it_runs():
    """The kernel is used for CUDA fp16/bf16 tensors only; the CPU keeps per-sample SDPA."""
    assert varlen._flash_fn(torch.zeros(1, 2, 3, 4)) is None
    assert varlen._flash_fn(torch.zeros(1, 2, 3, 4, dtype=torch.bfloat16)) is None
