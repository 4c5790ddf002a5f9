"""`polyvlm synth` error paths and keys: missing optional extras (ray, vllm) and unknown backends refused at
load time with the install line, bad `--set` values, and an edited prompt template giving fresh results."""

from __future__ import annotations

import json
import sys

import yaml
from synth_helpers import conv, read_final, write_jsonl

from polyvlm.synth.cli import main as synth_main


def _pipe(tmp_path, image_dir, stages, backends=None, **top) -> str:
    seed = write_jsonl(tmp_path / "seed.jsonl", [conv(f"s{i}", f"Is the cat in picture {i} happy?",
                                                      f"Yes, the cat in picture {i} looks happy and relaxed on the sofa.")
                                                 for i in range(6)])
    p = tmp_path / "pipe.yaml"
    p.write_text(yaml.safe_dump({"input": str(seed), "output": str(tmp_path / "out"), "image_root": str(image_dir),
                                 "progress": False, "backends": backends or {}, "stages": stages, **top}))
    return str(p)


def test_missing_ray_is_a_clear_error_before_any_output(tmp_path, image_dir, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the `polyvlm[ray]` extra were not installed
    p = _pipe(tmp_path, image_dir, [{"stage": "categorize"}], runner="ray")
    assert synth_main([p]) == 2
    err = capsys.readouterr().err
    assert "pipe.yaml: runner 'ray' needs Ray Data" in err and "pip install 'polyvlm[ray]'" in err
    assert not (tmp_path / "out").exists()


def test_missing_vllm_and_unknown_backend_are_clear_errors(tmp_path, image_dir, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "vllm", None)
    p = _pipe(tmp_path, image_dir, [{"stage": "judge", "backend": "m"}], {"m": {"type": "vllm", "model": "/models/x"}})
    assert synth_main([p]) == 2
    err = capsys.readouterr().err
    assert "backends.m: backend 'vllm' needs vLLM" in err and "pip install 'polyvlm[vllm]'" in err
    p = _pipe(tmp_path, image_dir, [{"stage": "judge", "backend": "m"}], {"m": {"type": "openia", "model": "x"}})
    assert synth_main([p]) == 2
    assert "backends.m: unknown backend type 'openia' (did you mean 'openai'?) (known: openai, transformers, vllm)" in \
        capsys.readouterr().err
    p = _pipe(tmp_path, image_dir, [{"stage": "judge", "backend": "m"}], {"m": {"type": "openai"}})
    assert synth_main([p]) == 2 and "backends.m: backend 'openai': `model` is required" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_bad_set_values(tmp_path, image_dir, capsys):
    """`--set KEY=VALUE` and a positional KEY=VALUE share `polyvlm.config.apply_overrides`: same errors as train."""
    p = _pipe(tmp_path, image_dir, [{"stage": "categorize"}])
    assert synth_main([p, "--set", "concurrency"]) == 2
    assert "override 'concurrency' is not of the form key=value" in capsys.readouterr().err
    assert synth_main([p, "--set", "backends={m: ["]) == 2 and "override 'backends': value is not valid YAML" in \
        capsys.readouterr().err
    for args in (["--set", "concurency=4"], ["concurency=4"]):
        assert synth_main([p, *args]) == 2
        assert "unknown config key 'concurency' (did you mean 'concurrency'?)" in capsys.readouterr().err
    assert synth_main([p, "ray.num_actor=4"]) == 2
    assert "unknown config key 'ray.num_actor' (did you mean 'ray.num_actors'?)" in capsys.readouterr().err
    assert synth_main([p, "concurrency=many"]) == 2
    assert "config key 'concurrency': expected int, got str 'many'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_edited_prompt_gets_fresh_results_on_resume(tmp_path, image_dir, fake_server, capsys):
    """The prompt's wording is part of the result key, so editing a template without bumping its version still
    recomputes instead of reusing answers to the old wording."""
    server = fake_server()
    prompt = tmp_path / "judge.yaml"
    prompt.write_text("name: myjudge\nversion: '1'\nuser: 'Rate this: $conversation'\n")
    p = _pipe(tmp_path, image_dir, [{"stage": "judge", "backend": "m", "threshold": 1, "prompt": str(prompt)}],
              {"m": {"type": "openai", "base_url": server.url, "model": "fake"}})
    assert synth_main([p]) == 0
    assert server.by_stage["judge"] == 6
    assert "nothing left to do" not in capsys.readouterr().out
    assert synth_main([p, "--resume"]) == 0 and server.by_stage["judge"] == 6  # nothing asked again
    assert "nothing left to do: every stage of" in capsys.readouterr().out  # and it says so
    prompt.write_text("name: myjudge\nversion: '1'\nuser: 'Rate this pair strictly: $conversation'\n")
    assert synth_main([p, "--resume"]) == 0 and server.by_stage["judge"] == 12
    assert "nothing left to do" not in capsys.readouterr().out
    stage_dirs = sorted(d.name for d in (tmp_path / "out" / "stages").iterdir())
    assert len(stage_dirs) == 2 and all(d.startswith("00-judge-") for d in stage_dirs)
    final = read_final(tmp_path / "out")
    assert len(final) == 6 and all(isinstance(r["judge_score"], float) for r in final)
    assert json.loads((tmp_path / "out" / "final" / "manifest.json").read_text())["records"] == 6


def test_final_shards_as_parquet_read_back_by_polyvlm_data(tmp_path, image_dir, fake_server, capsys):
    from polyvlm.data.readers import expand_paths, iter_raw

    server = fake_server()
    p = _pipe(tmp_path, image_dir, [{"stage": "categorize"}, {"stage": "judge", "backend": "m", "threshold": 1}],
              {"m": {"type": "openai", "base_url": server.url, "model": "fake"}}, shard_size=4)
    assert synth_main([p]) == 0
    jsonl = read_final(tmp_path / "out")
    n = server.requests
    assert synth_main([p, "--resume", "--set", "final_format=parquet"]) == 0 and server.requests == n
    shards = sorted((tmp_path / "out" / "final").glob("part-*.parquet"))
    assert len(shards) == 2 and not list((tmp_path / "out" / "final").glob("*.jsonl"))
    back = [obj for path in expand_paths([tmp_path / "out" / "final"]) for _, _, obj in iter_raw(path)]
    key = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731
    assert sorted(map(key, back)) == sorted(map(key, jsonl)) and len(back) == 6
    assert synth_main([p, "--resume", "--set", "final_format=csv"]) == 2
    assert "final_format must be jsonl or parquet" in capsys.readouterr().err
    alt = write_jsonl(tmp_path / "alt.jsonl", [{"id": "a1", "image": "red.png", "alt_text": "A red card on a table"}])
    p = tmp_path / "alt.yaml"
    p.write_text(yaml.safe_dump({"input": str(alt), "output": str(tmp_path / "alt_out"), "image_root": str(image_dir),
                                 "final_format": "parquet", "stages": [{"stage": "media_filter"}]}))
    assert synth_main([str(p), "--no-progress"]) == 2
    assert "id=a1: final_format parquet holds conversation records" in capsys.readouterr().err


def test_upstream_change_reuses_downstream_results_by_key(tmp_path, image_dir, fake_server, capsys):
    """Raising the judge threshold gives translate a new stage directory, but every record that reaches it
    was translated before under the same key: nothing is translated again, and the outputs equal a fresh run's."""
    server = fake_server()
    backends = {"m": {"type": "openai", "base_url": server.url, "model": "fake"}}

    def stages(threshold: float) -> list[dict]:
        return [{"stage": "judge", "backend": "m", "threshold": threshold},
                {"stage": "translate", "backend": "m", "languages": ["de"]}]

    p = _pipe(tmp_path, image_dir, stages(1), backends)
    assert synth_main([p]) == 0
    translated = server.by_stage["translate"]
    assert translated > 0 and len(read_final(tmp_path / "out")) == 12
    cfg = yaml.safe_load(open(p))
    cfg["stages"] = stages(3)
    with open(p, "w") as f:
        yaml.safe_dump(cfg, f)
    assert synth_main([p, "--resume"]) == 0
    assert server.by_stage["translate"] == translated  # reused, not asked again
    detail = json.loads((tmp_path / "out" / "report.json").read_text())["detail"]
    kept = detail[0]["out"]["records"]
    assert 0 < kept < 6 and detail[1]["reused"] == kept and detail[1]["processed"] == 0
    cfg["output"] = str(tmp_path / "fresh")
    with open(p, "w") as f:
        yaml.safe_dump(cfg, f)
    assert synth_main([p]) == 0
    capsys.readouterr()
    key = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731
    assert sorted(map(key, read_final(tmp_path / "out"))) == sorted(map(key, read_final(tmp_path / "fresh")))
    assert len(read_final(tmp_path / "fresh")) == 2 * kept


def test_dotted_overrides_reach_sections_backends_and_stage_params(tmp_path, image_dir):
    from polyvlm.synth.config import load_pipeline

    p = _pipe(tmp_path, image_dir, [{"stage": "categorize"}, {"stage": "judge", "backend": "m", "threshold": 3.0}],
              {"m": {"type": "openai", "model": "x"}})
    cfg = load_pipeline(p, ["ray.num_actors=3", "backends.m.concurrency=5", "stages.1.threshold=4",
                            "input=" + str(tmp_path / "seed.jsonl"), "concurrency=8"])
    assert cfg.ray.num_actors == 3 and cfg.backends["m"].concurrency == 5 and cfg.concurrency == 8
    assert cfg.stages[1].params == {"threshold": 4} and cfg.input == [str(tmp_path / "seed.jsonl")]
    assert cfg.backends["m"].model == "x"  # the other keys of the section stay
