"""Tokenizers: load a local one, or train a small byte-level BPE offline (quick start, tests) with every
special token the templates and media placeholders need.

Placeholders: every tokenizer has `<image>`, `<audio>` and `<video>` (trained into the built-in vocabularies, added
to others); the placeholder of any other modality (`<thermal>`, a modality added later) is added only for a model
configured with its encoder (`model.encoders`), so released checkpoints keep their vocabulary."""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from polyvlm.media import PLACEHOLDERS

MEDIA_TOKENS = ["<image>", "<audio>", "<video>"]  # trained into the built-in vocabularies (ids stay fixed)
SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>",
    "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
    "<s>", "</s>", "<pad>", *MEDIA_TOKENS,
]


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2000, chat_template: str = "",
                    modalities: Iterable[str] = ()) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `texts`; returns a HF fast tokenizer with pad/eos/bos and media tokens (and the
    placeholders of `modalities`)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="<|endoftext|>", pad_token="<pad>",
        additional_special_tokens=[t for t in SPECIAL_TOKENS if t not in ("<s>", "<|endoftext|>", "<pad>")],
    )
    add_placeholders(fast, modalities)
    if chat_template:
        fast.chat_template = chat_template
    return fast


def add_placeholders(tok: PreTrainedTokenizerBase, modalities: Iterable[str] = ()) -> None:
    """`<image>`, `<audio>`, `<video>` and the placeholders of `modalities` (registered in polyvlm.media) as single
    special tokens, added after the vocabulary (so the ids of existing tokens do not move)."""
    wanted = [*MEDIA_TOKENS, *(PLACEHOLDERS[m] for m in modalities)]
    vocab = tok.get_vocab()
    missing = [t for t in dict.fromkeys(wanted) if t not in vocab]
    if missing:
        tok.add_special_tokens({"additional_special_tokens": missing}, replace_extra_special_tokens=False)


def placeholder_ids(tok: PreTrainedTokenizerBase) -> dict[str, int]:
    """Modality -> its placeholder's token id, for every registered modality whose placeholder is a token of `tok`."""
    vocab = tok.get_vocab()
    return {m: vocab[p] for m, p in PLACEHOLDERS.items() if p in vocab}


def load_tokenizer(path: str, modalities: Iterable[str] = ()) -> PreTrainedTokenizerBase:
    """Load a local tokenizer directory and make sure the media placeholders (those of image, audio, video and
    `modalities`) are single special tokens."""
    tok = AutoTokenizer.from_pretrained(path)
    add_placeholders(tok, modalities)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok
