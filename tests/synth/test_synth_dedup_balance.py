"""dedup (exact + MinHash) and balance (caps, weights, English share), independent of input order."""

from __future__ import annotations

import random

from synth_helpers import conv

from polyvlm.synth.stages.base import StageContext
from polyvlm.synth.stages.dedup import Balance, BalanceParams, Dedup, DedupParams


def reduce(stage, records):
    kept, dropped = [], []
    stage.reduce(lambda: iter(records), kept.append, lambda r, code, reason: dropped.append((r["id"], code, reason)))
    return kept, dropped


LONG = ("The photograph shows a wooden table in a sunny kitchen with three green apples, a glass of milk, "
        "a folded newspaper and a small blue vase holding yellow tulips next to the window.")


def test_dedup_exact_and_near(tmp_path):
    recs = [
        conv("a", "Describe it.", LONG),
        conv("b", "describe   IT!", LONG.upper()),  # same after normalisation
        conv("c", "Describe it.", LONG.replace("yellow", "orange")),  # one word changed: near duplicate
        conv("d", "Describe it.", LONG, image="blue.png"),  # same text, other image: kept
        conv("e", "What is on the table?", "A cat sleeping on a red blanket."),
    ]
    stage = Dedup(DedupParams(threshold=0.7), StageContext(tmp_path))
    kept, dropped = reduce(stage, recs)
    codes = {rid: code for rid, code, _ in dropped}
    kept_ids = {r["id"] for r in kept}
    assert {"d", "e"} <= kept_ids and len(kept_ids & {"a", "b", "c"}) == 1  # one of the near-identical three
    assert sorted(codes.values()) == ["exact_duplicate", "near_duplicate"]
    assert all("id=" in reason for _, _, reason in dropped)
    # the same decision whatever the order
    for seed in range(3):
        shuffled = recs[:]
        random.Random(seed).shuffle(shuffled)
        assert sorted(r["id"] for r in reduce(stage, shuffled)[0]) == sorted(r["id"] for r in kept)
    only_exact = Dedup(DedupParams(near=False), StageContext(tmp_path))
    assert len(reduce(only_exact, recs)[0]) == 4


def _pool():
    recs = []
    for i in range(60):
        recs.append(conv(f"en{i}", f"q{i}", "a", language="en", category="general" if i % 2 else "ocr"))
    for i in range(20):
        recs.append(conv(f"sw{i}", f"q{i}", "a", language="sw", category="general"))
    for i in range(20):
        recs.append(conv(f"zh{i}", f"q{i}", "a", language="zh-Hans", category="chart"))
    return recs


def test_balance_caps_weights_and_english_share(tmp_path):
    recs = _pool()
    stage = Balance(BalanceParams(cap_per_category={"ocr": 10}, weight_per_language={"sw": 2.0},
                                  english_share=0.5), StageContext(tmp_path))
    kept, dropped = reduce(stage, recs)
    by_lang: dict[str, int] = {}
    for r in kept:
        by_lang[r["language"]] = by_lang.get(r["language"], 0) + 1
    assert by_lang["sw"] == 40 and len({r["id"] for r in kept if r["language"] == "sw"}) == 40  # repeats get ids
    assert by_lang["zh-Hans"] == 20
    assert by_lang["en"] == 40  # 30 general + ocr capped to 10; 60 others allow up to 60 English at 0.5
    assert sum(1 for r in kept if r["category"] == "ocr") == 10
    assert all(code == "balance_cap" for _, code, _ in dropped) and len(dropped) == 20
    shuffled = recs[:]
    random.Random(1).shuffle(shuffled)
    assert sorted(r["id"] for r in reduce(stage, shuffled)[0]) == sorted(r["id"] for r in kept)


def test_balance_english_share_downsamples(tmp_path):
    kept, _ = reduce(Balance(BalanceParams(english_share=0.2), StageContext(tmp_path)), _pool())
    en = sum(1 for r in kept if r["language"] == "en")
    assert en == 10 and len(kept) == 50  # 40 others -> 10 English is 20%
