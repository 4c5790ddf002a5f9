"""The OpenAI-compatible endpoint backend and the LLM judge against a real HTTP server on loopback."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eval_fakes import ASSETS, FakeServer

from polyvlm.eval.backends import EndpointBackend
from polyvlm.eval.cli import main as eval_main
from polyvlm.eval.judge import JudgeClient, parse_pair, parse_rubric
from polyvlm.eval.runner import evaluate, read_predictions
from polyvlm.eval.tasks import resolve


def test_endpoint_concurrency_retries_and_failures(tmp_path: Path) -> None:
    data = tmp_path / "q.jsonl"
    recs = [
        {"id": "ok", "image": "red.png", "question": "What colour is it?", "answers": ["red"]},
        {"id": "flaky", "image": "blue.png", "question": "FLAKY What colour is it?", "answers": ["blue"]},
        {"id": "broken", "image": "green.png", "question": "BROKEN What colour is it?", "answers": ["green"]},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in recs))
    for c in ("red", "blue", "green"):
        (tmp_path / f"{c}.png").write_bytes((ASSETS / "images" / f"{c}.png").read_bytes())
    with FakeServer(delay=0.3) as server:
        backend = EndpointBackend(server.url, concurrency=3, retries=2, backoff=0.01)
        assert backend.model == "fake-model"  # taken from /v1/models
        tasks, _ = resolve([str(data)])
        res = evaluate(tasks, tmp_path / "out", backend=backend)
        assert res is not None
        t = res["tasks"]["q"]
        assert t["failed"] == 1 and t["n_scored"] == 2  # the 400 is a failure, never an answer
        assert t["metrics"]["exact_match"]["overall"] == 100.0  # the 503 was retried and then answered
        assert server.attempts["BROKEN What colour is it?\nAnswer the question using a single word or phrase."] == 1
        rows = {r["id"]: r for r in map(json.loads, (tmp_path / "out" / "samples_q.jsonl").read_text().splitlines())}
        assert rows["broken"]["error"].startswith("HTTP 400") and "prediction" not in rows["broken"]
        assert t["throughput"]["tokens_per_s"] > 0
        assert 2 <= server.max_in_flight <= 3  # requests really are concurrent, and never more than asked


def test_retry_after_is_honoured() -> None:
    from polyvlm.infer import ChatRequest

    with FakeServer() as server:
        backend = EndpointBackend(server.url, model="m", retries=2, backoff=0.01)
        (res,) = backend.generate([ChatRequest(messages=[{"role": "user", "content": "RATE hello"}])])
    assert res.text == "hello" and len(server.times) == 2
    assert server.times[1] - server.times[0] >= 0.95  # waited as told, not the 0.01 s back-off


def test_unreachable_endpoint_is_a_failure_after_retries(tmp_path: Path) -> None:
    backend = EndpointBackend("http://127.0.0.1:9/v1", model="m", retries=1, backoff=0.01, timeout=2)
    tasks, _ = resolve([str(ASSETS / "vqa.jsonl")])
    res = evaluate(tasks, tmp_path, backend=backend, limit=1)
    assert res is not None and res["tasks"]["vqa"]["failed"] == 1
    row = json.loads((tmp_path / "samples_vqa.jsonl").read_text().splitlines()[0])
    assert "gave up after 2 attempts" in row["error"]


def test_cli_endpoint_mmmb_and_judge_cached(tmp_path: Path) -> None:
    chat = tmp_path / "chat.yaml"
    chat.write_text(f"name: chat\ntype: judge\ndata: {ASSETS / 'chat.jsonl'}\nmetrics: [judge_rubric, judge_relative]\n"
                    f"max_new_tokens: 16\n")
    out = tmp_path / "out"
    with FakeServer() as server:
        args = ["--endpoint", server.url, "--judge", server.url, "--tasks", f"{ASSETS / 'mmmb'},{chat}", "--out", str(out)]
        assert eval_main(args) == 0
        res = json.loads((out / "results.json").read_text())
        assert res["tasks"]["mmmb"]["metrics"]["accuracy"]["overall"] == 100.0
        ch = res["tasks"]["chat"]
        # j1 (red) gets "Score: 4" -> (4-1)/4; j2's judge reply has no score line: left out and counted
        assert ch["metrics"]["judge_rubric"]["overall"] == pytest.approx(75.0)
        assert ch["judge_unparsed"] == 1
        assert ch["metrics"]["judge_relative"]["overall"] == pytest.approx(75.0)  # 6 / 8
        n_calls = len(server.calls)
        (out / "results.json").unlink()
        assert eval_main(args) == 0  # everything answered and judged already: no request at all
        assert len(server.calls) == n_calls
        assert json.loads((out / "results.json").read_text())["tasks"]["chat"]["metrics"] == ch["metrics"]


def test_judge_resolves_unparsed_mcq_answers(tmp_path: Path) -> None:
    preds = tmp_path / "p.jsonl"
    preds.write_text(json.dumps({"index": 0, "prediction": "It's the colour of blood, obviously."}) + "\n"
                     + json.dumps({"index": 1, "prediction": "B"}) + "\n")
    with FakeServer() as server:
        judge = JudgeClient(EndpointBackend(server.url, backoff=0.01), tmp_path / "cache.jsonl")
        tasks, _ = resolve([str(ASSETS / "circular_en.tsv")])
        res = evaluate(tasks, tmp_path / "o", predictions=read_predictions(preds), judge=judge, limit=2)
    assert res is not None
    t = res["tasks"]["circular_en"]
    assert t["unparsed"] == 0 and t["failed"] == 1  # index 1000000 has no prediction
    rows = [json.loads(x) for x in (tmp_path / "o" / "samples_circular_en.jsonl").read_text().splitlines()]
    assert rows[0]["method"] == "judge" and rows[0]["extracted"] == "A"
    assert len(JudgeClient(EndpointBackend(server.url), tmp_path / "cache.jsonl").cache) == 1  # decision cached


def test_strict_judge_parsing() -> None:
    assert parse_rubric("Reasoning...\nScore: 5") == 5.0
    assert parse_rubric("Score: 5\nScore: 3") is None  # two verdicts: not trusted
    assert parse_rubric("I'd give it a 4/5") is None
    assert parse_rubric(None) is None
    assert parse_pair("8 6\nbecause") == (8.0, 6.0)
    assert parse_pair("Assistant 1: 8, Assistant 2: 6") is None
    assert parse_pair("11 3") is None
    assert not math.isnan(parse_pair("10 9.5")[1])  # type: ignore[index]


@pytest.mark.slow
def test_killed_run_resumes_without_asking_again(tmp_path: Path) -> None:
    """`polyvlm eval` killed (SIGKILL) mid-run; the same command again asks only what was not answered and
    ends with the results of an uninterrupted run. A different model or generation length is refused."""
    mmmb = str(ASSETS / "mmmb")
    with FakeServer() as server:
        assert eval_main(["--endpoint", server.url, "--tasks", mmmb, "--out", str(tmp_path / "full")]) == 0
    out = tmp_path / "killed"
    with FakeServer(delay=0.15) as server:
        args = ["--endpoint", server.url, "--tasks", mmmb, "--concurrency", "1", "--out", str(out)]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        proc = subprocess.Popen([sys.executable, "-m", "polyvlm", "eval", *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        progress = out / "progress" / "mmmb.rank0.jsonl"
        deadline = time.time() + 120
        while time.time() < deadline and (not progress.is_file() or len(progress.read_text().splitlines()) < 4):
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(0.2)
        while server.in_flight:  # the killed client's last request may still be on the server
            time.sleep(0.05)
        saved = len(progress.read_text().splitlines())
        assert 4 <= saved < 18 and not (out / "results.json").exists()
        before = len(server.calls)
        assert eval_main(args) == 0
        asked_again = server.calls[before:]
        assert len(asked_again) == 18 - saved  # what was saved is not asked again
        # refused: the same --out with another generation length (or model) would mix two runs' answers
        assert eval_main([*args, "--max-new-tokens", "4"]) == 2
    full = json.loads((tmp_path / "full" / "results.json").read_text())["tasks"]["mmmb"]
    res = json.loads((out / "results.json").read_text())["tasks"]["mmmb"]
    assert res["metrics"] == full["metrics"] and res["n"] == 18 and res["failed"] == 0
    assert (out / "samples_mmmb.jsonl").read_text() == (tmp_path / "full" / "samples_mmmb.jsonl").read_text()
