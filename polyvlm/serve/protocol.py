"""OpenAI chat-completions requests -> `ChatRequest`: every field checked, every refusal an `APIError` naming it.

Messages go through the one codec (`polyvlm.infer.codec.from_openai_messages`) with a loader that decodes media
under the server's limits. A `video_url` part reaches a model with a video encoder as a video (its frames sampled
as training samples them); a model with only an image encoder gets its frames as images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from polyvlm import media
from polyvlm.infer import ChatRequest, Generator, PromptTooLong, Video
from polyvlm.infer.codec import (
    AUDIO_FORMATS,
    MODALITY_PART,
    PART_MODALITY,
    ROLES,
    Loader,
    from_openai_messages,
)
from polyvlm.serve.config import ServeConfig
from polyvlm.serve.errors import APIError
from polyvlm.serve.media import (
    decode_base64,
    fetch_url,
    limits,
    load_audio,
    load_image,
    load_media,
    load_video_frames,
)

MAX_STOP = 4


@dataclass
class ParsedChat:
    """A validated request: what to generate, plus how to answer (`stream`, `include_usage`)."""

    request: ChatRequest
    stream: bool
    include_usage: bool
    max_tokens_given: bool


def _number(body: dict, key: str, lo: float, hi: float, *, lo_open: bool = False) -> float | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise APIError(f"'{key}' must be a number, got {v!r}", param=key, code="invalid_type")
    if v < lo or v > hi or (lo_open and v == lo):
        rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
        raise APIError(f"'{key}' is {v!r}; it must be in {rng}", param=key, code="invalid_value")
    return float(v)


def _integer(body: dict, key: str, lo: int, hi: int) -> int | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise APIError(f"'{key}' must be an integer, got {v!r}", param=key, code="invalid_type")
    if v < lo or v > hi:
        raise APIError(f"'{key}' is {v}; it must be between {lo} and {hi}", param=key, code="invalid_value")
    return v


def _check_text(text: Any, param: str) -> str:
    if not isinstance(text, str):
        raise APIError(f"{param} must be a string, got {type(text).__name__}", param=param, code="invalid_type")
    for ph in media.PLACEHOLDERS.values():
        if ph in text:
            raise APIError(f"{param} contains the reserved media placeholder '{ph}'; send media as content parts "
                           f"({', '.join(PART_MODALITY)})", param=param, code="reserved_placeholder")
    return text


def _parts(content: Any, param: str) -> list[dict]:
    """Content as a list of part dicts (a plain string is one text part)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise APIError(f"{param} must be a string or a list of content parts, got {type(content).__name__}",
                       param=param, code="invalid_type")
    for j, part in enumerate(content):
        if not isinstance(part, dict):
            raise APIError(f"{param}[{j}] must be an object", param=f"{param}[{j}]", code="invalid_type")
        t = part.get("type")
        if t not in ("text", *PART_MODALITY):
            raise APIError(f"{param}[{j}].type {t!r} is not supported (text, {', '.join(PART_MODALITY)})",
                           param=f"{param}[{j}].type", code="unknown_content_part")
    return content


def _media_url(part: dict, key: str, param: str) -> str:
    v = part.get(key)
    url = v.get("url") if isinstance(v, dict) else v
    if not isinstance(url, str) or not url:
        raise APIError(f"{param}.{key}.url is missing", param=f"{param}.{key}", code="invalid_value")
    return url


def accepted_as(part_type: str, modalities: set[str]) -> str | None:
    """The modality a content part reaches the model as: its own, image frames for a video when the model has an
    image encoder but no video one, or None when the model cannot take it."""
    modality = PART_MODALITY[part_type]
    if modality in modalities:
        return modality
    return "image" if modality == "video" and "image" in modalities else None


