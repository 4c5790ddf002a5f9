"""Every refusal is a 4xx JSON error in OpenAI's shape naming the problem, and the server keeps serving after it."""

from __future__ import annotations

import base64
import struct
import zlib

import pytest
from serve_fakes import FakeGenerator
from serve_helpers import b64, data_uri, png_bytes, wav_bytes

URL = "/v1/chat/completions"


def user(*parts) -> dict:
    return {"messages": [{"role": "user", "content": list(parts)}]}


def image_part(url: str) -> dict:
    return {"type": "image_url", "image_url": {"url": url}}


def audio_part(data: str, fmt: str = "wav") -> dict:
    return {"type": "input_audio", "input_audio": {"data": data, "format": fmt}}


def huge_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


TEXT = {"messages": [{"role": "user", "content": "hi"}]}
RED = data_uri(png_bytes())

# (name, server config, generator kwargs, body (dict, or bytes sent raw), headers, status, code, param)
CASES = [
    ("malformed json", {}, {}, b'{"messages": [', {}, 400, "invalid_json", None),
    ("not utf8", {}, {}, b"\xff\xfe{}", {}, 400, "invalid_json", None),
    ("nested too deeply", {}, {}, b"[" * 100_000 + b"]" * 100_000, {}, 400, "invalid_json", None),
    ("NaN temperature", {}, {}, b'{"messages": [{"role": "user", "content": "x"}], "temperature": NaN}', {}, 400,
     "invalid_type", "temperature"),
    ("integer over 4300 digits", {}, {}, b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": ' + b"9" * 5000 + b"}",
     {}, 400, "invalid_json", None),
    ("body not an object", {}, {}, b"[1, 2]", {}, 400, "invalid_type", None),
    ("messages missing", {}, {}, {"model": "fake-vlm"}, {}, 400, "invalid_value", "messages"),
    ("messages empty", {}, {}, {"messages": []}, {}, 400, "invalid_value", "messages"),
    ("unknown role", {}, {}, {"messages": [{"role": "robot", "content": "x"}]}, {}, 400, "invalid_role", "messages[0].role"),
    ("role not a string", {}, {}, {"messages": [{"role": ["user"], "content": "x"}]}, {}, 400, "invalid_role",
     "messages[0].role"),
    ("tool role", {}, {}, {"messages": [{"role": "user", "content": "x"}, {"role": "tool", "content": "y"}]}, {},
     400, "invalid_role", "messages[1].role"),
    ("content missing", {}, {}, {"messages": [{"role": "user"}]}, {}, 400, "invalid_value", "messages[0].content"),
    ("content wrong type", {}, {}, {"messages": [{"role": "user", "content": 5}]}, {}, 400, "invalid_type", "messages[0].content"),
    ("unknown part type", {}, {}, user({"type": "image_file", "file_id": "x"}), {}, 400, "unknown_content_part",
     "messages[0].content[0].type"),
    ("text part not a string", {}, {}, user({"type": "text", "text": 3}), {}, 400, "invalid_type", "messages[0].content[0].text"),
    ("reserved placeholder", {}, {}, {"messages": [{"role": "user", "content": "look <image> here"}]}, {}, 400,
     "reserved_placeholder", "messages[0].content[0].text"),
    ("last message not user", {}, {}, {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
     {}, 400, "invalid_value", "messages[1].role"),
    ("media in assistant turn", {}, {}, {"messages": [{"role": "assistant", "content": [image_part(RED)]},
                                                      {"role": "user", "content": "x"}]}, {}, 400, "invalid_value", "messages[0].content[0]"),
    ("audio to an image-only model", {}, {"modalities": {"image"}}, user(audio_part(b64(wav_bytes()))), {}, 400,
     "unsupported_modality", "messages[0].content[0].type"),
    ("image to an audio-only model", {}, {"modalities": {"audio"}}, user(image_part(RED)), {}, 400,
     "unsupported_modality", "messages[0].content[0].type"),
    ("bad base64 image", {}, {}, user(image_part("data:image/png;base64,@@not*base64@@")), {}, 400, "invalid_base64",
     "messages[0].content[0].image_url"),
    ("bad base64 audio", {}, {}, user(audio_part("%%%%")), {}, 400, "invalid_base64", "messages[0].content[0].input_audio.data"),
    ("data uri not base64", {}, {}, user(image_part("data:image/png,rawbytes")), {}, 400, "invalid_data_uri",
     "messages[0].content[0].image_url"),
    ("bytes not an image", {}, {}, user(image_part(data_uri(b"this is plain text, not a picture"))), {}, 400, "invalid_image",
     "messages[0].content[0].image_url"),
    ("truncated image", {}, {}, user(image_part(data_uri(png_bytes()[:60]))), {}, 400, "invalid_image",
     "messages[0].content[0].image_url"),
    ("bytes not audio", {}, {}, user(audio_part(b64(png_bytes()))), {}, 400, "invalid_audio",
     "messages[0].content[0].input_audio.data"),
    ("audio data not a string", {}, {}, user({"type": "input_audio", "input_audio": {"data": 5, "format": "wav"}}), {}, 400,
     "invalid_base64", "messages[0].content[0].input_audio.data"),
    ("audio format not a string", {}, {}, user(audio_part(b64(wav_bytes()), ["wav"])), {}, 400, "invalid_value",
     "messages[0].content[0].input_audio.format"),
    ("input_audio not an object", {}, {}, user({"type": "input_audio", "input_audio": "UklGRg=="}), {}, 400, "invalid_value",
     "messages[0].content[0].input_audio"),
    ("bytes not a video", {}, {}, user({"type": "video_url", "video_url": {"url": data_uri(b"not a video", "video/mp4")}}), {},
     400, "invalid_video", "messages[0].content[0].video_url"),
    ("image_url without url", {}, {}, user({"type": "image_url", "image_url": {}}), {}, 400, "invalid_value",
     "messages[0].content[0].image_url"),
    ("unknown audio format", {}, {}, user(audio_part(b64(wav_bytes()), "aac")), {}, 400, "invalid_value",
     "messages[0].content[0].input_audio.format"),
    ("audio too long", {"max_audio_seconds": 0.2}, {}, user(audio_part(b64(wav_bytes(0.5)))), {}, 400, "audio_too_long",
     "messages[0].content[0].input_audio.data"),
    ("decompression bomb", {}, {}, user(image_part(data_uri(huge_png()))), {}, 400, "image_too_large",
     "messages[0].content[0].image_url"),
    ("pixels over the limit", {"max_image_pixels": 1000}, {}, user(image_part(data_uri(png_bytes(size=(40, 30))))), {},
     400, "image_too_large", "messages[0].content[0].image_url"),
    ("remote url refused", {}, {}, user(image_part("https://example.com/cat.png")), {}, 400, "media_url_not_allowed",
     "messages[0].content[0].image_url"),
    ("remote url of another domain", {"allowed_media_domains": ["example.org"]}, {}, user(image_part("http://evil.com/a.png")),
     {}, 400, "media_url_not_allowed", "messages[0].content[0].image_url"),
    ("file url refused", {}, {}, user(image_part("file:///etc/passwd")), {}, 400, "media_url_not_allowed",
     "messages[0].content[0].image_url"),
    ("file url outside the allowed path", {"allowed_local_media_path": "/tmp"}, {}, user(image_part("file:///etc/passwd")),
     {}, 403, "media_url_not_allowed", "messages[0].content[0].image_url"),
    ("unsupported url scheme", {}, {}, user(image_part("ftp://host/a.png")), {}, 400, "invalid_url", "messages[0].content[0].image_url"),
    ("too many media", {"max_media_items": 2}, {}, user(*[image_part(RED)] * 3), {}, 400, "too_many_media", "messages"),
    ("body over the size limit", {"max_body_mb": 0.001}, {}, user(image_part(data_uri(png_bytes(size=(300, 300))))), {},
     413, "request_too_large", None),
    ("prompt over the context after placeholder expansion", {}, {"max_context": 64}, user(*[image_part(RED)] * 6,
     {"type": "text", "text": "hi"}), {}, 400, "context_length_exceeded", "messages"),
    ("prompt + max_tokens over the context", {}, {"max_context": 64}, {**TEXT, "max_tokens": 100}, {}, 400,
     "context_length_exceeded", "messages"),
    ("temperature too high", {}, {}, {**TEXT, "temperature": 2.5}, {}, 400, "invalid_value", "temperature"),
    ("temperature negative", {}, {}, {**TEXT, "temperature": -0.1}, {}, 400, "invalid_value", "temperature"),
    ("temperature not a number", {}, {}, {**TEXT, "temperature": "hot"}, {}, 400, "invalid_type", "temperature"),
    ("top_p zero", {}, {}, {**TEXT, "top_p": 0}, {}, 400, "invalid_value", "top_p"),
    ("top_p above one", {}, {}, {**TEXT, "top_p": 1.5}, {}, 400, "invalid_value", "top_p"),
    ("max_tokens zero", {}, {}, {**TEXT, "max_tokens": 0}, {}, 400, "invalid_value", "max_tokens"),
    ("max_tokens float", {}, {}, {**TEXT, "max_tokens": 2.5}, {}, 400, "invalid_type", "max_tokens"),
    ("max_completion_tokens negative", {}, {}, {**TEXT, "max_completion_tokens": -1}, {}, 400, "invalid_value",
     "max_completion_tokens"),
    ("seed not an integer", {}, {}, {**TEXT, "seed": "abc"}, {}, 400, "invalid_type", "seed"),
    ("seed out of range", {}, {}, {**TEXT, "seed": 1 << 70}, {}, 400, "invalid_value", "seed"),
    ("too many stop strings", {}, {}, {**TEXT, "stop": ["a", "b", "c", "d", "e"]}, {}, 400, "invalid_value", "stop"),
    ("stop wrong type", {}, {}, {**TEXT, "stop": 5}, {}, 400, "invalid_type", "stop"),
    ("include_usage not a bool", {}, {}, {**TEXT, "stream": True, "stream_options": {"include_usage": "yes"}}, {}, 400,
     "invalid_type", "stream_options.include_usage"),
    ("stream not a bool", {}, {}, {**TEXT, "stream": "yes"}, {}, 400, "invalid_type", "stream"),
    ("n above one", {}, {}, {**TEXT, "n": 2}, {}, 400, "invalid_value", "n"),
    ("tools", {}, {}, {**TEXT, "tools": [{"type": "function"}]}, {}, 400, "unsupported_parameter", "tools"),
    ("unknown model", {}, {}, {**TEXT, "model": "gpt-4o"}, {}, 404, "model_not_found", "model"),
    ("missing api key", {"api_key": "sk-1"}, {}, TEXT, {}, 401, "missing_api_key", None),
    ("wrong api key", {"api_key": "sk-1"}, {}, TEXT, {"Authorization": "Bearer sk-2"}, 401, "invalid_api_key", None),
    ("api key without bearer", {"api_key": "sk-1"}, {}, TEXT, {"Authorization": "sk-1"}, 401, "invalid_api_key", None),
]


