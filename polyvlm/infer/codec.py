"""The one message codec between `ChatRequest` and OpenAI chat-completions messages, request bodies and answers.

Placement follows vLLM's OpenAI server (vllm/entrypoints/chat_utils.py, `_get_full_multimodal_text_prompt`):
each media input is a content part of the message whose text had its placeholder, in placeholder order; text
between placeholders becomes text parts. Decoding puts a placeholder where each media part sat and joins the
pieces of a message with "\\n" (vLLM's `interleave_strings` join). Inputs whose modality has no placeholder at all
are sent at the front of the first user message, which is where vLLM and LLaVA put missing placeholders.

Content parts: `image_url` {url}, `input_audio` {data (base64), format} (OpenAI), `video_url` {url} (vLLM), and
for every other registered modality its declared part type holding {url} (`input_thermal`, ...). The tables are
read from the Modality registry at each use, so a modality registered after this module is imported works.
"""

from __future__ import annotations

import base64
import functools
import io
import mimetypes
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from polyvlm.data.formats import bytes_to_data_uri
from polyvlm.infer.request import (
    PLACEHOLDERS,
    REQUEST_MODALITIES,
    ChatRequest,
    Completion,
    Video,
    normalize_placeholders,
)
from polyvlm.media import API_PARTS, PART_MODALITY, MediaError, get_modality

MODALITY_PART = API_PARTS  # modality -> OpenAI content part type (a live view of the Modality registry)
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
AUDIO_FORMATS = ("wav", "mp3", "flac", "ogg")


@functools.lru_cache(maxsize=8)
def _splitter(placeholders: tuple[str, ...]) -> re.Pattern:
    return re.compile("(" + "|".join(re.escape(p) for p in placeholders) + ")")


def _split(text: str) -> list[str]:
    """Text -> [text, placeholder, text, ...] over the placeholders registered now."""
    return _splitter(tuple(PLACEHOLDERS.values())).split(text)
_VIDEO_MIME = {".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm", ".mov": "video/quicktime",
               ".mkv": "video/x-matroska", ".avi": "video/x-msvideo", ".gif": "image/gif"}


class MessageError(ValueError):
    """A request or message the codec cannot convert; `code` is a short reason (`media_unreadable`, ...)."""

    def __init__(self, message: str, code: str = "bad_request"):
        super().__init__(message)
        self.code = code


# ---- media -> content parts -------------------------------------------------------------------------------
def _read(ref: str | Path, what: str) -> bytes:
    try:
        return Path(ref).read_bytes()
    except OSError as e:
        raise MessageError(f"cannot read {what} {ref}: {e.strerror}", "media_unreadable") from None


def _data_uri(raw: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(raw).decode('ascii')}"


def _is_url(ref: object) -> bool:
    return isinstance(ref, str) and ref.startswith(("data:", "http://", "https://"))


def image_url(image: Any) -> str:
    """An image as a URL a server accepts: PIL images as PNG data URIs, files and bytes as data URIs of their own
    bytes (type sniffed), `data:` and http(s) URLs unchanged."""
    if _is_url(image):
        return image
    if isinstance(image, (str, Path)):
        return bytes_to_data_uri(_read(image, "image"), None)
    if isinstance(image, bytes):
        return bytes_to_data_uri(image)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return _data_uri(buf.getvalue(), "image/png")


def audio_part(audio: Any) -> dict[str, str]:
    """An audio input as `input_audio` {data, format}: waveforms (16 kHz float32, shape `(t,)`) as 32-bit float
    WAV, files by their suffix, `data:audio/<fmt>;base64,` URIs unchanged."""
    if isinstance(audio, str) and audio.startswith("data:"):
        head, _, data = audio.partition(",")
        fmt = head[len("data:"):].split(";")[0].split("/")[-1].replace("x-", "").replace("mpeg", "mp3")
        return {"data": data, "format": fmt if fmt in AUDIO_FORMATS else "wav"}
    if isinstance(audio, (str, Path)):
        fmt = Path(audio).suffix.lstrip(".").lower()
        if fmt not in AUDIO_FORMATS:
            raise MessageError(f"audio {audio}: format {fmt!r} cannot be sent ({', '.join(AUDIO_FORMATS)})",
                               "media_unreadable")
        return {"data": base64.b64encode(_read(audio, "audio")).decode("ascii"), "format": fmt}
    import numpy as np
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.asarray(audio, dtype=np.float32).reshape(-1), 16_000, format="WAV", subtype="FLOAT")
    return {"data": base64.b64encode(buf.getvalue()).decode("ascii"), "format": "wav"}


def video_url(video: Video) -> str:
    """A video as a URL: its source file or bytes as a data URI, `data:` and http(s) URLs unchanged."""
    src = video.source
    if src is None:
        raise MessageError("a video given only as decoded frames cannot be sent to a server; give its source",
                           "media_unreadable")
    if _is_url(src):
        return str(src)
    if isinstance(src, bytes):
        return _data_uri(src, "video/mp4")
    return _data_uri(_read(src, "video"), _VIDEO_MIME.get(Path(src).suffix.lower(), "video/mp4"))


