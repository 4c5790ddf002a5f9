"""Tiny copies of published benchmark repos, written in each repo's own layout: Hub parquet shards
`data/<split>-00000-of-00001.parquet` with image features (what `push_to_hub` writes and `huggingface-cli download`
fetches), base64 image columns (M3Exam), and Parrot's VLMEvalKit TSVs (`mmmb/mmmb_<lang>.tsv`, `cn` = Chinese)."""

from __future__ import annotations

import base64
import csv
import io
from pathlib import Path
from typing import Any

from PIL import Image


def png(colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buf, format="PNG")
    return buf.getvalue()


def write_split(root: Path, repo: str, split: str, rows: list[dict[str, Any]], features: dict[str, Any]) -> None:
    """One split of a Hub dataset repo as parquet, with the `datasets` features stored in its schema."""
    from datasets import Dataset, Features

    folder = root / repo / "data"
    folder.mkdir(parents=True, exist_ok=True)
    columns = {k: [r[k] for r in rows] for k in features}
    Dataset.from_dict(columns, features=Features(features)).to_parquet(
        str(folder / f"{split}-00000-of-00001.parquet"))


def xgqa_repo(root: Path) -> None:
    """neulab/PangeaBench-xgqa: columns image (Image), question, answer; one split per language."""
    from datasets import Image as ImageFeature
    from datasets import Value

    features = {"image": ImageFeature(), "question": Value("string"), "answer": Value("string")}
    img = {"bytes": png(), "path": None}
    write_split(root, "neulab/PangeaBench-xgqa", "en", [
        {"image": img, "question": "Is the cat on the table?", "answer": "no"},
        {"image": img, "question": "What colour is the car?", "answer": "red"},
        {"image": img, "question": "How many dogs are there?", "answer": "2"},
        {"image": img, "question": "What is on the plate?", "answer": "no"},
    ], features)
    write_split(root, "neulab/PangeaBench-xgqa", "zh", [
        {"image": img, "question": "桌子上有什么动物？", "answer": "cat"},
        {"image": img, "question": "汽车是什么颜色？", "answer": "Red"},
    ], features)


def m3exam_repo(root: Path) -> None:
    """neulab/PangeaBench-m3exam: splits named by language, options a list, images as base64 strings or "None"."""
    from datasets import Sequence, Value

    b64 = base64.b64encode(png((0, 90, 200))).decode()
    features = {"language": Value("string"), "subject_category": Value("string"), "question_text": Value("string"),
                "options": Sequence(Value("string")), "background_description": Sequence(Value("string")),
                "answer_text": Value("string"), **{f"image_{i}": Value("string") for i in range(10)}}

    def row(lang: str, q: str, options: list[str], answer: str, image: bool) -> dict[str, Any]:
        return {"language": lang, "subject_category": "math", "question_text": q, "options": options,
                "background_description": [], "answer_text": answer,
                **{f"image_{i}": (b64 if image and i == 0 else "None") for i in range(10)}}

    write_split(root, "neulab/PangeaBench-m3exam", "english", [
        row("english", "What is shown in (image)[img0.png]?", ["(1) a square", "(2) a circle", "(3) a line",
                                                              "(4) a dot"], "2", True),
        row("english", "2 + 2 = ?", ["A. 3", "B. 4", "C. 5", "D. 6"], "B", False),
        row("english", "3 x 3 = ?", ["A. 6", "B. 8", "C. 9", "D. 12"], "C", False),
    ], features)
    write_split(root, "neulab/PangeaBench-m3exam", "chinese", [
        row("chinese", "一加一等于几？", ["A. 1", "B. 2", "C. 3", "D. 4"], "B", False),
    ], features)


def write_tsv(path: Path, rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter="\t")
        w.writeheader()
        w.writerows(rows)


def parrot_repo(root: Path, langs: tuple[str, ...] = ("en", "cn", "pt", "ar", "tr", "ru")) -> None:
    """AIDC-AI/Parrot-dataset: mmmb/mmmb_<lang>.tsv (VLMEvalKit columns, base64 image, `cn` = Chinese)."""
    b64 = base64.b64encode(png()).decode()
    for lang in langs:
        write_tsv(root / "AIDC-AI/Parrot-dataset" / "mmmb" / f"mmmb_{lang}.tsv", [
            {"index": "0", "question": "What animal is this?" if lang != "cn" else "这是什么动物？", "hint": "nan",
             "A": "dog", "B": "cat", "C": "bird", "D": "fish", "answer": "B", "category": "animals",
             "l2-category": "perception", "split": "dev", "image": b64},
            {"index": "1", "question": "What colour is it?" if lang != "cn" else "它是什么颜色？", "hint": "nan",
             "A": "red", "B": "blue", "C": "green", "D": "nan", "answer": "A", "category": "colour",
             "l2-category": "perception", "split": "dev", "image": "0"},
        ])


