"""Where media bytes come from: a path, raw bytes, a data URI (or eval's `base64,<data>`), or an http(s) /
file:// URL, each only where a `SourcePolicy` allows it and under its size limit."""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from polyvlm.media.base import MediaError

_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*)(?P<b64>;base64)?,(?P<data>.*)$", re.S)
_WS = re.compile(r"\s+")

Source = str | bytes | os.PathLike


@dataclass
class SourcePolicy:
    """Which references may be read. `allowed_domains`: hosts (and their subdomains) whose http(s) URLs may be
    fetched (none by default). `allowed_local_path`: the directory file:// URLs may name (none by default).
    `paths`: whether a plain string is a local path (True for files and the terminal, False for requests).
    `max_bytes`: the largest encoded input. `timeout_s`: for a fetch."""

    allowed_domains: list[str] = field(default_factory=list)
    allowed_local_path: str = ""
    paths: bool = True
    max_bytes: int = 1 << 30
    timeout_s: float = 10.0


def decode_base64(data: str, where: str, what: str = "media") -> bytes:
    """Strict base64 (whitespace allowed, missing padding tolerated); raises MediaError `invalid_base64`."""
    if not isinstance(data, str):
        raise MediaError(f"{what} data must be a base64 string, got {type(data).__name__}", where, "invalid_base64")
    if not data.strip():
        raise MediaError(f"empty {what} data", where, "invalid_base64")
    s = _WS.sub("", data)
    s += "=" * (-len(s) % 4)
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise MediaError(f"{what} data is not valid base64", where, "invalid_base64") from None
    if not raw:
        raise MediaError(f"empty {what} data", where, "invalid_base64")
    return raw


def parse_data_uri(url: str, where: str) -> tuple[str, bytes]:
    """`data:image/png;base64,....` -> ("image/png", bytes)."""
    m = _DATA_URI.match(url)
    if not m:
        raise MediaError("malformed data URI (expected data:<mime>;base64,<data>)", where, "invalid_data_uri")
    if not m.group("b64"):
        raise MediaError("data URI must be base64-encoded (';base64,')", where, "invalid_data_uri")
    return (m.group("mime") or "application/octet-stream"), decode_base64(m.group("data"), where)


def is_inline(ref: object) -> bool:
    """A data URI or eval's `base64,<data>` string (media carried in the reference itself)."""
    return isinstance(ref, str) and ref.startswith(("data:", "base64,"))


def _host_allowed(host: str, allowed: list[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in (a.lower().lstrip(".") for a in allowed))


def read_source(ref: Source, policy: SourcePolicy | None = None, where: str = "") -> bytes | Path:
    """The bytes behind `ref`, or the checked local `Path` (decoders open files themselves, so a large video
    is not read into memory). Refusals raise MediaError naming `where` (default: the reference)."""
    policy = policy or SourcePolicy()
    where = where or (str(ref)[:80] if not isinstance(ref, bytes) else "<bytes>")
    if isinstance(ref, bytes):
        return _sized(ref, policy, where)
    if isinstance(ref, os.PathLike):
        return _local(Path(ref), policy, where)
    if not isinstance(ref, str) or not ref:
        raise MediaError("missing media reference", where, "invalid_url")
    if ref.startswith("data:"):
        return _sized(parse_data_uri(ref, where)[1], policy, where)
    if ref.startswith("base64,"):
        return _sized(decode_base64(ref[len("base64,"):], where), policy, where)
    parsed = urlparse(ref)
    if parsed.scheme in ("http", "https"):
        host = parsed.hostname or ""
        if not policy.allowed_domains or not _host_allowed(host, policy.allowed_domains):
            raise MediaError(f"fetching remote media from '{host}' is not allowed; send a data URI, or start the "
                             "server with --allowed-media-domains", where, "media_url_not_allowed")
        return _http_get(ref, policy, where)
    if parsed.scheme == "file":
        if not policy.allowed_local_path:
            raise MediaError("file:// URLs are not allowed; send a data URI, or start the server with "
                             "--allowed-local-media-path", where, "media_url_not_allowed")
        return _under_root(unquote(parsed.path), policy, where)
    if policy.paths and len(parsed.scheme) <= 1:  # a plain path (`C:\x` on Windows parses as a 1-letter scheme)
        return _local(Path(ref), policy, where)
    raise MediaError(f"unsupported URL scheme '{parsed.scheme}' (use a data URI)", where, "invalid_url")


def read_bytes(ref: Source, policy: SourcePolicy | None = None, where: str = "") -> bytes:
    """Like `read_source`, always as bytes."""
    got = read_source(ref, policy, where)
    return got.read_bytes() if isinstance(got, Path) else got


def _sized(raw: bytes, policy: SourcePolicy, where: str) -> bytes:
    if len(raw) > policy.max_bytes:
        raise MediaError(f"media is {len(raw)} bytes, over the limit of {policy.max_bytes}", where, "media_too_large", 413)
    return raw


def _local(path: Path, policy: SourcePolicy, where: str) -> Path:
    if not path.is_file():
        raise MediaError(f"file '{path}' not found", where, "media_not_found")
    size = path.stat().st_size
    if size == 0:
        raise MediaError(f"file '{path}' is empty (0 bytes)", where, "media_empty")
    if size > policy.max_bytes:
        raise MediaError(f"file '{path}' is larger than {policy.max_bytes} bytes", where, "media_too_large", 413)
    return path


def _under_root(path: str, policy: SourcePolicy, where: str) -> Path:
    root = Path(os.path.realpath(policy.allowed_local_path))
    full = Path(os.path.realpath(path))
    if root not in full.parents:
        raise MediaError(f"file '{path}' is outside the allowed local media path", where, "media_url_not_allowed", 403)
    return _local(full, policy, where)


def _http_get(url: str, policy: SourcePolicy, where: str) -> bytes:
    import httpx

    limit = policy.max_bytes
    try:
        # no redirects: a redirect could lead outside the allowed domains
        with httpx.stream("GET", url, timeout=policy.timeout_s, follow_redirects=False) as r:
            if r.status_code != 200:
                raise MediaError(f"fetching {url} returned HTTP {r.status_code}", where, "media_fetch_failed")
            buf = bytearray()
            for chunk in r.iter_bytes():
                buf += chunk
                if len(buf) > limit:
                    raise MediaError(f"{url} is larger than {limit} bytes", where, "media_too_large", 413)
            return bytes(buf)
    except httpx.HTTPError as e:
        raise MediaError(f"could not fetch {url}: {type(e).__name__}", where, "media_fetch_failed") from None
