"""`polyvlm eval --model` with a PandaGPT model on a task whose records carry audio, thermal, depth, IMU and video
files (`"thermal": "x.png"`, as data records name them): each prediction is `pandagpt.answer` on the same files;
a file that does not decode, an IMU trace of the wrong shape and a modality the model lacks stop the run before
any question is asked, naming the record and the file. Through `polyvlm serve` (`eval --endpoint`), the same
records travel as `input_audio` / `input_thermal` / `input_depth` / `input_imu` / `video_url` parts and get the same
predictions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from polyvlm import testing
from polyvlm.eval.cli import main as eval_main

pytestmark = pytest.mark.slow
KINDS = ("audio", "thermal", "depth", "imu", "video")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return testing.make_tiny_pandagpt(tmp_path_factory.mktemp("pandagpt"))


def _task(d: Path, records: list[dict]) -> Path:
    (d / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (d / "task.yaml").write_text("name: sensed\ntype: vqa\ndata: data.jsonl\nmax_new_tokens: 5\nprompt: \"{question}\"\n")
    return d / "task.yaml"


def test_eval_answers_with_every_imagebind_modality(ckpt, tmp_path):
    import polyvlm
    from polyvlm.models import pandagpt

    files = testing.write_pandagpt_media(tmp_path / "media")
    recs = [{"id": m, "language": "en", m: f"media/{files[m].name}", "question": "What is it?", "answer": "x"}
            for m in KINDS]
    recs.append({"id": "all", "language": "en", "question": "<thermal>\nAnd this?", "answer": "x",
                 **{m: [f"media/{files[m].name}"] for m in ("thermal", "audio", "imu")}})
    out = tmp_path / "out"
    assert eval_main(["--model", str(ckpt), "--tasks", str(_task(tmp_path, recs)), "--out", str(out)]) == 0
    rows = {r["id"]: r for r in map(json.loads, (out / "samples_sensed.jsonl").read_text().splitlines())}
    model, processor = polyvlm.load(ckpt)
    for m in KINDS:
        assert rows[m][m] == [str(files[m])]
        want = pandagpt.answer(model, processor, "What is it?", {m: [files[m]]}, max_new_tokens=5)
        assert rows[m]["prediction"].strip() == want, m
    want = pandagpt.answer(model, processor, "And this?", {m: [files[m]] for m in ("thermal", "audio", "imu")},
                           max_new_tokens=5)
    assert rows["all"]["prediction"].strip() == want
    assert len({rows[m]["prediction"] for m in KINDS}) >= 3  # the answers follow the inputs


def test_eval_through_the_api_matches_in_process(ckpt, tmp_path):
    import sys

    import polyvlm
    from polyvlm.serve.app import create_app
    from polyvlm.serve.config import ServeConfig

    sys.path.insert(0, str(Path(__file__).parents[1] / "serve"))
    from serve_helpers import live_server

    files = testing.write_pandagpt_media(tmp_path / "media")
    recs = [{"id": m, "language": "en", m: f"media/{files[m].name}", "question": "What is it?", "answer": "x"}
            for m in KINDS]
    recs.append({"id": "mix", "language": "en", "question": "And this?", "answer": "x",
                 **{m: f"media/{files[m].name}" for m in ("depth", "imu", "audio")}})
    task = str(_task(tmp_path, recs))
    assert eval_main(["--model", str(ckpt), "--tasks", task, "--out", str(tmp_path / "local")]) == 0
    app = create_app(polyvlm.load_generator(ckpt), ServeConfig(max_batch_size=4))
    with live_server(app) as url:
        assert eval_main(["--endpoint", f"{url}/v1", "--tasks", task, "--out", str(tmp_path / "api")]) == 0
    app.state.batcher.close()
    preds = {k: [json.loads(x)["prediction"] for x in (tmp_path / k / "samples_sensed.jsonl").read_text().splitlines()]
             for k in ("local", "api")}
    assert preds["api"] == preds["local"] and len(preds["api"]) == 6


def test_bad_media_and_a_modality_the_model_lacks_stop_the_run(ckpt, tmp_path, capsys):
    (tmp_path / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
    np.save(tmp_path / "short.npy", np.zeros((3, 50), np.float32))
    q = {"language": "en", "question": "?", "answer": "x"}
    for rec, needle in [({"id": "w", "audio": "broken.wav", **q}, "data.jsonl:1 id=w: audio "),
                        ({"id": "i", "imu": "short.npy", **q}, "IMU array has shape (3, 50)")]:
        task = _task(tmp_path, [rec])
        assert eval_main(["--model", str(ckpt), "--tasks", str(task), "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert needle in err and Path(rec.get("audio", rec.get("imu"))).name in err
    testing.write_pandagpt_media(tmp_path / "m")
    shutil.copy(tmp_path / "m" / "heat.png", tmp_path / "heat.png")
    tiny = testing.make_tiny_checkpoint(tmp_path / "tiny")  # an image model
    task = _task(tmp_path, [{"id": "t", "thermal": "heat.png", **q}])
    assert eval_main(["--model", str(tiny), "--tasks", str(task), "--out", str(tmp_path / "o2")]) == 2
    assert "id=t has thermal input, which this model does not take" in capsys.readouterr().err
