"""Tiny copies of the video benchmark repos in their Hub layouts, with real (tiny) videos written by PyAV:
lmms-lab/Video-MME (parquet `videomme/test-*.parquet` + `videos_chunked_NN.zip` holding `data/<videoID>.mp4`) and
OpenGVLab/MVBench's `video` branch (`json/<task>.json` per task, videos in the source datasets' folders)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import av
import numpy as np


def video_bytes(level: int, n_frames: int = 6, fps: int = 4, size: int = 16, fmt: str = "mp4") -> bytes:
    """A real clip whose every frame is a flat grey of `level` (so a decoded frame says which video it came from)."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as c:
        s = c.add_stream("libvpx" if fmt == "webm" else "mpeg4", rate=fps)
        s.width = s.height = size
        s.pix_fmt = "yuv420p"
        for _ in range(n_frames):
            frame = av.VideoFrame.from_ndarray(np.full((size, size, 3), level, dtype=np.uint8), format="rgb24")
            for pkt in s.encode(frame):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return buf.getvalue()


VIDEOMME_COLUMNS = ["video_id", "duration", "domain", "sub_category", "url", "videoID", "question_id", "task_type",
                    "question", "options", "answer"]


def videomme_repo(root: Path, rows: list[dict[str, Any]], chunks: dict[str, list[str]],
                  levels: dict[str, int] | None = None, subtitles: dict[str, str] | None = None,
                  n_frames: int = 6, fps: int = 4) -> Path:
    """lmms-lab/Video-MME: README `configs` (config videomme, split test), `videomme/test-00000-of-00001.parquet` with
    the repo's columns, and `chunks`: zip name -> the video files it holds (`<videoID>.mp4`, `.MP4` or `.mkv`, stored
    as `data/<file>`), plus `subtitle.zip` (`subtitle/<videoID>.srt` for each of `subtitles`: videoID -> SRT text).
    `rows`: videoID, duration, question, options (4 "X. text" lines), answer, and optionally domain / sub_category /
    task_type. Every video has `n_frames` frames at `fps`."""
    from datasets import Dataset, Features, Sequence, Value

    base = root / "lmms-lab/Video-MME"
    (base / "videomme").mkdir(parents=True, exist_ok=True)
    features = Features({c: Sequence(Value("string")) if c == "options" else Value("string") for c in VIDEOMME_COLUMNS})
    ids = sorted({r["videoID"] for r in rows})
    full = [{"video_id": f"{ids.index(r['videoID']) + 1:03d}", "domain": "Knowledge", "sub_category": "Astronomy",
             "task_type": "Counting Problem", "url": f"https://www.youtube.com/watch?v={r['videoID']}",
             "question_id": f"{ids.index(r['videoID']) + 1:03d}-{i + 1}", **r} for i, r in enumerate(rows)]
    Dataset.from_dict({c: [r[c] for r in full] for c in VIDEOMME_COLUMNS}, features=features).to_parquet(
        str(base / "videomme" / "test-00000-of-00001.parquet"))
    (base / "README.md").write_text("---\nconfigs:\n- config_name: videomme\n  data_files:\n  - split: test\n"
                                    "    path: videomme/test-*\n---\n", encoding="utf-8")
    levels = levels or {}
    for name, files in chunks.items():
        with zipfile.ZipFile(base / name, "w") as zf:
            for f in files:
                stem, ext = f.rsplit(".", 1)
                zf.writestr(f"data/{f}", video_bytes(levels.get(stem, 100), n_frames, fps,
                                                     fmt="matroska" if ext == "mkv" else "mp4"))
    with zipfile.ZipFile(base / "subtitle.zip", "w") as zf:
        for video, text in (subtitles or {ids[0]: "1\n00:00:00,000 --> 00:00:01,000\nhello\n"}).items():
            zf.writestr(f"subtitle/{video}.srt", text)
    return base


MVBENCH_FOLDERS = {"action_sequence": "star/Charades_segment", "moving_count": "clevrer/video_validation",
                   "fine_grained_action": "Moments_in_Time_Raw/videos", "episodic_reasoning": "tvqa/video_fps3_hq_segment"}


