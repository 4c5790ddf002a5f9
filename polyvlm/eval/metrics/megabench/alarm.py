"""The SIGALRM time limit MEGA-Bench puts around sympy work (lmms_eval/tasks/megabench/metrics/scoring/
general_numerical_match.py BoxedSingleNumericalMatch, scoring/latex_expr_equality.py LatexExprEquality), made
safe off the main thread."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Timeout(Exception):
    """Raised inside the guarded call when its alarm rings."""


def _ring(signum: int, frame: object) -> None:
    raise Timeout()


def with_alarm(fn: Callable[[], T], seconds: int, on_timeout: Callable[[], T]) -> T:
    """`fn()`, or `on_timeout()` when it runs longer than `seconds` (as the official SIGALRM handler does).

    Signals can only be set on the main thread of the main interpreter, so elsewhere (a thread pool, a
    server) `fn` runs without a limit: same result whenever the official run would not have timed out. The
    previous SIGALRM handler is restored afterwards (the official leaves its own installed)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        return fn()
    previous = signal.signal(signal.SIGALRM, _ring)
    signal.alarm(seconds)
    try:
        return fn()
    except Timeout:
        return on_timeout()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