def xm100_repo(root: Path, captions: dict[str, list[str]]) -> None:
    """neulab/PangeaBench-xm100: image (Image), image_id (string), caption (string); one split per language."""
    from datasets import Image as ImageFeature
    from datasets import Value

    features = {"image": ImageFeature(), "image_id": Value("string"), "caption": Value("string")}
    for split, caps in captions.items():
        rows = [{"image": {"bytes": png((i * 40, 80, 120)), "path": None}, "image_id": f"{i:04x}", "caption": c}
                for i, c in enumerate(caps)]
        write_split(root, "neulab/PangeaBench-xm100", split, rows, features)


def marvl_repo(root: Path) -> None:
    """neulab/PangeaBench-marvl: id, image (Image: the two pictures side by side), conversations (LLaVA turns)."""
    from datasets import Image as ImageFeature
    from datasets import Value

    features = {"id": Value("string"), "image": ImageFeature(),
                "conversations": [{"from": Value("string"), "value": Value("string")}]}

    def row(i: int, statement: str, label: str) -> dict[str, Any]:
        return {"id": f"m{i}", "image": {"bytes": png(), "path": None},
                "conversations": [{"from": "human", "value": f"<image>\n{statement}"}, {"from": "gpt", "value": label}]}

    write_split(root, "neulab/PangeaBench-marvl", "en", [
        row(0, "The left image contains two dogs", "true"), row(1, "Both images show a cat", "false"),
        row(2, "There is a bird", "false")], features)
    write_split(root, "neulab/PangeaBench-marvl", "zh", [row(3, "左图中有两只狗", "true")], features)


def maxm_repo(root: Path) -> None:
    """neulab/PangeaBench-maxm: image stored as a plain {bytes, path} struct (decoded by the task), answers list."""
    from datasets import Sequence, Value

    features = {"image": {"bytes": Value("binary"), "path": Value("string")}, "image_id": Value("string"),
                "question": Value("string"), "answers": Sequence(Value("string"))}
    img = {"bytes": png(), "path": None}
    write_split(root, "neulab/PangeaBench-maxm", "en", [
        {"image": img, "image_id": "a1", "question": "Is it sunny?", "answers": ["yes", "Yes"]},
        {"image": img, "image_id": "a2", "question": "How many cars?", "answers": ["2"]}], features)
    write_split(root, "neulab/PangeaBench-maxm", "zh", [
        {"image": img, "image_id": "b1", "question": "车是什么颜色？", "answers": ["红色"]}], features)


def xmmmu_repo(root: Path) -> None:
    """neulab/PangeaBench-xmmmu: MMMU columns (id, question, options as a list literal string, question_type,
    answer, image_1..image_7 as Image features)."""
    from datasets import Image as ImageFeature
    from datasets import Value

    features = {"id": Value("string"), "question": Value("string"), "options": Value("string"),
                "question_type": Value("string"), "answer": Value("string"),
                **{f"image_{i}": ImageFeature() for i in range(1, 8)}}

    def row(i: int, q: str, options: str, qtype: str, answer: str) -> dict[str, Any]:
        return {"id": f"validation_Math_{i}", "question": q, "options": options, "question_type": qtype,
                "answer": answer, "image_1": {"bytes": png(), "path": None},
                **{f"image_{k}": None for k in range(2, 8)}}

    write_split(root, "neulab/PangeaBench-xmmmu", "en", [
        row(1, "Which shape is <image 1>?", "['A circle', 'A square']", "multiple-choice", "B"),
        row(2, "Which colour is <image 1>?", "['red', 'blue']", "multiple-choice", "A"),
        row(3, "What is the area in <image 1>?", "[]", "open", "3.5")], features)


