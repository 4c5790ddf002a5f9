"""MEGA-Bench's numeric field metrics: general/boxed single numerical match
(lmms_eval/tasks/megabench/metrics/scoring/general_numerical_match.py; strings.simple_str_match is its
fallback), number_rel_diff_ratio (scoring/number_rel_diff_ratio.py), normalized_rmse and angle_seq_float_rmse
(scoring/mse.py)."""

from __future__ import annotations

import ast
import math
import operator
import re
from numbers import Number
from typing import Any

import numpy as np

from polyvlm.eval.metrics.megabench import register, requires
from polyvlm.eval.metrics.megabench.alarm import with_alarm
from polyvlm.eval.metrics.megabench.strings import simple_str_match

# ---------------------------------------------------------------- reading a number (MAmmoTH's number_utils)

_E = 2.718  # the official module's global `E`, which its eval of a bare "E" finds
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_CMPOPS = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
           ast.Gt: operator.gt, ast.GtE: operator.ge}
# an integer power this large is what the official's 5 s eval subprocess times out on
_MAX_POW_BITS = 20_000_000


class _NotEvaluated(Exception):
    pass


def _power(base: Any, exp: Any) -> Any:
    if isinstance(base, int) and isinstance(exp, int) and exp > 0 and abs(base) > 1:
        if exp * math.log2(abs(base)) > _MAX_POW_BITS:
            raise _NotEvaluated("power too large (the official evaluation times out)")
    return base ** exp


def _eval_node(node: ast.AST) -> Any:
    """Python's value of an arithmetic expression: numbers, + - * / // % **, comparisons, lists, tuples, E."""
    if isinstance(node, ast.Expression):
        return _eval_node(node.body)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
        v = _eval_node(node.operand)
        return -v if isinstance(node.op, ast.USub) else (+v if isinstance(node.op, ast.UAdd) else not v)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _eval_node(node.left), _eval_node(node.right)
        return _power(left, right) if isinstance(node.op, ast.Pow) else _BINOPS[type(node.op)](left, right)
    if isinstance(node, ast.Compare) and all(type(op) in _CMPOPS for op in node.ops):
        left, result = _eval_node(node.left), True
        for op, comp in zip(node.ops, node.comparators):
            right = _eval_node(comp)
            result = result and _CMPOPS[type(op)](left, right)
            left = right
        return result
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_eval_node(e) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Name) and node.id == "E":
        return _E
    raise _NotEvaluated(f"not evaluated: {type(node).__name__}")


def _evaluate(expression: str) -> Any:
    """The official `eval_with_timeout`: Python's value of the expression, or None where it fails.

    The official evals any Python in a subprocess (5 s limit); polyvlm evaluates only arithmetic (the form
    sympy's str() and numeric answers take), without running code: names other than E, calls and attributes
    (e.g. builtins such as abs(...)) are not evaluated, which only changes answers that are Python code."""
    try:
        return _eval_node(ast.parse(expression.lstrip(" \t"), mode="eval"))
    except Exception:  # noqa: BLE001 - the official turns every eval failure into "no value"
        return None


def _floatify(num: Any) -> int | float | None:
    try:
        value = float(num)
    except Exception:  # noqa: BLE001
        return None
    return round(value) if value.is_integer() else value


def _pi_to_number(s: str) -> str:
    s = s.replace("\\pi", "π")
    s = re.sub(r"(?<![\d}])\\?π", "3.14", s)
    s = re.sub(r"(\d)(\\?π)", r"\1*3.14", s)
    s = re.sub(r"\{(\\?π)\}", "3.14", s)
    return re.sub(r"\*(\\?π)", "*3.14", s)


def _clean_units(s: str) -> str:
    s = _pi_to_number(s).replace("%", "/100")
    for unit in ("$", "¥", "°C", " C", "°"):
        s = s.replace(unit, "")
    return s


def _number_it(num: Any) -> Any:
    """A number (int when integral), a list/tuple of values, or None: units cleaned, LaTeX read by sympy."""
    if isinstance(num, (int, float)):
        return num
    num = _clean_units(num)
    parse_latex = requires("sympy.parsing.latex", "general_single_numerical_match").parse_latex
    try:
        num = str(parse_latex(num))
    except Exception:  # noqa: BLE001 - not LaTeX: keep the cleaned string
        pass
    if _floatify(num) is not None:
        return _floatify(num)
    value = _evaluate(num)
    if isinstance(value, (list, tuple)):
        return value
    return _floatify(value)


def _within_1pc(pred: Any, gt: Any) -> bool:
    try:
        if math.isnan(pred):
            return False
        eps = abs(gt) * 0.01
        return gt - eps <= pred <= gt + eps
    except Exception:  # noqa: BLE001
        return False


