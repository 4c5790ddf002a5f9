"""LLaVA-Bench-Wilder as lmms-eval reads and scores it (EvolvingLMMs-Lab/lmms-eval at 3b686384,
lmms_eval/tasks/llava_wilder/: llava_wilder_small.yaml dataset lmms-lab/LLaVA-Bench-Wilder split test; utils.py
llava_doc_to_text (the Question alone), llava_process_results (doc.get("Question") / doc.get("Answer"), the review
request with the picture as PNG), parse_score and llava_aggregation), through `polyvlm eval --judge` against a
scripted judge on loopback; every score worked out by hand from that code."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from judge_fakes import ScriptedJudge
from published_fixtures import write_split
from test_published import data, run, samples  # noqa: F401  (the fixture and helpers)

REPO = "lmms-lab/LLaVA-Bench-Wilder"
QUESTIONS = ["What is unusual about this picture?", "Which dish is this?", "What does the sign say?",
             "Is the road safe to cross?", "What brand is the laptop?", "How many cups are there?"]
REFERENCE = "A careful reference answer written by GPT-4V."
ANSWERS = {  # prediction -> the judge's reply
    "A cat wearing a hat.": "10 7\nThe answer is short.",
    "Pad thai.": "10,8\nClose.",  # commas become spaces: [10, 8]
    "It says STOP.": "10, 6\nRight.",  # "10  6" splits into three pieces: [-1, -1]
    "Yes.": " 9 5\nToo brief.",  # the first line is not stripped: ['', '9', '5'] -> [-1, -1]
    "Dell.": "Score: 10 and 4",  # not two pieces: [-1, -1]
    "Three cups.": "-999 3\nA sentinel.",  # [-999, 3]: llava_aggregation skips it
}
QUOTING = "A mug. <image> shows it."  # an answer quoting a placeholder reaches the judge as text


def picture(i: int) -> tuple[bytes, str]:
    """Row i's picture as the repo stores it (image feature bytes): JPEG, or a palette PNG for row 0."""
    from PIL import Image

    buf = io.BytesIO()
    img = Image.new("RGB", (24, 16), (40 * i, 120, 200 - 30 * i))
    if i == 0:
        img.convert("P").save(buf, format="PNG")
        return buf.getvalue(), "P"
    img.save(buf, format="JPEG")
    return buf.getvalue(), "RGB"


def wilder_repo(root: Path) -> None:
    from datasets import Image as ImageFeature
    from datasets import Value

    features = {"question_id": Value("string"), "Question": Value("string"), "Answer": Value("string"),
                "image": ImageFeature()}
    write_split(root, REPO, "test", [{"question_id": f"q{i}", "Question": q, "Answer": REFERENCE,
                                      "image": {"bytes": picture(i)[0], "path": None}}
                                     for i, q in enumerate(QUESTIONS)], features)


def reply(text: str) -> str:
    return next(r for p, r in ANSWERS.items() if f"[Assistant 2]\n{p}\n\n[End of Assistant 2]" in text)


def records() -> list[dict]:
    return [{"task": "llava_wilder", "split": "test", "row": i, "prediction": p} for i, p in enumerate(ANSWERS)]


def test_llava_wilder_official_ratio_with_parse_score_quirks(tmp_path: Path, data: Path) -> None:  # noqa: F811
    wilder_repo(data)
    with ScriptedJudge(reply) as judge:
        t = run(tmp_path, "llava_wilder", records(), "--judge", judge.url)["tasks"]["llava_wilder"]
    # pairs [10, 7], [10, 8], [-1, -1] x 3 ([-999, 3] skipped): means (17/5, 12/5) = (3.4, 2.4) rounded to 3 places
    # -> round(2.4 / 3.4 * 100, 1) = 70.6
    off = t["official"]
    assert off["metric"] == "gpt_eval_llava_all" and off["overall"] == 70.6 and t["en"] == 70.6
    # robust: first lines `X Y` (white space between) in 1..10 after stripping: (10, 7), (9, 5) -> 12 / 19; the
    # comma forms, "Score: ..." and the -999 sentinel left out and counted
    assert t["metrics"]["judge_relative"]["overall"] == pytest.approx(1200 / 19) and t["judge_unparsed"] == 4
    rows = samples(tmp_path, "llava_wilder")
    assert rows["test/3"]["input"] == "Is the road safe to cross?"
    assert rows["test/1"]["official_answer"] == {"scores": [10.0, 8.0]}
    assert rows["test/5"]["official_answer"] == {"scores": [-999.0, 3.0]}
    sent = next(p for p in judge.prompts if "Pad thai." in p)
    assert sent.startswith("[Question]\nWhich dish is this?\n\n[Assistant 1]\nA careful reference answer written "
                           "by GPT-4V.\n\n[End of Assistant 1]\n\n[Assistant 2]\nPad thai.\n\n[End of Assistant 2]\n\n"
                           "[System]\nWe would like to request your feedback on the performance of two AI assistants")
    assert sent.endswith("does not affect your judgment.\n\n")


def test_an_answer_quoting_image_reaches_the_judge_as_text(tmp_path: Path, data: Path) -> None:  # noqa: F811
    """An answer holding `<image>` is judged like any other: the review text keeps it, the picture follows."""
    wilder_repo(data)
    recs = [{"task": "llava_wilder", "split": "test", "row": 0, "prediction": QUOTING}]
    with ScriptedJudge(lambda text: "8 6\nFine.") as judge:
        t = run(tmp_path, "llava_wilder", recs, "--judge", judge.url)["tasks"]["llava_wilder"]
    (body,) = judge.bodies
    text, image = body["messages"][0]["content"]
    assert f"[Assistant 2]\n{QUOTING}\n\n[End of Assistant 2]" in text["text"] and image["type"] == "image_url"
    assert t["official"]["overall"] == 75.0  # round(6 / 8 * 100, 1): the pair was read, not a failed request


def test_llava_wilder_judge_request_carries_the_picture(tmp_path: Path, data: Path) -> None:  # noqa: F811
    """get_chat_response sends one user message: the review text, then the picture as an image_url part, PNG of
    the decoded image (not converted to RGB: the palette picture stays a palette), temperature 0, max_tokens 1024."""
    from PIL import Image

    wilder_repo(data)
    with ScriptedJudge(reply) as judge:
        run(tmp_path, "llava_wilder", records(), "--judge", judge.url)
    assert len(judge.bodies) == len(ANSWERS) and all(n == 1 for n in judge.pictures.values())
    for body in judge.bodies:
        assert [m["role"] for m in body["messages"]] == ["user"]
        assert body["temperature"] == 0.0 and body["max_tokens"] == 1024
        text, image = body["messages"][0]["content"]
        assert text["type"] == "text" and image["type"] == "image_url"
        row = next(i for i, p in enumerate(ANSWERS) if f"[Assistant 2]\n{p}\n" in text["text"])
        url = image["image_url"]["url"]
        assert url.startswith("data:image/png;base64,")
        sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        raw, mode = picture(row)
        assert sent.format == "PNG" and sent.mode == mode
        assert sent.convert("RGB").tobytes() == Image.open(io.BytesIO(raw)).convert("RGB").tobytes()
