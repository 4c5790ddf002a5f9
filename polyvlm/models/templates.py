"""Chat templates (chatml, llama3, vicuna_v1, plain, pandagpt): render turns to text plus the supervised char spans.

A template renders a conversation to one string and marks which character spans are supervised:
each assistant turn's content and its end-of-turn marker. Tokenising the whole string once (with
offsets) and labelling tokens by those spans gives exactly the ids `tokenizer.apply_chat_template`
gives, with labels that never cover system, user, header or media tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from polyvlm.data.records import Turn
from polyvlm.registry import Registry

TEMPLATES: Registry = Registry("chat template")


@dataclass
class Rendered:
    text: str
    spans: list[tuple[int, int]]  # supervised [start, end) character ranges


class Template:
    name = ""
    eot = ""  # end-of-turn marker that stops generation
    jinja = ""  # the same format as a Hugging Face chat template, saved with the tokenizer
    bos = ""  # begin-of-sequence text the template starts with (the tokenizer's own bos when it has one)

    def __init__(self, bos: str | None = None):
        if bos and self.bos:
            self.bos = bos

    def render(self, turns: list[Turn], add_generation_prompt: bool = False) -> Rendered:
        raise NotImplementedError


class _Builder:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.spans: list[tuple[int, int]] = []
        self.n = 0

    def add(self, text: str, supervised: bool = False) -> None:
        if supervised and text:
            self.spans.append((self.n, self.n + len(text)))
        self.parts.append(text)
        self.n += len(text)

    def done(self) -> Rendered:
        return Rendered("".join(self.parts), self.spans)


@TEMPLATES.register("chatml")
class ChatML(Template):
    """Qwen's ChatML: `<|im_start|>role\\ncontent<|im_end|>\\n`, with Qwen2's default system prompt."""

    name, eot = "chatml", "<|im_end|>"
    default_system = "You are a helpful assistant."
    jinja = (
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
        "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
        "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    )

    def render(self, turns: list[Turn], add_generation_prompt: bool = False) -> Rendered:
        b = _Builder()
        if not turns or turns[0].role != "system":
            b.add(f"<|im_start|>system\n{self.default_system}<|im_end|>\n")
        for t in turns:
            b.add(f"<|im_start|>{t.role}\n")
            sup = t.role == "assistant"
            b.add(t.text + "<|im_end|>", supervised=sup)
            b.add("\n")
        if add_generation_prompt:
            b.add("<|im_start|>assistant\n")
        return b.done()


@TEMPLATES.register("llama3")
class Llama3(Template):
    """Llama 3 Instruct: `<|start_header_id|>role<|end_header_id|>\\n\\ncontent<|eot_id|>`, content trimmed."""

    name, eot = "llama3", "<|eot_id|>"
    bos = "<|begin_of_text|>"
    jinja = (
        "{% set loop_messages = messages %}{% for message in loop_messages %}"
        "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' %}"
        "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
    )

    def render(self, turns: list[Turn], add_generation_prompt: bool = False) -> Rendered:
        b = _Builder()
        b.add(self.bos)
        for t in turns:
            b.add(f"<|start_header_id|>{t.role}<|end_header_id|>\n\n")
            b.add(t.text.strip() + "<|eot_id|>", supervised=t.role == "assistant")
        if add_generation_prompt:
            b.add("<|start_header_id|>assistant<|end_header_id|>\n\n")
        return b.done()


@TEMPLATES.register("vicuna_v1")
class VicunaV1(Template):
    """LLaVA's vicuna_v1: `<s>SYSTEM USER: q ASSISTANT: a</s>USER: ...`."""

    name, eot = "vicuna_v1", "</s>"
    bos = "<s>"
    default_system = (
        "A chat between a curious user and an artificial intelligence assistant. "
        "The assistant gives helpful, detailed, and polite answers to the user's questions."
    )
    jinja = (
        "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] + ' ' }}"
        "{% set loop_messages = messages[1:] %}{% else %}{{ '" + default_system.replace("'", "\\'") + " ' }}"
        "{% set loop_messages = messages %}{% endif %}{% for message in loop_messages %}"
        "{% if message['role'] == 'user' %}{{ 'USER: ' + message['content'] + ' ' }}"
        "{% else %}{{ 'ASSISTANT: ' + message['content'] + '</s>' }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
    )

    def render(self, turns: list[Turn], add_generation_prompt: bool = False) -> Rendered:
        b = _Builder()
        b.add(self.bos)
        if turns and turns[0].role == "system":
            b.add(turns[0].text + " ")
            turns = turns[1:]
        else:
            b.add(self.default_system + " ")
        for t in turns:
            if t.role == "user":
                b.add(f"USER: {t.text} ")
            else:
                b.add("ASSISTANT: ")
                b.add(t.text + "</s>", supervised=True)
        if add_generation_prompt:
            b.add("ASSISTANT:")
        return b.done()


