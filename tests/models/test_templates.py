"""Chat templates: ids equal `tokenizer.apply_chat_template`, and labels cover exactly the assistant
content plus its end-of-turn token."""

from __future__ import annotations

import pytest

from polyvlm.data.records import Turn
from polyvlm.models.factory import builtin_tokenizer
from polyvlm.models.processor import IGNORE, Processor, ProcessorConfig
from polyvlm.models.templates import TEMPLATES, get_template

CONV = [
    Turn("user", "<image>\nWhat colour are the shapes?"),
    Turn("assistant", "red"),
    Turn("user", "Какого цвета фигуры?"),
    Turn("assistant", "красный и синий"),
]


@pytest.fixture(scope="module")
def tok():
    return builtin_tokenizer("builtin:tiny")


def _processor(tok, name: str) -> Processor:
    return Processor(tok, ProcessorConfig(template=name, max_length=4096, tokens_per_media={"image": 3}))


@pytest.mark.parametrize("name", ["chatml", "llama3", "vicuna_v1"])
def test_ids_match_apply_chat_template(tok, name):
    tok.bos_token = {"llama3": "<|begin_of_text|>", "vicuna_v1": "<s>"}.get(name, tok.bos_token)
    template = get_template(name, tok.bos_token)
    tok.chat_template = template.jinja
    msgs = [{"role": t.role, "content": t.text} for t in CONV]
    want = tok.apply_chat_template(msgs, tokenize=True, return_dict=False)
    if isinstance(want, dict) or hasattr(want, "keys"):
        want = want["input_ids"]
    proc = _processor(tok, name)
    rendered = template.render(CONV)
    got = tok(rendered.text, add_special_tokens=False)["input_ids"]
    assert got == list(want)
    # generation prompt too
    want_gen = tok.apply_chat_template(msgs[:1], tokenize=False, add_generation_prompt=True)
    assert template.render(CONV[:1], add_generation_prompt=True).text == want_gen
    assert proc.template.name == name


@pytest.mark.parametrize("name", ["chatml", "llama3", "vicuna_v1", "plain"])
def test_labels_are_assistant_content_and_eot(tok, name):
    proc = _processor(tok, name)
    conv = CONV if name != "plain" else CONV[:2]
    enc = proc.encode(conv, {"image": 1})
    sup = [i for i, lab in zip(enc.input_ids, enc.labels) if lab != IGNORE]
    eot = get_template(name).eot
    answers = [t.text for t in conv if t.role == "assistant"]
    # a token may carry the space before an answer (vicuna's "ASSISTANT: red"): compare without spaces
    assert tok.decode(sup).replace(" ", "") == "".join(a + eot for a in answers).replace(" ", "")
    image_id = tok.convert_tokens_to_ids("<image>")
    # image placeholder expanded to tokens_per_media copies, none supervised
    positions = [i for i, t in enumerate(enc.input_ids) if t == image_id]
    assert len(positions) == 3 and all(enc.labels[i] == IGNORE for i in positions)
    # system / user / header tokens are never supervised: every supervised token lies in an answer or eot
    for i, lab in enumerate(enc.labels):
        if lab != IGNORE:
            assert lab == enc.input_ids[i]


def test_registry_lists_templates():
    assert set(TEMPLATES.names()) >= {"chatml", "llama3", "vicuna_v1", "plain"}
    with pytest.raises(KeyError, match="unknown chat template 'nope'"):
        get_template("nope")


def _ids(tok, msgs: list[dict], gen: bool = False) -> list[int]:
    out = tok.apply_chat_template(msgs, tokenize=True, return_dict=False, add_generation_prompt=gen)
    return list(out["input_ids"] if hasattr(out, "keys") else out)


@pytest.mark.parametrize("name", ["chatml", "llama3", "vicuna_v1"])
@pytest.mark.parametrize("system", [False, True])
def test_mask_token_by_token_against_apply_chat_template(tok, name, system):
    """The supervised positions, derived only from `apply_chat_template`: for assistant turn j, the tokens
    after `messages[:j]` + generation prompt, up to and including the first end-of-turn token of
    `messages[:j+1]`. Headers, user and system tokens, the image token and what follows the eot are not."""
    tok.bos_token = {"llama3": "<|begin_of_text|>", "vicuna_v1": "<s>"}.get(name, tok.bos_token)
    template = get_template(name, tok.bos_token)
    tok.chat_template = template.jinja
    conv = ([Turn("system", "Answer in one word.")] if system else []) + CONV
    msgs = [{"role": t.role, "content": t.text} for t in conv]
    full = _ids(tok, msgs)
    eot = tok.convert_tokens_to_ids(template.eot)
    want = [False] * len(full)
    for j, m in enumerate(msgs):
        if m["role"] != "assistant":
            continue
        start, upto = len(_ids(tok, msgs[:j], gen=True)), _ids(tok, msgs[: j + 1])
        assert upto == full[: len(upto)]  # rendering is prefix-stable, so positions carry over
        end = upto.index(eot, start) + 1
        want[start:end] = [True] * (end - start)
    proc = Processor(tok, ProcessorConfig(template=name, max_length=4096, tokens_per_media={"image": 1}))
    enc = proc.encode(conv, {"image": 1})
    assert enc.input_ids == full
    got = [lab != IGNORE for lab in enc.labels]
    # vicuna_v1: "ASSISTANT:" ends the generation prompt and " red" carries the space; same tokens either way
    assert got == want, [(tok.convert_ids_to_tokens(i), g, w) for i, g, w in zip(full, got, want) if g != w]
    assert all(lab == i for lab, i in zip(enc.labels, enc.input_ids) if lab != IGNORE)
