"""MEGA-Bench's LaTeX metrics: latex_expr_equality and text_with_latex_expr_equality
(lmms_eval/tasks/megabench/metrics/scoring/latex_expr_equality.py) with the LaTeX normalisation of
scoring/common/transformations.py (normalize_latex and the helpers it chains)."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from polyvlm.eval.metrics.megabench import register, requires
from polyvlm.eval.metrics.megabench.alarm import with_alarm
from polyvlm.eval.metrics.megabench.strings import simple_str_match

_MACRON = "\u0304"


def replace_macrons_with_latex_overline(text: str) -> str:
    """'Ā' (precomposed, or a letter followed by a combining macron) -> '\\overline{A}'."""
    out: list[str] = []
    for ch in text:
        if ch.isalpha():
            parts = unicodedata.normalize("NFD", ch)
            out.append(f"\\overline{{{parts[0]}}}" if len(parts) > 1 and parts[1] == _MACRON else ch)
        elif ch != _MACRON:
            out.append(ch)
        else:  # a lone combining macron overlines what precedes it (IndexError at the start, as official)
            out[-1] = f"\\overline{{{out[-1]}}}"
    return "".join(out)


_OVERLINE_SUB = re.compile(r"\\overline\{([^}]*)\}_([^{}\\ ]*)")


def fix_overline_underscores(text: str) -> str:
    """'\\overline{AB}_1' -> '\\overline{AB_1}'."""
    return _OVERLINE_SUB.sub(r"\\overline{\1_\2}", text)


_GREEK_NAMES = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho "
                "sigma tau upsilon phi chi psi omega").split()
GREEK_TO_LATEX = {
    **{chr(0x3B1 + i + (i >= 17)): "\\" + name for i, name in enumerate(_GREEK_NAMES)},
    **{chr(0x391 + i + (i >= 17)): "\\" + name.capitalize() for i, name in enumerate(_GREEK_NAMES)},
}
_GREEK = re.compile(r"[α-ωΑ-Ω]")


def replace_greek_letters(text: str) -> str:
    """Unicode Greek letters -> their LaTeX macro and a space (the range also holds final sigma 'ς' and, in
    capitals, U+03A2, which have no macro: KeyError, as official)."""
    return _GREEK.sub(lambda m: GREEK_TO_LATEX[m.group()] + " ", text)


_ENV = re.compile(r"\\(begin|end)\{.*?\}(?:\[[^\[\]]*\])?")
_INLINE_DELIMS = re.compile(r"\\\(|\\\)")
_DISPLAY_DELIMS = re.compile(r"\\\[|\\\]")


def remove_latex_math_delimiters(text: str) -> str:
    """Drop \\begin{..}[..] / \\end{..}[..], \\( \\) and \\[ \\]."""
    return _DISPLAY_DELIMS.sub("", _INLINE_DELIMS.sub("", _ENV.sub("", text)))


def normalize_latex(text: str) -> str:
    """\\bar -> \\overline, macrons -> \\overline, subscripts into overlines, Greek to macros, no
    delimiters."""
    text = replace_macrons_with_latex_overline(text.replace("\\bar", "\\overline"))
    return remove_latex_math_delimiters(replace_greek_letters(fix_overline_underscores(text)))


@register("latex_expr_equality")
def latex_expr_equality(response: Any, answer: Any, timeout: int = 15) -> int:
    """1 if sympy reads both normalised expressions and finds them equal (`Expr.equals`), else 0; when sympy
    cannot read or compare them (or takes over `timeout` s, on the main thread only: see alarm.with_alarm),
    the simple string match of the strings as they were when it stopped. 0 unless both are strings."""
    if not isinstance(response, str) or not isinstance(answer, str):
        return 0
    latex = requires("sympy.parsing.latex", "latex_expr_equality")
    errors = requires("sympy.parsing.latex.errors", "latex_expr_equality")
    sympify = requires("sympy.core.sympify", "latex_expr_equality")
    fallback = (errors.LaTeXParsingError, sympify.SympifyError, TypeError, NotImplementedError)
    # the official falls back on whatever the two names held when it stopped: raw, or normalised
    state = {"response": response, "answer": answer}

    def compare() -> int:
        try:
            state["response"] = normalize_latex(state["response"])
            state["answer"] = normalize_latex(state["answer"])
            same = latex.parse_latex(state["response"]).equals(latex.parse_latex(state["answer"]))
            return 1 if same else 0
        except fallback:
            return simple_str_match(state["response"], state["answer"])

    return with_alarm(compare, timeout, lambda: simple_str_match(state["response"], state["answer"]))


_DOLLAR_MATH = re.compile(r"(\$[^$]*\$)")


def split_text_and_latex(text: str) -> tuple[list[str], list[str]]:
    """The stripped text pieces and the '$...$' pieces of a string."""
    texts, maths = [], []
    for part in _DOLLAR_MATH.split(text):
        if part.startswith("$") and part.endswith("$"):
            maths.append(part)
        else:
            texts.append(part.strip())
    return texts, maths


def _join_latex(maths: list[str]) -> str:
    return " ".join(m[1:-1].strip().replace(",", "") for m in maths)


@register("text_with_latex_expr_equality")
def text_with_latex_expr_equality(response: Any, answer: Any) -> int:
    """1 if the text outside '$...$' matches (simple string match, commas dropped) and the '$...$' parts,
    joined by spaces without commas, pass latex_expr_equality; else 0. 0 unless both are strings."""
    if not isinstance(response, str) or not isinstance(answer, str):
        return 0
    tgt_texts, tgt_maths = split_text_and_latex(answer)
    res_texts, res_maths = split_text_and_latex(response)
    text_match = simple_str_match("".join(res_texts).replace(",", ""), "".join(tgt_texts).replace(",", ""))
    latex_match = latex_expr_equality(_join_latex(res_maths), _join_latex(tgt_maths))
    return 1 if text_match and latex_match else 0
