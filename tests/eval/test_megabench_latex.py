"""MEGA-Bench LaTeX metrics against the reference (lmms-eval 0.7.3's lmms_eval/tasks/megabench/metrics):
latex_expr_equality and text_with_latex_expr_equality (scoring/latex_expr_equality.py), normalize_latex and
its helpers (scoring/common/transformations.py)."""

from __future__ import annotations

import threading

import pytest
from megabench_reference import reference

from polyvlm.eval.metrics.megabench import FIELD_METRICS, score_field
from polyvlm.eval.metrics.megabench import latex as ours

pytest.importorskip("sympy")


def ref_score(fn, *args):
    """The reference called as evaluator.py calls it: an exception scores 0."""
    try:
        return fn(*args)
    except Exception:  # noqa: BLE001
        return 0


LATEX_PAIRS = [
    ("\\frac{1}{2}", "0.5"), ("\\frac{2}{4}", "\\frac{1}{2}"), ("\\sqrt{4}", "2"),
    ("\\sqrt{8}", "2\\sqrt{2}"),
    ("x^2 + 2x + 1", "(x+1)^2"), ("x^2", "x^3"), ("\\(x+1\\)", "1+x"), ("\\[ a b \\]", "ba"), ("$x$", "x"),
    ("90^\\circ", "90"), ("90°", "90"), ("\\bar{AB}", "\\overline{AB}"), ("ĀB", "\\overline{A}B"),
    ("A\u0304", "\\overline{A}"), ("\\overline{AB}_1", "\\overline{AB_1}"), ("2α", "2\\alpha"),
    ("ΔABC", "\\Delta ABC"),
    ("\\frac{", "\\frac{"), ("\\frac{", "\\frac{ "), ("}{", "x"), ("", ""), ("", "x"),
    ("hello world", "Hello-World"),
    ("\\begin{pmatrix}1\\end{pmatrix}", "1"), ("3.14", "\\pi"), ("1,000", "1000"), ("x = 2", "2 = x"),
    ("\\sin^2 x + \\cos^2 x", "1"), ("\\int x dx", "x"), ("ς", "x"), ("\u0304A", "A"), ("A", "a"),
]


@pytest.mark.parametrize("response, answer", LATEX_PAIRS)
def test_latex_expr_equality_parity(response: str, answer: str) -> None:
    ref = reference("scoring.latex_expr_equality").LatexExprEquality.match
    metric = FIELD_METRICS.get("latex_expr_equality")
    assert score_field(metric, response, answer) == ref_score(ref, response, answer)


TEXT_PAIRS = [
    ("The area is $\\frac{1}{2}$ square units", "The area is $0.5$ square units"),
    ("The area is $\\frac{1}{3}$ square units", "The area is $0.5$ square units"),
    ("area: $x^2$, then $2x$", "area: $x \\cdot x$ then $x+x$"), ("no math", "no math"),
    ("no math", "No, math!"),
    ("$a$", "$b$"), ("$1,000$ apples", "$1000$ apples"), ("$\\{a, b\\}$ set", "$\\{ab\\}$ set"),
    ("$x$ and $y$", "$x$ and"),
    ("$unclosed", "$unclosed"),
    ("Angle $90^\\circ$", "angle $90$"), ("", ""), ("$\\frac{$ text", "$\\frac{$ text"),
]


@pytest.mark.parametrize("response, answer", TEXT_PAIRS)
def test_text_with_latex_parity(response: str, answer: str) -> None:
    ref = reference("scoring.latex_expr_equality").TextLatexExprEquality.match
    metric = FIELD_METRICS.get("text_with_latex_expr_equality")
    assert score_field(metric, response, answer) == ref_score(ref, response, answer)


def test_non_strings_score_zero() -> None:
    ref = reference("scoring.latex_expr_equality")
    for resp, ans in ((None, "x"), (2, "2"), (["x"], "x"), ("x", None)):
        assert ours.latex_expr_equality(resp, ans) == ref.LatexExprEquality.match(resp, ans) == 0
        expected = ref.TextLatexExprEquality.match(resp, ans)
        assert ours.text_with_latex_expr_equality(resp, ans) == expected == 0


def test_normalisation_parity() -> None:
    tr = reference("scoring.common.transformations")
    assert ours.GREEK_TO_LATEX == tr.greek_to_latex
    for text in ("\\bar{x}", "ĀB̄", "A\u0304\u0304", "\\overline{AB}_12 x", "αβγ ΔΩ",
                 "\\begin{align}[t] x \\end{align}",
                 "\\( y \\) \\[ z \\]", "plain", "", "x\u0304_1"):
        assert ours.normalize_latex(text) == tr.normalize_latex(text), text
    for text in ("ς", "\u0304x"):  # final sigma has no macro; a macron at the start has nothing to overline
        with pytest.raises((KeyError, IndexError)):
            ours.normalize_latex(text)
        with pytest.raises((KeyError, IndexError)):
            tr.normalize_latex(text)


def test_absolute() -> None:
    assert ours.latex_expr_equality("\\frac{2}{4}", "\\frac{1}{2}") == 1
    assert ours.latex_expr_equality("x^2", "x^3") == 0
    assert ours.latex_expr_equality("\\frac{", "\\frac{") == 1  # unparsable: simple string match
    assert ours.text_with_latex_expr_equality("Area: $\\sqrt{4}$ m", "area: $2$ m") == 1
    assert ours.normalize_latex("ĀB_1 + α") == "\\overline{A}B_1 + \\alpha "


def test_off_main_thread_and_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    out = []
    t = threading.Thread(target=lambda: out.append(ours.latex_expr_equality("\\frac{2}{4}", "0.5")))
    t.start()
    t.join()
    assert out == [1]

    import time

    import sympy.parsing.latex as sl

    def slow(text):
        time.sleep(3)
        raise AssertionError("the alarm should have rung")

    monkeypatch.setattr(sl, "parse_latex", slow)
    # timed out after normalising: the normalised strings are compared by the simple string match
    assert ours.latex_expr_equality("\\bar{x}", "\\overline{x}", timeout=1) == 1
    assert ours.latex_expr_equality("x", "y", timeout=1) == 0


def test_registered() -> None:
    for name in ("latex_expr_equality", "text_with_latex_expr_equality"):
        assert FIELD_METRICS.get(name).call == "pair"
