"""`polyvlm serve` and `polyvlm chat` as users run them: child processes on a real tiny image + audio checkpoint."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import httpx
import openai
import pytest
from serve_helpers import ROOT, b64, data_uri, png_bytes, serve_process, wav_bytes
from test_validation import CASES

from polyvlm.serve.config import ServeConfig
from polyvlm.serve.protocol import parse_chat
from polyvlm.testing import make_tiny_checkpoint

pytestmark = pytest.mark.slow
KEY = "sk-e2e"
WHISPER = ("model.audio_config={model_type: whisper, d_model: 32, encoder_layers: 1, encoder_attention_heads: 2, "
           "encoder_ffn_dim: 64, num_mel_bins: 16, max_source_positions: 25}")
RED = data_uri(png_bytes((200, 30, 30), (64, 64)))


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """The tiny quick start model plus a tiny Whisper audio encoder (random init, fixed seed)."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("e2e") / "tiny-av", overrides=[WHISPER])


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    (d / "red.png").write_bytes(png_bytes((200, 30, 30), (64, 64)))
    (d / "tone.wav").write_bytes(wav_bytes(0.5, 8000))
    return d


@pytest.fixture(scope="module")
def url(ckpt, media_dir):
    flags = ["--api-key", KEY, "--max-batch-size", "4", "--batch-wait-ms", "20", "--max-media-items", "3",
             "--max-image-pixels", "20000", "--max-body-mb", "1", "--max-audio-seconds", "2",
             "--allowed-local-media-path", str(media_dir), "--log-level", "warning"]
    with serve_process(ckpt, *flags) as u:
        yield u


@pytest.fixture(scope="module")
def generator(ckpt):
    import polyvlm

    return polyvlm.load_generator(ckpt)


@pytest.fixture
def client(url):
    return openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=120)


def ask(client, content, **kw):
    kw.setdefault("max_tokens", 8)
    return client.chat.completions.create(model="tiny-av", messages=[{"role": "user", "content": content}], **kw)


def image(url: str = RED) -> dict:
    return {"type": "image_url", "image_url": {"url": url}}


def audio(raw: bytes | None = None) -> dict:
    return {"type": "input_audio", "input_audio": {"data": b64(raw or wav_bytes(0.5, 8000)), "format": "wav"}}


def expected_prompt_tokens(generator, content) -> int:
    parsed = parse_chat({"messages": [{"role": "user", "content": content}]}, ServeConfig(), generator.modalities, "tiny-av")
    return generator.count_prompt_tokens(parsed.request)


def test_models_health_and_text(client, url, generator):
    assert [m.id for m in client.models.list()] == ["tiny-av"]
    assert httpx.get(f"{url}/health").json()["status"] == "ok"
    r = ask(client, "hello", temperature=0)
    assert r.object == "chat.completion" and r.model == "tiny-av" and r.choices[0].message.role == "assistant"
    assert r.usage.prompt_tokens == expected_prompt_tokens(generator, "hello")
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert r.usage.completion_tokens == 8 and r.choices[0].finish_reason == "length"  # random weights never say "end of turn"


def test_image_and_audio_placeholders_are_expanded(client, generator):
    content = [image(), {"type": "text", "text": "what colour?"}]
    r1 = ask(client, content, temperature=0)
    assert r1.usage.prompt_tokens == expected_prompt_tokens(generator, content)
    r2 = ask(client, [image(), *content], temperature=0)
    assert r2.usage.prompt_tokens - r1.usage.prompt_tokens > 16  # one more image: its placeholder became many tokens
    with_audio = [audio(wav_bytes(0.75, 22050, channels=2)), *content]
    r3 = ask(client, with_audio, temperature=0)
    assert r3.usage.prompt_tokens == expected_prompt_tokens(generator, with_audio) > r1.usage.prompt_tokens


def test_streaming_matches_the_plain_answer_and_ends_with_done(client, url):
    content = [image(), {"type": "text", "text": "describe"}]
    plain = ask(client, content, temperature=0).choices[0].message.content
    chunks = list(ask(client, content, temperature=0, stream=True, stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == plain
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]
    assert chunks[-1].usage.completion_tokens == 8
    body = {"model": "tiny-av", "messages": [{"role": "user", "content": content}], "max_tokens": 8, "temperature": 0,
            "stream": True}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"},
                      timeout=120) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"
    assert "".join(json.loads(e[6:])["choices"][0]["delta"].get("content", "") for e in events[:-1]) == plain