def cvqa_repo(root: Path) -> None:
    """afaji/cvqa: one `test` split; Subset "('Language', 'Country')", Question/Options in the language and
    translated, Label the answer's index (-1 when hidden)."""
    from datasets import Image as ImageFeature
    from datasets import Sequence, Value

    features = {"image": ImageFeature(), "ID": Value("string"), "Subset": Value("string"),
                "Question": Value("string"), "Translated Question": Value("string"),
                "Options": Sequence(Value("string")), "Translated Options": Sequence(Value("string")),
                "Label": Value("int64"), "Category": Value("string")}
    img = {"bytes": png(), "path": None}
    write_split(root, "afaji/cvqa", "test", [
        {"image": img, "ID": "c0", "Subset": "('Japanese', 'Japan')", "Question": "これは何ですか？",
         "Translated Question": "What is this?", "Options": ["寿司", "ラーメン", "天ぷら", "そば"],
         "Translated Options": ["sushi", "ramen", "tempura", "soba"], "Label": 1, "Category": "Food"},
        {"image": img, "ID": "c1", "Subset": "('Oromo', 'Ethiopia')", "Question": "Kun maali?",
         "Translated Question": "What is this?", "Options": ["taco", "mole", "pozole", "tamal"],
         "Translated Options": ["taco", "mole", "pozole", "tamale"], "Label": -1, "Category": "Food"},
    ], features)


def xstorycloze_repo(root: Path, stories: dict[str, list[tuple[list[str], str, str, int]]]) -> None:
    """juletxara/xstory_cloze as the Hub's parquet export lays it out: `<config>/eval/0000.parquet`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for lang, rows in stories.items():
        folder = root / "juletxara/xstory_cloze" / lang / "eval"
        folder.mkdir(parents=True, exist_ok=True)
        cols: dict[str, list[Any]] = {"story_id": [f"s{i}" for i in range(len(rows))]}
        for k in range(4):
            cols[f"input_sentence_{k + 1}"] = [r[0][k] for r in rows]
        cols["sentence_quiz1"] = [r[1] for r in rows]
        cols["sentence_quiz2"] = [r[2] for r in rows]
        cols["answer_right_ending"] = [r[3] for r in rows]
        pq.write_table(pa.table(cols), folder / "0000.parquet")


def mgsm_repo(root: Path, problems: dict[str, list[tuple[str, int]]]) -> None:
    """juletxara/mgsm as the Hub's parquet export lays it out: `<config>/test/0000.parquet` (answer is null)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for lang, rows in problems.items():
        folder = root / "juletxara/mgsm" / lang / "test"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"question": [q for q, _ in rows], "answer": pa.array([None] * len(rows), pa.string()),
                                 "answer_number": [a for _, a in rows],
                                 "equation_solution": pa.array([None] * len(rows), pa.string())}),
                       folder / "0000.parquet")


def mmmu_repos(root: Path) -> None:
    """lmms-lab/MMMU (split validation, `data/validation-*.parquet`) and MMMU/MMMU_Pro (config "standard (10
    options)" declared in the README's `configs`, split test): MMMU columns with image_1..image_7 features."""
    from datasets import Image as ImageFeature
    from datasets import Value

    base = {"id": Value("string"), "question": Value("string"), "options": Value("string"),
            "answer": Value("string"), **{f"image_{i}": ImageFeature() for i in range(1, 8)}}
    img = {"bytes": png(), "path": None}
    pictures = {"image_1": img, "image_2": {"bytes": png((0, 200, 0)), "path": None},
                **{f"image_{k}": None for k in range(3, 8)}}
    write_split(root, "lmms-lab/MMMU", "validation", [
        {"id": "validation_Art_1", "question": "Compare <image 2> with <image 1>.", "options": "['same', 'different']",
         "answer": "B", "question_type": "multiple-choice", **pictures},
        {"id": "validation_Math_2", "question": "Area of <image 1>?", "options": "[]", "answer": "12",
         "question_type": "open", **pictures}], {**base, "question_type": Value("string")})
    letters = [chr(65 + i) for i in range(10)]
    options = str([f"choice {x}" for x in letters])
    pro_dir = root / "MMMU/MMMU_Pro"
    write_split(root, "MMMU/MMMU_Pro", "ignored", [
        {"id": "test_History_1", "question": "Which event is shown in <image 1>?", "options": options, "answer": "J",
         "subject": "History", **pictures}], {**base, "subject": Value("string")})
    (pro_dir / "data" / "ignored-00000-of-00001.parquet").rename(pro_dir / "standard.parquet")
    target = pro_dir / "standard (10 options)"
    target.mkdir()
    (pro_dir / "standard.parquet").rename(target / "test-00000-of-00001.parquet")
    (pro_dir / "README.md").write_text(
        "---\nconfigs:\n- config_name: standard (10 options)\n  data_files:\n  - split: test\n"
        "    path: standard (10 options)/test-*\n---\n", encoding="utf-8")


