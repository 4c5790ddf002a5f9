"""A PandaGPT model on every serving surface: `polyvlm chat` (one-shot `--audio` / `--thermal` / ... flags and the
interactive `/audio`, `/thermal`, `/depth`, `/imu`, `/video` commands) and the API (`input_audio` as OpenAI sends it,
`input_thermal` / `input_depth` / `input_imu` {url} parts, `video_url`), each answering as `pandagpt.answer` does
on the same files; bad inputs (a WAV that does not decode, an IMU file of the wrong shape, a modality the model
lacks) refused naming the input.

References: yxuansu/PandaGPT code/web_demo.py (one media cache per conversation, answers cut at `###`),
code/model/openllama.py (`generate`); OpenAI's `input_audio` part {data, format}."""

from __future__ import annotations

import base64
import io
import subprocess
import sys

import numpy as np
import pytest
from serve_helpers import png_bytes

import polyvlm
from polyvlm import testing
from polyvlm.data.records import Turn
from polyvlm.models import pandagpt
from polyvlm.serve import chat
from polyvlm.serve.terminal import run_chat

pytestmark = pytest.mark.slow  # end to end: CLI, terminal and API with a model (about a minute)

@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return testing.make_tiny_pandagpt(tmp_path_factory.mktemp("pandagpt"))


