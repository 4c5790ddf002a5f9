"""WildVision-Bench 0617 as lmms-eval reads and scores it (EvolvingLMMs-Lab/lmms-eval at 3b686384,
lmms_eval/tasks/wild_vision_bench/: wild_vision_bench0617.yaml dataset WildVision/wildvision-arena-data config
release_bench_0617_with_modelresponse split test500; _default_template_yaml baseline_model claude-3-sonnet-20240229;
utils.py wild_vision_doc_to_text, system_prompt, prompt_template, get_score, wild_vision_process_results,
compute_mle_elo, predict_win_rate, get_win_rate_column and the wild_vision_aggregation_* functions), through
`polyvlm eval --judge` against a scripted judge on loopback; every score worked out by hand from that code."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from judge_fakes import ScriptedJudge
from mammoth_fixtures import write_config
from published_fixtures import png
from test_published import data, run, samples  # noqa: F401  (the fixture and helpers)

from polyvlm.eval.metrics.judged import elo_win_rate
from polyvlm.eval.tasks import TaskError, resolve

REPO, CONFIG, BASELINE = "WildVision/wildvision-arena-data", "release_bench_0617_with_modelresponse", \
    "claude-3-sonnet-20240229"
VERDICTS = [  # (prediction, the judge's reply, the row's language column)
    ("A red kite.", "The kite is red.\n\nMy final verdict is: [[B>>A]]", "English"),  # Better++ 2
    ("Two dogs.", "[[B>A]]", "English"),  # Better 1
    ("A bridge.", "My final verdict is tie: [[A=B]]", "English"),  # Tie 0
    ("Blue.", "Assistant A is better: [[A>B]]", "English"),  # Worse -1
    ("Paris.", "Assistant B is clearly better overall.", "English"),  # no label, no substring: Unclear 0 (a tie)
    ("Maybe.", "At first [[B>A]], but on reflection [[A>>B]]", "Spanish"),  # two labels: the whole reply -> Worse++
    ("A tram.", "Verdict: B>A", "Chinese"),  # no [[...]]: the whole reply holds "B>A" -> Better 1
    ("A map.", "[[B<A]]", "English"),  # one label, none of the five substrings: Unclear 0
    ("Tea.", "[[B>A]] ... so again [[B>A]]", "Chinese"),  # one distinct label -> Better 1
]


def wildvision_repo(root: Path, baseline: str = BASELINE) -> None:
    """The config as push_to_hub(config_name=...) writes it: `<config>/test500-*.parquet` and the README `configs`
    entry; columns question_id, instruction, image, language and one string column of answers per arena model."""
    from datasets import Image as ImageFeature
    from datasets import Value

    features = {"question_id": Value("string"), "instruction": Value("string"), "image": ImageFeature(),
                "language": Value("string"), baseline: Value("string"), "gpt-4o": Value("string")}
    rows = [{"question_id": f"wv{i}", "instruction": f"  Question {i} about the picture?\n",
             "image": {"bytes": png((20 * i, 200, 90)), "path": None}, "language": lang,
             baseline: f"Claude's answer {i}.", "gpt-4o": f"GPT-4o's answer {i}."}
            for i, (_, _, lang) in enumerate(VERDICTS)]
    write_config(root, REPO, CONFIG, {"test500": rows}, features)
    # the repo's README declares its other configs too; a copy downloaded with --include holds only this one
    readme = root / REPO / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8").replace("configs:\n", "configs:\n- config_name: "
                      "release_bench_0617\n  data_files:\n  - split: test500\n    path: release_bench_0617/test500-*\n",
                                                                  1), encoding="utf-8")


def reply(text: str) -> str:
    return next(r for p, r, _ in VERDICTS if f"<|The Start of Assistant B's Answer|>\n{p}\n" in text)


def records() -> list[dict]:
    return [{"task": "wildvision", "split": "test500", "row": i, "prediction": p} for i, (p, _, _) in enumerate(VERDICTS)]


def test_wildvision_official_elo_win_rate_and_verdict_quirks(tmp_path: Path, data: Path) -> None:  # noqa: F811
    wildvision_repo(data)
    with ScriptedJudge(reply) as judge:
        t = run(tmp_path, "wildvision", records(), "--judge", judge.url)["tasks"]["wildvision"]
    # final scores 2, 1, 0, -1, 0, -2, 1, 0, 1: B (the model) wins 4, A (the baseline) 2, ties 3 (Unclear included).
    # compute_mle_elo's optimum P(A) = (2*2 + 3) / 18, so B's predicted win rate is (2*4 + 3) / 18 = 61.11
    off = t["official"]
    assert off["metric"] == "elo_scores" and off["overall"] == 61.11 and t["en"] == 61.11
    other = off["other_metrics"]
    assert other["raw_scores"] == pytest.approx(2 / 9) and other["win_rates"] == pytest.approx(400 / 9)
    assert other["elo_scores"] == 61.11
    shares = {k: round(v * 9 / 100) for k, v in other.items() if k.startswith("judgements_")}
    assert shares == {"judgements_better": 3, "judgements_better_plus": 1, "judgements_worse": 1,
                      "judgements_worse_plus": 1, "judgements_tie": 1, "judgements_unclear": 2}
    assert off["note"].startswith("2 verdict(s) unreadable")
    # per language column: English b, b, tie, a, tie, tie -> (2*2 + 3) / 12 = 58.33; Chinese b, b and Spanish a: one
    # class only, LogisticRegression raises and the official fallback gives equal ratings -> 50.0 each
    assert off["by_category"] == {"English": 58.33, "Chinese": 50.0, "Spanish": 50.0}
    # robust: the five labels only, all alike: 1, 1, 0.5, 0, 1 (rows 0-3, 8) -> 70.0; rows 4-7 left out and counted
    assert t["metrics"]["judge_winrate"]["overall"] == pytest.approx(70.0) and t["judge_unparsed"] == 4
    rows = samples(tmp_path, "wildvision")
    assert rows["test500/5"]["official_answer"] == {"final_score": -2, "winner": "model_a", "judgement": "Worse++"}
    assert rows["test500/0"]["input"] == "Question 0 about the picture?"  # wild_vision_doc_to_text strips


def test_wildvision_judge_request_system_prompt_template_and_picture(tmp_path: Path, data: Path) -> None:  # noqa: F811
    wildvision_repo(data)
    with ScriptedJudge(reply) as judge:
        run(tmp_path, "wildvision", records(), "--judge", judge.url)
    assert len(judge.bodies) == len(VERDICTS) and all(n == 1 for n in judge.pictures.values())
    body = next(b for b in judge.bodies if "Two dogs." in str(b["messages"]))
    system, user = body["messages"]
    assert system["role"] == "system" and system["content"].startswith("Please act as an impartial judge")
    assert system["content"].endswith('Example output: "My final verdict is tie: [[A=B]]".')
    assert body["temperature"] == 0.0 and body["max_tokens"] == 1024
    text, image = user["content"]
    # prompt_template with the instruction as stored (not stripped) and the baseline column's answer as A
    assert text["text"] == ("<|User Prompt|>\n  Question 1 about the picture?\n\n\n<|The Start of Assistant A's "
                            "Answer|>\nClaude's answer 1.\n<|The End of Assistant A's Answer|>\n\n<|The Start of "
                            "Assistant B's Answer|>\nTwo dogs.\n<|The End of Assistant B's Answer|>")
    assert image["type"] == "image_url" and image["image_url"]["url"].startswith("data:image/png;base64,")


def test_wildvision_without_the_baseline_column_names_it(tmp_path: Path, data: Path) -> None:  # noqa: F811
    with pytest.raises(TaskError, match="--include 'release_bench_0617_with_modelresponse/[*]'"):  # not downloaded
        resolve(["wildvision"])[0][0].samples()
    wildvision_repo(data, baseline="claude-3-opus-20240229")
    with pytest.raises(TaskError, match="no column 'claude-3-sonnet-20240229'"):
        resolve(["wildvision"])[0][0].samples()


def test_wildvision_listing_gives_the_readme_download_command() -> None:
    from polyvlm.eval.tasks import listing

    command = next(r for r in listing() if r["task"] == "wildvision")["download"]
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert command.startswith("huggingface-cli download --repo-type dataset WildVision/wildvision-arena-data README.md")
    assert " ".join(command.split()) in " ".join(readme.replace("\\\n", " ").split())


def official_elo(winners: list[str]) -> float:
    """compute_mle_elo + get_win_rate_column replayed with scipy's L-BFGS in place of sklearn's
    LogisticRegression(fit_intercept=False, penalty=None): battles twice over, X = +-log(10) for A / B, Y = 1 for
    A's wins and for the first copy's ties; ratings 400 coef + 1000 anchored at the baseline, B's predicted win
    rate against it x 100, rounded to 2 places."""
    import numpy as np
    from scipy.optimize import minimize

    n = len(winners)
    x = np.tile(np.array([math.log(10), -math.log(10)]), (2 * n, 1))
    y = np.array([1.0 if w == "model_a" else 0.0 for w in winners] * 2)
    y[:n][np.array([w == "tie" for w in winners])] = 1.0

    def loss(coef: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ coef
        p = 1 / (1 + np.exp(-z))
        return float(np.sum(np.logaddexp(0, z) - y * z)), x.T @ (p - y)

    coef = minimize(loss, np.zeros(2), jac=True, method="L-BFGS-B", options={"gtol": 1e-12, "ftol": 1e-15}).x
    elo = 400 * coef + 1000
    elo += 1000 - elo[0]
    return round(100 / (1 + 10 ** ((elo[0] - elo[1]) / 400)), 2)


@pytest.mark.parametrize("wins_a,wins_b,ties", [(2, 4, 3), (1, 2, 3), (5, 1, 0), (0, 3, 1), (7, 0, 2), (0, 0, 4),
                                                (13, 29, 8)])
def test_elo_win_rate_matches_the_logistic_regression(wins_a: int, wins_b: int, ties: int) -> None:
    pytest.importorskip("scipy")
    winners = ["model_a"] * wins_a + ["model_b"] * wins_b + ["tie"] * ties
    assert elo_win_rate(winners) == official_elo(winners)


def test_elo_win_rate_one_class_falls_back_to_equal_ratings() -> None:
    # compute_mle_elo: lr.fit raises ValueError when Y holds one class (every battle won by B, or by A) and the
    # except branch sets every rating to 1000: the predicted win rate is 50.0 even for a model that won every battle
    assert elo_win_rate(["model_b"] * 5) == 50.0 and elo_win_rate(["model_a"] * 3) == 50.0
    assert elo_win_rate(["model_b"] * 5 + ["tie"]) == round(11 / 12 * 100, 2)
