"""Fixtures for the data tests: a media directory with good and broken images, a tiny tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    """A directory holding img.png (16x16) and a few others used by the media tests."""
    from PIL import Image

    d = tmp_path / "media"
    d.mkdir()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(d / "img.png")
    Image.new("RGB", (64, 64), (0, 100, 0)).save(d / "big.png")
    full = (d / "img.png").read_bytes()
    Image.new("RGB", (128, 128), (5, 5, 5)).save(d / "whole.jpg", quality=90)
    (d / "trunc.jpg").write_bytes((d / "whole.jpg").read_bytes()[:300])
    (d / "empty.png").write_bytes(b"")
    (d / "garbage.png").write_bytes(b"not an image at all" + full[:4])
    return d


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A word-level tokenizer saved as a Hugging Face tokenizer directory (one token per word)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "[PAD]": 1}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    d = tmp_path_factory.mktemp("tok")
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]").save_pretrained(d)
    return d
