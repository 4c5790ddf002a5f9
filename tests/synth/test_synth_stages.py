"""categorize, rewrite and judge on crafted records, with an in-process scripted backend."""

from __future__ import annotations

import asyncio
import json

import pytest
from synth_helpers import ScriptBackend, conv

from polyvlm.synth.stages.base import StageContext, get_stage, params_from_dict
from polyvlm.synth.templates import PromptError, load_prompt


def make(name: str, image_dir, backend=None, **params):
    cls = get_stage(name)
    prompt = load_prompt(cls.prompt_name) if cls.prompt_name else None
    return cls(params_from_dict(cls.Params, params, name), StageContext(image_dir, backend, prompt))


def run(stage, rec):
    return asyncio.run(stage.process(rec))


@pytest.mark.parametrize("rec, expected", [
    (conv("1", "What does the bar chart show for 2020?", "Sales rose."), "chart"),
    (conv("2", "What is written on the sign?", "STOP"), "ocr"),
    (conv("3", "Give the bounding box of the dog.", "[0.1, 0.2, 0.5, 0.6]"), "detection"),
    (conv("4", "Solve the equation shown.", "x = 3"), "math_code"),
    (conv("5", "Describe the image in detail.", "A red square."), "caption"),
    (conv("6", "Is there a fracture in this x-ray?", "No."), "domain"),
    (conv("7", "Compare the two pictures.", "Both red.", image=["red.png", "blue.png"]), "multi_image"),
    (conv("8", "Tell me a joke.", "Why did...", image=None), "text_only"),
    ({**conv("9", "What happens?", "A goal.", image=None), "video": "v.mp4"}, "video"),
    (conv("10", "Is the cat happy?", "Yes."), "general"),
])
def test_categorize_rules(rec, expected, image_dir):
    res = run(make("categorize", image_dir), rec)
    assert res.status == "ok" and res.outputs[0]["category"] == expected


def test_categorize_source_map_and_model_fallback(image_dir):
    stage = make("categorize", image_dir, source_map={"chartqa": "chart"})
    assert run(stage, conv("chartqa_1", "Is the cat happy?", "Yes."), ).outputs[0]["category"] == "chart"
    backend = ScriptBackend(lambda req: '{"category": "domain"}')
    stage = make("categorize", image_dir, backend, mode="rules_then_model")
    assert run(stage, conv("a", "Is the cat happy?", "Yes.")).outputs[0]["category"] == "domain"  # rules undecided
    assert run(stage, conv("b", "What is written on the sign?", "STOP")).outputs[0]["category"] == "ocr"
    assert len(backend.requests) == 1 and backend.requests[0].images[0].endswith("red.png")
    bad = make("categorize", image_dir, ScriptBackend(lambda req: "no idea"), mode="model")
    res = run(bad, conv("c", "Is the cat happy?", "Yes."))
    assert res.status == "rejected" and res.code == "unparseable_output"


def test_categorize_rejects_invalid_record_with_reason(image_dir):
    res = run(make("categorize", image_dir), {"id": "x", "conversations": []})
    assert res.status == "rejected" and "empty conversation" in res.reason and "x" in res.reason


def test_rewrite_uses_category_template_and_keeps_media(image_dir):
    pairs = {"pairs": [{"question": "What trend does the chart show?", "answer": "Step 1: ... It rises."},
                       {"question": "Which year is highest?", "answer": "2020."}]}
    backend = ScriptBackend(lambda req: "Sure!\n```json\n" + json.dumps(pairs) + "\n```")
    stage = make("rewrite", image_dir, backend, n=2)
    rec = conv("r1", "What does the bar chart show?", "Sales.", category="chart")
    res = run(stage, rec)
    out = res.outputs[0]
    assert res.status == "ok" and out["id"] == "r1-rw" and out["source_id"] == "r1" and out["image"] == "red.png"
    assert out["conversations"][0]["value"].startswith("<image>\nWhat trend")
    assert [t["from"] for t in out["conversations"]] == ["human", "gpt", "human", "gpt"]
    assert "this chart" in backend.requests[0].messages[-1]["content"]  # the chart variant of the template
    garbage = make("rewrite", image_dir, ScriptBackend(lambda req: "I cannot do that"), attempts=2)
    res = run(garbage, rec)
    assert res.status == "rejected" and res.code == "unparseable_output"


def test_rewrite_refuses_media_outside_root(image_dir):
    res = run(make("rewrite", image_dir, ScriptBackend(lambda r: "{}")), conv("e", "q?", "a", image="../x.png"))
    assert res.status == "rejected" and "escapes the image root" in res.reason


@pytest.mark.parametrize("reply, status, score", [
    ('{"score": 4, "reason": "grounded"}', "ok", 4.0),
    ('{"score": 2, "reason": "hallucinated a dog"}', "rejected", 2.0),
    ("Score: 3. Mostly fine.", "ok", 3.0),
])
def test_judge_threshold_stores_score_and_reason(reply, status, score, image_dir):
    stage = make("judge", image_dir, ScriptBackend(lambda req: reply), threshold=3)
    res = run(stage, conv("j", "What color?", "Red."))
    assert res.status == status and res.meta["score"] == score
    if status == "ok":
        assert res.outputs[0]["judge_score"] == score
    else:
        assert res.code == "below_threshold" and "hallucinated a dog" in res.reason


def test_judge_out_of_range_score_is_rejected(image_dir):
    res = run(make("judge", image_dir, ScriptBackend(lambda req: '{"score": 9}')), conv("j", "q?", "a"))
    assert res.status == "rejected" and res.code == "unparseable_output" and "outside" in res.reason


def test_params_and_prompts_fail_loudly(tmp_path):
    cls = get_stage("judge")
    with pytest.raises(ValueError, match=r"judge: unknown key\(s\) \['treshold'\]"):
        params_from_dict(cls.Params, {"treshold": 3}, "judge")
    with pytest.raises(ValueError, match="threshold: expected float"):
        params_from_dict(cls.Params, {"threshold": "high"}, "judge")
    with pytest.raises(ValueError, match="unknown stage 'jugde'"):
        get_stage("jugde")
    bad = tmp_path / "p.yaml"
    bad.write_text("name: x\nversion: 1\nuser: 'hello $who'\n")
    with pytest.raises(PromptError, match=r"p.yaml: no value for variable \$who"):
        load_prompt(str(bad)).render()
    assert load_prompt("judge").version_id == "judge@1"