def _check_envelope(body: Any, served_name: str) -> None:
    """The body is an object for this model, one choice, no tools or logprobs."""
    if not isinstance(body, dict):
        raise APIError(f"request body must be a JSON object, got {type(body).__name__}", code="invalid_type")
    model = body.get("model")
    if model is not None and model != served_name:
        raise APIError(f"The model '{model}' does not exist; this server serves '{served_name}'", status=404,
                       param="model", code="model_not_found")
    if _integer(body, "n", 1, 1_000_000) not in (None, 1):
        raise APIError("'n' must be 1: one choice per request", param="n", code="invalid_value")
    if body.get("tools"):
        raise APIError("tool calling is not supported by this server", param="tools", code="unsupported_parameter")
    if body.get("logprobs"):
        raise APIError("'logprobs' is not supported by this server", param="logprobs", code="unsupported_parameter")


def _check_messages(messages: Any, cfg: ServeConfig, modalities: set[str]) -> None:
    """Shapes, roles, part types and the media budget, before any decoding work."""
    if not isinstance(messages, list) or not messages:
        raise APIError("'messages' must be a non-empty list", param="messages", code="invalid_value")
    n_media = 0
    for i, msg in enumerate(messages):
        p = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise APIError(f"{p} must be an object", param=p, code="invalid_type")
        role = msg.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise APIError(f"{p}.role {role!r} is not supported (system, developer, user, assistant)",
                           param=f"{p}.role", code="invalid_role")
        if "content" not in msg or msg["content"] is None:
            raise APIError(f"{p}.content is missing", param=f"{p}.content", code="invalid_value")
        for j, part in enumerate(_parts(msg["content"], f"{p}.content")):
            t, pj = part["type"], f"{p}.content[{j}]"
            if t == "text":
                _check_text(part.get("text"), f"{pj}.text")
                continue
            if ROLES[role] != "user":
                raise APIError(f"{pj}: media parts are only allowed in user messages", param=pj, code="invalid_value")
            if accepted_as(t, modalities) is None:
                raise APIError(f"{pj}: this model does not accept {PART_MODALITY[t]} input ({t}); it accepts "
                               f"{', '.join(sorted(modalities)) or 'text only'}", param=f"{pj}.type",
                               code="unsupported_modality")
            n_media += 1
    if n_media > cfg.max_media_items:
        raise APIError(f"request has {n_media} media items, over the limit of {cfg.max_media_items}",
                       param="messages", code="too_many_media")
    if ROLES[messages[-1]["role"]] != "user":
        raise APIError("the last message must come from the user", param=f"messages[{len(messages) - 1}].role",
                       code="invalid_value")


def _check_video(raw: bytes, cfg: ServeConfig, param: str) -> None:
    """A readable video stream whose frames are within the pixel limit (container metadata only)."""
    try:
        media.probe("video", raw, limits(cfg), where=param)
    except media.MediaError as e:
        raise APIError(f"{param}: {e.reason}", status=e.status, param=param, code=e.code) from None


def media_loader(cfg: ServeConfig, modalities: set[str]) -> Loader:
    """The codec's loader for this server: media fetched under its allow-lists and decoded under its limits."""

    def load(modality: str, part: dict, param: str) -> tuple[str, list[Any]]:
        key = MODALITY_PART[modality]
        p = f"{param}.{key}"
        if modality == "audio":
            audio = part.get(key)
            if not isinstance(audio, dict):
                raise APIError(f"{p} must be an object with 'data' and 'format'", param=p, code="invalid_value")
            fmt = audio.get("format", "wav")
            if not isinstance(fmt, str) or fmt not in AUDIO_FORMATS:
                raise APIError(f"{p}.format {fmt!r} is not supported ({', '.join(sorted(AUDIO_FORMATS))})",
                               param=f"{p}.format", code="invalid_value")
            return "audio", [load_audio(decode_base64(audio.get("data", ""), f"{p}.data", "audio"), cfg, f"{p}.data")]
        raw = fetch_url(_media_url(part, key, param), cfg, p)
        if modality == "image":
            return "image", [load_image(raw, cfg, p)]
        if modality != "video":  # thermal, depth, imu, a modality added later: its declared loader
            return modality, [load_media(modality, raw, cfg, p)]
        if accepted_as(key, modalities) == "video":  # the model samples the frames as its training did
            _check_video(raw, cfg, p)
            return "video", [Video(raw)]
        return "image", load_video_frames(raw, cfg, p)

    return load