def test_sampling_parameters(client):
    greedy = ask(client, "tell me", temperature=0).choices[0].message.content

    def sample(seed, **kw):
        return ask(client, "tell me", temperature=1.0, seed=seed, **kw).choices[0].message.content

    assert sample(7) == sample(7) != sample(8)
    assert sample(9, top_p=1e-6) == greedy  # top-p that keeps only the most likely token is greedy decoding
    for key in ("max_tokens", "max_completion_tokens"):
        r = client.chat.completions.create(model="tiny-av", messages=[{"role": "user", "content": "tell me"}],
                                           temperature=0, **{key: 3})
        assert r.usage.completion_tokens == 3 and r.choices[0].finish_reason == "length", key
    stop = next(ch for ch in greedy[1:] if ch != "\ufffd")
    want = greedy[: greedy.find(stop)]
    r = ask(client, "tell me", temperature=0, stop=[stop])
    assert (r.choices[0].message.content, r.choices[0].finish_reason) == (want, "stop")
    streamed = "".join(c.choices[0].delta.content or "" for c in ask(client, "tell me", temperature=0, stop=stop,
                                                                     stream=True) if c.choices)
    assert streamed == want


def test_concurrent_requests_are_batched_and_seeded_answers_do_not_depend_on_batch_mates(client, url):
    alone = ask(client, [image(), {"type": "text", "text": "seeded"}], temperature=1.0, seed=3).choices[0].message.content
    before = httpx.get(f"{url}/health").json()["batch_sizes"]

    async def burst():
        headers = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as c:
            bodies = [{"messages": [{"role": "user", "content": [image(), {"type": "text", "text": "seeded" if i == 0 else f"other {i}"}]}],
                       "max_tokens": 8, "temperature": 1.0, "seed": 3 if i == 0 else i} for i in range(8)]
            return await asyncio.gather(*(c.post("/v1/chat/completions", json=b) for b in bodies))

    rs = asyncio.run(burst())
    assert [r.status_code for r in rs] == [200] * 8
    assert rs[0].json()["choices"][0]["message"]["content"] == alone
    after = httpx.get(f"{url}/health").json()["batch_sizes"]
    grown = {int(k): v - before.get(k, 0) for k, v in after.items() if v > before.get(k, 0)}
    assert max(grown) > 1 and max(grown) <= 4, grown  # batched, never beyond --max-batch-size


def test_local_and_remote_media_urls(client, media_dir):
    r = ask(client, [image(f"file://{media_dir}/red.png"), {"type": "text", "text": "x"}], temperature=0)
    assert r.choices[0].message.content == ask(client, [image(), {"type": "text", "text": "x"}], temperature=0).choices[0].message.content
    for bad, status, code in ((f"file://{media_dir.parent}/elsewhere.png", 403, "media_url_not_allowed"),
                              ("https://example.com/cat.png", 400, "media_url_not_allowed")):
        with pytest.raises(openai.APIStatusError) as e:
            ask(client, [image(bad)])
        assert (e.value.status_code, e.value.code) == (status, code)


# the shared validation table (cases that need no special server or model), plus this server's own limits
LIMITS = [
    ("too many media", {"messages": [{"role": "user", "content": [image()] * 4}]}, {}, 400, "too_many_media", "messages"),
    ("pixels over the limit", {"messages": [{"role": "user", "content": [image(data_uri(png_bytes(size=(200, 200))))]}]}, {},
     400, "image_too_large", "messages[0].content[0].image_url"),
    ("audio over the limit", {"messages": [{"role": "user", "content": [audio(wav_bytes(3.0, 8000))]}]}, {}, 400,
     "audio_too_long", "messages[0].content[0].input_audio.data"),
    ("body over the limit", b'{"messages": [{"role": "user", "content": "' + b"x" * (1 << 20) + b'"}]}', {}, 413,
     "request_too_large", None),
    ("context after placeholder expansion", {"messages": [{"role": "user", "content": [image()] * 3}], "max_tokens": 200}, {},
     400, "context_length_exceeded", "messages"),
    ("missing api key", {"messages": [{"role": "user", "content": "x"}]}, {"Authorization": ""}, 401, "missing_api_key", None),
    ("wrong api key", {"messages": [{"role": "user", "content": "x"}]}, {"Authorization": "Bearer nope"}, 401,
     "invalid_api_key", None),
]
# (this server allows a local media path, so `file://` outside it is a 403: test_local_and_remote_media_urls)
SHARED = [(n, b, h, s, c, p) for n, cfg, gen_kw, b, h, s, c, p in CASES if not cfg and not gen_kw and n != "file url refused"]


@pytest.mark.parametrize("name,body,headers,status,code,param", SHARED + LIMITS, ids=[c[0] for c in SHARED + LIMITS])
def test_refusals_through_the_process(url, name, body, headers, status, code, param):
    auth = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    if isinstance(body, dict) and body.get("model") == "fake-vlm":
        body = {**body, "model": "tiny-av"}
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = httpx.post(f"{url}/v1/chat/completions", content=raw, headers={**auth, **headers}, timeout=60)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert (err["code"], err["param"]) == (code, param) and len(err["message"]) > 10
    ok = httpx.post(f"{url}/v1/chat/completions", json={"messages": [{"role": "user", "content": [image(), audio()]}],
                                                       "max_tokens": 2, "temperature": 0}, headers=auth, timeout=60)
    assert ok.status_code == 200 and ok.json()["usage"]["completion_tokens"] == 2  # and it keeps serving


