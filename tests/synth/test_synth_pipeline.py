"""Whole pipelines through the local runner against the loopback fake server: flaky backends, failure
handling (stop + resume, skip), the report, config errors and the CLI."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import yaml
from synth_helpers import conv, read_final, write_jsonl

from polyvlm.synth.cli import main as synth_main
from polyvlm.synth.config import PipelineError, load_pipeline, pipeline_from_dict
from polyvlm.synth.fake_server import Reply, scripted_reply
from polyvlm.synth.pipeline import Pipeline, PipelineIncomplete
from polyvlm.synth.store import iter_results


def seed(tmp_path: Path, n: int = 40) -> Path:
    recs = [conv(f"s{i}", f"What is shown in picture {i}?", f"Object {i}.", image="red.png" if i % 2 else "blue.png")
            for i in range(n)]
    recs.append(conv("c1", "What does the bar chart show?", "Sales."))
    return write_jsonl(tmp_path / "seed.jsonl", recs)


def pipeline(tmp_path, image_dir, url, out="out", **top):
    return {"input": str(seed(tmp_path)), "output": str(tmp_path / out), "image_root": str(image_dir),
            "concurrency": 8, "progress": False,
            "backends": {"m": {"type": "openai", "base_url": url, "model": "fake", "backoff": 0.01,
                               "max_backoff": 0.05, "timeout": 0.5, "max_retries": 3}},
            "stages": [{"stage": "categorize"}, {"stage": "rewrite", "backend": "m"},
                       {"stage": "judge", "backend": "m", "threshold": 3},
                       {"stage": "translate", "backend": "m", "languages": ["de"], "attempts": 1},
                       {"stage": "dedup"}, {"stage": "balance", "english_share": 0.5}], **top}


def test_pipeline_with_500s_and_timeouts_and_report(tmp_path, image_dir, fake_server):
    lock, seen = threading.Lock(), {}

    def flaky(body, stage, n):
        key = json.dumps(body["messages"])
        with lock:
            seen[key] = seen.get(key, 0) + 1
            first = seen[key] == 1
        if first and n % 7 == 0:
            return Reply(500, "injected")
        if first and n % 11 == 0:
            return Reply(delay=1.0)
        return scripted_reply(body, stage, n)

    server = fake_server(flaky)
    summary = Pipeline(pipeline_from_dict(pipeline(tmp_path, image_dir, server.url))).run()
    rows = {r["stage"]: r for r in summary["stages"]}
    assert server.statuses[500] > 0 and rows["rewrite"]["backend"]["retries"] > 0
    assert all(r["failed"] == 0 for r in rows.values())
    assert rows["rewrite"]["out"] == 41 and rows["judge"]["in"] == 41
    assert rows["judge"]["ok"] + rows["judge"]["rejected"] == 41 and 0 < rows["judge"]["ok"] < 41
    assert rows["translate"]["out"] == 2 * rows["judge"]["ok"]
    final = read_final(tmp_path / "out")
    assert len(final) == summary["final_records"] == rows["balance"]["out"]
    assert len({r["id"] for r in final}) == len(final)
    assert all(r["judge_score"] >= 3 for r in final)
    report = (tmp_path / "out" / "report.md").read_text()
    assert "below_threshold" in report and "| judge |" in report and "report.png" in report
    assert (tmp_path / "out" / "report.png").stat().st_size > 1000
    detail = json.loads((tmp_path / "out" / "report.json").read_text())["detail"]
    judge = next(s for s in detail if s["stage"] == "judge")
    assert sum(judge["scores"].values()) == 41 and judge["rejections"]["below_threshold"] == rows["judge"]["rejected"]
    # a second run without --resume refuses; with it, nothing is recomputed
    with pytest.raises(PipelineError, match="pass --resume"):
        Pipeline(pipeline_from_dict(pipeline(tmp_path, image_dir, server.url))).run()
    before = server.requests
    again = Pipeline(pipeline_from_dict(pipeline(tmp_path, image_dir, server.url))).run(resume=True)
    assert server.requests == before and again["final_records"] == summary["final_records"]


def test_failures_stop_then_resume_retries_exactly_those(tmp_path, image_dir, fake_server):
    broken = {"on": True}

    def responder(body, stage, n):
        if broken["on"] and any(f"picture {i}?" in json.dumps(body) for i in (3, 7)):
            return Reply(500, "model crashed")
        return scripted_reply(body, stage, n)

    server = fake_server(responder)
    cfg = pipeline(tmp_path, image_dir, server.url)
    cfg["stages"] = cfg["stages"][:3]
    cfg["backends"]["m"]["max_retries"] = 1
    with pytest.raises(PipelineIncomplete, match=r"stage rewrite: 2 record\(s\) failed"):
        Pipeline(pipeline_from_dict(cfg)).run()
    fails = [json.loads(x) for x in next((tmp_path / "out" / "stages").glob("01-rewrite-*/failures.jsonl"))
             .read_text().splitlines()]
    assert sorted(f["id"] for f in fails) == ["s3", "s7"] and all("HTTP 500" in f["reason"] for f in fails)
    assert sorted(f["source"] for f in fails)[0].startswith("00-categorize-")  # where the record came from
    broken["on"] = False
    n_before = server.requests
    summary = Pipeline(pipeline_from_dict(cfg)).run(resume=True)
    assert server.requests - n_before == 2 + 41  # only the 2 failed rewrites again, then 41 judges
    assert summary["stages"][1]["out"] == 41
    results = list(iter_results(next((tmp_path / "out" / "stages").glob("01-rewrite-*")) / "map"))
    assert len(results) == 41 and {r["status"] for r in results} == {"ok"}


def test_on_failure_skip_records_failed_results(tmp_path, image_dir, fake_server):
    server = fake_server(lambda body, stage, n: Reply(500) if "picture 3?" in json.dumps(body)
                         else scripted_reply(body, stage, n))
    cfg = pipeline(tmp_path, image_dir, server.url, on_failure="skip")
    cfg["stages"] = cfg["stages"][:2]
    cfg["backends"]["m"]["max_retries"] = 0
    summary = Pipeline(pipeline_from_dict(cfg)).run()
    assert summary["stages"][1]["failed"] == 1 and summary["stages"][1]["out"] == 40
    assert "failed" in (tmp_path / "out" / "report.md").read_text()


def test_config_errors_name_file_and_stage(tmp_path, image_dir):
    base = {"input": str(seed(tmp_path)), "output": str(tmp_path / "o"), "backends": {"m": {"model": "x"}}}
    cases = [
        ({"stages": [{"stage": "rewite"}]}, r"p.yaml: stages\[0\]: unknown stage 'rewite'"),
        ({"stages": [{"stage": "judge"}]}, r"stages\[0\]: stage 'judge' calls a model; name one of `backends`"),
        ({"stages": [{"stage": "judge", "backend": "nope"}]}, r"backend 'nope' is not defined"),
        ({"stages": [{"stage": "judge", "backend": "m", "threshold": "x"}]}, r"stages\[0\].threshold: expected float"),
        ({"stages": [{"stage": "translate", "backend": "m"}]}, r"translate: `languages` must list"),
        ({"stages": [{"stage": "dedup"}], "runner": "spark"}, r"runner must be local or ray"),
        ({"stages": []}, r"'stages' must be a non-empty list"),
    ]
    for extra, pattern in cases:
        p = tmp_path / "p.yaml"
        p.write_text(yaml.safe_dump({**base, **extra}))
        with pytest.raises(PipelineError, match=pattern):
            load_pipeline(p)


def test_cli_runs_and_reports(tmp_path, image_dir, fake_server, capsys):
    server = fake_server()
    cfg = pipeline(tmp_path, image_dir, server.url)
    cfg["stages"] = cfg["stages"][:3]
    p = tmp_path / "pipe.yaml"
    p.write_text(yaml.safe_dump(cfg))
    assert synth_main([str(p)]) == 0
    out = capsys.readouterr().out
    assert "judge" in out and "final records:" in out
    assert synth_main([str(p)]) == 2 and "--resume" in capsys.readouterr().err
    assert synth_main([str(p), "--resume"]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [\n")
    assert synth_main([str(bad)]) == 2 and "not valid YAML" in capsys.readouterr().err


def test_bad_input_lines_stop_or_are_rejected_with_reason(tmp_path, image_dir):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(conv("a", "Is the cat happy?", "Yes.")) + "\n{not json\n" +
                   json.dumps({"id": "b", "conversations": "oops"}) + "\n")
    cfg = {"input": str(src), "output": str(tmp_path / "o"), "image_root": str(image_dir), "progress": False,
           "stages": [{"stage": "categorize"}]}
    with pytest.raises(Exception, match=r"in.jsonl:2: malformed JSON"):
        Pipeline(pipeline_from_dict(cfg)).run()
    summary = Pipeline(pipeline_from_dict({**cfg, "output": str(tmp_path / "o2"), "on_bad_input": "skip"})).run()
    assert summary["stages"][0]["in"] == 3 and summary["stages"][0]["out"] == 1
    reasons = {r["in_id"]: r["reason"] for r in iter_results(next((tmp_path / "o2" / "stages").glob("00-*")) / "map")}
    assert "in.jsonl:2: malformed JSON" in reasons["None"] and "'conversations' is a str" in reasons["b"]
    with pytest.raises(PipelineError, match="input .*missing.jsonl: no such file"):
        Pipeline(pipeline_from_dict({**cfg, "input": str(tmp_path / "missing.jsonl"), "output": str(tmp_path / "o3")})).run()