def _sampling(body: dict, cfg: ServeConfig) -> tuple[dict[str, Any], bool]:
    """ChatRequest sampling fields from the body (OpenAI's defaults), and whether max tokens were given."""
    max_tokens = _integer(body, "max_completion_tokens", 1, 1 << 31)
    if max_tokens is None:
        max_tokens = _integer(body, "max_tokens", 1, 1 << 31)
    temperature = _number(body, "temperature", 0.0, 2.0)
    top_p = _number(body, "top_p", 0.0, 1.0, lo_open=True)
    seed = _integer(body, "seed", -(1 << 63), (1 << 64) - 1)
    stop = body.get("stop")
    if stop is None:
        stops: list[str] = []
    elif isinstance(stop, str):
        stops = [stop]
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        stops = list(stop)
    else:
        raise APIError("'stop' must be a string or a list of strings", param="stop", code="invalid_type")
    if len(stops) > MAX_STOP or any(not s for s in stops):
        raise APIError(f"'stop' takes at most {MAX_STOP} non-empty strings", param="stop", code="invalid_value")
    return {"max_new_tokens": max_tokens if max_tokens is not None else cfg.default_max_tokens,
            "temperature": 1.0 if temperature is None else temperature,  # OpenAI's default
            "top_p": 1.0 if top_p is None else top_p, "stop": stops, "seed": seed}, max_tokens is not None


def _stream_flags(body: dict) -> tuple[bool, bool]:
    """(stream, stream_options.include_usage)."""
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise APIError("'stream' must be true or false", param="stream", code="invalid_type")
    opts = body.get("stream_options") or {}
    if not isinstance(opts, dict):
        raise APIError("'stream_options' must be an object", param="stream_options", code="invalid_type")
    if opts.get("include_usage") is not None and not isinstance(opts["include_usage"], bool):
        raise APIError("'stream_options.include_usage' must be true or false", param="stream_options.include_usage",
                       code="invalid_type")
    return stream, bool(opts.get("include_usage"))


def parse_chat(body: Any, cfg: ServeConfig, modalities: set[str], served_name: str) -> ParsedChat:
    """Validate an OpenAI chat-completions body and decode its media; raises `APIError` on the first problem."""
    _check_envelope(body, served_name)
    _check_messages(body.get("messages"), cfg, modalities)
    sampling, max_tokens_given = _sampling(body, cfg)
    stream, include_usage = _stream_flags(body)
    # media decoded in order, a placeholder in the text where each sat
    req = from_openai_messages(body["messages"], media_loader(cfg, modalities), **sampling)
    return ParsedChat(req, stream, include_usage, max_tokens_given)


def fit_context(gen: Generator, req: ChatRequest, strict: bool) -> int:
    """Check the prompt fits the context after placeholder expansion; cap `req.max_new_tokens` to the room left.

    `strict`: the client asked for `max_new_tokens` explicitly, so asking for more than fits is an error
    (as OpenAI and vLLM do) rather than silently capped. Returns the prompt token count.
    """
    try:
        n = gen.count_prompt_tokens(req)
    except PromptTooLong as e:
        raise APIError(f"messages: {e}", param="messages", code="context_length_exceeded") from None
    except ValueError as e:
        raise APIError(f"messages: {e}", param="messages", code="invalid_value") from None
    room = gen.max_context - n
    want = req.max_new_tokens
    if room < 1 or (strict and want > room):
        raise APIError(
            f"This model's maximum context length is {gen.max_context} tokens. However, you requested {n + want} "
            f"tokens ({n} in the messages after media placeholders are expanded, {want} in the completion). "
            "Please reduce the length of the messages, the media or max_tokens.",
            param="messages", code="context_length_exceeded")
    req.max_new_tokens = min(want, room)
    return n