@TEMPLATES.register("plain")
class Plain(Template):
    """LLaVA's stage-1 `plain`: the user turn is reduced to its media placeholders, then the caption + `\\n`."""

    name, eot = "plain", "\n"
    jinja = (
        "{% for message in messages %}{% if message['role'] == 'user' %}"
        "{{ '<image>' * message['content'].count('<image>') }}"
        "{% elif message['role'] == 'assistant' %}{{ message['content'] + '\\n' }}{% endif %}"
        "{% endfor %}"
    )

    def render(self, turns: list[Turn], add_generation_prompt: bool = False) -> Rendered:

        b = _Builder()
        for t in turns:
            if t.role == "user":
                b.add("<image>" * t.text.count("<image>") + "<audio>" * t.text.count("<audio>") + "<video>" * t.text.count("<video>"))
            elif t.role == "assistant":
                b.add(t.text + "\n", supervised=True)
        return b.done()


@TEMPLATES.register("pandagpt")
class PandaGPT(Template):
    """PandaGPT (code/model/openllama.py, web_demo.py): `<s>### Human: <Img>` media `</Img> q\n### Assistant:`
    then ` a\n###` (supervised), later turns ` Human: q\n### Assistant:`; generation stops at `###`.

    A user turn's media placeholders move inside `<Img>...</Img>` before its text (one row per prompt when
    PandaGPT sums its inputs' embeddings)."""

    name, eot = "pandagpt", "###"
    bos = "<s>"
    _media = ("<image>", "<audio>", "<video>")
    jinja = (
        "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
        "{% set media = namespace(s='', t=message['content']) %}"
        "{% for p in ['<image>', '<audio>', '<video>'] %}{% set media.s = media.s + p * media.t.count(p) %}"
        "{% set media.t = media.t.replace(p, '') %}{% endfor %}"
        "{% if loop.first %}{{ '### Human: ' }}{% else %}{{ ' Human: ' }}{% endif %}"
        "{% if media.s %}{{ '<Img>' + media.s + '</Img> ' }}{% endif %}"
        "{{ media.t | trim }}{{ '\n### Assistant:' }}"
        "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] + '\n###' }}{% endif %}{% endfor %}"
    )

    def render(self, turns: list[Turn], add_generation_prompt: bool = False) -> Rendered:
        b = _Builder()
        b.add(self.bos)
        first = True
        for t in turns:
            if t.role == "user":
                text, media = t.text, ""
                for p in self._media:
                    media += p * text.count(p)
                    text = text.replace(p, "")
                b.add("### Human: " if first else " Human: ")
                if media:
                    b.add(f"<Img>{media}</Img> ")
                b.add(text.strip() + "\n### Assistant:")
                first = False
            elif t.role == "assistant":
                b.add(" ")
                b.add(t.text + "\n###", supervised=True)
        return b.done()


def get_template(name: str, bos: str | None = None) -> Template:
    """The template `name`; `bos` replaces its default begin-of-sequence text (use the tokenizer's)."""
    return TEMPLATES.get(name)(bos)
