"""MEGA-Bench numeric metrics against the reference (lmms-eval 0.7.3's lmms_eval/tasks/megabench/metrics):
general_single_numerical_match and boxed_single_numerical_match (scoring/general_numerical_match.py,
falling back on scoring/simple_str_match.py and scoring/exact_str_match.py), number_rel_diff_ratio
(scoring/number_rel_diff_ratio.py), normalized_rmse and angle_seq_float_rmse (scoring/mse.py)."""

from __future__ import annotations

import math
import threading

import pytest
from megabench_reference import reference

from polyvlm.eval.metrics.megabench import FIELD_METRICS, score_field
from polyvlm.eval.metrics.megabench import numeric as ours


def ref_score(fn, *args):
    """The reference called as evaluator.py calls it: an exception scores 0."""
    try:
        return fn(*args)
    except Exception:  # noqa: BLE001
        return 0


def same(a, b) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == pytest.approx(b, abs=1e-9)


# (response, answer): units, commas, percents, scientific notation, fractions, words, lists, LaTeX,
# assignments
NUMERIC_PAIRS = [
    ("42", "42"), ("42.3", "42"), ("42.4", "42"), ("41.58", "42"), ("-3", "3"), ("0", "0"), ("0.0", "0"),
    ("3,000", "3000"), ("1,234.5", "1234.5"), ("50%", "0.5"), ("50 %", "0.5"), ("12.5%", "0.125"),
    ("$25", "25"), ("25 dollars", "25"), ("¥300", "300"), ("36°C", "36"), ("36 C", "36"), ("90°", "90"),
    ("1e5", "100000"), ("1.5e-3", "0.0015"), ("2.5 \\times 10^{3}", "2500"), ("10^3", "1000"),
    ("\\frac{1}{2}", "0.5"), ("1/2", "0.5"), ("\\frac{3}{4}", "\\frac{6}{8}"), ("\\sqrt{4}", "2"),
    ("\\sqrt{2}", "1.414"), ("2\\pi", "6.28"), ("π", "3.14"), ("\\pi r^2", "3.14"), ("{\\pi}", "3.14"),
    ("five", "5"), ("Five", "five"), ("forty-two", "forty two"), ("", "0"), ("", ""), ("   ", "1"),
    ("x = 5", "5"), ("x ≈ 3.14", "3.14"), ("y \\approx 2", "2"), ("\\(7\\)", "7"), ("\\[8\\]", "8"),
    ("$9$", "9"), ("[1, 2, 3]", "[3, 2, 1]"), ("[1, 2]", "[1, 2, 3]"), ("(1, 2)", "(1, 2)"),
    ("(1, 2)", "[1, 2]"),
    ("[1, 'a']", "[1, 2]"), ("[0.5, 1]", "[1/2, 1]"), ("2**10", "1024"), ("E", "2.718"),
    ("\\exp(1)", "2.718"),
    ("1<2", "1"), ("nan", "1"), ("inf", "inf"), ("1e999", "inf"), ("9**9**9**9", "1"), ("A", "a"),
    ("(b) 5", "b"),
    ("3 apples", "3"), ("-0", "0"), ("1_000", "1000"), ("0x10", "16"), ("1/0", "1"), ("abs(-3)", "3"),
    ("3.0", "3"), ("１２", "12"), ("٣", "3"), ("12 cm", "12"), ("1 000", "1000"), ("The answer is 7.", "7"),
]

BOXED_PAIRS = [
    ("\\boxed{42}", "42"), ("The answer is \\boxed{\\frac{1}{2}}.", "0.5"), ("\\boxed{3}", "\\boxed{3}"),
    ("no box 5", "5"), ("\\boxed{x = 7}", "7"), ("\\boxed{a} then \\boxed{2}", "2"),
    ("\\boxed{{1}{2}}", "12"),
    ("\\boxed{50\\%}", "0.5"), ("\\boxed{}", ""), ("\\boxed{\\sqrt{9}}", "3"), ("\\boxed{five}", "five"),
]


@pytest.mark.parametrize("response, answer", NUMERIC_PAIRS)
def test_general_numerical_parity(response: str, answer: str) -> None:
    ref = reference("scoring.general_numerical_match").GeneralSingleNumericalMatch.match
    assert same(ours.general_single_numerical_match(response, answer), ref_score(ref, response, answer))


@pytest.mark.parametrize("response, answer", BOXED_PAIRS)
def test_boxed_numerical_parity(response: str, answer: str) -> None:
    ref = reference("scoring.general_numerical_match").BoxedSingleNumericalMatch.match
    assert same(ours.boxed_single_numerical_match(response, answer), ref_score(ref, response, answer))


