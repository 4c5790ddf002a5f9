"""Adding a modality takes its media declaration and its encoder, each registered once (here both in this test, in
place of polyvlm/media/smell.py and polyvlm/models/encoders/smell.py): data validation, the processor (placeholder
tokens from the encoder), `polyvlm train`, generation from the saved checkpoint and the OpenAI API then take it,
with no other polyvlm file edited."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from polyvlm import media
from polyvlm.cli import main
from polyvlm.media import MediaError, Modality
from polyvlm.media.image import url_part
from polyvlm.models.encoders import ENCODERS
from polyvlm.models.encoders.modality import ModalityEncoder
from polyvlm.testing import TINY_RECIPE

VALUES = 8  # numbers in one smell reading


# ---- what polyvlm/media/smell.py would hold ------------------------------------------------------------------
def _load_smell(raw: bytes | Path, limits: media.MediaLimits, where: str) -> np.ndarray:
    data = raw if isinstance(raw, bytes) else Path(raw).read_bytes()
    if not data.startswith(b"SMELL") or len(data) != 5 + 4 * VALUES:
        raise MediaError(f"not a smell reading (SMELL + {VALUES} float32)", where, "invalid_smell")
    return np.frombuffer(data[5:], dtype=np.float32).copy()


SMELL = Modality(name="smell", placeholder="<smell>", record_key="smell", api_part="input_smell", load=_load_smell,
                 probe=lambda raw, limits, where: {"values": len(_load_smell(raw, limits, where))},
                 part_source=url_part("input_smell"), check="load", help="a smell reading",
                 to_tensor=lambda values: torch.from_numpy(values))  # [VALUES]


# ---- what polyvlm/models/encoders/smell.py would hold ---------------------------------------------------------
class SmellEncoder(ModalityEncoder):
    """readings [n, VALUES] -> [n, tokens, width]: one linear map per token."""

    modality = "smell"

    def __init__(self, width: int, tokens: int):
        super().__init__()
        self.hidden_size, self.tokens_per_input = width, tokens
        self.proj = nn.Linear(VALUES, width * tokens)

    @classmethod
    def create(cls, path: str, config: dict) -> SmellEncoder:
        return cls(int(config.get("width", 16)), int(config.get("tokens", 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).view(x.shape[0], self.tokens_per_input, self.hidden_size)


@pytest.fixture
def smell():
    """The two registrations a new modality makes (its module's `register_modality`, its encoder's `ENCODERS`)."""
    media.register_modality(SMELL)
    ENCODERS.register("smell_probe")(SmellEncoder)
    yield
    media.unregister_modality("smell")
    ENCODERS._items.pop("smell_probe")


def _reading(path: Path, values: list[float]) -> Path:
    path.write_bytes(b"SMELL" + np.asarray(values, dtype=np.float32).tobytes())
    return path


def _records(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(8):
        name = f"r{i}.smell"
        _reading(tmp_path / name, list(rng.normal(size=VALUES) + (3 if i % 2 else -3)))
        answer = "roses" if i % 2 else "smoke"
        rows.append({"id": f"s{i}", "language": "en", "smell": name,
                     "conversations": [{"from": "human", "value": "<smell>\nWhat is it?"},
                                       {"from": "gpt", "value": answer}]})
    path = tmp_path / "smells.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_new_modality_needs_only_its_media_module_and_its_encoder(smell, tmp_path: Path, capsys) -> None:
    data = _records(tmp_path)
    (tmp_path / "bad.smell").write_bytes(b"SMELLxx")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "b", "smell": "bad.smell", "conversations": [
        {"from": "human", "value": "<smell>\nWhat is it?"}, {"from": "gpt", "value": "x"}]}) + "\n")
    # data: records naming the modality are checked (decoding by its loader)
    assert main(["data", "validate", str(data), "--check-media", "--quiet"]) == 0
    assert main(["data", "validate", str(bad), "--check-media", "--quiet"]) == 1
    assert "not a smell reading" in capsys.readouterr().out
    # a record in the OpenAI messages layout carries it as its declared content part
    import base64

    uri = "data:application/octet-stream;base64," + base64.b64encode((tmp_path / "r1.smell").read_bytes()).decode()
    chat = tmp_path / "chat.jsonl"
    chat.write_text(json.dumps({"id": "c", "language": "en", "messages": [
        {"role": "user", "content": [{"type": "input_smell", "input_smell": {"url": uri}}, {"type": "text", "text": "?"}]},
        {"role": "assistant", "content": "roses"}]}) + "\n")
    from polyvlm.data.readers import iter_records

    (rec,) = iter_records(chat)
    assert rec.media == {"smell": [uri]} and rec.turns[0].text == "<smell>\n?"
    assert main(["data", "validate", str(chat), "--check-media", "--quiet"]) == 0

    # train: `model.encoders` names the encoder; placeholder tokens per input come from it (tokens: 2)
    run = tmp_path / "run"
    enc = "model.encoders={smell: {model_type: smell_probe, width: 24, tokens: 2, connector: mlp2x_gelu}}"
    assert main(["train", str(TINY_RECIPE), f"data.path={data}", f"train.output_dir={run}", "train.max_steps=2",
                 "train.batch_size=4", "train.log_every=1", "--no-progress", enc]) == 0
    ckpt = max(p.parent for p in run.rglob("model.safetensors"))
    processor_json = json.loads((ckpt / "processor.json").read_text())
    assert processor_json["tokens_per_media"]["smell"] == 2
    log = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 2 and all(np.isfinite(r["loss"]) for r in log)

    # generation: the checkpoint loads with its smell encoder and answers a request carrying a reading
    import polyvlm
    from polyvlm.infer import ChatRequest

    gen = polyvlm.load_generator(ckpt)
    assert "smell" in gen.modalities
    smell_id = gen.processor.media_token_ids["smell"]
    req = ChatRequest([{"role": "user", "content": "What is it?"}], extra={"smell": [tmp_path / "r1.smell"]},
                      max_new_tokens=3)
    text_only = ChatRequest([{"role": "user", "content": "What is it?"}], max_new_tokens=3)
    assert gen.count_prompt_tokens(req) == gen.count_prompt_tokens(text_only) + 1 + 2  # "<smell>\n" -> 2 tokens
    assert gen._encode(req).count(smell_id) == 2
    out = gen.generate([req, text_only])
    assert [o.prompt_tokens for o in out] == [gen.count_prompt_tokens(req), gen.count_prompt_tokens(text_only)]
    # the reading reaches the model: a different reading changes the merged embeddings
    other = ChatRequest([{"role": "user", "content": "What is it?"}], extra={"smell": [tmp_path / "r0.smell"]})
    ids = torch.tensor([gen._encode(req)])
    a = gen.model.embed(ids, gen._media([req]))
    b = gen.model.embed(ids, gen._media([other]))
    assert not torch.equal(a[ids == smell_id], b[ids == smell_id]) and torch.equal(a[ids != smell_id], b[ids != smell_id])

    # serve: the OpenAI API takes its declared content part and answers with the checkpoint's encoder
    from fastapi.testclient import TestClient

    from polyvlm.serve.app import create_app

    body = {"messages": [{"role": "user", "content": [{"type": "input_smell", "input_smell": {"url": uri}},
                                                      {"type": "text", "text": "What is it?"}]}],
            "max_tokens": 3, "temperature": 0}
    with TestClient(create_app(gen)) as client:
        r = client.post("/v1/chat/completions", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["usage"]["prompt_tokens"] == gen.count_prompt_tokens(req)
        bad = {**body, "messages": [{"role": "user", "content": [
            {"type": "input_smell", "input_smell": {"url": "data:application/octet-stream;base64,eHg="}}]}]}
        r = client.post("/v1/chat/completions", json=bad)
        assert r.status_code == 400 and "not a smell reading" in r.json()["error"]["message"]


def test_only_configured_modalities_add_their_placeholder(smell) -> None:
    """A model without a smell encoder keeps its vocabulary; one with it gets `<smell>` as one token."""
    from polyvlm.config import load_config
    from polyvlm.models import factory

    plain = load_config(TINY_RECIPE)
    _, proc = factory.build(plain.model)
    assert "smell" not in proc.media_token_ids and "<smell>" not in proc.tokenizer.get_vocab()
    assert len(proc.tokenizer) == len(factory.builtin_tokenizer("builtin:tiny"))
    cfg = load_config(TINY_RECIPE, ["model.encoders={smell: {model_type: smell_probe, tokens: 5}}"])
    model, proc = factory.build(cfg.model)
    assert len(proc.tokenizer) == len(factory.builtin_tokenizer("builtin:tiny")) + 1
    assert proc.config.tokens_per_media["smell"] == 5 and model.media_token_ids["smell"] == proc.media_token_ids["smell"]
    with pytest.raises(ValueError, match="model.encoders.smel: unknown modality 'smel'"):
        factory.build(load_config(TINY_RECIPE, ["model.encoders={smel: {model_type: smell_probe}}"]).model)


def test_a_new_modality_gets_a_web_demo_upload_box(smell, tmp_path: Path) -> None:
    """The web demo's upload boxes follow the registry: a later modality gets a file box (labelled with its help)
    shown for a model that takes it, and its uploads reach the request decoded by its loader."""
    gr = pytest.importorskip("gradio")
    from polyvlm.serve.config import ServeConfig
    from polyvlm.serve.webui import build_request, upload_components, upload_names

    assert upload_names()[-1] == "smell"
    with gr.Blocks():
        shown = upload_components(gr, {"image", "smell"})
        hidden = upload_components(gr, {"image"})
    assert [c.elem_id for c in shown][-1] == "smell-input" and shown[-1].visible and shown[-1].label == "a smell reading"
    assert not hidden[-1].visible
    path = _reading(tmp_path / "x.smell", [1.0] * VALUES)
    state = {"turns": [{"role": "user", "text": "What is it?", "smells": [str(path)]}], "attached": []}
    req = build_request(state, ServeConfig(), 8, 0.0, 1.0, {"image", "smell"})
    assert req.messages[0]["content"] == "<smell>\nWhat is it?" and req.extra["smell"][0].tolist() == [1.0] * VALUES
