"""Multiple choice by log-likelihood, as lm-evaluation-harness scores `output_type: multiple_choice` tasks: each
choice's summed token log-probability after the context; `acc` takes the best, `acc_norm` the best per character."""

from __future__ import annotations

import math
from typing import Any


def split_tokens(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-eval's `_encode_pair`: trailing spaces of the context move to the continuation; the continuation's
    tokens are those of (context + continuation) after the context's, no special tokens added."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
    ctx = tokenizer(context, add_special_tokens=False)["input_ids"]
    return list(ctx), list(whole[len(ctx):])


def choice_logliks(llm: Any, tokenizer: Any, context: str, choices: list[str], delimiter: str = " ") -> list[float]:
    """Summed log-probability of each `delimiter + choice` after `context` under the causal LM `llm` (one forward
    per choice: [1, s] ids -> [1, s, vocab] logits, log-softmax in float32)."""
    import torch

    device = next(llm.parameters()).device
    out = []
    for choice in choices:
        ctx, cont = split_tokens(tokenizer, context, delimiter + choice)
        if not ctx:  # lm-eval: an empty context is replaced by the end-of-text token
            ctx = [tokenizer.eos_token_id]
        ids = torch.tensor([ctx + cont][0][:-1], device=device)[None]
        with torch.no_grad():
            logits = llm(input_ids=ids).logits[0, len(ctx) - 1:].float()
        logp = torch.log_softmax(logits, dim=-1)
        out.append(float(logp[torch.arange(len(cont)), torch.tensor(cont, device=device)].sum()))
    return out


def acc_and_norm(logliks: list[float], choices: list[str], gold: int) -> tuple[float, float]:
    """(acc, acc_norm): the argmax of the log-likelihoods, and of the log-likelihoods over each choice's length in
    characters (lm-eval's `acc_norm`), compared with the gold index (first best on ties, as numpy's argmax)."""
    def argmax(values: list[float]) -> int:
        return max(range(len(values)), key=lambda i: (values[i], -i))

    norm = [ll / float(len(c)) if len(c) else -math.inf for ll, c in zip(logliks, choices)]
    return float(argmax(logliks) == gold), float(argmax(norm) == gold)
