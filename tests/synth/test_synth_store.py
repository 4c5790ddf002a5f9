"""Result keys, shard writing, crash repair and first-per-key reading."""

from __future__ import annotations

import hashlib
import json

from polyvlm.synth.store import ShardWriter, iter_results, repair_shard, result_key, scan_done, short_key


def test_result_key_depends_on_every_part():
    rec = {"id": "a", "conversations": [{"from": "human", "value": "hi"}]}
    base = result_key(rec, "judge", "judge@1", "openai:m", {"threshold": 3})
    assert base == result_key(dict(reversed(list(rec.items()))), "judge", "judge@1", "openai:m", {"threshold": 3})
    others = [
        result_key({**rec, "id": "b"}, "judge", "judge@1", "openai:m", {"threshold": 3}),
        result_key(rec, "rewrite", "judge@1", "openai:m", {"threshold": 3}),
        result_key(rec, "judge", "judge@2", "openai:m", {"threshold": 3}),
        result_key(rec, "judge", "judge@1", "openai:other", {"threshold": 3}),
        result_key(rec, "judge", "judge@1", "openai:m", {"threshold": 4}),
    ]
    assert len({base, *others}) == 6


def _k(i: int) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()


def test_writer_rotates_and_repair_cuts_partial_line(tmp_path):
    w = ShardWriter(tmp_path, shard_size=3)
    for i in range(7):
        w.write({"key": _k(i), "status": "ok"})
    w.close()
    shards = sorted(tmp_path.glob("part-*.jsonl"))
    assert [len(p.read_text().splitlines()) for p in shards] == [3, 3, 1]
    # a SIGKILL inside a write leaves half a line: it is cut, complete lines stay
    with open(shards[-1], "a") as f:
        f.write('{"key": "00ff", "sta')
    assert repair_shard(shards[-1]) == len('{"key": "00ff", "sta')
    done, lines = scan_done(tmp_path)
    assert lines == 7 and done == {short_key(_k(i)) for i in range(7)}
    # the next attempt writes new shards, never appending to old ones
    w2 = ShardWriter(tmp_path, shard_size=3)
    w2.write({"key": _k(3), "status": "ok", "again": True})
    w2.close()
    assert w2.attempt == 1
    results = list(iter_results(tmp_path))
    assert len(results) == 7 and not any(r.get("again") for r in results)  # first line per key wins


def test_repair_of_file_without_newline(tmp_path):
    p = tmp_path / "part-0000-00000.jsonl"
    p.write_text('{"key": "ab')
    repair_shard(p)
    assert p.read_text() == ""
    p.write_text(json.dumps({"key": "ab"}) + "\n")
    assert repair_shard(p) == 0


def test_result_index_finds_finished_lines_only(tmp_path):
    from polyvlm.synth.store import ResultIndex

    other = tmp_path / "01-judge-aaaa" / "map"
    w = ShardWriter(other, shard_size=2)
    for i, status in enumerate(["ok", "rejected", "failed", "ok"]):
        w.write({"key": _k(i), "status": status, "outputs": [{"id": str(i)}] if status == "ok" else []})
    w.close()
    with open(sorted(other.glob("part-*.jsonl"))[-1], "a") as f:
        f.write(json.dumps({"key": _k(9), "status": "ok"})[:-3])  # a killed attempt's half line
    index = ResultIndex([other, tmp_path / "missing"])
    assert len(index) == 4
    assert index.get(_k(0))["outputs"] == [{"id": "0"}] and index.get(_k(3))["status"] == "ok"
    assert index.get(_k(1))["status"] == "rejected"
    assert index.get(_k(2)) is None and index.get(_k(9)) is None and index.get(_k(5)) is None
    # a different key with the same 64-bit prefix is not taken for it
    assert index.get(_k(0)[:16] + "0" * 48) is None
    index.close()
