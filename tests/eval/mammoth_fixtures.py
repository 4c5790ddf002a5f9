"""Tiny copies of the lmms-eval benchmark repos MAmmoTH-VL reports, in each repo's Hub layout: parquet shards
`<config>/<split>-00000-of-00001.parquet` declared in the README's `configs` (what `push_to_hub(config_name=...)`
writes) or `data/<split>-00000-of-00001.parquet` for a default config, with the repo's image features."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from published_fixtures import png, write_split


def write_config(root: Path, repo: str, config: str, splits: dict[str, list[dict[str, Any]]],
                 features: dict[str, Any]) -> None:
    """A named config of a Hub dataset repo: one parquet shard per split and the README `configs` entry."""
    from datasets import Dataset, Features

    base = root / repo
    (base / config).mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        Dataset.from_dict({k: [r[k] for r in rows] for k in features}, features=Features(features)).to_parquet(
            str(base / config / f"{split}-00000-of-00001.parquet"))
    readme = base / "README.md"
    entries = readme.read_text(encoding="utf-8").split("---\n")[1].removeprefix("configs:\n") if readme.exists() else ""
    entries += f"- config_name: {config}\n  data_files:\n" + "".join(
        f"  - split: {s}\n    path: {config}/{s}-*\n" for s in splits)
    readme.write_text("---\nconfigs:\n" + entries + "---\n", encoding="utf-8")


def mathverse_repo(root: Path, rows: dict[str, list[tuple[str, str, str, str]]],
                   config: str = "testmini_version_split") -> None:
    """CaraJ/MathVerse-lmmseval, config testmini_version_split: one split per problem version; columns
    sample_index, problem_index, problem_version, question, image, answer, question_type, metadata, query_wo,
    query_cot, question_for_eval (config testmini: one split testmini). `rows`: split -> (question, answer,
    question_type, query_wo)."""
    from datasets import Image as ImageFeature
    from datasets import Value

    features = {"sample_index": Value("string"), "problem_index": Value("string"),
                "problem_version": Value("string"), "question": Value("string"), "image": ImageFeature(),
                "answer": Value("string"), "question_type": Value("string"),
                "metadata": {"split": Value("string"), "source": Value("string"), "subject": Value("string"),
                             "subfield": Value("string")},
                "query_wo": Value("string"), "query_cot": Value("string"), "question_for_eval": Value("string")}
    version = {"vision_intensive": "Vision Intensive", "vision_dominant": "Vision Dominant",
               "vision_only": "Vision Only", "testmini": "Text Dominant"}
    splits = {}
    for split, items in rows.items():
        splits[split] = [{"sample_index": f"{split}-{i}", "problem_index": str(i), "problem_version": version[split],
                          "question": q, "image": {"bytes": png((40 * i, 90, 160)), "path": None}, "answer": a,
                          "question_type": t, "metadata": {"split": "testmini", "source": "GeoQA",
                                                           "subject": "Plane Geometry", "subfield": "Length"},
                          "query_wo": query, "query_cot": query + " Think step by step.", "question_for_eval": q}
                         for i, (q, a, t, query) in enumerate(items)]
    write_config(root, "CaraJ/MathVerse-lmmseval", config, splits, features)


def chartqa_repo(root: Path, rows: list[tuple[str, str, str]]) -> None:
    """lmms-lab/ChartQA: default config, split test (`data/test-*.parquet`); columns type, question, answer, image.
    `rows`: (type, question, answer)."""
    from datasets import Image as ImageFeature
    from datasets import Value

    features = {"type": Value("string"), "question": Value("string"), "answer": Value("string"),
                "image": ImageFeature()}
    write_split(root, "lmms-lab/ChartQA", "test", [
        {"type": t, "question": q, "answer": a, "image": {"bytes": png((10 * i, 100, 50)), "path": None}}
        for i, (t, q, a) in enumerate(rows)], features)


def docvqa_repo(root: Path, config: str, rows: list[tuple[str, list[str]]]) -> None:
    """lmms-lab/DocVQA, config DocVQA or InfographicVQA, split validation: questionId, question, answers (a list),
    image (and data_split). `rows`: (question, answers)."""
    from datasets import Image as ImageFeature
    from datasets import Sequence, Value

    features = {"questionId": Value("string"), "question": Value("string"), "answers": Sequence(Value("string")),
                "image": ImageFeature(), "data_split": Value("string")}
    write_config(root, "lmms-lab/DocVQA", config, {"validation": [
        {"questionId": str(1000 + i), "question": q, "answers": a, "image": {"bytes": png(), "path": None},
         "data_split": "val"} for i, (q, a) in enumerate(rows)]}, features)


def mathvista_repo(root: Path, rows: list[dict[str, Any]]) -> None:
    """AI4Math/MathVista, split testmini (`data/testmini-*.parquet`): pid, question, image (its file name),
    decoded_image (Image), choices (list or null), unit, precision (float64, null off floats), answer, question_type,
    answer_type, metadata, query. `rows`: the text columns of each row (missing ones null)."""
    from datasets import Image as ImageFeature
    from datasets import Sequence, Value

    meta = {"category": Value("string"), "context": Value("string"), "grade": Value("string"),
            "img_height": Value("int64"), "img_width": Value("int64"), "language": Value("string"),
            "skills": Sequence(Value("string")), "source": Value("string"), "split": Value("string"),
            "task": Value("string")}
    features = {"pid": Value("string"), "question": Value("string"), "image": Value("string"),
                "decoded_image": ImageFeature(), "choices": Sequence(Value("string")), "unit": Value("string"),
                "precision": Value("float64"), "answer": Value("string"), "question_type": Value("string"),
                "answer_type": Value("string"), "metadata": meta, "query": Value("string")}
    full = [{"pid": str(i + 1), "image": f"images/{i + 1}.jpg", "decoded_image": {"bytes": png(), "path": None},
             "choices": None, "unit": None, "precision": None,
             "metadata": {"category": "math-targeted-vqa", "context": "synthetic scene", "grade": "daily life",
                          "img_height": 16, "img_width": 16, "language": "english", "skills": ["arithmetic reasoning"],
                          "source": "CLEVR-Math", "split": "testmini", "task": "math word problem"}, **r}
            for i, r in enumerate(rows)]
    write_split(root, "AI4Math/MathVista", "testmini", full, features)


def ai2d_repo(root: Path, rows: list[tuple[str, list[str], str]]) -> None:
    """lmms-lab/ai2d, split test (`data/test-*.parquet`): question, options (a list), answer (the index as text),
    image. `rows`: (question, options, answer)."""
    from datasets import Image as ImageFeature
    from datasets import Sequence, Value

    features = {"question": Value("string"), "options": Sequence(Value("string")), "answer": Value("string"),
                "image": ImageFeature()}
    write_split(root, "lmms-lab/ai2d", "test", [{"question": q, "options": o, "answer": a,
                                                 "image": {"bytes": png(), "path": None}} for q, o, a in rows], features)


def mmstar_repo(root: Path, rows: list[tuple[str, str, str, str]]) -> None:
    """Lin-Chen/MMStar: one parquet file `mmstar.parquet` declared in the README as split val; index, question
    (options inline), image, answer, category, l2_category, meta_info. `rows`: (question, answer, category, l2)."""
    from datasets import Dataset, Features, Value
    from datasets import Image as ImageFeature

    features = Features({"index": Value("int64"), "question": Value("string"), "image": ImageFeature(),
                         "answer": Value("string"), "category": Value("string"), "l2_category": Value("string"),
                         "meta_info": {"source": Value("string"), "split": Value("string")}})
    base = root / "Lin-Chen/MMStar"
    base.mkdir(parents=True, exist_ok=True)
    Dataset.from_dict({"index": list(range(len(rows))), "question": [r[0] for r in rows],
                       "image": [{"bytes": png(), "path": None}] * len(rows), "answer": [r[1] for r in rows],
                       "category": [r[2] for r in rows], "l2_category": [r[3] for r in rows],
                       "meta_info": [{"source": "MMBench", "split": "val"}] * len(rows)},
                      features=features).to_parquet(str(base / "mmstar.parquet"))
    (base / "README.md").write_text("---\nconfigs:\n- config_name: val\n  data_files:\n  - split: val\n"
                                    "    path: mmstar.parquet\n---\n", encoding="utf-8")


def realworldqa_repo(root: Path, rows: list[tuple[str, str]]) -> None:
    """lmms-lab/RealWorldQA, split test (`data/test-*.parquet`): image, question, answer. `rows`: (question,
    answer)."""
    from datasets import Image as ImageFeature
    from datasets import Value

    features = {"image": ImageFeature(), "question": Value("string"), "answer": Value("string")}
    write_split(root, "lmms-lab/RealWorldQA", "test", [{"image": {"bytes": png(), "path": None}, "question": q,
                                                        "answer": a} for q, a in rows], features)


def ocrbench_repo(root: Path, rows: list[tuple[str, str, str, list[str]]]) -> None:
    """echo840/OCRBench, split test (`data/test-*.parquet`): dataset, question, question_type, answer (a list),
    image. `rows`: (dataset, question, question_type, answers)."""
    from datasets import Image as ImageFeature
    from datasets import Sequence, Value

    features = {"dataset": Value("string"), "question": Value("string"), "question_type": Value("string"),
                "answer": Sequence(Value("string")), "image": ImageFeature()}
    write_split(root, "echo840/OCRBench", "test", [
        {"dataset": d, "question": q, "question_type": t, "answer": a, "image": {"bytes": png(), "path": None}}
        for d, q, t, a in rows], features)


def seedbench_repo(root: Path, rows: list[tuple[str, str, list[str], str, int]]) -> None:
    """lmms-lab/SEED-Bench, split test (`data/test-*.parquet`): answer, choice_a..choice_d, data_id, data_type,
    question, question_id, question_type_id, image (a list of pictures; video rows hold several frames), segment.
    `rows`: (data_type, question, choices, answer, number of pictures)."""
    from datasets import Image as ImageFeature
    from datasets import Sequence, Value

    features = {"answer": Value("string"), **{f"choice_{k}": Value("string") for k in "abcd"},
                "data_id": Value("string"), "data_type": Value("string"), "question": Value("string"),
                "question_id": Value("string"), "question_type_id": Value("int64"),
                "image": Sequence(ImageFeature()), "segment": Sequence(Value("int64"))}
    write_split(root, "lmms-lab/SEED-Bench", "test", [
        {"answer": a, **{f"choice_{k}": c for k, c in zip("abcd", choices)}, "data_id": f"{i}.jpg", "data_type": t,
         "question": q, "question_id": str(100 + i), "question_type_id": 1 if t == "image" else 10,
         "image": [{"bytes": png((30 * k, 60, 90)), "path": None} for k in range(n)], "segment": []}
        for i, (t, q, choices, a, n) in enumerate(rows)], features)


def mmbench_repo(root: Path, rows: list[dict[str, Any]]) -> None:
    """lmms-lab/MMBench, config en, split dev (`en/dev-*.parquet`): index, question, hint, answer, A-E (null when
    absent), category, image, source, L2-category, comment, split. `rows`: index, question, hint, answer, options."""
    from datasets import Image as ImageFeature
    from datasets import Value

    features = {"index": Value("int64"), "question": Value("string"), "hint": Value("string"),
                "answer": Value("string"), **{k: Value("string") for k in "ABCDE"}, "category": Value("string"),
                "image": ImageFeature(), "source": Value("string"), "L2-category": Value("string"),
                "comment": Value("string"), "split": Value("string")}
    write_config(root, "lmms-lab/MMBench", "en", {"dev": [
        {"index": r["index"], "question": r["question"], "hint": r.get("hint"), "answer": r["answer"],
         **{k: (r["options"][i] if i < len(r["options"]) else None) for i, k in enumerate("ABCDE")},
         "category": "object_localization", "image": {"bytes": png(), "path": None}, "source": "MMBench",
         "L2-category": "finegrained_perception (instance-level)", "comment": None, "split": "dev"}
        for r in rows]}, features)


def mmvet_repo(root: Path, rows: list[tuple[str, str, str]]) -> None:
    """lmms-lab/MMVet, split test (`data/test-*.parquet`): question_id, image, question, answer (<AND> / <OR>),
    image_source, capability. `rows`: (question, answer, capability)."""
    from datasets import Image as ImageFeature
    from datasets import Value

    features = {"question_id": Value("string"), "image": ImageFeature(), "question": Value("string"),
                "answer": Value("string"), "image_source": Value("string"), "capability": Value("string")}
    write_split(root, "lmms-lab/MMVet", "test", [
        {"question_id": f"v1_{i}", "image": {"bytes": png(), "path": None}, "question": q, "answer": a,
         "image_source": "web", "capability": c} for i, (q, a, c) in enumerate(rows)], features)


def blink_repo(root: Path, configs: dict[str, list[tuple[list[str], str, str, int]]]) -> None:
    """BLINK-Benchmark/BLINK: one config per subtask (`<Subtask>/val-*.parquet`): idx, question, sub_task,
    image_1..image_4 (null when unused), choices, answer ("(A)"), prompt, explanation. `configs`: subtask ->
    (choices, answer, prompt, number of pictures)."""
    from datasets import Image as ImageFeature
    from datasets import Sequence, Value

    features = {"idx": Value("string"), "question": Value("string"), "sub_task": Value("string"),
                **{f"image_{k}": ImageFeature() for k in range(1, 5)}, "choices": Sequence(Value("string")),
                "answer": Value("string"), "prompt": Value("string"), "explanation": Value("string")}
    for config, rows in configs.items():
        write_config(root, "BLINK-Benchmark/BLINK", config, {"val": [
            {"idx": f"val_{config}_{i + 1}", "question": p.split("\n")[0], "sub_task": config.replace("_", " "),
             **{f"image_{k}": ({"bytes": png((40 * k, 80, 80)), "path": None} if k <= n else None) for k in range(1, 5)},
             "choices": c, "answer": a, "prompt": p, "explanation": ""} for i, (c, a, p, n) in enumerate(rows)]},
            features)


def mmmu_pro_vision_repo(root: Path, rows: list[tuple[str, str, str]], shards: int = 2) -> None:
    """MMMU/MMMU_Pro config "vision" (`vision/test-0000k-of-0000n.parquet`, the README `configs` entry added to the
    repo's): id, image (the screenshot), options (a list literal in a string, as the standard configs store it),
    answer, subject. `rows`: (options literal, answer, subject), spread over `shards` files in row order."""
    from datasets import Dataset, Features, Value
    from datasets import Image as ImageFeature

    features = Features({"id": Value("string"), "image": ImageFeature(), "options": Value("string"),
                         "answer": Value("string"), "subject": Value("string")})
    base = root / "MMMU/MMMU_Pro"
    (base / "vision").mkdir(parents=True, exist_ok=True)
    full = [{"id": f"test_{s}_{i + 1}", "image": {"bytes": png((20 * i, 40, 90)), "path": None}, "options": o,
             "answer": a, "subject": s} for i, (o, a, s) in enumerate(rows)]
    per = -(-len(full) // shards)
    for k in range(shards):
        part = full[k * per:(k + 1) * per]
        Dataset.from_dict({c: [r[c] for r in part] for c in features}, features=features).to_parquet(
            str(base / "vision" / f"test-{k:05d}-of-{shards:05d}.parquet"))
    readme = base / "README.md"
    entries = readme.read_text(encoding="utf-8").split("---\n")[1].removeprefix("configs:\n") if readme.exists() else ""
    entries += "- config_name: vision\n  data_files:\n  - split: test\n    path: vision/test-*\n"
    readme.write_text("---\nconfigs:\n" + entries + "---\n", encoding="utf-8")
