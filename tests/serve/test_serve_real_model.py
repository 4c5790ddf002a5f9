"""Integration with the real tiny model: `polyvlm serve` as a process, the openai client, streaming, terminal chat."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest
from serve_helpers import data_uri, live_server, png_bytes

from polyvlm import testing
from polyvlm.serve.app import create_app
from polyvlm.serve.config import ServeConfig
from polyvlm.serve.terminal import run_chat

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return testing.make_tiny_checkpoint(tmp_path_factory.mktemp("serve") / "tiny")


@pytest.fixture(scope="module")
def generator(ckpt):
    import polyvlm

    return polyvlm.load_generator(ckpt)


def _image_message(text: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_uri(png_bytes((200, 30, 30), (64, 64)))}},
                                         {"type": "text", "text": text}]}]


def test_openai_client_against_the_tiny_model(generator):
    app = create_app(generator, ServeConfig(max_batch_size=4, batch_wait_ms=20, max_media_items=32))
    with live_server(app) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0, timeout=120)
        plain = client.chat.completions.create(model=generator.name, messages=_image_message("what is it?"),
                                               max_tokens=6, temperature=0)
        from polyvlm.serve.protocol import parse_chat

        parsed = parse_chat({"messages": _image_message("what is it?"), "max_tokens": 6, "temperature": 0},
                            ServeConfig(), generator.modalities, generator.name)
        assert plain.usage.prompt_tokens == generator.count_prompt_tokens(parsed.request)
        (direct,) = generator.generate([parsed.request])  # the answer the model gives outside the server
        assert plain.choices[0].message.content == direct.text
        assert plain.usage.completion_tokens == direct.completion_tokens
        assert plain.choices[0].finish_reason == direct.finish_reason
        chunks = list(client.chat.completions.create(model=generator.name, messages=_image_message("what is it?"),
                                                     max_tokens=6, temperature=0, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == plain.choices[0].message.content
        with pytest.raises(openai.BadRequestError) as e:  # the tiny model has no audio encoder
            client.chat.completions.create(model=generator.name, messages=[{"role": "user", "content": [
                {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}])
        assert e.value.code == "unsupported_modality"
        with pytest.raises(openai.BadRequestError) as e:  # 16 images expand past the context
            client.chat.completions.create(model=generator.name, messages=[{"role": "user", "content": [
                *_image_message("x")[0]["content"][:1] * 16]}], max_tokens=4)
        assert e.value.code == "context_length_exceeded"
    app.state.batcher.close()


def test_terminal_chat_with_the_tiny_model(generator):
    from polyvlm.infer import ChatRequest

    out = io.StringIO()
    run_chat(generator, io.StringIO("hello\nagain\n/quit\n"), out, max_tokens=4)
    history: list[dict] = []
    answers = []
    for line in ("hello", "again"):  # each turn sees the conversation so far, answered greedily
        history.append({"role": "user", "content": line})
        (c,) = generator.generate([ChatRequest(list(history), max_new_tokens=4, temperature=0.0)])
        history.append({"role": "assistant", "content": c.text})
        answers.append(c.text)
    body = out.getvalue().split("\n", 1)[1]  # after the banner line
    assert body == "".join(f">>> {a}\n" for a in answers) + ">>> ", body


def test_polyvlm_serve_process(ckpt, generator):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "POLYVLM_API_KEY": "sk-proc"}
    proc = subprocess.Popen([sys.executable, "-m", "polyvlm", "serve", str(ckpt), "--port", str(port), "--max-batch-size", "4"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "server did not come up"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-proc", max_retries=0, timeout=120)
        assert [m.id for m in client.models.list()] == [ckpt.name]
        r = client.chat.completions.create(model=ckpt.name, messages=_image_message("hi"), max_tokens=3, temperature=0)
        from polyvlm.serve.protocol import parse_chat

        req = parse_chat({"messages": _image_message("hi"), "max_tokens": 3, "temperature": 0}, ServeConfig(),
                         generator.modalities, generator.name).request
        (direct,) = generator.generate([req])  # the same checkpoint answering in this process
        assert (r.choices[0].message.content, r.usage.completion_tokens) == (direct.text, direct.completion_tokens)
        assert httpx.get(f"http://127.0.0.1:{port}/v1/models").status_code == 401  # the env key is enforced
    finally:
        proc.terminate()
        proc.wait(20)
    assert proc.returncode in (0, -15)  # uvicorn re-raises the SIGTERM it handled after a clean shutdown


def test_serve_cli_errors(tmp_path):
    from polyvlm.serve.cli import main

    assert main([str(tmp_path / "missing")]) == 2
