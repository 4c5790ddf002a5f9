"""Interactive terminal chat over a Generator: multi-turn, `/<modality> PATH` for every registered modality
(`/image`, `/audio`, `/video`, ...), `/reset`, `/quit`, streamed replies."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from polyvlm import media
from polyvlm.infer import ChatRequest, Generator, Video
from polyvlm.infer.request import media_fields
from polyvlm.media import PLACEHOLDERS
from polyvlm.serve.config import ServeConfig
from polyvlm.serve.errors import APIError
from polyvlm.serve.media import limits, load_media
from polyvlm.serve.protocol import fit_context
from polyvlm.serve.stops import truncate_at_stop


def help_text() -> str:
    """The command list: one `/<modality> PATH` per registered modality."""
    lines = [f"  {'/' + m.name + ' PATH':<14}attach {m.help or 'a ' + m.name}" for m in media.modalities()]
    return "\n".join(["commands (attached media go with your next message):", *lines,
                      "  /reset        forget the conversation and attached media",
                      "  /help         show this help",
                      "  /quit         leave (Ctrl-D works too)",
                      "Ctrl-C stops an answer as it streams."])


@dataclass
class ChatSession:
    """The conversation so far: messages carry placeholders; `media[m]` holds modality m's inputs in the order
    of its placeholders."""

    messages: list[dict[str, str]] = field(default_factory=list)
    media: dict[str, list[Any]] = field(default_factory=dict)
    pending: list[tuple[str, list[Any]]] = field(default_factory=list)  # (modality, items) for the next message

    @property
    def images(self) -> list[Any]:
        return self.media.setdefault("image", [])

    @property
    def audios(self) -> list[Any]:
        return self.media.setdefault("audio", [])

    def reset(self) -> None:
        """Forget turns and media; a system prompt stays."""
        self.messages[:] = [m for m in self.messages if m["role"] == "system"]
        self.media.clear(), self.pending.clear()


def _attach(session: ChatSession, kind: str, arg: str, gen: Generator, cfg: ServeConfig) -> str:
    """Load media named by a `/<modality> PATH` command; returns the line to print.

    A video goes to a model with a video encoder as one video whose frames the model samples as its training did;
    otherwise its frames (sampled evenly) go to the image encoder, as the server does."""
    modality = "image" if kind == "video" and "video" not in gen.modalities else kind
    if modality not in gen.modalities:
        return f"error: this model does not accept {kind} input (it accepts {', '.join(sorted(gen.modalities)) or 'text only'})"
    if not arg:
        return f"error: usage: /{kind} PATH"
    path = Path(arg).expanduser()
    if not path.is_file():
        return f"error: {path}: no such file"
    if modality == "video":
        try:
            facts = media.probe("video", path, limits(cfg), where=str(path))
        except media.MediaError as e:
            return f"error: {e}"
        session.pending.append(("video", [Video(path)]))
        return f"[attached video {path.name} ({facts['frames']} frames at {facts['fps']:g} fps); it goes with your next message]"
    try:
        item = load_media(kind, path, cfg, str(path))
    except APIError as e:
        return f"error: {e.message}"
    items = item if kind == "video" else [item]
    session.pending.append((modality, items))
    extra = f" ({len(item)} frames)" if kind == "video" else ""
    return f"[attached {kind} {path.name}{extra}; it goes with your next message]"


def ask(session: ChatSession, text: str, gen: Generator, out: TextIO, cfg: ServeConfig, *, max_tokens: int,
        temperature: float, top_p: float, seed: int | None = None) -> str | None:
    """Send one user message (with pending media), stream the reply to `out`; returns it, or None on an error."""
    heads, now = [], {m: list(v) for m, v in session.media.items()}
    for modality, items in session.pending:
        heads.append(PLACEHOLDERS[modality] * len(items))
        now.setdefault(modality, []).extend(items)
    msg = {"role": "user", "content": "\n".join([*heads, text])}
    req = ChatRequest(messages=[*session.messages, msg], **media_fields(now), max_new_tokens=max_tokens,
                      temperature=temperature, top_p=top_p, seed=seed)
    try:
        fit_context(gen, req, strict=False)
    except APIError as e:
        dropped = f" ({len(session.pending)} attachment(s) dropped)" if session.pending else ""
        session.pending = []
        out.write(f"error: {e.message}{dropped}; /reset starts a fresh conversation\n")
        return None

    def on_token(_: int, delta: str) -> None:
        out.write(delta)
        out.flush()

    try:
        done = gen.generate([req], on_token=on_token)[0]
    except ValueError as e:  # an input the model cannot read (e.g. a video it fails to decode)
        session.pending = []
        out.write(f"\nerror: {e} (the attachments of this message are dropped)\n")
        return None
    reply = truncate_at_stop(done.text, req.stop, done.finish_reason)[0]
    out.write("\n")
    out.flush()
    session.messages += [msg, {"role": "assistant", "content": reply}]
    session.media, session.pending = now, []
    return reply


def run_chat(gen: Generator, inp: TextIO | None = None, out: TextIO | None = None, *, max_tokens: int = 256,
             temperature: float = 0.0, top_p: float = 1.0, seed: int | None = None, cfg: ServeConfig | None = None,
             prompt: str = ">>> ", images: list[Any] | None = None, system: str | None = None,
             attach: dict[str, list[Any]] | None = None) -> int:
    """Read lines from `inp` until /quit or end of input; each non-command line is one user turn.

    `images` (PIL, e.g. from `--image`) and `attach` (modality -> decoded inputs, from `--audio`, `--thermal`, ...)
    go with the first message; `system` is a system prompt kept across /reset.
    """
    inp, out, cfg = inp or sys.stdin, out or sys.stdout, cfg or ServeConfig()
    use_input = inp is sys.stdin and out is sys.stdout and sys.stdin.isatty()
    if use_input:
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:
            pass
    session = ChatSession(messages=[{"role": "system", "content": system}] if system else [])
    if images:
        session.pending.append(("image", list(images)))
    session.pending += [(m, list(items)) for m, items in (attach or {}).items() if items]
    out.write(f"polyvlm chat with {gen.name} ({', '.join(sorted(gen.modalities)) or 'text'}); /help for commands\n")
    while True:
        try:
            if use_input:
                line = input(prompt)
            else:
                out.write(prompt)
                out.flush()
                line = inp.readline()
                if not line:
                    raise EOFError
        except EOFError:
            out.write("\n")
            return 0
        except KeyboardInterrupt:  # Ctrl-C at the prompt leaves; during an answer it only stops the answer
            out.write("\n")
            return 130
        line = line.strip()
        if not line:
            continue
        if line.startswith("/"):
            cmd, _, arg = line.partition(" ")
            cmd, arg = cmd[1:].lower(), arg.strip()
            if cmd in ("quit", "exit", "q"):
                return 0
            if cmd == "reset":
                session.reset()
                out.write("[conversation cleared]\n")
            elif cmd == "help":
                out.write(help_text() + "\n")
            elif cmd in media.MODALITIES:
                out.write(_attach(session, cmd, arg, gen, cfg) + "\n")
            else:
                out.write(f"error: unknown command /{cmd}; /help lists the commands\n")
            continue
        try:
            ask(session, line, gen, out, cfg, max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed)
        except KeyboardInterrupt:  # the turn is not kept: the conversation is as it was before this message
            out.write("\n[interrupted: this turn is forgotten; attached media stay for your next message]\n")
