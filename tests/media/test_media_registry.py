"""The Modality registry: the built-in declarations, and a toy modality registered in ONE place (a fixture)
that records, data validation and stats, the processor, the embedding merge and the terminal chat all pick up."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch

from polyvlm import media
from polyvlm.media import MediaError, Modality


def test_builtin_modalities() -> None:
    """Names, placeholders, record keys and content parts as LLaVA records and the OpenAI / vLLM APIs spell them
    (LLaVA-NeXT llava/constants.py DEFAULT_IMAGE_TOKEN; vllm/entrypoints/chat_utils.py image_url, input_audio, video_url)."""
    assert [m.name for m in media.modalities()] == ["image", "audio", "video", "thermal", "depth", "imu"]
    assert dict(media.PLACEHOLDERS) == {"image": "<image>", "audio": "<audio>", "video": "<video>",
                                        "thermal": "<thermal>", "depth": "<depth>", "imu": "<imu>"}
    assert dict(media.PART_MODALITY) == {"image_url": "image", "input_audio": "audio", "video_url": "video",
                                         "input_thermal": "thermal", "input_depth": "depth", "input_imu": "imu"}
    assert tuple(media.RECORD_KEYS) == ("image", "audio", "video", "thermal", "depth", "imu")
    assert media.by_part("input_audio").name == "audio" and media.by_part("file") is None
    with pytest.raises(KeyError, match="unknown modality 'smell' \\(known: audio, depth, image, imu, thermal, video\\)"):
        media.get_modality("smell")
    with pytest.raises(ValueError, match="placeholder '<image>' is already used by 'image'"):
        media.register_modality(Modality("picture", "<image>", "picture", None, load=len, probe=len))


def _load_toy(raw: bytes | Path, limits: media.MediaLimits, where: str) -> list[int]:
    data = raw if isinstance(raw, bytes) else raw.read_bytes()
    if not data.startswith(b"TOY"):
        raise MediaError("not a toy file (no TOY header)", where, "invalid_toy")
    return list(data[3:])


def _probe_toy(raw: bytes | Path, limits: media.MediaLimits, where: str) -> dict:
    return {"values": len(_load_toy(raw, limits, where))}


@pytest.fixture
def toy():
    """The one place the toy modality is declared."""
    m = media.register_modality(Modality(
        name="toy", placeholder="<toy>", record_key="toy", api_part="input_toy", load=_load_toy, probe=_probe_toy,
        part_source=lambda part, where: part["input_toy"], check="load", help="a toy signal",
        to_tensor=lambda values: torch.tensor(values, dtype=torch.float32)))
    yield m
    media.unregister_modality("toy")
    assert "toy" not in media.PLACEHOLDERS


def _rec(rid: str, toy_ref: str | None, text: str = "<toy>\nwhat is it?") -> dict:
    out = {"id": rid, "language": "en", "conversations": [{"from": "human", "value": text}, {"from": "gpt", "value": "a toy"}]}
    if toy_ref is not None:
        out["toy"] = toy_ref
    return out


def test_toy_modality_reaches_records_validation_and_stats(toy, tmp_path: Path) -> None:
    from polyvlm.data.records import check_placeholders, parse_record
    from polyvlm.data.stats import compute_stats
    from polyvlm.data.validate import validate

    (tmp_path / "a.toy").write_bytes(b"TOY\x01\x02")
    (tmp_path / "bad.toy").write_bytes(b"nope")
    assert media.load("toy", tmp_path / "a.toy") == [1, 2]
    rec = parse_record(_rec("r1", "a.toy"), "d.jsonl:1")
    assert rec.media == {"toy": ["a.toy"]} and rec.placeholder_counts()["toy"] == 1
    with pytest.raises(ValueError, match="0 <toy> placeholder\\(s\\) but 1 toy file"):
        check_placeholders(parse_record(_rec("r2", "a.toy", "what is it?"), "d.jsonl:2"))
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [_rec("ok", "a.toy"), _rec("bad", "bad.toy"),
                                                       _rec("mismatch", "a.toy", "no placeholder")]) + "\n")
    rep = validate([path], progress=False, check_media=True)
    assert rep.counts == {"media_unreadable": 1, "placeholder_mismatch": 1}
    assert "not a toy file" in rep.examples["media_unreadable"][0]["message"]
    stats = compute_stats([path], progress=False)
    assert stats.to_dict()["modality"]["toy"] == 3 and "toy" in stats.table()


def test_toy_modality_reaches_the_processor_and_embedding_merge(toy) -> None:
    from polyvlm.data.records import Turn
    from polyvlm.models.encoders import embed
    from polyvlm.models.factory import builtin_tokenizer
    from polyvlm.models.processor import Processor, ProcessorConfig
    from polyvlm.models.tokenizer import add_placeholders

    tok = builtin_tokenizer("builtin:tiny")  # a model configured with a toy encoder adds its placeholder
    assert "<toy>" not in tok.get_vocab()
    add_placeholders(tok, ["toy"])
    assert len(tok.tokenize("<toy>")) == 1
    proc = Processor(tok, ProcessorConfig(max_length=64, tokens_per_media={"image": 4, "toy": 3}))
    toy_id = proc.media_token_ids["toy"]
    feats = proc.process([Turn("user", "<toy> what?"), Turn("assistant", "a toy")], {"toy": [[1, 2, 3]]}, "en")
    assert feats.input_ids.count(toy_id) == 3 and feats.media.extra["toy"][0].tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="1 <toy> placeholder\\(s\\) but 2 toy input"):
        proc.encode([Turn("user", "<toy> what?"), Turn("assistant", "x")], {"toy": 2})

    class Model:  # what embed_media reads of a model: token ids and the LM's embedding table
        media_token_ids = proc.media_token_ids
        llm = torch.nn.Module()

    Model.llm.get_input_embeddings = lambda: torch.nn.Embedding(len(tok), 4)
    ids = torch.tensor([feats.input_ids])
    with pytest.raises(ValueError, match="3 toy placeholder tokens but this model has no toy encoder"):
        embed.embed_media(Model(), ids, feats.media)
    # the toy "encoder": one row per value of the input's tensor, broadcast to the LM width
    embed.FEATURES.register("toy")(lambda model, batch, *_: [x[:, None].expand(-1, 4) for x in batch.extra["toy"]])
    try:
        out = embed.embed_media(Model(), ids, feats.media)
        assert out.shape == (1, ids.shape[1], 4) and out[0][ids[0] == toy_id][:, 0].tolist() == [1.0, 2.0, 3.0]
    finally:
        embed.FEATURES._items.pop("toy")


def test_toy_modality_reaches_the_terminal_chat(toy, tmp_path: Path) -> None:
    from polyvlm.serve.terminal import run_chat

    (tmp_path / "a.toy").write_bytes(b"TOY\x05")
    (tmp_path / "bad.toy").write_bytes(b"xx")

    class Gen:
        name, modalities, max_context = "toy-model", {"toy"}, 100

    out = io.StringIO()
    run_chat(Gen(), io.StringIO(f"/help\n/toy {tmp_path}/bad.toy\n/toy {tmp_path}/a.toy\n"), out)
    text = out.getvalue()
    assert "/toy PATH" in text and "a toy signal" in text
    assert "not a toy file" in text and "[attached toy a.toy" in text
