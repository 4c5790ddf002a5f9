"""program_judge against the reference lmms_eval/tasks/megabench/metrics/scoring/program_judge.py
(ProgramJudge.match / CodeTester): programs that pass, fail, raise, read too much input, hang, and the exec
quirks (main guard in double quotes only; top-level helpers invisible to functions without it)."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from megabench_reference import reference

from polyvlm.eval.metrics.megabench import FIELD_METRICS, score_field
from polyvlm.eval.metrics.megabench.program import TIME_LIMIT, run_program

CASES = [{"input": ["3", "4"], "expected": "7\n"}, {"input": ["10", "-2"], "expected": "8"},
         {"input": ["1", "1"], "expected": "3"}]
PROGRAMS = [
    "a = int(input())\nb = int(input())\nprint(a + b)",
    "print(int(input()) + int(input()))\n\n\n",
    "a = int(input())\nprint(a)",
    "print(sum(int(input()) for _ in range(3)))",  # input runs out: StopIteration
    "raise ValueError('boom')",
    "def add(a, b):\n    return a + b\n\nif __name__ == \"__main__\":\n    print(add(int(input()), int(input())))",
    "def add(a, b):\n    return a + b\n\nif __name__ == '__main__':\n    print(add(int(input()), int(input())))",
    "def add(a, b):\n    return a + b\nprint(add(int(input()), int(input())))",
    "import math\ndef f():\n    return math.floor(int(input()) + int(input()))\nprint(f())",  # NameError quirk
    "def g(x):\n    return x\ndef f(a, b):\n    return g(a + b)\nprint(f(int(input()), int(input())))",
    "print('7')\nprint()",
    "a = int(input())\nb = int(input())\nprint(sum([x + b for x in [a]]))",  # comprehension: NameError quirk
    "import sys\nsys.stdout.write(str(int(input()) + int(input())) + '\\n')",
    "x = input().strip()\ny = input()\nprint(int(x) + int(y), end='  ')",
    "",
    "print('héllo ✓')",
    "syntax error here(",
]


def ours(code: Any, context: dict[str, Any]) -> Any:
    return score_field(FIELD_METRICS.get("program_judge"), code, context)


def ref(code: Any, context: dict[str, Any]) -> Any:
    try:
        return reference("scoring.program_judge").ProgramJudge.match(code, context)
    except Exception:  # noqa: BLE001 - MetricType.match's 0
        return 0


@pytest.mark.parametrize("code", PROGRAMS)
def test_programs_match_reference(code: str) -> None:
    context = {"test_case": [dict(c) for c in CASES]}
    assert ours(code, context) == pytest.approx(ref(code, {"test_case": [dict(c) for c in CASES]}), abs=1e-9)


@pytest.mark.parametrize("context", [
    {"test_case": {"input": ["2", "2"], "expected": "4"}},
    {"test_case": []},
    {"test_case": [{"input": "12", "expected": "3"}]},  # a string input is joined character by character
])
def test_case_shapes_match_reference(context: dict[str, Any]) -> None:
    for code in PROGRAMS[:3]:
        assert ours(code, dict(context)) == ref(code, dict(context))


def test_absolute_and_timeout() -> None:
    context = {"test_case": [dict(c) for c in CASES]}
    assert ours(PROGRAMS[0], context) == pytest.approx(2 / 3)
    assert ours(PROGRAMS[6], context) == 0  # single-quoted main guard: nothing runs, nothing printed
    assert ours(PROGRAMS[8], context) == 0
    assert ours(None, context) == 0
    start = time.monotonic()
    assert run_program("while True:\n    pass", []) == TIME_LIMIT
    assert time.monotonic() - start < 5
    assert ours("import sys\nsys.exit(0)", context) == 0


def test_child_cannot_touch_parent(tmp_path: Any) -> None:
    code = "import os\nos.environ['POLYVLM_LEAK'] = '1'\nglobals()['LEAK'] = 1\nprint(7)"
    assert run_program(code, []) == "7"
    assert "POLYVLM_LEAK" not in os.environ
    assert run_program("import os\nos._exit(3)", []).startswith("ERROR")


# the eval_context of a code_programming_test_easy sample, copied from TIGER-AI-Lab/MEGA-Bench
# task_examples/Coding/Code_Generation/Programming_Problems/code_programming_test_easy/README.md
REAL_EASY = {"test_case": {"input": ["21:11"], "expected": "9:11 PM"}}
TWELVE_HOUR = ("h, m = map(int, input().split(':'))\n"
               "print(f\"{h % 12 or 12}:{m:02d} {'AM' if h < 12 else 'PM'}\")")


def test_real_context() -> None:
    for code, score in ((TWELVE_HOUR, 1), (TWELVE_HOUR.replace("PM", "pm"), 0), ("print(input())", 0)):
        assert ours(code, dict(REAL_EASY)) == score
        assert ref(code, dict(REAL_EASY)) == score
