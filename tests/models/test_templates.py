"""Chat templates: ids equal `tokenizer.apply_chat_template`, and labels cover exactly the assistant
content plus its end-of-turn token."""

from __future__ import annotations

from pathlib import Path

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

CHAT = ["chatml", "llama3", "vicuna_v1", "qwen_2_5", "chatml_direct", "llava_v1", "llava_llama_3", "mistral_instruct"]
_VICUNA = "<s>"
BOS = {"llama3": "<|begin_of_text|>", "llava_llama_3": "<|begin_of_text|>", "vicuna_v1": _VICUNA, "llava_v1": _VICUNA,
       "mistral_instruct": _VICUNA}


@pytest.fixture(scope="module")
def tok():
    return builtin_tokenizer("builtin:tiny")


def _processor(tok, name: str) -> Processor:
    return Processor(tok, ProcessorConfig(template=name, max_length=4096, tokens_per_media={"image": 3}))


@pytest.mark.parametrize("name", CHAT)
def test_ids_match_apply_chat_template(tok, name):
    tok.bos_token = BOS.get(name, tok.bos_token)
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


@pytest.mark.parametrize("name", [*CHAT, "plain"])
def test_labels_are_assistant_content_and_eot(tok, name):
    tok.bos_token = BOS.get(name, tok.bos_token)
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
    assert set(TEMPLATES.names()) >= {*CHAT, "plain"}
    with pytest.raises(KeyError, match="unknown chat template 'nope'"):
        get_template("nope")


def _ids(tok, msgs: list[dict], gen: bool = False) -> list[int]:
    out = tok.apply_chat_template(msgs, tokenize=True, return_dict=False, add_generation_prompt=gen)
    return list(out["input_ids"] if hasattr(out, "keys") else out)


@pytest.mark.parametrize("name", CHAT)
@pytest.mark.parametrize("system", [False, True])
def test_mask_token_by_token_against_apply_chat_template(tok, name, system):
    """The supervised positions, derived only from `apply_chat_template`: for assistant turn j, the tokens
    after `messages[:j]` + generation prompt, up to and including the first end-of-turn token of
    `messages[:j+1]`. Headers, user and system tokens, the image token and what follows the eot are not."""
    tok.bos_token = BOS.get(name, tok.bos_token)
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


# What LLaVA-NeXT's llava/conversation.py (LLaVA-VL/LLaVA-NeXT) `conv_templates[NAME].copy()` + `append_message`
# for CONV + `get_prompt()` returns, written out from its SeparatorStyle branches: the first question carries
# `<image>\n` in front as LLaVA's eval code puts DEFAULT_IMAGE_TOKEN + "\n" before it. `get_prompt` leaves out the
# bos its tokenizer adds (tokenizer_image_token), except LLAMA_3 whose prompt is Llama 3's apply_chat_template text.
_Q1, _A1, _Q2, _A2 = "<image>\nWhat colour are the shapes?", "red", "Какого цвета фигуры?", "красный и синий"
_HUMAN = ("A chat between a curious human and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the human's questions.")
_USER = _HUMAN.replace("human", "user")
_LLAVA = ("You are a helpful language and vision assistant. You are able to understand the visual content that the "
          "user provides, and assist the user with a variety of tasks using natural language.")


def _chatml(system: str, after: str, gen: bool) -> str:  # SeparatorStyle.CHATML (after "\n") and MPT (after "")
    turns = [("user", _Q1), ("assistant", _A1), ("user", _Q2)] + ([] if gen else [("assistant", _A2)])
    out = f"<|im_start|>system\n{system}<|im_end|>{after}"
    out += "".join(f"<|im_start|>{r}\n{m}<|im_end|>{after}" for r, m in turns)
    return out + ("<|im_start|>assistant\n" if gen else "")


def _llama3(gen: bool) -> str:  # SeparatorStyle.LLAMA_3: apply_chat_template(..., add_generation_prompt=True)
    turns = [("system", _LLAVA), ("user", _Q1), ("assistant", _A1), ("user", _Q2)] + ([] if gen else [("assistant", _A2)])
    out = "<|begin_of_text|>" + "".join(f"<|start_header_id|>{r}<|end_header_id|>\n\n{m}<|eot_id|>" for r, m in turns)
    return out + "<|start_header_id|>assistant<|end_header_id|>\n\n"


ORIGINAL = {  # conv name -> (polyvlm template, bos polyvlm writes, get_prompt() full, get_prompt() with last answer None)
    "qwen_1_5": ("chatml", "", _chatml("You are a helpful assistant.", "\n", False),
                 _chatml("You are a helpful assistant.", "\n", True)),
    "qwen_2_5": ("qwen_2_5", "", _chatml("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.", "\n", False),
                 _chatml("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.", "\n", True)),
    "chatml_direct": ("chatml_direct", "", _chatml("Answer the questions.", "", False),
                      _chatml("Answer the questions.", "", True)),
    "vicuna_v1": ("vicuna_v1", "<s>", f"{_USER} USER: {_Q1} ASSISTANT: {_A1}</s>USER: {_Q2} ASSISTANT: {_A2}</s>",
                  f"{_USER} USER: {_Q1} ASSISTANT: {_A1}</s>USER: {_Q2} ASSISTANT:"),
    "llava_v1": ("llava_v1", "<s>", f"{_HUMAN} USER: {_Q1} ASSISTANT: {_A1}</s>USER: {_Q2} ASSISTANT: {_A2}</s>",
                 f"{_HUMAN} USER: {_Q1} ASSISTANT: {_A1}</s>USER: {_Q2} ASSISTANT:"),
    "llava_llama_3": ("llava_llama_3", "", _llama3(False), _llama3(True)),
    "mistral_instruct": ("mistral_instruct", "<s>", f"[INST] {_Q1} [/INST] {_A1} </s>[INST] {_Q2} [/INST] {_A2} </s>",
                         f"[INST] {_Q1} [/INST] {_A1} </s>[INST] {_Q2} [/INST]"),
    "llava_mistral_instruct": ("mistral_instruct", "<s>", f"[INST] {_Q1} [/INST] {_A1} </s>[INST] {_Q2} [/INST] {_A2} </s>",
                               f"[INST] {_Q1} [/INST] {_A1} </s>[INST] {_Q2} [/INST]"),
}


@pytest.mark.parametrize("conv", list(ORIGINAL))
def test_original_llava_templates_render_byte_identical(conv):
    from polyvlm.models.layouts.llava import ORIGINAL_TEMPLATES, pick_template

    name, bos, full, gen = ORIGINAL[conv]
    assert ORIGINAL_TEMPLATES[conv] == name and pick_template(Path("ckpt"), "llama", conv) == name
    template = get_template(name)
    assert template.render(CONV[:3], add_generation_prompt=True).text == bos + gen
    rendered = template.render(CONV)
    if conv == "llava_llama_3":  # LLAMA_3's get_prompt always appends the generation header
        assert rendered.text + "<|start_header_id|>assistant<|end_header_id|>\n\n" == full
    else:
        assert rendered.text == bos + full
    # the supervised spans are exactly each answer plus its end-of-turn text
    eot = {"mistral_instruct": " </s>"}.get(name, template.eot)
    assert [rendered.text[a:b] for a, b in rendered.spans] == [_A1 + eot, _A2 + eot]


def test_unknown_original_template_names_the_known_ones():
    from polyvlm.models.layouts.base import LayoutError
    from polyvlm.models.layouts.llava import pick_template

    with pytest.raises(LayoutError, match="template 'llava_llama_2'.*qwen_2_5.*chatml_direct"):
        pick_template(Path("ckpt"), "llama", "llava_llama_2")
