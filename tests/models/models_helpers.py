"""A reference greedy decode for generator tests: one full forward per token, no KV cache, no batching."""

from __future__ import annotations

import torch

from polyvlm.infer import ChatRequest


def greedy_by_hand(gen, req: ChatRequest, max_new_tokens: int) -> list[int]:
    """The ids `gen.generate([req])` must produce greedily: re-run the whole prompt [1, s] each step and take
    the argmax of the last position's logits [vocab], stopping at a stop id (excluded) or `max_new_tokens`."""
    ids = gen._encode(req)
    media = gen._media([req])
    new: list[int] = []
    gen.model.eval()
    with torch.no_grad():
        for _ in range(max_new_tokens):
            x = torch.tensor([ids + new])
            nxt = int(gen.model(x, torch.ones_like(x), media).logits[0, -1].argmax())
            if nxt in gen.processor.stop_ids:
                break
            new.append(nxt)
    return new