def mvbench_repo(root: Path, tasks: dict[str, list[dict[str, Any]]], levels: dict[str, int] | None = None,
                 skip_videos: tuple[str, ...] = ()) -> Path:
    """OpenGVLab/MVBench at its `video` branch: `json/<task>.json` (a list of {video, question, candidates, answer}),
    one README config per task (`data_files: json/<task>.json`, so the split is `train`), and each video under its
    source dataset's folder (`star/Charades_segment/<video>`, ...) unless named in `skip_videos`."""
    base = root / "OpenGVLab/MVBench"
    (base / "json").mkdir(parents=True, exist_ok=True)
    configs = []
    levels = levels or {}
    for task, rows in tasks.items():
        (base / "json" / f"{task}.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
        configs.append(f"- config_name: {task}\n  data_files: json/{task}.json\n")
        for r in rows:
            path = base / MVBENCH_FOLDERS[task] / r["video"]
            if r["video"] in skip_videos or path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            fmt = {"webm": "webm", "avi": "avi", "mkv": "matroska"}.get(path.suffix[1:], "mp4")
            path.write_bytes(video_bytes(levels.get(r["video"], 100), fmt=fmt))
    (base / "README.md").write_text("---\nconfigs:\n" + "".join(configs) + "---\n", encoding="utf-8")
    return base


def zipped_videos(base: Path, chunks: dict[str, list[str]], folder: str, levels: dict[str, int] | None = None) -> None:
    """`chunks`: zip name -> the video files it holds, each stored as `<folder>/<file>` (a real clip whose grey level
    is `levels[<file stem>]`, default 100)."""
    levels = levels or {}
    for name, files in chunks.items():
        with zipfile.ZipFile(base / name, "w") as zf:
            for f in files:
                stem, ext = f.rsplit(".", 1)
                fmt = {"webm": "webm", "mkv": "matroska"}.get(ext.lower(), "mp4")
                zf.writestr(f"{folder}/{f}", video_bytes(levels.get(stem, 100), fmt=fmt))


def parquet_config(base: Path, config: str, split: str, columns: dict[str, list[Any]], features: Any) -> None:
    """One push_to_hub config: `<config>/<split>-00000-of-00001.parquet` and its README `configs` entry (appended)."""
    from datasets import Dataset

    (base / config).mkdir(parents=True, exist_ok=True)
    Dataset.from_dict(columns, features=features).to_parquet(str(base / config / f"{split}-00000-of-00001.parquet"))
    readme = base / "README.md"
    head = readme.read_text(encoding="utf-8").removesuffix("---\n") if readme.exists() else "---\nconfigs:\n"
    readme.write_text(head + f"- config_name: {config}\n  data_files:\n  - split: {split}\n    path: {config}/{split}-*\n"
                      "---\n", encoding="utf-8")


def egoschema_repo(root: Path, rows: list[dict[str, Any]], chunks: dict[str, list[str]],
                   levels: dict[str, int] | None = None) -> Path:
    """lmms-lab/egoschema: config `Subset` (`Subset/test-00000-of-00001.parquet`: question_idx, question, video_idx,
    option (five "A. ..." strings), answer (the index as a string)) and `videos_chunked_NN.zip` holding
    `videos/<video_idx>.mp4`. `rows`: question, video_idx, option, answer."""
    from datasets import Features, Sequence, Value

    base = root / "lmms-lab/egoschema"
    base.mkdir(parents=True, exist_ok=True)
    cols = ["question_idx", "question", "video_idx", "option", "answer"]
    features = Features({c: Sequence(Value("string")) if c == "option" else Value("string") for c in cols})
    full = [{"question_idx": f"{r['video_idx']}-q", **r} for r in rows]
    parquet_config(base, "Subset", "test", {c: [r[c] for r in full] for c in cols}, features)
    zipped_videos(base, chunks, "videos", levels)
    return base


def perceptiontest_repo(root: Path, rows: list[dict[str, Any]], chunks: dict[str, list[str]],
                        levels: dict[str, int] | None = None) -> Path:
    """lmms-lab/PerceptionTest_Val: config `mc_question_val` (`mc_question_val/validation-00000-of-00001.parquet`:
    video_name, question, question_id, options (three strings), answer_id (int), area, reasoning, tag), the video
    chunks (`videos/<video_name>.mp4`) and `valid_audios.zip` (audio only). `rows`: video_name, question, options,
    answer_id, area."""
    from datasets import Features, Sequence, Value

    base = root / "lmms-lab/PerceptionTest_Val"
    base.mkdir(parents=True, exist_ok=True)
    cols = ["video_name", "question", "question_id", "options", "answer_id", "area", "reasoning", "tag"]
    features = Features({"video_name": Value("string"), "question": Value("string"), "question_id": Value("string"),
                         "options": Sequence(Value("string")), "answer_id": Value("int64"), "area": Value("string"),
                         "reasoning": Value("string"), "tag": Sequence(Value("string"))})
    full = [{"question_id": f"{r['video_name']}-{i}", "reasoning": "descriptive", "tag": ["action"], **r}
            for i, r in enumerate(rows)]
    parquet_config(base, "mc_question_val", "validation", {c: [r[c] for r in full] for c in cols}, features)
    zipped_videos(base, chunks, "videos", levels)
    with zipfile.ZipFile(base / "valid_audios.zip", "w") as zf:
        zf.writestr("audios/placeholder.wav", b"RIFF")
    return base


def mlvu_repo(root: Path, rows: list[dict[str, Any]], chunks: dict[str, list[str]],
              levels: dict[str, int] | None = None) -> Path:
    """sy1998/MLVU_dev (formerly sy1998/temp): `mlvu/test-00000-of-00001.parquet` (video_name, duration, question with
    its "(A) ..." option lines, candidates (the option texts), answer (the letter), task_type, question_id), no README,
    and zips (`video_part_N.zip`, `action_count.zip`) holding each video under its `video_name`. `rows`: video_name,
    question, answer, task_type."""
    from datasets import Dataset, Features, Sequence, Value

    base = root / "sy1998/MLVU_dev"
    (base / "mlvu").mkdir(parents=True, exist_ok=True)
    cols = ["video_name", "duration", "question", "candidates", "answer", "task_type", "question_id"]
    features = Features({**{c: Value("string") for c in cols}, "duration": Value("float64"),
                         "candidates": Sequence(Value("string"))})
    full = [{"duration": 1.5, "question_id": f"q{i}",
             "candidates": [line[4:] for line in r["question"].split("\n") if line.startswith("(")], **r}
            for i, r in enumerate(rows)]
    Dataset.from_dict({c: [r[c] for r in full] for c in cols}, features=features) \
        .to_parquet(str(base / "mlvu" / "test-00000-of-00001.parquet"))
    levels = levels or {}
    for name, files in chunks.items():
        with zipfile.ZipFile(base / name, "w") as zf:
            for f in files:
                zf.writestr(f, video_bytes(levels.get(f, 100)))
    return base


def nextqa_repo(root: Path, rows: list[dict[str, Any]], videos: list[str], levels: dict[str, int] | None = None) -> Path:
    """lmms-lab/NExTQA: config `MC` (`MC/test-00000-of-00001.parquet`: video (int64), frame_count, width, height,
    question, answer (int64), qid, type, a0..a4) and `videos.zip` holding `NExTVideo/<file>` for each of `videos`.
    `rows`: video, question, answer, type, answers (the five a0..a4)."""
    from datasets import Features, Value

    base = root / "lmms-lab/NExTQA"
    base.mkdir(parents=True, exist_ok=True)
    ints = {"video", "frame_count", "width", "height", "answer", "qid"}
    cols = ["video", "frame_count", "width", "height", "question", "answer", "qid", "type", "a0", "a1", "a2", "a3", "a4"]
    features = Features({c: Value("int64") if c in ints else Value("string") for c in cols})
    full = [{"frame_count": 6, "width": 16, "height": 16, "qid": i, **{f"a{k}": a for k, a in enumerate(r["answers"])},
             **{k: v for k, v in r.items() if k != "answers"}} for i, r in enumerate(rows)]
    parquet_config(base, "MC", "test", {c: [r[c] for r in full] for c in cols}, features)
    zipped_videos(base, {"videos.zip": videos}, "NExTVideo", levels)
    return base


def longvideobench_repo(root: Path, rows: list[dict[str, Any]], levels: dict[str, int] | None = None,
                        skip_videos: tuple[str, ...] = ()) -> Path:
    """longvideobench/LongVideoBench: README `configs` (default: validation `lvb_val.json`, test `lvb_test_wo_gt.json`),
    `lvb_val.json` (a list of records: video_id, question, candidates, option0..option4 ("N/A" past the last),
    correct_choice, position, question_category, topic_category, level, id, video_path, subtitle_path,
    duration_group, starting_timestamp_for_subtitles, duration) and the videos as one tar split in two parts
    (`videos.tar.part.aa`, `.ab`) holding `videos/<video_path>`. `rows`: question, candidates, correct_choice,
    video_path, duration_group, question_category."""
    import tarfile

    base = root / "longvideobench/LongVideoBench"
    base.mkdir(parents=True, exist_ok=True)
    full = []
    for i, r in enumerate(rows):
        opts = list(r["candidates"]) + ["N/A"] * (5 - len(r["candidates"]))
        full.append({"video_id": r["video_path"].split(".")[0], "position": [1], "topic_category": "NP-News-Programs",
                     "level": "L2-Relation", "id": f"{r['video_path'].split('.')[0]}_{i}",
                     "subtitle_path": r["video_path"].replace(".mp4", "_en.json"), "starting_timestamp_for_subtitles": 0,
                     "duration": 1.5, **{f"option{k}": o for k, o in enumerate(opts)}, **r})
    (base / "lvb_val.json").write_text(json.dumps(full), encoding="utf-8")
    (base / "lvb_test_wo_gt.json").write_text(json.dumps([{k: v for k, v in r.items() if k != "correct_choice"}
                                                          for r in full]), encoding="utf-8")
    (base / "README.md").write_text("---\nconfigs:\n- config_name: default\n  data_files:\n  - split: validation\n"
                                    "    path: lvb_val.json\n  - split: test\n    path: lvb_test_wo_gt.json\n---\n",
                                    encoding="utf-8")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for r in rows:
            if r["video_path"] in skip_videos:
                continue
            data = video_bytes((levels or {}).get(r["video_path"], 100))
            info = tarfile.TarInfo(f"videos/{r['video_path']}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    blob = buf.getvalue()
    half = len(blob) // 2
    (base / "videos.tar.part.aa").write_bytes(blob[:half])
    (base / "videos.tar.part.ab").write_bytes(blob[half:])
    return base


def activitynetqa_repo(root: Path, rows: list[dict[str, Any]], chunks: dict[str, list[str]],
                       levels: dict[str, int] | None = None) -> Path:
    """lmms-lab/ActivityNetQA: `data/test-00000-of-00001.parquet` (video_name, question, answer, question_id, type
    (int64)) and zips holding `all_test/v_<video_name>.<ext>` (`chunks`: zip name -> files). `rows`: video_name,
    question, answer, type."""
    from datasets import Dataset, Features, Value

    base = root / "lmms-lab/ActivityNetQA"
    (base / "data").mkdir(parents=True, exist_ok=True)
    cols = ["video_name", "question", "answer", "question_id", "type"]
    full = [{"question_id": f"v_{r['video_name']}_{i}", **r} for i, r in enumerate(rows)]
    Dataset.from_dict({c: [r[c] for r in full] for c in cols},
                      features=Features({c: Value("int64") if c == "type" else Value("string") for c in cols})) \
        .to_parquet(str(base / "data" / "test-00000-of-00001.parquet"))
    zipped_videos(base, chunks, "all_test", levels)
    return base
