"""`polyvlm serve hf-llava:DIR` (README "Export and import": serve takes `hf-llava:DIR` wherever it takes a checkpoint):
the prefixed path starts the server, which answers as the checkpoint the directory was exported from; a
prefixed path that does not exist is refused naming it, before anything loads."""

from __future__ import annotations

import httpx
import pytest
from serve_helpers import data_uri, png_bytes, serve_process

from polyvlm import testing

pytestmark = pytest.mark.slow


def test_serve_takes_an_hf_llava_directory(tmp_path):
    import polyvlm
    from polyvlm.cli import main
    from polyvlm.serve.config import ServeConfig
    from polyvlm.serve.protocol import parse_chat

    ckpt = testing.make_tiny_checkpoint(tmp_path / "tiny")
    out = tmp_path / "exports" / "tiny-llava"
    assert main(["export", str(ckpt), "--format", "hf-llava", "--out", str(out)]) == 0
    body = {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": data_uri(png_bytes((30, 200, 30), (64, 64)))}},
        {"type": "text", "text": "What colour are the shapes?"}]}], "max_tokens": 6, "temperature": 0}
    source = polyvlm.load_generator(ckpt)  # the checkpoint the export came from, in this process
    (direct,) = source.generate([parse_chat(body, ServeConfig(), source.modalities, source.name).request])
    with serve_process(f"hf-llava:{out}", "--max-batch-size", "2") as url:
        r = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["choices"][0]["message"]["content"] == direct.text
    assert answer["usage"]["completion_tokens"] == direct.completion_tokens


def test_serve_refuses_a_missing_prefixed_directory(tmp_path, capsys):
    from polyvlm.cli import main

    assert main(["serve", f"hf-llava:{tmp_path / 'nope'}"]) == 2
    err = capsys.readouterr().err
    assert "polyvlm serve: checkpoint hf-llava:" in err and "nope" in err
