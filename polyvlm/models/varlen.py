"""Variable-length ("varlen") attention for packed training: samples concatenated in one row attend only
within themselves, with no padding and no materialised block-diagonal mask: flash-attention's varlen kernel on
CUDA when `flash-attn` is installed (extra `flash`), else causal SDPA per sample (the fused flash kernel on
CPU). Registered with transformers' AttentionInterface as `polyvlm_varlen`."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface

NAME = "polyvlm_varlen"


def _no_mask(*args, **kwargs) -> None:
    """The attention function handles causality and sample boundaries itself: no mask is built."""
    return None


def varlen_attention(module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                     **kwargs) -> tuple[torch.Tensor, None]:
    """query [1, h, s, d], key/value [1, h_kv, s, d] -> output [1, s, h, d].

    `cu_seq_lens_q` (kwargs, as for flash-attention varlen) gives the sample boundaries [n + 1]; without it
    the row is one causal sequence. Padding masks are not supported here (packing has no padding).
    """
    if attention_mask is not None:
        raise ValueError(f"{NAME} attention takes packed rows without padding (got an attention mask)")
    if query.shape[0] != 1 and kwargs.get("cu_seq_lens_q") is not None:
        raise ValueError(f"{NAME} attention expects one packed row, got batch {query.shape[0]}")
    cu = kwargs.get("cu_seq_lens_q")
    p = dropout if module.training else 0.0
    flash = _flash_fn(query)
    if flash is not None:
        return _flash_varlen(flash, query, key, value, cu, kwargs.get("max_length_q"), p, scaling), None
    # grouped key/value heads are read by SDPA itself (`enable_gqa`): no [1, h, s, d] copies of them, forward or back
    gqa = query.shape[1] != key.shape[1]
    sizes = (cu[1:] - cu[:-1]).tolist() if cu is not None else [query.shape[2]]
    # split, not slice: the backward pass joins the per-sample gradients with one cat instead of zero-filling a
    # full-length gradient for every sample and adding them up (about 10% of a small model's step on CPU)
    outs = [
        F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True, scale=scaling, enable_gqa=gqa)
        for q, k, v in zip(query.split(sizes, 2), key.split(sizes, 2), value.split(sizes, 2)) if q.shape[2] > 0
    ]
    # [1, h, s_i, d] pieces -> one contiguous [1, s, h, d] in a single copy
    return torch.cat([o.transpose(1, 2) for o in outs], dim=1), None


@functools.cache
def _flash_varlen_func():
    try:
        from flash_attn import flash_attn_varlen_func
    except ImportError:
        return None
    return flash_attn_varlen_func


def _flash_fn(query: torch.Tensor):
    """flash-attention's `flash_attn_varlen_func` when it can run on `query`: CUDA, fp16/bf16, installed."""
    if not query.is_cuda or query.dtype not in (torch.float16, torch.bfloat16):
        return None
    return _flash_varlen_func()


def _flash_varlen(fn, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, cu: torch.Tensor | None,
                  max_len: int | None, dropout: float, scaling: float | None) -> torch.Tensor:
    """query [1, h, s, d], key/value [1, h_kv, s, d] -> [1, s, h, d] through the varlen kernel, which takes
    [total, heads, d] and the boundaries `cu` [n + 1] (int32) and reads grouped key/value heads itself."""
    s = query.shape[2]
    if cu is None:
        cu, max_len = torch.tensor([0, s], dtype=torch.int32), s
    cu = cu.to(device=query.device, dtype=torch.int32)
    if max_len is None:
        max_len = int((cu[1:] - cu[:-1]).max())
    q, k, v = (t[0].transpose(0, 1) for t in (query, key, value))  # [s, heads, d]
    out = fn(q, k, v, cu_seqlens_q=cu, cu_seqlens_k=cu, max_seqlen_q=int(max_len), max_seqlen_k=int(max_len),
             dropout_p=dropout, softmax_scale=scaling, causal=True)
    return out.unsqueeze(0)  # [1, s, h, d]


AttentionInterface.register(NAME, varlen_attention)
AttentionMaskInterface.register(NAME, _no_mask)
