"""The Gradio demo at /ui in headless Chromium (Playwright): uploads (image, audio, video), streaming, sliders,
regenerate, clear; the API-key login; and the message when Gradio is missing."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
from collections.abc import Iterator

import pytest
from serve_fakes import FakeGenerator
from serve_helpers import live_server, png_bytes, wav_bytes, write_webm

from polyvlm.serve.app import create_app
from polyvlm.serve.config import ServeConfig

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
missing = [n for n in ("gradio", "playwright") if importlib.util.find_spec(n) is None]
if not shutil.which("chromium"):
    missing.append("chromium (apt-get install -y chromium)")
if missing and os.environ.get("POLYVLM_REQUIRE_BROWSER"):  # CI (.ci/run): `make test` must have installed them
    raise RuntimeError(f"POLYVLM_REQUIRE_BROWSER is set and the web demo tests miss: {', '.join(missing)}")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(missing), reason=f"web demo test needs: {', '.join(missing)}")]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# records every distinct text the chatbot shows, to prove the answer streams in
OBSERVE = """() => { window.__seen = []; const c = document.querySelector('#chatbot');
  new MutationObserver(() => { const t = c.innerText; if (window.__seen.at(-1) !== t) window.__seen.push(t); })
    .observe(c, {childList: true, subtree: true, characterData: true}); }"""


def _wait_text(page, needle: str, timeout: float = 30_000) -> None:
    """Wait for `needle` in the chat, then for the event to finish (Gradio ignores clicks while one runs)."""
    page.wait_for_function("(s) => document.querySelector('#chatbot').innerText.includes(s)", arg=needle, timeout=timeout)
    _wait_idle(page, timeout)


def _wait_idle(page, timeout: float = 30_000) -> None:
    page.wait_for_function("() => !document.querySelector('#chatbot .progress-text, #chatbot.generating, #chatbot .generating, "
                           "#prompt .generating')",
                           timeout=timeout)


@contextlib.contextmanager
def ui_page(pw, url: str, tmp_path) -> Iterator:
    """The demo page loaded in headless Chromium (a Gradio page never reaches network idle: wait for the
    prompt box); on failure a screenshot is saved in `tmp_path`."""
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    try:
        page = browser.new_page()
        page.goto(f"{url}/ui/", wait_until="domcontentloaded", timeout=60_000)
        page.wait_for_selector("#prompt textarea", timeout=60_000)
        try:
            yield page
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            print(f"screenshot: {tmp_path / 'failure.png'}")
            raise
    finally:
        browser.close()


def test_ui_upload_ask_stream_regenerate_clear(tmp_path):
    from playwright.sync_api import sync_playwright

    (tmp_path / "red.png").write_bytes(png_bytes((230, 10, 10), (32, 24)))
    gen = FakeGenerator(batch_sleep=0.0, token_sleep=0.05)
    app = create_app(gen, ServeConfig(ui=True))
    with live_server(app) as url, sync_playwright() as pw:
        with ui_page(pw, url, tmp_path) as page:
            page.locator("#image-input input[type=file]").set_input_files(str(tmp_path / "red.png"))
            page.wait_for_selector("#image-input img", timeout=30_000)
            page.evaluate(OBSERVE)
            page.locator("#prompt textarea").fill("what colour is it?")
            page.locator("#send").click()
            _wait_text(page, "red-32x24")
            seen = page.evaluate("window.__seen")
            partial = [t for t in seen if "echo: what colour" in t and "red-32x24" not in t]
            assert len(partial) >= 3, seen  # tokens arrived one after another
            assert gen.requests[-1].messages == [{"role": "user", "content": "<image>\nwhat colour is it?"}]
            assert len(gen.requests[-1].images) == 1

            page.locator("#prompt textarea").fill("and now?")  # second turn: the image is not sent twice
            page.locator("#send").click()
            _wait_text(page, "echo: and now? | images=1 audios=0 turns=3")
            assert [m["role"] for m in gen.requests[-1].messages] == ["user", "assistant", "user"]

            n = len(gen.requests)
            before = page.locator("#chatbot").inner_text()
            old = next(line for line in before.splitlines() if "echo: and now?" in line)  # ends in 3 random words
            page.locator("#regenerate").click()
            page.wait_for_function("([a, b]) => { const t = document.querySelector('#chatbot').innerText; "
                                   "return t.includes(a) && !t.includes(b); }",
                                   arg=["echo: and now? | images=1 audios=0 turns=3 | red-32x24 w", old], timeout=30_000)
            _wait_idle(page)
            text = page.locator("#chatbot").inner_text()
            assert text.count("echo: and now?") == 1, text  # the answer was replaced, not appended
            assert len(gen.requests) == n + 1 and len(gen.requests[-1].messages) == 3

            # Gradio re-sends a streamed event's last output when it completes; a Clear landing just before
            # that is undone by it (a real user would click again), so let the event settle, and retry once
            page.wait_for_timeout(1000)
            for attempt in range(2):
                page.locator("#clear").click()
                try:
                    page.wait_for_function("() => !document.querySelector('#chatbot').innerText.includes('echo:')",
                                           timeout=15_000)
                    break
                except Exception:
                    if attempt:
                        raise
            page.wait_for_selector("#image-input img", state="detached", timeout=30_000)
            _wait_idle(page)
            page.wait_for_function("() => document.querySelector('#prompt textarea').value === ''", timeout=30_000)
            page.locator("#prompt textarea").fill("fresh start")
            page.locator("#send").click()
            _wait_text(page, "echo: fresh start | images=0 audios=0 turns=1")
    app.state.batcher.close()


def _set_slider(page, elem_id: str, value: float) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")
    page.wait_for_function("([id, v]) => document.querySelector(`#${id} input[type=range]`).value == v",
                           arg=[elem_id, str(value)], timeout=10_000)


def test_ui_audio_and_video_uploads_and_sliders(tmp_path):
    from playwright.sync_api import sync_playwright

    (tmp_path / "tone.wav").write_bytes(wav_bytes(0.5, 8000))
    write_webm(tmp_path / "clip.webm", n_frames=10, color=(10, 10, 230))
    gen = FakeGenerator(batch_sleep=0.0, token_sleep=0.01)
    app = create_app(gen, ServeConfig(ui=True, max_video_frames=4))
    with live_server(app) as url, sync_playwright() as pw:
        with ui_page(pw, url, tmp_path) as page:
            page.locator("#audio-input input[type=file]").set_input_files(str(tmp_path / "tone.wav"))
            page.locator("#video-input input[type=file]").set_input_files(str(tmp_path / "clip.webm"))
            page.wait_for_selector("#video-input video", timeout=30_000)
            page.wait_for_selector("#audio-input [data-testid=waveform-Audio]", timeout=30_000)
            for elem_id, value in (("max-tokens", 40), ("temperature", 0), ("top-p", 0.5)):
                _set_slider(page, elem_id, value)
            page.locator("#prompt textarea").fill("hear and watch")
            page.locator("#send").click()
            full = "echo: hear and watch | images=4 audios=1 turns=1 | " + "blue-32x32 " * 4 + "audio-0.50s"
            _wait_text(page, full)
            req = gen.requests[-1]
            assert (req.max_new_tokens, req.temperature, req.top_p) == (40, 0.0, 0.5)
            assert req.messages == [{"role": "user", "content": "<image>" * 4 + "\n<audio>\nhear and watch"}]
            assert len(req.images) == 4 and len(req.audios) == 1
            assert " w" not in page.locator("#chatbot").inner_text().split("audio-0.50s")[-1]  # temperature 0: no sampling

            _set_slider(page, "max-tokens", 6)  # regenerate with the new length: the answer is cut
            page.locator("#regenerate").click()
            page.wait_for_function("(s) => !document.querySelector('#chatbot').innerText.includes(s)", arg="blue-32x32",
                                   timeout=30_000)
            _wait_text(page, "echo: hear and watch | images=4")
            _wait_idle(page)
            assert gen.requests[-1].max_new_tokens == 6 and len(gen.requests[-1].images) == 4
            assert "audios=1" not in page.locator("#chatbot").inner_text()
    app.state.batcher.close()


def test_ui_login_uses_the_api_key():
    from fastapi.testclient import TestClient

    app = create_app(FakeGenerator(batch_sleep=0.0), ServeConfig(ui=True, api_key="sk-ui"))
    with TestClient(app) as client:
        assert client.get("/ui/config").status_code == 401  # the demo is closed before logging in
        assert client.post("/ui/login", data={"username": "anyone", "password": "wrong"}).status_code == 400
        assert client.get("/ui/config").status_code == 401
        r = client.post("/ui/login", data={"username": "anyone", "password": "sk-ui"})
        assert r.status_code == 200 and r.json() == {"success": True}
        assert client.get("/ui/config").status_code == 200 and "polyvlm demo" in client.get("/ui/config").text
    app.state.batcher.close()


def test_missing_gradio_is_a_clear_message(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_gradio(name, *args, **kwargs):
        if name == "gradio":
            raise ImportError("No module named 'gradio'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_gradio)
    with pytest.raises(RuntimeError, match="pip install gradio"):
        create_app(FakeGenerator(), ServeConfig(ui=True))