@pytest.mark.parametrize("name,cfg,gen_kw,body,headers,status,code,param", CASES, ids=[c[0] for c in CASES])
def test_refused_with_openai_error(make_client, name, cfg, gen_kw, body, headers, status, code, param):
    gen = FakeGenerator(batch_sleep=0.0, **gen_kw)
    client = make_client(gen, **cfg)
    if isinstance(body, bytes):
        r = client.post(URL, content=body, headers={"Content-Type": "application/json", **headers})
    else:
        r = client.post(URL, json=body, headers=headers)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["code"] == code and err["param"] == param
    assert isinstance(err["message"], str) and len(err["message"]) > 10
    assert err["type"] == {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                           404: "not_found_error", 413: "invalid_request_error"}[status]
    assert gen.batch_sizes == []  # nothing reached the model
    # the server keeps serving
    auth = {"Authorization": f"Bearer {cfg['api_key']}"} if "api_key" in cfg else {}
    assert client.get("/health").json()["status"] == "ok"
    ok = client.post(URL, json={"messages": [{"role": "user", "content": "still there?"}], "max_tokens": 8}, headers=auth)
    assert ok.status_code == 200, ok.text
    assert ok.json()["choices"][0]["message"]["content"].startswith("echo: still there?")


def test_chunked_body_over_limit_without_content_length(make_client):
    client = make_client(max_body_mb=0.001)

    def body():
        for _ in range(20):
            yield b" " * 200

    r = client.post(URL, content=body(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"


def test_bad_image_among_good_ones_names_its_position(make_client):
    r = make_client().post(URL, json=user(image_part(RED), {"type": "text", "text": "and"},
                                          image_part("data:image/png;base64," + base64.b64encode(b"GIF89a??").decode())))
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages[0].content[2].image_url"


def test_unknown_route_and_method_use_the_error_shape(make_client):
    client = make_client()
    r = client.get("/v1/nothing")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    r = client.get(URL)
    assert r.status_code == 405 and "message" in r.json()["error"]


def test_models_needs_the_key_but_health_does_not(make_client):
    client = make_client(api_key="sk-1")
    assert client.get("/health").status_code == 200
    assert client.get("/v1/models").status_code == 401
    r = client.get("/v1/models", headers={"Authorization": "Bearer sk-1"})
    assert r.json()["data"][0]["id"] == "fake-vlm"


def test_generation_failure_is_a_500_and_spares_batch_mates(make_client):
    gen = FakeGenerator(batch_sleep=0.0, fail_on="boom")
    client = make_client(gen)
    r = client.post(URL, json={"messages": [{"role": "user", "content": "boom"}]})
    assert r.status_code == 500 and r.json()["error"]["code"] == "generation_failed"
    assert client.post(URL, json=TEXT).status_code == 200


def test_unexpected_error_is_a_500_in_the_error_shape(make_client):
    class Broken(FakeGenerator):
        def count_prompt_tokens(self, request):
            raise RuntimeError("tokenizer exploded")

    client = make_client(Broken(batch_sleep=0.0))
    r = client.post(URL, json=TEXT)
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
    assert client.get("/health").status_code == 200