def _image_files(modality: str) -> bool:
    """A modality whose files are images (thermal, depth): its loader probes them as images."""
    from polyvlm.media.image import probe_image

    return get_modality(modality).probe is probe_image


def file_url(item: Any, modality: str) -> str:
    """An input of a modality whose part holds a URL: files and bytes as data URIs (type from the suffix or sniffed),
    PIL images as PNG, numpy arrays as `.npy` data URIs (arrays of a modality read from image files, as depth maps,
    as PNG keeping 16 bits, or TIFF for floats), `data:` and http(s) URLs unchanged."""
    if _is_url(item):
        return item
    if isinstance(item, (str, Path)):
        mime = mimetypes.guess_type(str(item))[0] or "application/octet-stream"
        return _data_uri(_read(item, modality), mime)
    if isinstance(item, bytes):
        return bytes_to_data_uri(item)
    buf = io.BytesIO()
    if hasattr(item, "__array__") and not hasattr(item, "mode") and not _image_files(modality):
        import numpy as np

        np.save(buf, np.asarray(item), allow_pickle=False)
        return _data_uri(buf.getvalue(), "application/x-npy")
    if hasattr(item, "__array__") and not hasattr(item, "mode"):  # a depth map [h, w]: an image, bit depth kept
        import numpy as np
        from PIL import Image

        arr = np.asarray(item)
        item = Image.fromarray(arr.astype(np.float32) if arr.dtype.kind == "f" else arr)
    if hasattr(item, "save") and hasattr(item, "mode"):  # a PIL image: PNG (16 bits kept), float maps as TIFF
        tiff = item.mode == "F"
        item.save(buf, format="TIFF" if tiff else "PNG")
        return _data_uri(buf.getvalue(), "image/tiff" if tiff else "image/png")
    raise MessageError(f"a {modality} input of type {type(item).__name__} cannot be sent", "media_unreadable")


def media_part(modality: str, item: Any) -> dict[str, Any]:
    """One content part for one input of `modality`."""
    if modality == "image":
        return {"type": "image_url", "image_url": {"url": image_url(item)}}
    if modality == "audio":
        return {"type": "input_audio", "input_audio": audio_part(item)}
    if modality == "video":
        return {"type": "video_url", "video_url": {"url": video_url(item if isinstance(item, Video) else Video(item))}}
    part = MODALITY_PART.get(modality)
    if part is None:
        raise MessageError(f"modality '{modality}' declares no content part: it cannot be sent", "media_unreadable")
    return {"type": part, part: {"url": file_url(item, modality)}}


# ---- ChatRequest -> OpenAI ---------------------------------------------------------------------------------
def to_openai_messages(request: ChatRequest) -> list[dict[str, Any]]:
    """ChatRequest -> OpenAI chat messages: a message with placeholders becomes content parts (text and media in
    placeholder order); one without stays a string. Raises MessageError on placeholder/input mismatches or
    unreadable media files."""
    media = request.media()
    if request.verbatim:
        return _verbatim_messages(request, media)
    try:
        messages = normalize_placeholders(request.messages, {m: len(v) for m, v in media.items()})
    except ValueError as e:
        raise MessageError(str(e), "placeholder_mismatch") from None
    queues = {m: iter(v) for m, v in media.items()}
    of_placeholder = {p: m for m, p in PLACEHOLDERS.items()}
    out: list[dict[str, Any]] = []
    for msg in messages:
        text = msg["content"]
        chunks = _split(text)
        if len(chunks) == 1:
            out.append({"role": msg["role"], "content": text})
            continue
        parts: list[dict[str, Any]] = []
        for i, chunk in enumerate(chunks):
            if i % 2:  # a placeholder
                modality = of_placeholder[chunk]
                parts.append(media_part(modality, next(queues[modality])))
                continue
            # the "\n" that separates a placeholder from its text belongs to the placeholder (decoding adds it back)
            chunk = chunk.removeprefix("\n") if i else chunk
            chunk = chunk.removesuffix("\n") if i < len(chunks) - 1 else chunk
            if chunk:
                parts.append({"type": "text", "text": chunk})
        out.append({"role": msg["role"], "content": parts})
    return out