@pytest.fixture(scope="module")
def gen(ckpt):
    return polyvlm.load_generator(ckpt)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    out = testing.write_pandagpt_media(d)
    (d / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
    np.save(d / "short.npy", np.zeros((3, 50), np.float32))
    out.update(broken=d / "broken.wav", short=d / "short.npy")
    return out


def _answer(gen, question, media, history=None):
    return pandagpt.answer(gen.model, gen.processor, question, media, max_new_tokens=6, history=history)


def test_chat_one_shot_flags(gen, ckpt, files, capsys, monkeypatch):
    monkeypatch.setattr(polyvlm, "load_generator", lambda *a, **k: gen)
    for flags, media in [(["--audio", files["audio"]], {"audio": [files["audio"]]}),
                         (["--thermal", files["thermal"], "--depth", files["depth"], "--imu", files["imu"]],
                          {"thermal": [files["thermal"]], "depth": [files["depth"]], "imu": [files["imu"]]}),
                         (["--video", files["video"]], {"video": [files["video"]]})]:
        assert chat.main([str(ckpt), *map(str, flags), "What is it?", "--max-tokens", "6"]) == 0
        assert capsys.readouterr().out.strip() == _answer(gen, "What is it?", media)
    assert chat.main([str(ckpt), "--audio", str(files["broken"]), "hi"]) == 1
    assert f"--audio {files['broken']}: bytes are not readable audio" in capsys.readouterr().err
    assert chat.main([str(ckpt), "--imu", str(files["short"]), "hi"]) == 1
    assert "short.npy: IMU array has shape (3, 50)" in capsys.readouterr().err


def test_chat_refuses_a_modality_the_model_lacks(tmp_path, files):
    tiny = testing.make_tiny_checkpoint(tmp_path / "tiny")  # CLIP image model: no thermal
    r = subprocess.run([sys.executable, "-m", "polyvlm", "chat", str(tiny), "--thermal", str(files["thermal"]), "hi"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "--thermal: this model does not accept thermal input (it accepts image, video)" in r.stderr


def test_interactive_commands_attach_every_modality(gen, files):
    lines = [f"/audio {files['audio']}", "What do you hear?", f"/thermal {files['thermal']}", f"/depth {files['depth']}",
             f"/imu {files['imu']}", f"/video {files['video']}", "And now?", f"/audio {files['broken']}",
             f"/imu {files['short']}", "/quit"]
    out = io.StringIO()
    assert run_chat(gen, io.StringIO("\n".join(lines) + "\n"), out, max_tokens=6) == 0
    text = out.getvalue()
    for m in ("audio", "thermal", "depth", "imu", "video"):
        assert f"[attached {m} " in text, m
    first = _answer(gen, "What do you hear?", {"audio": [files["audio"]]})
    # turn 2: every input of the conversation summed into the first turn's row (PandaGPT's web demo cache)
    second = _answer(gen, "And now?", {m: [files[m]] for m in ("audio", "thermal", "depth", "imu", "video")},
                     history=[Turn("user", "What do you hear?"), Turn("assistant", first)])
    replies = [line.removeprefix(">>> ").strip() for line in text.splitlines() if line.startswith(">>> ") and
               not line.startswith(">>> [") and line.strip() != ">>>"]
    assert replies[:2] == [first, second]
    assert "broken.wav: bytes are not readable audio" in text and "short.npy: IMU array has shape (3, 50)" in text


def _uri(raw: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(raw).decode()}"


def _post(client, parts, **kw):
    body = {"messages": [{"role": "user", "content": parts}], "max_tokens": 6, "temperature": 0, **kw}
    return client.post("/v1/chat/completions", json=body)


def test_api_takes_every_modality_as_a_content_part(gen, files, make_client):
    client = make_client(gen)
    parts = {
        "audio": {"type": "input_audio", "input_audio": {"data": base64.b64encode(files["audio"].read_bytes()).decode(),
                                                         "format": "wav"}},
        "thermal": {"type": "input_thermal", "input_thermal": {"url": _uri(files["thermal"].read_bytes(), "image/png")}},
        "depth": {"type": "input_depth", "input_depth": {"url": _uri(files["depth"].read_bytes(), "image/png")}},
        "imu": {"type": "input_imu", "input_imu": {"url": _uri(files["imu"].read_bytes(), "application/x-npy")}},
        "video": {"type": "video_url", "video_url": {"url": _uri(files["video"].read_bytes(), "video/mp4")}},
    }
    for m, part in parts.items():
        r = _post(client, [{"type": "text", "text": "What is it?"}, part])
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"].strip() == _answer(gen, "What is it?", {m: [files[m]]}), m
    r = _post(client, [{"type": "text", "text": "All?"}, *parts.values()])
    assert r.json()["choices"][0]["message"]["content"].strip() == _answer(gen, "All?", {m: [files[m]] for m in parts})
    bad = {"type": "input_audio", "input_audio": {"data": base64.b64encode(b"RIFF0000WAVEjunk").decode(), "format": "wav"}}
    r = _post(client, [{"type": "text", "text": "x"}, bad])
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages[0].content[1].input_audio.data"
    assert "not readable audio" in r.json()["error"]["message"]
    short = {"type": "input_imu", "input_imu": {"url": _uri(files["short"].read_bytes(), "application/x-npy")}}
    r = _post(client, [{"type": "text", "text": "x"}, short])
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_imu"
    assert "messages[0].content[1].input_imu: IMU array has shape (3, 50)" in r.json()["error"]["message"]


def test_api_refuses_a_modality_the_model_lacks_naming_the_part(make_client, tmp_path):
    tiny = polyvlm.load_generator(testing.make_tiny_checkpoint(tmp_path / "tiny"))
    client = make_client(tiny)
    for part in ({"type": "input_thermal", "input_thermal": {"url": _uri(png_bytes(), "image/png")}},
                 {"type": "input_depth", "input_depth": {"url": _uri(png_bytes(), "image/png")}},
                 {"type": "input_imu", "input_imu": {"url": "data:text/csv;base64,MSwyLDMsNCw1LDY="}}):
        r = _post(client, [{"type": "text", "text": "x"}, part])
        err = r.json()["error"]
        assert r.status_code == 400 and err["code"] == "unsupported_modality" and err["param"] == "messages[0].content[1].type"
        assert err["message"].startswith(f"messages[0].content[1]: this model does not accept {part['type'][6:]} input")