def _same_numbers(pred: Any, gt: Any) -> bool:
    if not isinstance(pred, list) or len(pred) != len(gt):
        return False
    if any(not isinstance(x, (int, float)) for x in pred):
        return False
    return all(_within_1pc(p, g) for p, g in zip(sorted(pred), sorted(gt)))


_INLINE = re.compile(r"\\\((.*?)\\\)")
_DISPLAY = re.compile(r"\\\[(.*?)\\\]")
_ASSIGNED = re.compile(r"(?:=|≈|\\approx)\s*(.+)")


def _strip_math(s: str) -> str:
    """\\( x \\) and \\[ x \\] -> x. (The official's third pattern, "$(.*?)$", matches every string, so this
    always runs; $ itself is removed later with the units.)"""
    return _DISPLAY.sub(r"\1", _INLINE.sub(r"\1", s))


def _after_assignment(s: str) -> str:
    m = _ASSIGNED.search(s)
    return m.group(1).strip() if m else s


@register("general_single_numerical_match")
def general_single_numerical_match(response: Any, answer: str) -> float:
    """1.0 if both read as numbers within 1% of the answer (or as lists/tuples of the same numbers, each
    within 1%), else the simple string match of the two; text after '=', '≈' or '\\approx' is what is read."""
    response = str(response) if not isinstance(response, str) else response
    response = _after_assignment(_strip_math(response))
    answer = _after_assignment(_strip_math(answer))
    res, tgt = _number_it(response), _number_it(answer)
    if res is None or tgt is None:
        return simple_str_match(response, answer)
    both_lists = isinstance(res, list) and isinstance(tgt, list)
    if both_lists or (isinstance(res, tuple) and isinstance(tgt, tuple)):
        return float(_same_numbers(res, tgt))
    return float(_within_1pc(res, tgt))


_BOXED = re.compile(r"\\boxed\{((?:[^\{\}]+|\{[^\{\}]*\})*)\}")


def boxed_content(text: str) -> str:
    """The content of the first \\boxed{...} (one level of nested braces), or the text itself."""
    m = _BOXED.search(text)
    return m.group(1) if m else text


@register("boxed_single_numerical_match")
def boxed_single_numerical_match(response: Any, answer: str, timeout: int = 10) -> float:
    """general_single_numerical_match on the \\boxed{} contents; past `timeout` s (main thread only, see
    alarm.with_alarm) the simple string match of the whole response with the answer's boxed content."""
    response = str(response) if not isinstance(response, str) else response
    box = {"answer": answer}

    def compare() -> float:
        box["answer"] = boxed_content(answer)
        return general_single_numerical_match(boxed_content(response), box["answer"])

    return with_alarm(compare, timeout, lambda: simple_str_match(response, box["answer"]))


# ---------------------------------------------------------------- number_rel_diff_ratio.py, mse.py

@register("number_rel_diff_ratio")
def number_rel_diff_ratio(response: Any, answer: str) -> float:
    """max(0, 1 - |pred - gt| / |gt|) of the Python literals; 0 when either is not a literal or pred not a
    number (a zero or non-numeric answer raises, which the evaluator scores 0)."""
    try:
        pred = response if isinstance(response, Number) else ast.literal_eval(response)
        if not isinstance(pred, Number):
            return 0
        gt = ast.literal_eval(answer)
        return max(0, 1 - math.fabs((pred - gt) / gt))
    except (SyntaxError, ValueError):
        return 0


def _squared_error(pred: Any, target: Any) -> Any:
    return (pred - target) ** 2


@register("normalized_rmse")
def normalized_rmse(response: Any, answer: str, low: float = 0.0, high: float = 0.1) -> float:
    """1 - (clip(|pred - gt|, low, high) - low) / (high - low) of two Python number literals; 0 on any
    error."""
    try:
        squared = _squared_error(ast.literal_eval(response), ast.literal_eval(answer))
        rmse = np.clip(np.sqrt(squared), low, high)
        return 1 - (rmse - low) / (high - low)
    except Exception:  # noqa: BLE001 - the official: wrong formats score 0
        return 0


@register("angle_seq_float_rmse")
def angle_seq_float_rmse(response: Any, answer: Any, low: float = 0.0, high: float = 10.0) -> float:
    """1 - (clip(mean |pred_i - gt_i|, low, high) - low) / (high - low) of two sequences read by str_to_list;
    0 when their lengths differ, the values are not numbers or the result is NaN (e.g. empty sequences)."""
    from polyvlm.eval.metrics.megabench.convert import str_to_list

    responses, targets = str_to_list(response), str_to_list(answer)
    if len(responses) != len(targets):
        return 0
    try:
        res, tgt = np.array(responses), np.array(targets)
        rmse = np.sqrt(_squared_error(res, tgt)).sum() / len(targets)
    except Exception:  # noqa: BLE001
        return 0
    rmse = np.clip(rmse, low, high)
    norm = 1 - (rmse - low) / (high - low)
    return 0 if math.isnan(norm) else norm
