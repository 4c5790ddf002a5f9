"""The Ray Data runner (local CPU Ray instance) gives the same output set as the local runner."""

from __future__ import annotations

import json

import pytest
import yaml
from synth_helpers import conv, read_final, write_jsonl

from polyvlm.synth.cli import main as synth_main
from polyvlm.synth.config import pipeline_from_dict
from polyvlm.synth.pipeline import Pipeline

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
ray = pytest.importorskip("ray", reason="runner: ray needs the optional extra polyvlm[ray]")
pytest.importorskip("ray.data")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


@pytest.mark.slow
def test_ray_runner_matches_local_runner(tmp_path, image_dir, fake_server, local_ray, capsys):
    server = fake_server()
    recs = [conv(f"s{i}", f"What is shown in picture {i}?", f"Object {i}.", image="red.png") for i in range(30)]
    recs.append({"id": "broken", "conversations": []})  # rejected with a reason by every runner
    seed = write_jsonl(tmp_path / "seed.jsonl", recs)

    def cfg(out: str, runner: str) -> dict:
        return {"input": str(seed), "output": str(tmp_path / out), "image_root": str(image_dir), "runner": runner,
                "concurrency": 4, "progress": False, "ray": {"num_actors": 2, "batch_size": 8, "chunk_size": 20},
                "backends": {"m": {"type": "openai", "base_url": server.url, "model": "fake"}},
                "stages": [{"stage": "categorize"}, {"stage": "judge", "backend": "m", "threshold": 2},
                           {"stage": "dedup"}]}

    local = Pipeline(pipeline_from_dict(cfg("local", "local"))).run()
    p = tmp_path / "ray.yaml"
    p.write_text(yaml.safe_dump(cfg("ray", "ray")))
    assert synth_main([str(p)]) == 0, capsys.readouterr().err  # `polyvlm synth ray.yaml`
    remote = json.loads((tmp_path / "ray" / "report.json").read_text())
    key = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731
    got, want = read_final(tmp_path / "ray"), read_final(tmp_path / "local")
    assert len(want) > 0 and sorted(map(key, got)) == sorted(map(key, want))
    assert [r["out"] for r in remote["stages"]] == [r["out"] for r in local["stages"]]
    assert remote["stages"][0]["rejected"] == 1