def muirbench_repo(root: Path) -> None:
    """MUIRBENCH/MUIRBENCH: split test, several pictures per row in `image_list` (a list of Image features)."""
    from datasets import Image as ImageFeature
    from datasets import Sequence, Value

    features = {"idx": Value("string"), "task": Value("string"), "image_relation": Value("string"),
                "image_type": Value("string"), "question": Value("string"), "options": Sequence(Value("string")),
                "answer": Value("string"), "image_list": Sequence(ImageFeature())}
    two = [{"bytes": png(), "path": None}, {"bytes": png((0, 0, 200)), "path": None}]
    rows = [{"idx": f"m{i}", "task": "Counting", "image_relation": "Similar", "image_type": "Photo",
             "question": "How many cats are in <image> and <image>?", "options": ["one", "two", "three"],
             "answer": "B", "image_list": two} for i in range(4)]
    write_split(root, "MUIRBENCH/MUIRBENCH", "test", rows, features)


def mmmlu_repo(root: Path, locales: dict[str, list[tuple[str, list[str], str, str]]]) -> None:
    """openai/MMMLU: `test/mmlu_<LL-CC>.csv` per locale (an unnamed index column, then Question, A, B, C, D, Answer,
    Subject), one README config per locale (`AR_XY`, ...) besides `default`."""
    folder = root / "openai/MMMLU" / "test"
    folder.mkdir(parents=True, exist_ok=True)
    configs = ["- config_name: default\n  data_files:\n  - split: test\n    path: test/*.csv\n"]
    for locale, rows in locales.items():
        name = f"mmlu_{locale.replace('_', '-')}.csv"
        with open(folder / name, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["", "Question", "A", "B", "C", "D", "Answer", "Subject"])
            for i, (question, options, answer, subject) in enumerate(rows):
                writer.writerow([i, question, *options, answer, subject])
        configs.append(f"- config_name: {locale}\n  data_files:\n  - split: test\n    path: test/{name}\n")
    (root / "openai/MMMLU" / "README.md").write_text("---\nconfigs:\n" + "".join(configs) + "---\n", encoding="utf-8")


def flores_repo(root: Path, sentences: dict[str, list[str]], ids: dict[str, list[int]] | None = None) -> None:
    """openlanguagedata/flores_plus: `devtest/<config>.parquet` per language (id, iso_639_3, iso_15924, text), one
    README config per language with its dev and devtest splits."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = root / "openlanguagedata/flores_plus"
    configs = []
    for config, texts in sentences.items():
        for split in ("dev", "devtest"):
            (base / split).mkdir(parents=True, exist_ok=True)
            rows = texts if split == "devtest" else texts[:1]
            lang, script = config.split("_")
            pq.write_table(pa.table({"id": (ids or {}).get(config, list(range(1, len(rows) + 1)))[: len(rows)],
                                     "iso_639_3": [lang] * len(rows), "iso_15924": [script] * len(rows),
                                     "text": rows}), base / split / f"{config}.parquet")
        configs.append(f"- config_name: {config}\n  data_files:\n  - split: dev\n    path: dev/{config}.parquet\n"
                       f"  - split: devtest\n    path: devtest/{config}.parquet\n")
    (base / "README.md").write_text("---\nconfigs:\n" + "".join(configs) + "---\n", encoding="utf-8")


def tydiqa_repo(root: Path, rows: list[tuple[str, str, str, list[str]]]) -> None:
    """google-research-datasets/tydiqa: `secondary_task/validation-00000-of-00001.parquet` (id, title, context,
    question, answers {text, answer_start}) declared as the README's `secondary_task` config."""
    from datasets import Dataset, Features, Sequence, Value

    base = root / "google-research-datasets/tydiqa"
    (base / "secondary_task").mkdir(parents=True, exist_ok=True)
    features = Features({"id": Value("string"), "title": Value("string"), "context": Value("string"),
                         "question": Value("string"),
                         "answers": Sequence({"text": Value("string"), "answer_start": Value("int32")})})
    Dataset.from_dict({"id": [r[0] for r in rows], "title": ["t"] * len(rows), "context": [r[1] for r in rows],
                       "question": [r[2] for r in rows],
                       "answers": [{"text": r[3], "answer_start": [max(r[1].find(a), 0) for a in r[3]]} for r in rows]},
                      features=features).to_parquet(str(base / "secondary_task" / "validation-00000-of-00001.parquet"))
    (base / "README.md").write_text("---\nconfigs:\n- config_name: secondary_task\n  data_files:\n  - split: validation\n"
                                    "    path: secondary_task/validation-*\n---\n", encoding="utf-8")
