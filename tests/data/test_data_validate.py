"""Every validation problem code, each from a small crafted file; report layout and exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from datahelpers import rec, write_jsonl

from polyvlm.data.cli import main as data_main
from polyvlm.data.validate import PROBLEMS, validate

H, G = "human", "gpt"


def conv(*turns: tuple[str | None, object]) -> list[dict]:
    return [({"from": r} if r is not None else {}) | {"value": v} for r, v in turns]


# code -> (records written as JSONL lines after one good record, validate options, id of the bad record)
CASES: dict[str, tuple[list, dict, str | None]] = {
    "malformed_json": (['{"id": "m", "conversations": ['], {}, None),
    "missing_key": ([{"conversations": conv((H, "hi"), (G, "yo")), "language": "en"}], {}, None),
    "wrong_type": ([rec("w", conversations={"from": "human"})], {}, "w"),
    "empty_conversation": ([rec("e", conversations=[])], {}, "e"),
    "bad_role": ([rec("b", image=None, conversations=conv((H, "hi"), (None, "beep"), (G, "yo")))], {}, "b"),
    "first_turn_not_user": ([rec("f", image=None, conversations=conv((G, "hello"), (H, "hi"), (G, "ok")))], {}, "f"),
    "consecutive_same_role": ([rec("c", image=None, conversations=conv((H, "a"), (H, "b"), (G, "c")))], {}, "c"),
    "placeholder_mismatch": ([rec("p", q="no placeholder here")], {}, "p"),
    "media_missing": ([rec("mm", image="nope.png")], {"check_media": True}, "mm"),
    "media_escape": ([rec("me", image="../outside.png")], {"check_media": True}, "me"),
    "media_unreadable": ([rec("mu", image="trunc.jpg")], {"check_media": True}, "mu"),
    "media_too_large": ([rec("mt", image="big.png")], {"check_media": True, "max_pixels": 1000}, "mt"),
    "media_empty": ([rec("mz", image="empty.png")], {"check_media": True}, "mz"),
    "duplicate_id": ([rec("r0")], {}, "r0"),
    "language_invalid": ([rec("li", language="english (US)")], {}, "li"),
    "language_missing": ([rec("lm", language=None)], {}, "lm"),
    "language_ambiguous": ([rec("la", language="kr")], {}, "la"),
    "language_unknown": ([rec("lu", language="xx")], {}, "lu"),
    "empty_turn": ([rec("et", a="  ")], {}, "et"),
    "last_turn_not_assistant": ([rec("ln", image=None, conversations=conv((H, "a"), (G, "b"), (H, "c")))], {}, "ln"),
}


@pytest.mark.parametrize("code", sorted(CASES))
def test_problem_code(code: str, tmp_path: Path, image_dir: Path) -> None:
    bad, opts, rid = CASES[code]
    (tmp_path / "outside.png").write_bytes((image_dir / "img.png").read_bytes())
    path = write_jsonl(image_dir / "data.jsonl", [rec("r0"), *bad])
    report = validate([path], progress=False, image_root=str(image_dir), **opts)
    assert set(report.counts) == {code}, report.to_dict()["by_code"]
    ex = report.examples[code][0]
    assert ex["file"] == str(path) and ex["line"] == 2 and ex["index"] == 1 and ex["id"] == rid
    assert ex["message"]
    severity = PROBLEMS[code][0]
    assert (report.errors, report.warnings) == ((1, 0) if severity == "error" else (0, 1))
    args = ["validate", str(path), "--image-root", str(image_dir), "--quiet", "--report", str(tmp_path / "r.json")]
    args += ["--check-media"] if opts.get("check_media") else []
    args += ["--max-pixels", str(opts["max_pixels"])] if "max_pixels" in opts else []
    assert data_main(args) == (1 if severity == "error" else 0)
    d = json.loads((tmp_path / "r.json").read_text())
    assert d["by_code"][code]["count"] == 1 and d["by_code"][code]["severity"] == severity
    assert d["ok"] is (severity != "error") and d["records"] == 2


def _cut_parquet(d: Path) -> Path:
    from polyvlm.data.writers import RecordWriter

    with RecordWriter(d / "whole.parquet") as w:
        for i in range(40):
            w.write(rec(f"r{i}"))
    whole = (d / "whole.parquet").read_bytes()
    (d / "whole.parquet").unlink()
    (d / "cut.parquet").write_bytes(whole[: len(whole) // 2])
    return d / "cut.parquet"


def _short_tsv_row(d: Path) -> Path:
    (d / "b.tsv").write_text("index\tquestion\tanswer\tlanguage\n1\tWhat?\tA\ten\n2\tWhat?\n")
    return d / "b.tsv"


# codes found in files other than JSONL or needing options: code -> (make the file, extra CLI args, line, id)
FILE_CASES = {
    "missing_file": (lambda d: d / "absent.jsonl", [], None, None),
    "empty_dataset": (lambda d: (d / "empty.jsonl").write_text("") or d / "empty.jsonl", [], None, None),
    "unsupported_format": (lambda d: (d / "notes.txt").write_text("hello") and d / "notes.txt", [], None, None),
    "unreadable_file": (_cut_parquet, [], None, None),
    "malformed_row": (_short_tsv_row, [], 3, "2"),
    "too_long": (lambda d: write_jsonl(d / "l.jsonl", [rec("short"), rec("long", q="<image>\n" + "w " * 50)]),
                 ["--max-length", "30", "--tokens-per-image", "4"], 2, "long"),
}


@pytest.mark.parametrize("code", sorted(FILE_CASES))
def test_file_problem_code_through_cli(code: str, tmp_path: Path, tiny_tokenizer: Path) -> None:
    make, args, line, rid = FILE_CASES[code]
    path = make(tmp_path)
    report = tmp_path / "r.json"
    args = args + (["--tokenizer", str(tiny_tokenizer)] if code == "too_long" else [])
    assert data_main(["validate", str(path), "--quiet", "--report", str(report), *args]) == 1
    d = json.loads(report.read_text())
    assert list(d["by_code"]) == [code] and d["by_code"][code]["count"] == 1 and not d["ok"]
    ex = d["by_code"][code]["examples"][0]
    assert ex["file"] == str(path) and ex["line"] == line and ex["id"] == rid and ex["message"]


def test_all_codes_have_a_case() -> None:
    assert set(PROBLEMS) == set(CASES) | set(FILE_CASES)
    assert not set(CASES) & set(FILE_CASES)


def test_clean_file_passes(tmp_path: Path, image_dir: Path) -> None:
    path = write_jsonl(image_dir / "ok.jsonl", [rec(f"r{i}") for i in range(5)])
    rep = validate([path], progress=False, check_media=True)  # image root defaults to the file's directory
    assert rep.records == 5 and not rep.counts
    assert data_main(["validate", str(path), "--quiet", "--check-media"]) == 0


def test_missing_file_and_unsupported_format(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    rep = validate([tmp_path / "absent.jsonl", tmp_path / "notes.txt"], progress=False)
    assert rep.counts == {"missing_file": 1, "unsupported_format": 1}
    assert data_main(["validate", str(tmp_path / "absent.jsonl"), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path / 'absent.jsonl'}: no such file" in out and "#-1" not in out  # a file-level problem: the file


def test_empty_dataset_fails_rather_than_passing_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "a.json").write_text("[]")
    (tmp_path / "b.jsonl").write_text("")
    rep = validate([tmp_path / "a.json", tmp_path / "b.jsonl"], progress=False)
    assert rep.records == 0 and rep.counts == {"empty_dataset": 1} and not rep.to_dict()["ok"]
    assert data_main(["validate", str(tmp_path), "--quiet"]) == 1
    assert "no records in 2 file(s): nothing to validate" in capsys.readouterr().out
    write_jsonl(tmp_path / "c.jsonl", [rec("x")])  # one record anywhere: empty files beside it are fine
    assert validate([tmp_path], progress=False).counts.get("empty_dataset") is None


def test_too_long_with_tokenizer(tmp_path: Path, tiny_tokenizer: Path) -> None:
    long_q = "<image>\n" + " ".join(["word"] * 50)
    path = write_jsonl(tmp_path / "d.jsonl", [rec("short"), rec("long", q=long_q)])
    rep = validate([path], progress=False, tokenizer=str(tiny_tokenizer), max_length=30, media_tokens={"image": 4})
    assert rep.counts == {"too_long": 1}
    ex = rep.examples["too_long"][0]
    assert ex["id"] == "long" and ex["line"] == 2 and "57 tokens" in ex["message"]  # 50 words + "A cat." (3) + 4 for the image
    assert validate([path], progress=False, tokenizer=str(tiny_tokenizer), max_length=60, media_tokens={"image": 4}).counts == {}


def test_symlink_and_absolute_paths_escape(tmp_path: Path, image_dir: Path) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes((image_dir / "img.png").read_bytes())
    os.symlink(secret, image_dir / "link.png")
    path = write_jsonl(image_dir / "d.jsonl", [rec("s", image="link.png"), rec("a", image=str(secret))])
    rep = validate([path], progress=False, check_media=True)
    assert rep.counts == {"media_escape": 2}


def test_unreadable_garbage_and_data_uri(tmp_path: Path, image_dir: Path) -> None:
    import base64

    good = "data:image/png;base64," + base64.b64encode((image_dir / "img.png").read_bytes()).decode()
    path = write_jsonl(image_dir / "d.jsonl", [rec("g", image="garbage.png"), rec("u", image=good),
                                               rec("bad64", image="data:image/png;base64,!!!")])
    rep = validate([path], progress=False, check_media=True)
    assert rep.counts == {"media_unreadable": 2}
    assert [e["id"] for e in rep.examples["media_unreadable"]] == ["g", "bad64"]


def test_duplicates_across_files_and_float_ids(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [rec("x", image=None, q="hi"), rec(7.0, image=None, q="hi")])
    b = tmp_path / "b.json"
    b.write_text(json.dumps([rec("y", image=None, q="hi"), rec("7", image=None, q="hi"), rec("x", image=None, q="hi")], indent=2))
    rep = validate([a, b], progress=False)
    assert rep.counts == {"duplicate_id": 2}
    msgs = {e["id"]: e for e in rep.examples["duplicate_id"]}
    assert msgs["7"]["file"] == str(b) and msgs["7"]["index"] == 1 and f"{a}:2" in msgs["7"]["message"]
    assert msgs["x"]["index"] == 2 and msgs["x"]["line"] > 1 and f"{a}:1" in msgs["x"]["message"]


def test_malformed_json_array_names_the_line(tmp_path: Path) -> None:
    p = tmp_path / "d.json"
    p.write_text('[\n  {"id": "a", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]},\n'
                 '  {"id": "b", "conversations": [}\n]\n')
    rep = validate([p], progress=False)
    assert rep.counts["malformed_json"] == 1
    ex = rep.examples["malformed_json"][0]
    assert ex["line"] == 3 and "line 3" in ex["message"]
    assert rep.records == 2  # the good first record was still checked


def test_report_examples_are_capped(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [rec(f"r{i}", language=None, image=None, q="q") for i in range(30)])
    rep = validate([path], progress=False, examples=5)
    d = rep.to_dict()
    assert d["by_code"]["language_missing"]["count"] == 30 and len(d["by_code"]["language_missing"]["examples"]) == 5


def test_audio_and_video_media_are_decoded(tmp_path: Path) -> None:
    import av
    import numpy as np
    import soundfile

    soundfile.write(tmp_path / "ok.wav", np.zeros(1600, np.float32), 16000)
    soundfile.write(tmp_path / "silent.wav", np.zeros(0, np.float32), 16000)
    (tmp_path / "noise.wav").write_bytes(b"RIFF....not really a wave file")
    with av.open(str(tmp_path / "ok.mp4"), "w") as c:
        s = c.add_stream("mpeg4", rate=4)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        for i in range(4):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 40, np.uint8), format="rgb24")
            c.mux(s.encode(frame))
        c.mux(s.encode(None))
    (tmp_path / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")

    def a(rid: str, f: str) -> dict:
        return rec(rid, image=None, audio=f, q="<audio>\nWhat is said?")

    def v(rid: str, f: str) -> dict:
        return rec(rid, image=None, video=f, q="<video>\nWhat happens?")

    path = write_jsonl(tmp_path / "d.jsonl", [a("a_ok", "ok.wav"), a("a_silent", "silent.wav"), a("a_noise", "noise.wav"),
                                              v("v_ok", "ok.mp4"), v("v_bad", "bad.mp4")])
    rep = validate([path], progress=False, check_media=True)
    assert rep.counts == {"media_empty": 1, "media_unreadable": 2}
    assert rep.examples["media_empty"][0]["id"] == "a_silent"
    assert [e["id"] for e in rep.examples["media_unreadable"]] == ["a_noise", "v_bad"]
    assert "cannot decode audio" in rep.examples["media_unreadable"][0]["message"]
    assert data_main(["validate", str(path), "--check-media", "--quiet"]) == 1
