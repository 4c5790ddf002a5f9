"""The web demo with a PandaGPT model, in headless Chromium: an upload box per ImageBind modality (thermal, depth,
IMU next to image, audio and video), each file routed to its modality and answered as `pandagpt.answer` answers the
same files; a bad file (an IMU trace of the wrong shape) is a warning naming it; an image model shows no thermal box.

Reference: yxuansu/PandaGPT code/web_demo.py (image, audio, video and thermal upload boxes; every input of the
conversation in one modality cache)."""

from __future__ import annotations

import numpy as np
import pytest
from serve_helpers import live_server
from test_webui import _set_slider, _wait_idle, _wait_text, missing, ui_page

import polyvlm
from polyvlm import testing
from polyvlm.models import pandagpt
from polyvlm.serve.app import create_app
from polyvlm.serve.config import ServeConfig

pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(missing), reason=f"web demo test needs: {', '.join(missing)}")]


class Recording:
    """The generator, recording each request and completion the demo sends it."""

    def __init__(self, gen):
        self.gen, self.calls = gen, []

    def __getattr__(self, name):
        return getattr(self.gen, name)

    def generate(self, requests, on_token=None):
        out = self.gen.generate(requests, on_token)
        self.calls += list(zip(requests, out))
        return out


def _wait_file(page, modality: str, name: str) -> None:
    """A file box shows its file's name (stem and suffix in separate elements)."""
    page.wait_for_function("([id, n]) => document.querySelector(id).textContent.replace(/\\s/g, '').includes(n)",
                           arg=[f"#{modality}-input", name], timeout=30_000)


def test_ui_uploads_every_imagebind_modality(tmp_path):
    from playwright.sync_api import sync_playwright

    files = testing.write_pandagpt_media(tmp_path / "media")
    np.save(tmp_path / "short.npy", np.zeros((3, 50), np.float32))
    gen = Recording(polyvlm.load_generator(testing.make_tiny_pandagpt(tmp_path / "pandagpt")))
    app = create_app(gen, ServeConfig(ui=True))
    with live_server(app) as url, sync_playwright() as pw:
        with ui_page(pw, url, tmp_path) as page:
            for m in ("image", "audio", "video", "thermal", "depth", "imu"):
                assert page.locator(f"#{m}-input").is_visible(), m
            _set_slider(page, "temperature", 0)
            _set_slider(page, "max-tokens", 6)
            page.locator("#thermal-input input[type=file]").set_input_files(str(files["thermal"]))
            page.locator("#depth-input input[type=file]").set_input_files(str(files["depth"]))
            page.locator("#imu-input input[type=file]").set_input_files(str(files["imu"]))
            page.locator("#audio-input input[type=file]").set_input_files(str(files["audio"]))
            page.wait_for_selector("#thermal-input img", timeout=30_000)
            page.wait_for_selector("#audio-input [data-testid=waveform-Audio]", timeout=30_000)
            _wait_file(page, "imu", "walk.npy")
            _wait_file(page, "depth", "depth.png")
            page.locator("#prompt textarea").fill("What is it?")
            page.locator("#send").click()
            _wait_text(page, "[imu: walk.npy]")
            _wait_idle(page)
            req, done = gen.calls[-1]
            assert req.messages[0]["content"] == "<audio>\n<thermal>\n<depth>\n<imu>\nWhat is it?"
            assert len(req.audios) == 1 and {m: len(v) for m, v in req.extra.items()} == {"thermal": 1, "depth": 1, "imu": 1}
            want = pandagpt.answer(gen.model, gen.processor, "What is it?",
                                   {m: [files[m]] for m in ("audio", "thermal", "depth", "imu")}, max_new_tokens=6)
            assert done.text.strip() == want

            page.locator("#clear").click()
            page.wait_for_function("() => !document.querySelector('#chatbot').innerText.includes('walk.npy')",
                                   timeout=30_000)
            _wait_idle(page)
            page.locator("#imu-input input[type=file]").set_input_files(str(tmp_path / "short.npy"))
            page.wait_for_function("() => document.querySelector('#imu-input').textContent.includes('short.npy')",
                                   timeout=30_000)
            page.locator("#prompt textarea").fill("And this?")
            page.locator("#send").click()
            page.wait_for_function("() => document.body.innerText.includes('short.npy: IMU array has shape (3, 50)')",
                                   timeout=30_000)
    app.state.batcher.close()


def test_ui_of_an_image_model_has_no_imagebind_boxes(tmp_path):
    from playwright.sync_api import sync_playwright

    gen = polyvlm.load_generator(testing.make_tiny_checkpoint(tmp_path / "tiny"))
    app = create_app(gen, ServeConfig(ui=True))
    with live_server(app) as url, sync_playwright() as pw:
        with ui_page(pw, url, tmp_path) as page:
            assert page.locator("#image-input").is_visible()
            for m in ("thermal", "depth", "imu"):
                assert page.locator(f"#{m}-input").count() == 0 or not page.locator(f"#{m}-input").is_visible(), m
    app.state.batcher.close()
