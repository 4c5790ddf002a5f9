"""MEGA-Bench's program_judge: model-written Python run on each test case of eval_context["test_case"] in a
child process (2 s limit), the share of cases whose stdout matches
(lmms_eval/tasks/megabench/metrics/scoring/program_judge.py)."""

from __future__ import annotations

import io
import multiprocessing
import multiprocessing.connection
from typing import Any
from unittest import mock

from polyvlm.eval.metrics.megabench import register

TIMEOUT = 2.0  # seconds per test case, the official CodeTester's default
MAIN_GUARD = 'if __name__ == "__main__":'  # the exact text the official looks for (double quotes only)
TIME_LIMIT = "ERROR: Code execution exceeded the time limit."
NO_OUTPUT = "ERROR: No output was produced before timeout."


def _context() -> Any:
    # fork, as the official's multiprocessing default on Linux; spawn where fork does not exist
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _execute(code: str, input_str: str) -> str:
    """Run `code` with input() fed from `input_str`'s lines and print() captured; what the official child
    puts on its queue. Code with the exact main guard runs as __main__ in one namespace; other code runs with
    separate globals and locals as the official's bare exec(code) inside a method does (so top-level names are
    not visible from functions or comprehensions, a quirk the verdicts depend on) and under a module name, not
    __main__."""
    out = io.StringIO()
    try:
        with mock.patch("builtins.input", side_effect=input_str.splitlines()), mock.patch("sys.stdout", new=out):
            if MAIN_GUARD in code:
                exec(code, {"__name__": "__main__"})  # noqa: S102 - running the model's program is the metric
            else:
                exec(code, {"__name__": "metrics.scoring.program_judge", "__builtins__": __builtins__}, {})  # noqa: S102
    except Exception as e:  # noqa: BLE001 - the official reports any error of the program as its output
        return f"ERROR during execution: {e}"
    return out.getvalue().rstrip()


def _child(conn: multiprocessing.connection.Connection, code: str, input_str: str) -> None:
    conn.send(_execute(code, input_str))
    conn.close()


def run_program(code: str, lines: list[str], timeout: float = TIMEOUT) -> str:
    """Run `code` in a child process on the input `lines`; its captured stdout (right-stripped), its error
    text, or the official time-limit / no-output message. The child is killed at the limit; nothing it does
    reaches the parent but the returned text."""
    ctx = _context()
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, code, "\n".join(lines) + "\n"), daemon=True)
    proc.start()
    send.close()
    try:
        ready = recv.poll(timeout)
        if not ready and proc.is_alive():
            return TIME_LIMIT
        try:
            return recv.recv() if ready or recv.poll(0) else NO_OUTPUT
        except EOFError:  # the child exited without a result (sys.exit, os._exit, a crash)
            return NO_OUTPUT
    finally:
        recv.close()
        if proc.is_alive():
            proc.kill()
        proc.join()


@register("program_judge", call="context")
def program_judge(response: Any, eval_context: dict[str, Any]) -> float:
    """Share of eval_context["test_case"] (a list of {"input": [lines], "expected": text}, or one such dict)
    whose output equals expected.rstrip(); 0 when there is no case. A non-string response raises (the official
    scorer's 0)."""
    cases = eval_context["test_case"]
    if isinstance(cases, dict):
        cases = [cases]
    if not cases:
        return 0
    if not isinstance(response, str):
        raise TypeError(f"program_judge: the response is {type(response).__name__}, not program text")
    passed = sum(run_program(response, case["input"]) == case["expected"].rstrip() for case in cases)
    return passed / len(cases)
