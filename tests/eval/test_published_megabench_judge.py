"""MEGA-Bench's judged metrics through `polyvlm eval --judge` (a scripted judge on loopback): gpt_4o_as_judge as
lmms_eval/tasks/megabench/metrics/scoring/vlm_as_judge.py asks (OpenAIVLMJudger.prepare_eval_prompt's text, the
query's pictures before it when judge_model_type is "with image") and reads (VLMJudgeScore.parse_results:
`**Score**: N` -> N / 10, else 0), and ascii_art_gpt4o_judge as scoring/ascii_art_vlm_judge.py does (two 224 x 224
renderings, 1 when "yes" is in the reply; a non-string or empty reply 0 without asking)."""

from __future__ import annotations

from pathlib import Path

import pytest
from judge_fakes import ScriptedJudge
from megabench_fixtures import info, row, write_repo
from megabench_reference import reference
from test_published import data, run  # noqa: F401  (the fixture and helpers)

from polyvlm.eval.metrics.megabench.judges import ascii_text_to_image, parse_judge_score

CONFIG = {"judge_model_type": "with image", "reference_type": "answer",
          "eval_criteria_prompt": "Question: {q}\nReference: {ref}\nStyle: {style}\nAnswer: {out}\nRate it.",
          "template_mapping": {"q": "example_question", "ref": "answers.answer", "style": "eval_context.style",
                               "out": "model_output"}}


def _judged_info() -> str:
    value = eval(info({"answer": "gpt_4o_as_judge"}, parser="dummy"))  # noqa: S307 - our own literal
    value["gpt4o_eval_configs"] = CONFIG
    return repr(value)


def test_gpt_4o_as_judge_prompt_pictures_and_score(tmp_path: Path, data: Path) -> None:  # noqa: F811
    rows = [row(0, "open_task", {"answer": "A red square"}, _judged_info(), query_text="Describe <image>",
                eval_context={"style": "short"}),
            row(1, "open_task", {"answer": "A red square"}, _judged_info(), query_text="Describe <image>",
                eval_context={"style": "short"})]
    write_repo(data, "open", rows)
    replies = {"It is red": "**Score explanation**: close.\n\n**Score**: 7", "Blue": "no score here"}

    def reply(text: str) -> str:
        return next(v for k, v in replies.items() if f"Answer: {k}\n" in text)

    with ScriptedJudge(reply) as judge:
        res = run(tmp_path, "megabench_open", [{"task": "megabench_open", "split": "test", "row": i, "prediction": p}
                                               for i, p in enumerate(["It is red", "Blue"])], "--judge", judge.url)
    off = res["tasks"]["megabench_open"]["official"]
    assert off["by_category"] == {"open_task": pytest.approx(35.0)}  # (0.7 + 0) / 2
    assert "note" not in off
    # the text the reference judger builds (images: none for this comparison; ours sent the query's picture)
    ref = reference("scoring.vlm_as_judge")
    judger = ref.OpenAIVLMJudger({**CONFIG, "judge_model_type": "text only"})
    want = judger.prepare_eval_prompt({"answer": "A red square"}, "It is red", [], "Describe <image>",
                                      {"style": "short"})[-1]["text"]
    assert want in judge.prompts and judge.pictures[want] == 1
    body = next(b for b in judge.bodies if any(p.get("text") == want for p in b["messages"][-1]["content"]))
    parts = body["messages"][-1]["content"]
    assert [p["type"] for p in parts] == ["image_url", "text"] and body["temperature"] == 0.0


@pytest.mark.parametrize("reply", ["**Score**: 7", "**Score** : 10 and **Score explanation**: fine", "Score: 7",
                                   "", "**Score**: x", "**Score explanation**: meh\n**Score**:3"])
def test_score_parsing_as_reference(reply: str) -> None:
    ref = reference("scoring.vlm_as_judge").VLMJudgeScore.parse_results(None, reply)
    assert parse_judge_score(reply) == ref


def test_ascii_art_rendering_as_reference() -> None:
    conv = reference("scoring.common.conversions")
    for text in ["/\\_/\\\n( o.o )\n > ^ <", "x", "  ##  \n#    #\n######"]:
        ours, theirs = ascii_text_to_image(text, 224, 224), conv.ascii_text_to_image(text, 224, 224)
        assert ours.size == theirs.size == (224, 224) and ours.tobytes() == theirs.tobytes()


def test_ascii_art_judge_through_the_cli(tmp_path: Path, data: Path) -> None:  # noqa: F811
    art = info({"art": "ascii_art_gpt4o_judge"}, parser="json")
    write_repo(data, "open", [row(0, "ascii_task", {"art": " /\\\n/__\\"}, art),
                              row(1, "ascii_task", {"art": " /\\\n/__\\"}, art),
                              row(2, "ascii_task", {"art": " /\\\n/__\\"}, art)])
    answers = iter(["Yes, both are tents.", "no"])
    with ScriptedJudge(lambda text: next(answers)) as judge:
        preds = ['{"art": " /\\\\\\n/__\\\\"}', '{"art": "()"}', '{"art": ""}']  # the last: empty -> 0, not asked
        res = run(tmp_path, "megabench_open", [{"task": "megabench_open", "split": "test", "row": i, "prediction": p}
                                               for i, p in enumerate(preds)], "--judge", judge.url)
    assert len(judge.bodies) == 2 and all(judge.pictures[p] == 2 for p in judge.prompts)
    assert res["tasks"]["megabench_open"]["official"]["by_category"] == {"ascii_task": pytest.approx(100 / 3)}
