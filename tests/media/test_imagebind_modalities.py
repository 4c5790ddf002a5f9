"""ImageBind's extra modalities in the Modality registry: thermal (grey image; PandaGPT's
load_and_transform_thermal_data reads "L"), depth (one-channel map keeping its bit depth) and IMU (6 x T,
ImageBind's IMUPreprocessor img_size [6, 2000]): records, validation, content parts, clear refusals."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from polyvlm import media
from polyvlm.media import MediaError


def _png(arr: np.ndarray) -> bytes:
    b = io.BytesIO()
    Image.fromarray(arr).save(b, "PNG")
    return b.getvalue()


def test_declarations():
    for name, part in (("thermal", "input_thermal"), ("depth", "input_depth"), ("imu", "input_imu")):
        m = media.get_modality(name)
        assert (m.placeholder, m.record_key, m.api_part) == (f"<{name}>", name, part)
        assert media.by_part(part) is m and media.by_record_key(name) is m


def test_thermal_is_grey_and_depth_keeps_16_bits():
    th = media.load("thermal", _png(np.full((20, 30, 3), 90, np.uint8)))
    assert th.mode == "L" and th.size == (30, 20)
    d = media.load("depth", _png(np.full((12, 16), 40000, np.uint16)))
    assert d.shape == (12, 16) and int(d.max()) == 40000
    with pytest.raises(MediaError, match="x.png: .*not a readable"):
        media.load("depth", b"not a png", where="x.png")
    with pytest.raises(MediaError, match="thermal image"):
        media.load("thermal", b"garbage", where="t.png")


def test_imu_npy_csv_and_wrong_shapes(tmp_path: Path):
    b = io.BytesIO()
    np.save(b, np.ones((2000, 6), np.float64))
    a = media.load("imu", b.getvalue())
    assert a.shape == (6, 2000) and a.dtype == np.float32
    (tmp_path / "walk.csv").write_text("\n".join(",".join(["0.5"] * 6) for _ in range(10)))
    assert media.load("imu", tmp_path / "walk.csv").shape == (6, 10)
    np.save(tmp_path / "bad.npy", np.zeros((5, 100)))
    with pytest.raises(MediaError, match=r"bad.npy: IMU array has shape \(5, 100\)") as e:
        media.load("imu", tmp_path / "bad.npy")
    assert e.value.code == "invalid_imu"
    with pytest.raises(MediaError, match="not an IMU array"):
        media.load("imu", b"\x00\x01binary", where="x.npy")


def test_content_parts_carry_data_uris():
    uri = "data:image/png;base64," + base64.b64encode(_png(np.zeros((4, 4), np.uint8))).decode()
    m = media.by_part("input_thermal")
    src = m.part_source({"type": "input_thermal", "input_thermal": {"url": uri}}, "messages[0].content[1]")
    assert media.load("thermal", src).size == (4, 4)
    with pytest.raises(MediaError, match=r"messages\[0\].content\[1\].input_depth: input_depth.url is missing"):
        media.by_part("input_depth").part_source({"type": "input_depth"}, "messages[0].content[1]")


def test_records_with_thermal_validate(tmp_path: Path):
    from polyvlm.data.validate import validate

    (tmp_path / "x.png").write_bytes(_png(np.zeros((8, 8), np.uint8)))
    (tmp_path / "bad.png").write_bytes(b"nope")
    rec = lambda rid, f: {"id": rid, "language": "en", "thermal": f, "conversations": [  # noqa: E731
        {"from": "human", "value": "<thermal>\nIs someone there?"}, {"from": "gpt", "value": "yes"}]}
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [rec("ok", "x.png"), rec("bad", "bad.png")]) + "\n")
    rep = validate([path], progress=False, check_media=True)
    assert rep.counts == {"media_unreadable": 1}
    assert "bad.png" in rep.examples["media_unreadable"][0]["message"]


def test_api_refuses_a_part_the_model_lacks_with_400_naming_it():
    """An input_thermal part sent to a model without thermal is a 400 naming the part."""
    from polyvlm.serve.config import ServeConfig
    from polyvlm.serve.protocol import APIError, parse_chat

    uri = "data:image/png;base64," + base64.b64encode(_png(np.zeros((4, 4), np.uint8))).decode()
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "Warm?"},
                                                      {"type": "input_thermal", "input_thermal": {"url": uri}}]}]}
    with pytest.raises(APIError, match=r"messages\[0\].content\[1\].*input_thermal") as e:
        parse_chat(body, ServeConfig(), {"image"}, "m")
    assert e.value.status == 400 and e.value.param == "messages[0].content[1].type"


def test_a_record_with_a_modality_the_model_lacks_is_refused():
    from polyvlm.data.records import RecordError, Turn
    from polyvlm.models.factory import builtin_tokenizer
    from polyvlm.models.processor import Processor, ProcessorConfig

    proc = Processor(builtin_tokenizer("builtin:tiny"), ProcessorConfig(max_length=64, tokens_per_media={"image": 4}))
    with pytest.raises(RecordError, match="d.jsonl:3 id=r3: this model has no depth encoder"):
        proc.encode([Turn("user", "<depth>\nHow far?"), Turn("assistant", "near")], {"depth": 1}, source="d.jsonl:3",
                    record_id="r3")