def test_numerical_absolute() -> None:
    # units other than $ ¥ ° C stay: no number
    assert ours.general_single_numerical_match("3,000 km", "3000") == 0.0
    assert ours.general_single_numerical_match("99.1", "100") == 1.0  # within 1%
    assert ours.general_single_numerical_match("98.9", "100") == 0.0
    assert ours.general_single_numerical_match("25%", "1/4") == 1.0
    assert ours.general_single_numerical_match(12, "12") == 1.0  # a non-string response is str()-ed
    assert ours.general_single_numerical_match("[2, 1]", "[1, 2]") == 1.0  # lists compare sorted
    assert ours.general_single_numerical_match("five", "5") == 0  # words are not numbers; strings differ
    assert ours.boxed_single_numerical_match("so \\boxed{\\frac{2}{4}}", "\\boxed{0.5}") == 1.0
    # the arithmetic the official evals in a subprocess: values, and None where it fails or times out
    assert ours._evaluate("2**10") == 1024 and ours._evaluate("[1/2, (3, E)]") == [0.5, (3, 2.718)]
    assert ours._evaluate("9**9**9**9") is None and ours._evaluate("abs(-3)") is None
    assert ours._evaluate("1/0") is None and ours._evaluate(" 7") == 7


def test_boxed_off_main_thread() -> None:
    """SIGALRM is main-thread only: in a worker thread the metric runs without the time limit, same score."""
    out = []
    t = threading.Thread(target=lambda: out.append(ours.boxed_single_numerical_match("\\boxed{2}", "2")))
    t.start()
    t.join()
    assert out == [1.0]


def test_boxed_timeout_falls_back_to_string_match(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    def slow(response, answer):
        time.sleep(3)
        return 1.0

    monkeypatch.setattr(ours, "general_single_numerical_match", slow)
    # on a timeout: the whole response against the answer's boxed content, by simple string match
    assert ours.boxed_single_numerical_match("\\boxed{x}", "\\boxed{x}", timeout=1) == 0
    assert ours.boxed_single_numerical_match("The-Answer", "\\boxed{theanswer}", timeout=1) == 1


REL_DIFF = [
    ("10", "10"), ("9", "10"), ("11", "10"), ("25", "10"), ("-5", "10"), ("10.5", "10"), ("abc", "10"),
    ("", "10"), ("[1]", "10"), ("True", "1"), ("5", "0"), ("5", "'a'"), ("1e3", "1000"), ("5", "-10"),
    (7, "7"), (7.5, "10"), ([1], "1"), (None, "1"), ("1,000", "1000"), ("3 m", "3"), ("1/2", "0.5"),
]


@pytest.mark.parametrize("response, answer", REL_DIFF)
def test_number_rel_diff_ratio_parity(response, answer) -> None:
    ref = reference("scoring.number_rel_diff_ratio").NumberRelDiffRatio.match
    metric = FIELD_METRICS.get("number_rel_diff_ratio")
    assert same(score_field(metric, response, answer), ref_score(ref, response, answer))


NRMSE = [
    ("0.5", "0.5"), ("0.55", "0.5"), ("0.45", "0.5"), ("0.7", "0.5"), ("1", "1.02"), ("abc", "1"), ("", "1"),
    ("[0.1]", "[0.1]"), ("1j", "1"), ("nan", "1"), (0.5, "0.5"), ("True", "1"), ("1e-2", "0"), ("0.09", "0"),
]


@pytest.mark.parametrize("response, answer", NRMSE)
def test_normalized_rmse_parity(response, answer) -> None:
    ref = reference("scoring.mse").NormalizedRMSE.match
    assert same(ours.normalized_rmse(response, answer), ref_score(ref, response, answer))


ANGLES = [
    ("[10, 20, 30]", "[10, 20, 30]"), ("[12, 20, 30]", "[10, 20, 30]"), ("[50, 20]", "[10, 20]"),
    ("[10, 20]", "[10, 20, 30]"), ("10, 20, 30", "[10, 20, 31]"), ("(1.5, 2.5)", "[1, 2]"), ("[]", "[]"),
    ("", "[1]"), ("[a, b]", "[1, 2]"), ("['1', '2']", "[1, 2]"), ("[[1, 2], [3]]", "[1, 2]"), ("5", "[5]"),
    ("None", "[]"), ("[1, 2", "[1, 2]"), ("{1, 2}", "[1, 2]"), ("[nan, 1]", "[1, 1]"), ([10, 20], "[10, 20]"),
]


@pytest.mark.parametrize("response, answer", ANGLES)
def test_angle_seq_float_rmse_parity(response, answer) -> None:
    ref = reference("scoring.mse").AngleSeqFloatRMSE.match
    metric = FIELD_METRICS.get("angle_seq_float_rmse")
    assert same(score_field(metric, response, answer), ref_score(ref, response, answer))


def test_rmse_absolute() -> None:
    assert ours.normalized_rmse("0.55", "0.5") == pytest.approx(0.5)
    assert ours.normalized_rmse("2", "0.5") == 0
    assert ours.number_rel_diff_ratio("8", "10") == pytest.approx(0.8)
    assert ours.number_rel_diff_ratio("30", "10") == 0


def test_angle_absolute() -> None:
    # mean |diff| 1 of 10
    assert ours.angle_seq_float_rmse("[12, 20, 31]", "[10, 20, 30]") == pytest.approx(0.9)
    assert ours.angle_seq_float_rmse("[]", "[]") == 0  # NaN -> 0


def test_registered() -> None:
    for name in ("general_single_numerical_match", "boxed_single_numerical_match", "number_rel_diff_ratio",
                 "normalized_rmse", "angle_seq_float_rmse"):
        assert FIELD_METRICS.get(name).call == "pair"
