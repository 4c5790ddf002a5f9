"""Processor: placeholder expansion, mismatch errors naming the record, truncation that never cuts media."""

from __future__ import annotations

import pytest

from polyvlm.data.records import RecordError, Turn
from polyvlm.models.factory import builtin_tokenizer
from polyvlm.models.processor import IGNORE, Processor, ProcessorConfig, SampleTooLong


@pytest.fixture(scope="module")
def tok():
    return builtin_tokenizer("builtin:tiny")


def test_two_images_expand_in_order(tok):
    proc = Processor(tok, ProcessorConfig(max_length=512, tokens_per_media={"image": 5}))
    enc = proc.encode([Turn("user", "<image> and <image>: same?"), Turn("assistant", "no")], {"image": 2})
    image_id = tok.convert_tokens_to_ids("<image>")
    runs = "".join("I" if t == image_id else "." for t in enc.input_ids)
    assert runs.count("IIIII") == 2 and runs.count("I") == 10


def test_mismatch_names_record(tok):
    proc = Processor(tok, ProcessorConfig(tokens_per_media={"image": 4}))
    with pytest.raises(RecordError, match=r"data.jsonl:3 id=r7: 1 <image> placeholder\(s\) but 2 image input\(s\)"):
        proc.encode([Turn("user", "<image> hi"), Turn("assistant", "x")], {"image": 2}, source="data.jsonl:3", record_id="r7")


def test_truncation_keeps_media_and_drops_when_cut(tok):
    conv = [Turn("user", "<image>\nWhat colour are the shapes?"), Turn("assistant", "red " * 40)]
    full = Processor(tok, ProcessorConfig(max_length=10_000, tokens_per_media={"image": 16})).encode(conv, {"image": 1})
    n = len(full.input_ids)
    short = Processor(tok, ProcessorConfig(max_length=n - 10, tokens_per_media={"image": 16})).encode(conv, {"image": 1})
    assert len(short.input_ids) == n - 10 and short.input_ids == full.input_ids[: n - 10]
    assert any(lab != IGNORE for lab in short.labels)
    with pytest.raises(SampleTooLong, match="cut a media placeholder run"):
        Processor(tok, ProcessorConfig(max_length=20, tokens_per_media={"image": 16})).encode(conv, {"image": 1}, record_id="r1")
    # room for the prompt but not for any answer token: dropped too
    prompt_len = full.labels.index(next(lab for lab in full.labels if lab != IGNORE))
    with pytest.raises(SampleTooLong, match="no supervised token"):
        Processor(tok, ProcessorConfig(max_length=prompt_len, tokens_per_media={"image": 16})).encode(conv, {"image": 1})
