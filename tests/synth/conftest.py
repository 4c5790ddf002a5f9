"""Fixtures for synth tests: a loopback fake OpenAI server and small images."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from polyvlm.synth.fake_server import FakeOpenAIServer, scripted_reply


@pytest.fixture()
def fake_server():
    servers = []

    def start(responder=scripted_reply, delay: float = 0.0) -> FakeOpenAIServer:
        s = FakeOpenAIServer(responder, delay=delay).start()
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


@pytest.fixture()
def image_dir(tmp_path: Path) -> Path:
    d = tmp_path / "images"
    d.mkdir()
    Image.new("RGB", (320, 240), (200, 30, 30)).save(d / "red.png")
    Image.new("RGB", (320, 240), (30, 30, 200)).save(d / "blue.png")
    return d


