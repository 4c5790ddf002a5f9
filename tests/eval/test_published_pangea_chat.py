"""PangeaBench's judged chat benchmarks from their published layouts, through `polyvlm eval --judge` against a scripted
judge on loopback: M-LlavaBench scored as neulab/Pangea evaluation/lmms-eval/lmms_eval/tasks/multilingual-llava-bench/
utils.py scores it, and xChatBench as prometheus-eval's BiGGen-Bench grading reads it, each worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from judge_fakes import ScriptedJudge
from published_fixtures import png, write_split
from test_published import data, run, samples  # noqa: F401  (the fixture and helpers)

from polyvlm.eval.cli import main as eval_main

LLAVA_REPO = "neulab/PangeaBench-multilingual-llava-bench"
CAPTION = "A brown dog runs over a meadow on a sunny day."


def llava_repo(root: Path) -> None:
    """multilingual_llava_bench_<lang>.yaml: one split per language code; utils.py reads doc["image"] (an image
    feature), "question", "gpt_answer", "caption" (a string, or lines joined) and "category"."""
    from datasets import Image as ImageFeature
    from datasets import Value

    features = {"question_id": Value("string"), "image": ImageFeature(), "question": Value("string"),
                "gpt_answer": Value("string"), "caption": Value("string"), "category": Value("string")}
    img = {"bytes": png((30, 170, 50)), "path": None}

    def row(i: int, q: str, ref: str, cat: str) -> dict:
        return {"question_id": str(i), "image": img, "question": q, "gpt_answer": ref, "caption": CAPTION,
                "category": cat}

    en_ref = "The dog is running across a green field in the sunshine."
    write_split(root, LLAVA_REPO, "en", [row(0, "What is the dog doing?", en_ref, "conv"),
                                         row(1, "Describe the picture.", en_ref, "detail"),
                                         row(2, "How many legs does the dog have?", en_ref, "complex"),
                                         row(3, "Where is the dog?", en_ref, "conv")], features)
    zh_ref = "这只狗正在阳光下的绿色草地上奔跑。"
    write_split(root, LLAVA_REPO, "zh", [row(0, "图片里的狗在做什么？", zh_ref, "conv"),
                                         row(1, "请描述这张图片。", zh_ref, "complex")], features)


LLAVA_ANSWERS = {  # (split, row) -> (prediction, the judge's reply)
    ("en", 0): ("A brown dog is running quickly across the grass field.", "8 6\nBoth are fine; the second is short."),
    ("en", 1): ("Le chien court dans le champ vert sous le soleil.", "9 7\nAccurate, but in French."),
    ("en", 2): ("42", "7 5\nA bare number."),
    ("en", 3): ("The dog is in a large field of grass.", "8, 6\nThe comma and the space."),
    ("zh", 0): ("一只棕色的狗正在草地上快速奔跑。", "9 8\n很好。"),
    ("zh", 1): ("The dog is running on the grass under the sun.", "8 7\nCorrect, in English."),
}


def llava_reply(text: str, n: int) -> str:
    return next(r for p, r in LLAVA_ANSWERS.values() if f"[Assistant 2]\n{p}\n\n[End of Assistant 2]" in text)


def test_m_llavabench_official_ratio_language_rule_and_failures(tmp_path: Path, data: Path) -> None:  # noqa: F811
    llava_repo(data)
    records = [{"task": "m_llavabench", "split": s, "row": r, "prediction": p} for (s, r), (p, _) in LLAVA_ANSWERS.items()]
    with ScriptedJudge(llava_reply) as judge:
        res = run(tmp_path, "m_llavabench", records, "--judge", judge.url)
    t = res["tasks"]["m_llavabench"]
    # utils.py llava_process_results, per sample [gpt_answer score, answer score]:
    #  en/0 [8, 6]; en/1 French answer: langdetect "fr" is neither the reference's nor the question's "en" -> [9, 0];
    #  en/2 "42": langdetect raises (no features) -> the whole sample [-1, -1]; en/3 "8, 6" -> parse_score splits
    #  "8  6" on single spaces into three pieces -> [-1, -1]; both failures still enter the means.
    #  llava_aggregation en: means (3.75, 1.0) -> round(1.0 / 3.75 * 100, 1) = 26.7
    #  zh/0 [9, 8]; zh/1 English answer to a Chinese question -> [8, 0]: means (8.5, 4.0) -> 47.1
    off = t["official"]
    assert off["by_language"] == {"en": 26.7, "zh": 47.1} and off["metric"] == "gpt_eval_llava_all"
    assert t["en"] == 26.7 and t["mul"] == 47.1 and off["overall"] == pytest.approx((26.7 + 47.1) / 2)
    # gpt_eval_llava_conv / _detail / _complex, per language then averaged: conv en (3.5, 2.5) -> 71.4, zh 88.9;
    # complex en holds only the failure [-1, -1], whose ratio is -1 / -1 -> 100.0 (the quirk), zh 0.0
    assert off["by_category"] == {"conv": pytest.approx((71.4 + 88.9) / 2), "detail": 0.0, "complex": 50.0}
    # robust: strict `X Y` first lines only (en/3 left out and counted), py3langid's wrong-language zero, the
    # failures not averaged: en (8,6) (9,0) (7,5) -> 11 / 24; zh (9,8) (8,0) -> 8 / 17
    rob = t["metrics"]["judge_relative"]["by_language"]
    assert rob == {"en": pytest.approx(1100 / 24), "zh": pytest.approx(800 / 17)} and t["judge_unparsed"] == 1
    rows = samples(tmp_path, "m_llavabench")
    assert rows["en/1"]["official_answer"] == {"scores": [9.0, 0.0], "answer_language": "fr"}
    assert rows["en/2"]["official_answer"]["scores"] == [-1.0, -1.0]
    assert rows["zh/0"]["input"] == "图片里的狗在做什么？"  # llava_doc_to_text: the question, no pre/post prompt
    # the judge was asked as get_eval asks: its system message, temperature 0.2, max_tokens 1024, the review text
    body = next(b for b in judge.bodies if "图片里的狗在做什么" in b["messages"][-1]["content"])
    assert body["temperature"] == 0.2 and body["max_tokens"] == 1024
    assert body["messages"][0] == {"role": "system", "content": "You are a helpful and precise assistant for "
                                                                "checking the quality of the answer."}
    review = body["messages"][1]["content"]
    assert review.startswith(f"[Context]\n{CAPTION}\n\n[Question]\n图片里的狗在做什么？\n\n[Assistant 1]\n"
                             "这只狗正在阳光下的绿色草地上奔跑。\n\n[End of Assistant 1]\n\n[Assistant 2]\n")
    assert "\n\n[System]\nWe would like to request your feedback on the performance of two AI assistants" in review
    assert review.endswith("ensuring that the order in which the responses were presented does not affect your "
                           "judgment.\n\n")
    # open-ended: the share of replies in the question's language (py3langid), per language
    assert t["answered_in_language"]["rate"] == {"en": pytest.approx(200 / 3), "zh": 50.0}


XCHAT = "neulab/Pangea/evaluation/lmms-eval/lmms_eval/tasks/xchat"
RUBRIC = {"criteria": "Does the response read the board correctly?", "score1_description": "Nothing right.",
          "score2_description": "Little right.", "score3_description": "Half right.",
          "score4_description": "Mostly right.", "score5_description": "All right."}


def xchat_tree(root: Path) -> None:
    """xchat/<Language>/<task>/data.json (a list of BiGGen-Bench-style records) and <instance_idx>.jpg beside it."""
    def write(lang: str, task: str, inputs: list[str]) -> None:
        folder = root / XCHAT / lang / task
        folder.mkdir(parents=True, exist_ok=True)
        records = [{"capability": "vision", "task": task, "instance_idx": i,
                    "system_prompt": "You are helpful visual-language assistant.", "input": q,
                    "reference_answer": f"reference {lang} {i}", "score_rubric": RUBRIC, "atomic_checklist": [],
                    "background_knowledge": [], "caption": "a board"} for i, q in enumerate(inputs)]
        (folder / "data.json").write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
        for i in range(len(inputs)):
            (folder / f"{i}.jpg").write_bytes(png())

    write("English", "ocr", ["What is written on the board?", "Read the second line."])
    write("Korean", "ocr", ["이 사진에서 하늘은 무슨 색인가요?", "칠판에 무엇이 쓰여 있나요?"])


XCHAT_ANSWERS = {  # sample id -> (prediction, replies to the 1st, 2nd, ... request)
    "English/0": ("The board says cardboard 3 kg.", ["Accurate and complete. [RESULT] 4"]),
    "English/1": ("The second line lists fabric.", ["Partly right. Score: 3"]),
    "Korean/0": ("The sky is blue and there are a few white clouds.", ["No verdict here.", "In English. [RESULT] 2"]),
    "Korean/1": ("하늘은 파란색이고 흰 구름이 조금 있습니다.", ["Off the scale. [RESULT] 6"]),
}


def xchat_reply(text: str, n: int) -> str:
    replies = next(r for p, r in XCHAT_ANSWERS.values() if f"###Response to evaluate:\n{p}\n" in text)
    return replies[min(n, len(replies)) - 1]


def test_xchatbench_prometheus_grading_retries_and_normalisation(tmp_path: Path, data: Path) -> None:  # noqa: F811
    xchat_tree(data)
    records = [{"task": "xchatbench", "id": k, "prediction": p} for k, (p, _) in XCHAT_ANSWERS.items()]
    with ScriptedJudge(xchat_reply) as judge:
        res = run(tmp_path, "xchatbench", records, "--judge", judge.url)
    t = res["tasks"]["xchatbench"]
    # prometheus_eval parser.py: a marker ([RESULT], Score:, ...) then 1-5 closing the reply. English: 4 and 3 ->
    # (3.5 - 1) / 4 = 62.5. Korean/0 has no verdict, is asked again (utils.py retries) and gets 2; Korean/1's 6 is out
    # of range on all 6 asks and is left out -> Korean (2 - 1) / 4 = 25.0. The English reply to a Korean request is
    # not penalised: the published verdicts (xchat/responses/llava-v1.6-vicuna-7b-hf-Korean-results.json) score
    # English replies 1-5 like the others.
    off = t["official"]
    assert off["by_language"] == {"en": 62.5, "ko": 25.0} and off["overall"] == pytest.approx(43.75)
    assert t["en"] == 62.5 and t["mul"] == 25.0
    assert judge.asked[next(k for k in judge.asked if "하늘은 파란색이고" in k)] == 6
    # robust: only "[RESULT] N" is read (English/1's "Score: 3" and Korean/1 left out and counted)
    assert t["metrics"]["judge_rubric"]["by_language"] == {"en": 75.0, "ko": 25.0} and t["judge_unparsed"] == 2
    rows = samples(tmp_path, "xchatbench")
    # prompts/<language>_prompts.jsonl: the system prompt, a blank line, the input, in one user turn
    assert rows["Korean/0"]["input"] == "You are helpful visual-language assistant.\n\n이 사진에서 하늘은 무슨 색인가요?"
    assert rows["Korean/0"]["category"] == "ocr" and rows["English/1"]["official_answer"] == 3
    body = next(b for b in judge.bodies if "The board says cardboard" in b["messages"][-1]["content"])
    assert body["temperature"] == 1.0 and body["top_p"] == 0.9 and body["max_tokens"] == 1024
    assert body["messages"][0]["content"].startswith("You are a fair judge assistant tasked with providing clear")
    prompt = body["messages"][1]["content"]
    assert "###The instruction to evaluate:\nWhat is written on the board?\n\n###Response to evaluate:\n" in prompt
    assert "###Reference Answer (Score 5):\nreference English 0\n\n###Score Rubrics:\n[Does the response read the " \
           "board correctly?]\nScore 1: Nothing right.\nScore 2: Little right." in prompt
    assert prompt.endswith("Score 5: All right.\n\n###Feedback: ")
    assert t["answered_in_language"]["rate"] == {"en": 100.0, "ko": 50.0}


def test_judged_tasks_need_a_judge_and_the_data(tmp_path: Path, data: Path,  # noqa: F811
                                                capsys: pytest.CaptureFixture[str]) -> None:
    preds = tmp_path / "p.jsonl"
    preds.write_text('{"task": "xchatbench", "id": "English/0", "prediction": "x"}\n', encoding="utf-8")
    assert eval_main(["--predictions", str(preds), "--tasks", "xchatbench", "--out", str(tmp_path / "o")]) != 0
    assert "git clone --depth 1 https://github.com/neulab/Pangea $POLYVLM_EVAL_DATA/neulab/Pangea" in \
        capsys.readouterr().err
    xchat_tree(data)
    assert eval_main(["--predictions", str(preds), "--tasks", "xchatbench", "--out", str(tmp_path / "o")]) != 0
    assert "scored by an LLM judge: pass --judge URL" in capsys.readouterr().err
    assert eval_main(["--tasks", "list"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("xchatbench"))
    assert "local" in line and "en,es,hi,id,ja,ko,rw,zh" in line
    # a record without its rubric stops the run, naming the file and record
    bad = data / XCHAT / "Korean" / "ocr" / "data.json"
    records = json.loads(bad.read_text(encoding="utf-8"))
    del records[1]["score_rubric"]
    bad.write_text(json.dumps(records), encoding="utf-8")
    assert eval_main(["--predictions", str(preds), "--tasks", "xchatbench", "--out", str(tmp_path / "o")]) != 0
    assert f"{bad} record 1: missing or bad key 'score_rubric'" in capsys.readouterr().err


def test_both_in_a_suite_give_the_papers_table(tmp_path: Path, data: Path) -> None:  # noqa: F811
    """One judge for both tasks; results.md gives each task's en and mul and their means (the PangeaBench table)."""
    llava_repo(data)
    xchat_tree(data)
    suite = tmp_path / "chat.yaml"
    suite.write_text("suite: chat\ntasks: [m_llavabench, xchatbench]\n", encoding="utf-8")
    records = [{"task": "m_llavabench", "split": s, "row": r, "prediction": p} for (s, r), (p, _) in LLAVA_ANSWERS.items()]
    records += [{"task": "xchatbench", "id": k, "prediction": p} for k, (p, _) in XCHAT_ANSWERS.items()]

    def reply(text: str, n: int) -> str:
        return xchat_reply(text, n) if "###Response to evaluate:" in text else llava_reply(text, n)

    with ScriptedJudge(reply) as judge:
        res = run(tmp_path, str(suite), records, "--judge", judge.url)
    assert res["suites"][0]["en"] == pytest.approx((26.7 + 62.5) / 2)
    assert res["suites"][0]["mul"] == pytest.approx((47.1 + 25.0) / 2)
    md = (tmp_path / "out" / "results.md").read_text(encoding="utf-8")
    assert "| task | en | mul |\n|---|---|---|\n| m_llavabench | 26.7 | 47.1 |\n| xchatbench | 62.5 | 25.0 |\n" \
           "| mean | 44.6 | 36.0 |" in md
