"""polyvlm.media sources: a path, bytes, a data URI, eval's `base64,<data>`, an http(s) URL (a loopback server)
and file:// URLs, each under the allow-lists and the size limit, refusals naming the input."""

from __future__ import annotations

from pathlib import Path

import pytest
from media_helpers import data_uri, png_bytes

from polyvlm import media
from polyvlm.media import MediaError, SourcePolicy


def _err(fn, *args, **kw) -> MediaError:
    with pytest.raises(MediaError) as e:
        fn(*args, **kw)
    return e.value


def test_every_kind_of_reference_gives_the_same_image(tmp_path: Path, http_server: str) -> None:
    raw = png_bytes((10, 200, 10))
    (tmp_path / "a.png").write_bytes(raw)
    policy = SourcePolicy(allowed_domains=["127.0.0.1"], allowed_local_path=str(tmp_path))
    refs = [tmp_path / "a.png", str(tmp_path / "a.png"), raw, data_uri(raw), "base64," + data_uri(raw).split(",")[1],
            f"{http_server}/img.png", f"file://{tmp_path}/a.png"]
    for ref in refs:
        img = media.load("image", ref, policy=policy)
        assert img.mode == "RGB" and img.getpixel((0, 0)) == (10, 200, 10), ref


def test_paths_and_bytes(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    e = _err(media.read_source, tmp_path / "none.png")
    assert e.code == "media_not_found" and "none.png" in str(e)
    assert _err(media.read_source, tmp_path / "empty.png").code == "media_empty"
    e = _err(media.read_source, b"x" * 11, SourcePolicy(max_bytes=10), "req.image")
    assert (e.code, e.status) == ("media_too_large", 413) and str(e).startswith("req.image: ")
    (tmp_path / "a.png").write_bytes(png_bytes())
    assert media.read_source(tmp_path / "a.png") == tmp_path / "a.png"  # decoders open files themselves
    assert _err(media.read_source, tmp_path / "a.png", SourcePolicy(max_bytes=10)).code == "media_too_large"
    # a server's policy takes no plain paths: only data URIs and allowed URLs
    assert _err(media.read_source, str(tmp_path / "a.png"), SourcePolicy(paths=False)).code == "invalid_url"


def test_data_uris_and_base64() -> None:
    assert media.read_bytes(data_uri(b"abc", "text/plain")) == b"abc"
    assert media.decode_base64("aGVs\nbG8", "p") == b"hello"  # whitespace and missing padding are fine
    for bad, code in (("data:image/png,rawbytes", "invalid_data_uri"), ("data:;base64,@@@", "invalid_base64"),
                      ("base64,", "invalid_base64"), ("base64,a$b", "invalid_base64")):
        e = _err(media.read_source, bad, where="messages[0].content[1].image_url")
        assert e.code == code and str(e).startswith("messages[0].content[1].image_url: "), bad


def test_remote_urls_only_from_allowed_domains(http_server: str) -> None:
    url = f"{http_server}/img.png"
    e = _err(media.read_source, url)
    assert e.code == "media_url_not_allowed" and "--allowed-media-domains" in e.reason and "127.0.0.1" in e.reason
    assert _err(media.read_source, url, SourcePolicy(allowed_domains=["example.org"])).code == "media_url_not_allowed"
    ok = SourcePolicy(allowed_domains=["127.0.0.1"])
    assert media.read_bytes(url, ok) == png_bytes((10, 200, 10))
    for path in ("/redirect", "/missing"):  # a redirect could leave the allowed domains: refused
        e = _err(media.read_source, f"{http_server}{path}", ok)
        assert e.code == "media_fetch_failed" and path in e.reason
    e = _err(media.read_source, f"{http_server}/big.bin", SourcePolicy(allowed_domains=["127.0.0.1"], max_bytes=1000))
    assert (e.code, e.status) == ("media_too_large", 413)
    e = _err(media.read_source, "http://127.0.0.1:9/x.png", ok)  # nothing listens on the discard port
    assert e.code == "media_fetch_failed"


def test_subdomains_of_an_allowed_domain_only() -> None:
    from polyvlm.media.source import _host_allowed

    assert _host_allowed("cdn.example.org", ["example.org"]) and _host_allowed("EXAMPLE.org.", [".example.org"])
    assert not _host_allowed("evil-example.org", ["example.org"]) and not _host_allowed("example.org.evil.com", ["example.org"])


def test_file_urls_only_under_the_allowed_path(tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "a.png").write_bytes(png_bytes())
    (tmp_path / "secret.png").write_bytes(png_bytes())
    (tmp_path / "media" / "link.png").symlink_to(tmp_path / "secret.png")
    assert _err(media.read_source, f"file://{tmp_path}/media/a.png").code == "media_url_not_allowed"
    policy = SourcePolicy(allowed_local_path=str(tmp_path / "media"))
    assert media.read_bytes(f"file://{tmp_path}/media/a.png", policy) == png_bytes()
    for bad in (f"file://{tmp_path}/secret.png", f"file://{tmp_path}/media/../secret.png", f"file://{tmp_path}/media/link.png"):
        e = _err(media.read_source, bad, policy)
        assert (e.code, e.status) == ("media_url_not_allowed", 403), bad
    assert _err(media.read_source, f"file://{tmp_path}/media/none.png", policy).code == "media_not_found"
    assert _err(media.read_source, "ftp://host/a.png", policy).code == "invalid_url"


def test_record_codes() -> None:
    """A refusal maps to the coarse code a bad data record reports (polyvlm data validate, training)."""
    assert MediaError("x", code="image_too_large").record_code == "media_too_large"
    assert MediaError("x", code="invalid_video").record_code == "media_unreadable"
    assert MediaError("x", code="media_not_found").record_code == "media_missing"
