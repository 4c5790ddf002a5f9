"""IdHashes: duplicate id hashes found across spills and partitions, as a brute force finds them."""

from __future__ import annotations

import random

import pytest

import polyvlm.data.dupes as dupes
from polyvlm.data.dupes import IdHashes


def brute(hashes: list[int]) -> list[tuple[int, int]]:
    first: dict[int, int] = {}
    out = []
    for i, h in enumerate(hashes):
        if h in first:
            out.append((i, first[h]))
        else:
            first[h] = i
    return out


@pytest.mark.parametrize(("part", "buffer"), [(1 << 18, 1 << 16), (7, 5), (1, 1)])
def test_repeated_matches_brute_force(part: int, buffer: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dupes, "PART", part)
    monkeypatch.setattr(dupes, "BUFFER", buffer)
    monkeypatch.setattr(dupes, "_READ", 3)
    rng = random.Random(0)
    hashes = [rng.choice([-1, 0, 5, 2**63 - 1, -(2**63)]) if rng.random() < 0.2 else rng.getrandbits(63) - 2**62
              for _ in range(200)]
    ix = IdHashes()
    for h in hashes:
        ix.append(h)
    assert len(ix) == 200
    assert ix.repeated() == sorted(brute(hashes)) != []
    ix.close()


def test_no_records_and_no_repeats() -> None:
    assert IdHashes().repeated() == []
    ix = IdHashes()
    for h in range(1000):
        ix.append(h)
    assert ix.repeated() == []
