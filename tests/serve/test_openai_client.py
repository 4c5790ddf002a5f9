"""The official `openai` client against a live uvicorn server on loopback: text, image, audio, streaming, models."""

from __future__ import annotations

import openai
import pytest
from serve_fakes import FakeGenerator
from serve_helpers import b64, data_uri, live_server, png_bytes, wav_bytes

from polyvlm.serve.app import create_app
from polyvlm.serve.config import ServeConfig


@pytest.fixture(scope="module")
def server():
    gen = FakeGenerator(batch_sleep=0.01, token_sleep=0.005)  # a token every 5 ms, like a model: streamed one by one
    app = create_app(gen, ServeConfig(api_key="sk-test", max_batch_size=4, batch_wait_ms=5))
    with live_server(app) as url:
        yield url, gen
    app.state.batcher.close()


@pytest.fixture
def client(server):
    url, _ = server
    return openai.OpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0, timeout=30)


def test_text(client):
    r = client.chat.completions.create(model="fake-vlm", messages=[{"role": "user", "content": "hello there"}],
                                       temperature=0, max_tokens=64)
    assert r.object == "chat.completion" and r.model == "fake-vlm"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content.startswith("echo: hello there | images=0 audios=0 turns=1")
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens == 2 + 4 and r.usage.completion_tokens == 8
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_multi_turn_and_system(client):
    r = client.chat.completions.create(model="fake-vlm", temperature=0, messages=[
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"}, {"role": "user", "content": "again"}])
    assert r.choices[0].message.content.startswith("echo: again | images=0 audios=0 turns=4")


def test_image(client, server):
    red, blue = data_uri(png_bytes((230, 10, 10), (40, 30))), data_uri(png_bytes((10, 10, 230), (8, 8)))
    r = client.chat.completions.create(model="fake-vlm", temperature=0, messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": red}},
        {"type": "text", "text": "compare"},
        {"type": "image_url", "image_url": {"url": blue, "detail": "low"}}]}])
    text = r.choices[0].message.content
    assert "images=2" in text and "red-40x30" in text and "blue-8x8" in text
    assert text.index("red-40x30") < text.index("blue-8x8")  # media order is kept
    assert r.usage.prompt_tokens == 1 + 4 + 2 * 10  # placeholders expanded
    sent = server[1].requests[-1]
    assert sent.messages[0]["content"] == "<image>\ncompare\n<image>"


def test_audio_resampled_to_16k(client):
    r = client.chat.completions.create(model="fake-vlm", temperature=0, messages=[{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": b64(wav_bytes(0.75, 22050, channels=2)), "format": "wav"}},
        {"type": "text", "text": "listen"}]}])
    assert "audios=1" in r.choices[0].message.content
    assert "audio-0.75s" in r.choices[0].message.content


def test_streaming(client):
    stream = client.chat.completions.create(model="fake-vlm", temperature=0, stream=True,
                                            stream_options={"include_usage": True},
                                            messages=[{"role": "user", "content": "stream me"}])
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("echo: stream me | images=0")
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 3  # token by token, not one blob
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 8
    plain = client.chat.completions.create(model="fake-vlm", temperature=0, messages=[{"role": "user", "content": "stream me"}])
    assert plain.choices[0].message.content == text


def test_stream_stop_string_never_leaks(client):
    kw = {"model": "fake-vlm", "temperature": 0, "messages": [{"role": "user", "content": "alpha beta gamma"}],
          "stop": ["gam", "zzz"]}
    text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(stream=True, **kw))
    assert text == "echo: alpha beta "
    r = client.chat.completions.create(**kw)
    assert r.choices[0].message.content == text and r.choices[0].finish_reason == "stop"


def test_max_tokens_and_length(client):
    r = client.chat.completions.create(model="fake-vlm", temperature=0, max_completion_tokens=3,
                                       messages=[{"role": "user", "content": "one two three four"}])
    assert r.choices[0].message.content == "echo: one two " and r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 3


def test_seed_and_temperature(client):
    def ask(seed):
        return client.chat.completions.create(model="fake-vlm", temperature=0.8, top_p=0.9, seed=seed,
                                              messages=[{"role": "user", "content": "x"}]).choices[0].message.content

    assert ask(1) == ask(1) != ask(2)


def test_models_and_auth(server, client):
    assert [m.id for m in client.models.list()] == ["fake-vlm"]
    bad = openai.OpenAI(base_url=f"{server[0]}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        bad.chat.completions.create(model="fake-vlm", messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 401 and e.value.code == "invalid_api_key"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="fake-vlm", temperature=3, messages=[{"role": "user", "content": "x"}])
    assert e.value.code == "invalid_value" and e.value.param == "temperature"
