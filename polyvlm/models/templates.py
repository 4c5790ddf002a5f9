"""Chat templates (chatml, llama3, vicuna_v1, plain, pandagpt and the original LLaVA ones): render turns to text plus the supervised char spans.

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


def _chatml_jinja(system: str, after: str) -> str:
    """ChatML as a Hugging Face chat template: `system` when the first message is not one; `after` follows
    each `<|im_end|>`."""
    return (
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
        "{{ '<|im_start|>system\\n" + system + "<|im_end|>" + after.replace("\n", "\\n") + "' }}{% endif %}"
        "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '"
        + after.replace("\n", "\\n") + "' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    )


@TEMPLATES.register("chatml")
class ChatML(Template):
    """Qwen's ChatML: `<|im_start|>role\\ncontent<|im_end|>\\n`, with Qwen2's default system prompt."""

    name, eot = "chatml", "<|im_end|>"
    default_system = "You are a helpful assistant."
    after = "\n"  # what follows each `<|im_end|>`
    jinja = _chatml_jinja(default_system, after)

    def render(self, turns: list[Turn], add_generation_prompt: bool = False) -> Rendered:
        b = _Builder()
        if not turns or turns[0].role != "system":
            b.add(f"<|im_start|>system\n{self.default_system}<|im_end|>{self.after}")
        for t in turns:
            b.add(f"<|im_start|>{t.role}\n")
            sup = t.role == "assistant"
            b.add(t.text + "<|im_end|>", supervised=sup)
            b.add(self.after)
        if add_generation_prompt:
            b.add("<|im_start|>assistant\n")
        return b.done()


@TEMPLATES.register("qwen_2_5")
class Qwen25(ChatML):
    """LLaVA-NeXT's qwen_2_5 (llava/conversation.py conv_qwen_2_5): ChatML with Qwen2.5's system prompt."""

    name = "qwen_2_5"
    default_system = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    jinja = _chatml_jinja(default_system, "\n")


@TEMPLATES.register("chatml_direct")
class ChatMLDirect(ChatML):
    """LLaVA-NeXT's chatml_direct (conv_chatml_direct, SeparatorStyle.MPT): ChatML turns with nothing between
    them (`<|im_end|><|im_start|>`) and the system prompt `Answer the questions.`."""

    name = "chatml_direct"
    default_system = "Answer the questions."
    after = ""
    jinja = _chatml_jinja(default_system, after)


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


def _vicuna_jinja(system: str) -> str:
    """LLaVA's SeparatorStyle.TWO as a Hugging Face chat template, `system` when the first message is not one."""
    return (
        "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] + ' ' }}"
        "{% set loop_messages = messages[1:] %}{% else %}{{ '" + system.replace("'", "\\'") + " ' }}"
        "{% set loop_messages = messages %}{% endif %}{% for message in loop_messages %}"
        "{% if message['role'] == 'user' %}{{ 'USER: ' + message['content'] + ' ' }}"
        "{% else %}{{ 'ASSISTANT: ' + message['content'] + '</s>' }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
    )


@TEMPLATES.register("vicuna_v1")
class VicunaV1(Template):
    """LLaVA's vicuna_v1: `<s>SYSTEM USER: q ASSISTANT: a</s>USER: ...`."""

    name, eot = "vicuna_v1", "</s>"
    bos = "<s>"
    default_system = (
        "A chat between a curious user and an artificial intelligence assistant. "
        "The assistant gives helpful, detailed, and polite answers to the user's questions."
    )
    jinja = _vicuna_jinja(default_system)

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


@TEMPLATES.register("llava_v1")
class LlavaV1(VicunaV1):
    """LLaVA's llava_v1 (llava/conversation.py conv_llava_v1): vicuna_v1 whose system prompt says "human"."""

    name = "llava_v1"
    default_system = (
        "A chat between a curious human and an artificial intelligence assistant. "
        "The assistant gives helpful, detailed, and polite answers to the human's questions."
    )
    jinja = _vicuna_jinja(default_system)


@TEMPLATES.register("llava_llama_3")
class LlavaLlama3(Llama3):
    """LLaVA-NeXT's llava_llama_3 (conv_llava_llama_3): Llama 3 Instruct's own chat template with LLaVA's
    system prompt as the first message when the conversation brings none."""

    name = "llava_llama_3"
    default_system = (
        "You are a helpful language and vision assistant. You are able to understand the visual content that "
        "the user provides, and assist the user with a variety of tasks using natural language."
    )
    jinja = (
        "{% if messages[0]['role'] != 'system' %}{% set messages = [{'role': 'system', 'content': '"
        + default_system + "'}] + messages %}{% endif %}" + Llama3.jinja
    )

    def render(self, turns: list[Turn], add_generation_prompt: bool = False) -> Rendered:
        if not turns or turns[0].role != "system":
            turns = [Turn("system", self.default_system), *turns]
        return super().render(turns, add_generation_prompt)


@TEMPLATES.register("mistral_instruct")
class MistralInstruct(Template):
    """LLaVA-NeXT's mistral_instruct / llava_mistral_instruct (conv_mistral_instruct, SeparatorStyle.LLAMA_2
    with sep "" and sep2 "</s>"): `<s>[INST] q [/INST] a </s>[INST] ...`; a system turn is wrapped in
    `<<SYS>>\\n...\\n<</SYS>>\\n\\n` before the first question. The prompt for generation ends at `[/INST]`."""

    name, eot = "mistral_instruct", "</s>"
    bos = "<s>"
    jinja = (
        "{{ bos_token }}{% set ns = namespace(sys='') %}{% for message in messages %}"
        "{% if message['role'] == 'system' %}{% if message['content'] %}"
        "{% set ns.sys = '<<SYS>>\\n' + message['content'] + '\\n<</SYS>>\\n\\n' %}{% endif %}"
        "{% elif message['role'] == 'user' %}{{ '[INST] ' + ns.sys + message['content'] + ' [/INST]' }}"
        "{% set ns.sys = '' %}{% else %}{{ ' ' + message['content'] + ' </s>' }}{% endif %}{% endfor %}"
    )

    def render(self, turns: list[Turn], add_generation_prompt: bool = False) -> Rendered:
        b = _Builder()
        b.add(self.bos)
        system = ""
        for t in turns:
            if t.role == "system":
                system = f"<<SYS>>\n{t.text}\n<</SYS>>\n\n" if t.text else ""
            elif t.role == "user":
                b.add(f"[INST] {system}{t.text} [/INST]")
                system = ""
            else:
                b.add(" ")
                b.add(f"{t.text} </s>", supervised=True)
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
            elif t.role == "assistant":  # the space too: the prompt ends at ":" (PandaGPT's target is
                # the answer as its own tokens, `turn['value'] + '\n###'`, which Llama's tokenizer starts with "▁")
                b.add(" " + t.text + "\n###", supervised=True)
        return b.done()


def get_template(name: str, bos: str | None = None) -> Template:
    """The template `name`; `bos` replaces its default begin-of-sequence text (use the tokenizer's)."""
    return TEMPLATES.get(name)(bos)
