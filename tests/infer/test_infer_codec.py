"""The message codec (polyvlm/infer/codec.py): ChatRequest <-> OpenAI chat messages, where media parts go, how
each kind of media is carried, request bodies and answers.

Formats followed: OpenAI chat content parts `image_url` {url} and `input_audio` {data, format}; vLLM's
`video_url` {url} and its placement rule, vllm/entrypoints/chat_utils.py `_get_full_multimodal_text_prompt`
(media parts of a message become placeholders joined to its text with "\\n", missing placeholders at the front).
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from polyvlm.infer import ChatRequest, MessageError, Video
from polyvlm.infer.codec import (
    completion_from_openai,
    from_openai_messages,
    to_openai_body,
    to_openai_messages,
)


def _decode_uri(url: str) -> tuple[str, bytes]:
    head, _, data = url.partition(",")
    return head[len("data:"):].split(";")[0], base64.b64decode(data)


def _vllm_prompt(content: list[dict]) -> str:
    """vLLM's non-interleaved text prompt of one message: its texts joined with "\\n", one placeholder per media
    part put in front (chat_utils.py `_get_full_multimodal_text_prompt`, none of them in the text yet)."""
    tags = {"image_url": "<image>", "input_audio": "<audio>", "video_url": "<video>"}
    missing = [tags[p["type"]] for p in content if p["type"] != "text"]
    return "\n".join([*missing, "\n".join(p["text"] for p in content if p["type"] == "text")])


def test_media_parts_sit_where_their_placeholders_were(tmp_path):
    red, blue = Image.new("RGB", (8, 6), (250, 0, 0)), Image.new("RGB", (4, 4), (0, 0, 250))
    req = ChatRequest([{"role": "system", "content": "be brief"},
                       {"role": "user", "content": "first <image> then <image>\nend"},
                       {"role": "assistant", "content": "ok"},
                       {"role": "user", "content": "<audio>\nand this?"}],
                      images=[red, blue], audios=[np.linspace(-0.5, 0.5, 1600, dtype=np.float32)])
    msgs = to_openai_messages(req)
    assert msgs[0] == {"role": "system", "content": "be brief"} and msgs[2] == {"role": "assistant", "content": "ok"}
    assert [p["type"] for p in msgs[1]["content"]] == ["text", "image_url", "text", "image_url", "text"]
    assert [p.get("text") for p in msgs[1]["content"]] == ["first ", None, " then ", None, "end"]
    mime, raw = _decode_uri(msgs[1]["content"][1]["image_url"]["url"])
    assert mime == "image/png" and Image.open(io.BytesIO(raw)).tobytes() == red.tobytes()  # lossless
    assert Image.open(io.BytesIO(_decode_uri(msgs[1]["content"][3]["image_url"]["url"])[1])).size == (4, 4)
    audio, text = msgs[3]["content"]
    assert text == {"type": "text", "text": "and this?"} and audio["input_audio"]["format"] == "wav"
    wave, rate = sf.read(io.BytesIO(base64.b64decode(audio["input_audio"]["data"])), dtype="float32")
    assert rate == 16_000 and np.array_equal(wave, req.audios[0])


def test_media_without_placeholders_go_first_in_the_first_user_message(tmp_path):
    (tmp_path / "a.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    req = ChatRequest([{"role": "system", "content": "sys"}, {"role": "user", "content": "What is shown?"},
                       {"role": "user", "content": "again"}],
                      images=[str(tmp_path / "a.png"), "https://example.org/b.jpg"])
    msgs = to_openai_messages(req)
    content = msgs[1]["content"]
    assert [p["type"] for p in content] == ["image_url", "image_url", "text"]
    assert _decode_uri(content[0]["image_url"]["url"]) == ("image/png", (tmp_path / "a.png").read_bytes())
    assert content[1]["image_url"]["url"] == "https://example.org/b.jpg"  # URLs travel as they are
    assert msgs[2] == {"role": "user", "content": "again"}
    # what vLLM makes of it is the LLaVA prompt the request stood for
    assert _vllm_prompt(content) == "<image>\n<image>\nWhat is shown?"


def test_verbatim_text_keeps_placeholders_as_text_and_media_follow_it():
    """A judge's prompt quoting an answer that says `<image>` is sent as written, the picture after the text of the
    last user message; without `verbatim` the same text is a placeholder count mismatch."""
    text = "[Assistant 2]\nIt shows <image> and <audio> tags.\n[End of Assistant 2]"
    msgs = [{"role": "system", "content": "judge"}, {"role": "user", "content": "first"},
            {"role": "user", "content": text}]
    req = ChatRequest(msgs, images=["https://example.org/p.png"], verbatim=True)
    out = to_openai_messages(req)
    assert out[:2] == [{"role": "system", "content": "judge"}, {"role": "user", "content": "first"}]
    assert out[2]["content"] == [{"type": "text", "text": text},
                                 {"type": "image_url", "image_url": {"url": "https://example.org/p.png"}}]
    assert to_openai_messages(ChatRequest(msgs, verbatim=True)) == msgs  # no media: strings as they are
    with pytest.raises(MessageError, match="placeholder"):
        to_openai_messages(ChatRequest(msgs, images=["https://example.org/p.png"]))
    with pytest.raises(MessageError, match="no user message"):
        to_openai_messages(ChatRequest([{"role": "system", "content": "s"}], images=["https://example.org/p.png"],
                                       verbatim=True))


def test_round_trip_openai_messages(tmp_path):
    url = "data:image/png;base64," + base64.b64encode(b"\x89PNG....").decode()
    video = "data:video/mp4;base64," + base64.b64encode(b"....ftypmp4").decode()
    messages = [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                     {"type": "text", "text": "compare with"},
                                     {"type": "video_url", "video_url": {"url": video}},
                                     {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                                     {"type": "text", "text": "please"}]},
        {"role": "assistant", "content": "fine"},
        {"role": "user", "content": "plain text"},
    ]
    req = from_openai_messages(messages, max_new_tokens=7)
    assert req.max_new_tokens == 7 and req.images == [url] and req.audios == ["data:audio/wav;base64,UklGRg=="]
    assert [v.source for v in req.videos] == [video]
    assert req.messages[1]["content"] == "<image>\ncompare with\n<video>\n<audio>\nplease"
    assert to_openai_messages(req) == messages
    # and ChatRequest -> messages -> ChatRequest keeps messages and media
    again = from_openai_messages(to_openai_messages(req))
    assert again.messages == req.messages and again.images == req.images and again.audios == req.audios
    assert [v.source for v in again.videos] == [video]


def test_developer_role_video_files_and_errors(tmp_path):
    (tmp_path / "v.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    req = ChatRequest([{"role": "user", "content": "<video>\nwhat happens?"}], videos=[Video(tmp_path / "v.mp4")])
    (part, text) = to_openai_messages(req)[0]["content"]
    assert _decode_uri(part["video_url"]["url"]) == ("video/mp4", (tmp_path / "v.mp4").read_bytes())
    assert from_openai_messages([{"role": "developer", "content": "x"}]).messages == [{"role": "system", "content": "x"}]
    with pytest.raises(MessageError, match="2 <image> placeholder"):
        to_openai_messages(ChatRequest([{"role": "user", "content": "<image><image>"}], images=["data:,"]))
    with pytest.raises(MessageError, match="cannot read image") as e:
        to_openai_messages(ChatRequest([{"role": "user", "content": "x"}], images=[str(tmp_path / "missing.png")]))
    assert e.value.code == "media_unreadable"
    frames_only = Video(frames=[Image.new("RGB", (2, 2))])
    with pytest.raises(MessageError, match="decoded frames"):
        to_openai_messages(ChatRequest([{"role": "user", "content": "x"}], videos=[frames_only]))
    with pytest.raises(MessageError, match=r"messages\[0\]\.content\[1\]\.type 'file'"):
        from_openai_messages([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "file"}]}])
    with pytest.raises(ValueError, match="needs a source"):
        Video()


def test_request_body_and_answer():
    req = ChatRequest([{"role": "user", "content": "hi"}], max_new_tokens=5, temperature=0.7, top_p=0.9, stop=["\n"],
                      seed=3)
    body = to_openai_body(req, "m", presence_penalty=0.1)
    assert body == {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "temperature": 0.7,
                    "top_p": 0.9, "stop": ["\n"], "seed": 3, "presence_penalty": 0.1}
    assert "top_p" not in to_openai_body(ChatRequest([{"role": "user", "content": "hi"}]), "m")
    done = completion_from_openai({"choices": [{"message": {"content": "yes"}, "finish_reason": "length"}],
                                   "usage": {"prompt_tokens": 4, "completion_tokens": 1}})
    assert (done.text, done.prompt_tokens, done.completion_tokens, done.finish_reason) == ("yes", 4, 1, "length")
    assert completion_from_openai({"choices": [{"message": {"content": None}}]}).text == ""
    with pytest.raises(MessageError, match="not a chat completion") as e:
        completion_from_openai({"error": "x"})
    assert e.value.code == "bad_response"


def test_a_modality_registered_after_import_travels_through_the_codec(tmp_path):
    """The codec reads the Modality registry at each call: a modality registered after polyvlm.infer.codec was
    imported gets its content part both ways; once unregistered, its part is refused again."""
    from polyvlm import media
    from polyvlm.media import Modality
    from polyvlm.media.image import url_part

    src = tmp_path / "a.toy"
    src.write_bytes(b"TOY\x01\x02")
    body = [{"role": "user", "content": [{"type": "input_toy", "input_toy": {"url": "data:x/y;base64,VE9Z"}},
                                         {"type": "text", "text": "what is it?"}]}]
    with pytest.raises(MessageError, match=r"messages\[0\].content\[0\].type 'input_toy' is not supported"):
        from_openai_messages(body)
    media.register_modality(Modality(name="toy", placeholder="<toy>", record_key="toy", api_part="input_toy",
                                     load=lambda raw, limits, where: raw, probe=lambda raw, limits, where: {},
                                     part_source=url_part("input_toy")))
    try:
        req = from_openai_messages(body)
        assert req.extra == {"toy": ["data:x/y;base64,VE9Z"]} and req.messages[0]["content"] == "<toy>\nwhat is it?"
        assert to_openai_messages(req) == body
        msgs = to_openai_messages(ChatRequest([{"role": "user", "content": "hi"}], extra={"toy": [src]}))
        part = msgs[0]["content"][0]
        assert part["type"] == "input_toy" and _decode_uri(part["input_toy"]["url"])[1] == b"TOY\x01\x02"
        with pytest.raises(MessageError, match=r"input_toy.url is missing"):
            from_openai_messages([{"role": "user", "content": [{"type": "input_toy", "input_toy": {}}]}])
    finally:
        media.unregister_modality("toy")
    with pytest.raises(KeyError, match="unknown modality 'toy'"):
        ChatRequest([{"role": "user", "content": "hi"}], extra={"toy": [src]})
    with pytest.raises(MessageError, match="'input_toy' is not supported"):
        from_openai_messages(body)


def test_imagebind_modalities_round_trip_as_typed_parts(tmp_path):
    """thermal, depth and IMU inputs go as `input_thermal` / `input_depth` / `input_imu` {url} parts (data URIs of a
    PNG, a 16-bit PNG or a float TIFF, an .npy array) and come back decoded by polyvlm.media unchanged."""
    from polyvlm import media
    from polyvlm.serve.config import ServeConfig
    from polyvlm.serve.protocol import media_loader

    thermal = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(6, 8), mode="L")
    depth16 = (np.arange(30, dtype=np.uint16).reshape(5, 6) * 2000)
    depth_f = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    imu = np.arange(60, dtype=np.float32).reshape(6, 10)
    np.save(tmp_path / "walk.npy", imu)
    req = ChatRequest([{"role": "user", "content": "<thermal>\n<depth>\n<depth>\n<imu>\n<imu>\nWhat happens?"}],
                      extra={"thermal": [thermal], "depth": [depth16, depth_f], "imu": [imu, tmp_path / "walk.npy"]})
    (msg,) = to_openai_messages(req)
    assert [p["type"] for p in msg["content"]] == ["input_thermal", "input_depth", "input_depth", "input_imu",
                                                   "input_imu", "text"]
    assert [_decode_uri(p[p["type"]]["url"])[0] for p in msg["content"][:3]] == ["image/png", "image/png", "image/tiff"]
    back = from_openai_messages([msg], media_loader(ServeConfig(), {"thermal", "depth", "imu"}))
    assert back.messages == req.messages
    assert np.array_equal(np.asarray(back.extra["thermal"][0]), np.asarray(thermal))
    assert np.array_equal(back.extra["depth"][0], depth16) and np.array_equal(back.extra["depth"][1], depth_f)
    assert all(np.array_equal(x, imu) for x in back.extra["imu"])
    refs = from_openai_messages([msg])  # the default loader keeps references a backend reads itself
    assert media.load("imu", refs.extra["imu"][0]).shape == (6, 10)