def _verbatim_messages(request: ChatRequest, media: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """A `verbatim` request: every message's text as written; the media, in registry order, as parts after the
    text of the last user message. Raises MessageError when media have no user message to go in."""
    out: list[dict[str, Any]] = [{"role": m["role"], "content": m["content"]} for m in request.messages]
    parts = [media_part(modality, item) for modality, items in media.items() for item in items]
    if not parts:
        return out
    last = next((m for m in reversed(out) if m["role"] == "user"), None)
    if last is None:
        raise MessageError(f"the request has {len(parts)} media input(s) but no user message to put them in",
                           "placeholder_mismatch")
    last["content"] = ([{"type": "text", "text": last["content"]}] if last["content"] else []) + parts
    return out


def to_openai_body(request: ChatRequest, model: str, **extra: Any) -> dict[str, Any]:
    """The `/v1/chat/completions` body for a request (sampling settings included; `extra` is merged in)."""
    body: dict[str, Any] = {"model": model, "messages": to_openai_messages(request),
                            "max_tokens": request.max_new_tokens, "temperature": request.temperature}
    if request.top_p != 1.0:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop"] = list(request.stop)
    if request.seed is not None:
        body["seed"] = request.seed
    body.update(extra)
    return body


def completion_from_openai(body: Any) -> Completion:
    """A chat-completions answer -> Completion (usage and finish reason when given). Raises MessageError when the
    body is not a chat completion."""
    try:
        choice = body["choices"][0]
        text = choice["message"]["content"] or ""
        usage = body.get("usage") or {}
        return Completion(text=str(text), prompt_tokens=int(usage.get("prompt_tokens") or 0),
                          completion_tokens=int(usage.get("completion_tokens") or 0),
                          finish_reason=str(choice.get("finish_reason") or "stop"))
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
        raise MessageError(f"the answer is not a chat completion ({type(e).__name__}: {e}): {str(body)[:200]}",
                           "bad_response") from None


# ---- OpenAI -> ChatRequest ---------------------------------------------------------------------------------
# (modality, part, param) -> (the modality it becomes, its decoded inputs): one input, or several (a server whose
# model has no video encoder turns a video into image frames)
Loader = Callable[[str, dict[str, Any], str], tuple[str, list[Any]]]


def part_reference(modality: str, part: dict[str, Any], param: str) -> tuple[str, list[Any]]:
    """The default loader: no decoding; images as their URL, audio as a `data:audio/<fmt>;base64,` URI, videos as
    `Video(url)`, other modalities as what their declared `part_source` reads (a URL or data URI)."""
    key = MODALITY_PART[modality]
    value = part.get(key)
    declared = get_modality(modality).part_source
    if modality not in REQUEST_MODALITIES and declared is not None:
        try:
            return modality, [declared(part, param)]
        except MediaError as e:
            raise MessageError(str(e), "invalid_value") from None
    if modality == "audio":
        if not isinstance(value, dict) or not isinstance(value.get("data"), str):
            raise MessageError(f"{param}.{key} must be an object with 'data' and 'format'", "invalid_value")
        return modality, [f"data:audio/{value.get('format', 'wav')};base64,{value['data']}"]
    url = value.get("url") if isinstance(value, dict) else value
    if not isinstance(url, str) or not url:
        raise MessageError(f"{param}.{key}.url is missing", "invalid_value")
    return modality, [Video(url) if modality == "video" else url]


def from_openai_messages(messages: list[dict[str, Any]], load: Loader = part_reference, **sampling: Any) -> ChatRequest:
    """OpenAI chat messages -> ChatRequest: a placeholder where each media part sat, pieces of a message joined
    with "\\n", roles mapped (`developer` -> `system`), media through `load` (by default kept as references).
    `sampling` sets the other ChatRequest fields. Raises MessageError naming the message or part."""
    out: list[dict[str, str]] = []
    media: dict[str, list[Any]] = {m: [] for m in PLACEHOLDERS}
    part_modality = dict(PART_MODALITY)
    for i, msg in enumerate(messages):
        p = f"messages[{i}]"
        if not isinstance(msg, dict) or msg.get("role") not in ROLES:
            raise MessageError(f"{p} must be an object with a role in {', '.join(ROLES)}", "invalid_value")
        content = msg.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(parts, list):
            raise MessageError(f"{p}.content must be a string or a list of content parts", "invalid_type")
        pieces: list[str] = []
        for j, part in enumerate(parts):
            pj = f"{p}.content[{j}]"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                if not isinstance(part.get("text"), str):
                    raise MessageError(f"{pj}.text must be a string", "invalid_type")
                pieces.append(part["text"])
            elif kind in part_modality:
                modality, items = load(part_modality[kind], part, pj)
                media[modality].extend(items)
                pieces.append(PLACEHOLDERS[modality] * len(items))
            else:
                raise MessageError(f"{pj}.type {kind!r} is not supported (text, {', '.join(part_modality)})",
                                   "unknown_content_part")
        out.append({"role": ROLES[msg["role"]], "content": "\n".join(pieces)})
    extra = {m: v for m, v in media.items() if m not in REQUEST_MODALITIES and v}
    return ChatRequest(messages=out, images=media["image"], audios=media["audio"], videos=media["video"], extra=extra,
                       **sampling)