def test_polyvlm_chat_interactive(ckpt, media_dir):
    """`polyvlm chat CKPT` with no question: multi-turn with media, context kept across turns, /reset forgets it."""
    red, tone = media_dir / "red.png", media_dir / "tone.wav"
    lines = [f"/image {red}", "first", f"/image {red}", "second", f"/image {red}", "third", "/reset",
             f"/image {red}", "after reset", f"/audio {tone}", "and this?", "/image /no/such.png", "/quit", "never sent"]
    proc = subprocess.run([sys.executable, "-m", "polyvlm", "chat", str(ckpt), "--max-tokens", "4"],
                          input="".join(line + "\n" for line in lines), capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.split(">>> ")
    assert out[0].startswith("polyvlm chat with tiny-av (audio, image, video)")
    replies = out[1:]
    assert replies[0].startswith("[attached image red.png") and replies[2].startswith("[attached image red.png")
    assert replies[1].strip() and replies[3].strip()  # answers to "first" and "second"
    # three images in the history no longer fit the 256-token context: the history (with its media) is kept
    assert "maximum context length is 256" in replies[5] and "1 attachment(s) dropped" in replies[5]
    assert replies[6].startswith("[conversation cleared]")
    assert replies[7].startswith("[attached image") and "error" not in replies[8] and replies[8].strip()
    assert replies[9].startswith("[attached audio tone.wav") and "error" not in replies[10] and replies[10].strip()
    assert "error: /no/such.png: no such file" in replies[11]
    assert len(replies) == 13 and replies[12] == ""  # /quit: nothing after it was read


def test_polyvlm_serve_ui_in_chromium(tmp_path_factory, media_dir):
    """`polyvlm serve CKPT --ui` on the image-only tiny model: upload an image in Chromium, ask, an answer appears."""
    import importlib.util
    import shutil

    missing = [n for n in ("gradio", "playwright") if importlib.util.find_spec(n) is None]
    if not shutil.which("chromium"):
        missing.append("chromium (apt-get install -y chromium)")
    if missing and os.environ.get("POLYVLM_REQUIRE_BROWSER"):  # CI (.ci/run): `make test` installed them
        pytest.fail(f"POLYVLM_REQUIRE_BROWSER is set and the web demo test misses: {', '.join(missing)}")
    if missing:
        pytest.skip(f"web demo test needs: {', '.join(missing)}")
    from playwright.sync_api import sync_playwright
    from test_webui import ARGS, CHROMIUM

    ckpt = make_tiny_checkpoint(tmp_path_factory.mktemp("ui") / "tiny")
    with serve_process(ckpt, "--ui", "--log-level", "warning") as url, sync_playwright() as pw:
        # same process, API side: a modality this model lacks is refused
        r = httpx.post(f"{url}/v1/chat/completions", json={"messages": [{"role": "user", "content": [audio()]}]}, timeout=60)
        assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_modality"
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{url}/ui/", wait_until="domcontentloaded", timeout=60_000)
            page.wait_for_selector("#prompt textarea", timeout=60_000)
            assert not page.locator("#audio-input").is_visible()  # no audio encoder, no audio upload
            page.locator("#image-input input[type=file]").set_input_files(str(media_dir / "red.png"))
            page.wait_for_selector("#image-input img", timeout=30_000)
            page.locator("#prompt textarea").fill("what colour is it?")
            page.locator("#send").click()
            bot = page.locator("#chatbot .bot-row")
            bot.first.wait_for(timeout=60_000)
            page.wait_for_function("() => [...document.querySelectorAll('#chatbot .bot-row')].some(e => e.innerText.trim())",
                                   timeout=60_000)
            page.wait_for_function("() => !document.querySelector('#chatbot .generating, #prompt .generating')",
                                   timeout=60_000)
            assert "what colour is it?" in page.locator("#chatbot .user-row").first.inner_text()
            assert bot.last.inner_text().strip()
        except Exception:
            page.screenshot(path=str(media_dir / "ui_failure.png"), full_page=True)
            print(f"screenshot: {media_dir / 'ui_failure.png'}\n{page.locator('#chatbot').inner_html()[:3000]}")
            raise
        finally:
            browser.close()


def test_polyvlm_serve_ui_without_gradio_says_how_to_install(tmp_path, monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_gradio(name, *args, **kwargs):
        if name == "gradio" or name.startswith("gradio."):
            raise ImportError("No module named 'gradio'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_gradio)
    monkeypatch.delitem(sys.modules, "gradio", raising=False)
    from polyvlm.serve.cli import main

    assert main([str(tmp_path), "--ui"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'polyvlm[ui]'" in err and "--ui" in err
