"""ActivityNet-QA as lmms-eval asks and judges it, beside polyvlm's rule reading, from the repo's layout. Official rules
worked out by hand from EvolvingLMMs-Lab/lmms-eval at 80391ce3 (Dec 2024):
- lmms_eval/tasks/activitynetqa/_default_template_yaml: lmms-lab/ActivityNetQA, cache_dir activitynetqa, post_prompt
  " Answer the question using a single word or phrase.", gpt_eval_model_name gpt-3.5-turbo-0613;
  activitynetqa_generation.yaml: test_split test, max_new_tokens 64, metrics gpt_eval_score and gpt_eval_accuracy;
- lmms_eval/tasks/activitynetqa/utils.py: activitynetqa_doc_to_visual (<cache>/all_test/v_<video_name>.mp4, every "mp4"
  of the path replaced by mp4, webm, mkv in turn), activitynetqa_doc_to_text (question.capitalize() + "?" +
  post_prompt), get_eval (the system and user messages, temperature 0, max_tokens 64), parse_score (the first {...}
  through ast.literal_eval; int(score); "yes" / "no" by substring), activitynetqa_aggregate_accuracy (yes / (yes + no)
  x 100), activitynetqa_aggregate_score (sum of scores / every reply)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from judge_fakes import ScriptedJudge
from test_published import data, run, samples  # noqa: F401  (the fixture and helpers)
from video_fixtures import activitynetqa_repo

ROWS = [{"video_name": "a1", "question": "what is Tom doing", "answer": "dancing", "type": 1},
        {"video_name": "a2", "question": "is the man outdoors", "answer": "yes", "type": 3},
        {"video_name": "a3", "question": "what color is the car", "answer": "red", "type": 4},
        {"video_name": "a4", "question": "what color is the hat", "answer": "yes", "type": 4},
        {"video_name": "a5", "question": "how many people are there", "answer": "2", "type": 7},
        {"video_name": "a6", "question": "what color is the door", "answer": "green", "type": 4}]
PREDS = ["Dancing.", "no", "It is red", "maybe", "two", "blue"]
REVIEWS = {"Dancing.": "{'pred': 'yes', 'score': 4.8}",  # yes; int(4.8) = 4
           "no": "{'pred': 'no', 'score': 0}",
           "It is red": "Sure! {'pred': 'Yes', 'score': '5'}",  # text around the dict is ignored; "Yes" -> yes; "5" -> 5
           "maybe": "{'pred': 'partially', 'score': 2}",  # neither yes nor no: out of the accuracy, score counts
           "two": "The prediction is wrong.",  # no dict: unreadable (lmms-eval stops); left out here, score 0
           "blue": "{'pred': 'not correct', 'score': 1}"}  # "no" is in "not correct": no


def judge(text: str) -> str:
    return REVIEWS[text.split("Predicted Answer: ", 1)[1].split("\n", 1)[0]]


def test_activitynetqa_judge_verdicts_accuracy_and_score(tmp_path: Path, data: Path) -> None:  # noqa: F811
    activitynetqa_repo(data, ROWS, {"all_test_v01.zip": [f"v_a{i}.mp4" for i in range(1, 7)]})
    records = [{"task": "activitynetqa", "split": "test", "row": i, "prediction": p} for i, p in enumerate(PREDS)]
    with ScriptedJudge(judge) as j:
        t = run(tmp_path, "activitynetqa", records, "--judge", j.url)["tasks"]["activitynetqa"]
    o = t["official"]
    assert o["metric"] == "gpt_eval_accuracy" and o["overall"] == 50.0  # yes 2, no 2
    assert o["other_metrics"] == {"gpt_eval_score": 2.0}  # (4 + 0 + 5 + 2 + 0 + 1) / 6
    assert o["by_category"] == {"1": 100.0, "3": 0.0, "4": 50.0}  # type 7's only verdict is unreadable
    assert o["note"] == ("1 review(s) unreadable (lmms-eval stops on them): left out, score 0; 1 verdict(s) neither "
                         "yes nor no: left out of the accuracy, as lmms-eval does")
    # the rule reading: "dancing" and "red" are found in the replies, nothing else
    assert t["metrics"]["accuracy"]["overall"] == pytest.approx(100 / 3)
    body = next(b for b in j.bodies if "Predicted Answer: Dancing.\n" in b["messages"][-1]["content"])
    assert body["temperature"] == 0 and body["max_tokens"] == 64
    assert body["messages"][0] == {"role": "system", "content": (
        "You are an intelligent chatbot designed for evaluating the correctness of generative outputs for "
        "question-answer pairs. Your task is to compare the predicted answer with the correct answer and determine if "
        "they match meaningfully. Here's how you can accomplish the task:------##INSTRUCTIONS: - Focus on the "
        "meaningful match between the predicted answer and the correct answer.\n- Consider synonyms or paraphrases as "
        "valid matches.\n- Evaluate the correctness of the prediction compared to the answer.")}
    user = body["messages"][-1]["content"]
    assert user.startswith("Please evaluate the following video-based question-answer pair:\n\nQuestion: what is Tom "
                           "doing\nCorrect Answer: dancing\nPredicted Answer: Dancing.\n\nProvide your evaluation only")
    assert user.endswith("value of 'score' is in INTEGER, not STRING.DO NOT PROVIDE ANY OTHER OUTPUT TEXT OR "
                         "EXPLANATION. Only provide the Python dictionary string. For example, your response should "
                         "look like this: {'pred': 'yes', 'score': 4.8}.")
    rows = samples(tmp_path, "activitynetqa")
    assert rows["test/0"]["input"] == "What is tom doing? Answer the question using a single word or phrase."


def test_activitynetqa_without_a_judge_has_only_the_rule_reading(tmp_path: Path, data: Path) -> None:  # noqa: F811
    activitynetqa_repo(data, ROWS[:2], {"all_test_v01.zip": ["v_a1.mp4", "v_a2.mp4"]})
    records = [{"task": "activitynetqa", "split": "test", "row": i, "prediction": p} for i, p in enumerate(PREDS[:2])]
    t = run(tmp_path, "activitynetqa", records)["tasks"]["activitynetqa"]
    assert "official" not in t and t["metrics"]["accuracy"]["overall"] == 50.0


def test_activitynetqa_videos_by_extension_reach_the_endpoint(tmp_path: Path, data: Path) -> None:  # noqa: F811
    from polyvlm import media
    from polyvlm.eval.cli import main as eval_main
    from polyvlm.eval.tasks import TaskError, resolve

    activitynetqa_repo(data, [{"video_name": "w1", "question": "what is he holding", "answer": "cup", "type": 0},
                              {"video_name": "k1", "question": "where is he", "answer": "park", "type": 2}],
                       {"all_test_v01.zip": ["v_w1.webm"], "all_test_v02.zip": ["v_k1.mkv"]}, levels={"v_w1": 80, "v_k1": 230})
    out = tmp_path / "out"
    with ScriptedJudge(lambda prompt: "a cup") as model:
        assert eval_main(["--endpoint", model.url, "--tasks", "activitynetqa", "--output_path", str(out)]) == 0
    levels = {"What is he holding?": 80, "Where is he?": 230}
    assert len(model.bodies) == 2
    for body, prompt in zip(model.bodies, model.prompts):
        content = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
        (url,) = [p["video_url"]["url"] for p in content if p.get("type") == "video_url"]
        frames = media.load("video", base64.b64decode(url.split(",", 1)[1]))
        assert abs(frames[0].getpixel((8, 8))[0] - levels[prompt.split(" Answer the")[0]]) <= 3
        assert body["max_tokens"] == 64

    activitynetqa_repo(data, [{"video_name": "gone", "question": "why", "answer": "x", "type": 0}], {})
    tasks, _ = resolve(["activitynetqa"])
    with pytest.raises(TaskError, match=r"(?s)1 of 1 videos are not here \(first: lmms-lab/ActivityNetQA split test row "
                                        r"0, all_test/v_gone.mp4 or all_test/v_gone.webm or all_test/v_gone.mkv\)"):
        tasks[0].samples()
