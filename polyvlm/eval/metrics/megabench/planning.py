"""MEGA-Bench's symbolic_planning_test: a plan simulated against a PDDL domain, 1 when every action's
preconditions hold and the goal holds at the end (lmms_eval/tasks/megabench/metrics/scoring/symbolic_planning.py)."""

from __future__ import annotations

import logging
import re
from typing import Any

from polyvlm.eval.metrics.megabench import register

log = logging.getLogger("polyvlm.eval")

_PARAM_GROUPS = re.compile(r"((?:\?\S+\s*)+)(?:-\s+([^\?$]+)\s*)?")
_PARAM_NAME = re.compile(r"\?([^\s\?\)]+)\s*")


def _param_types(s: str) -> tuple[str, dict[str, Any]]:
    """'(?a ?b - block ?c - (either x y))' -> (text before the first '?', {param: type or [either types]})."""
    s = s.strip()
    assert s[0] == "(" and s[-1] == ")"
    s = s[1:-1]
    types: dict[str, Any] = {}
    for names, kind in _PARAM_GROUPS.findall(s):
        for name in _PARAM_NAME.findall(names):
            kind = kind.strip()
            if kind.startswith("("):
                kind = kind[1:-1].strip()
                types[name] = re.split(r"\s+", kind)[1:]
            else:
                types[name] = kind
    return s.split("?")[0].strip(), types


def _outer_inner(s: str, ender: str, opener: str, closer: str) -> tuple[str, list[str], int]:
    """Scan `s` up to the `ender` met at depth 0: (text through it, the top-level bracketed groups, end index)."""
    depth, start, groups = 0, 0, []
    for i, c in enumerate(s):
        if depth == 0 and c == ender:
            return s[: i + 1], groups, i + 1
        if c == opener:
            if depth == 0:
                start = i
            depth += 1
        elif c == closer:
            depth -= 1
            if depth == 0:
                groups.append(s[start : i + 1])
    return s, groups, len(s)


def _attr(s: str, starter: str) -> tuple[Any, Any]:
    """The official parse_pddl_attr_from_string (non-overlapping form): no `starter` -> ('', []); one -> (its
    text, its groups); several -> ([texts], {first word after each: its groups})."""
    parts = s.split(starter)
    if len(parts) == 1:
        return "", []
    if len(parts) == 2:
        outer, inner, _ = _outer_inner(parts[1], ")", "(", ")")
        return starter + outer, inner
    named: dict[str, list[str]] = {}
    outers: list[str] = []
    while len(s.split(starter)) > 1:
        s = s.split(starter, 1)[1]
        name = re.split(r"\s+", s.strip())[0]
        outer, inner, end = _outer_inner(s, ")", "(", ")")
        outers.append(starter + outer)
        named[name] = inner
        s = s[end:]
    return outers, named


def _drop_types(s: str) -> str:
    """Remove ' - type' annotations from one clause, as the official remove_type_in_cnf does."""
    pieces = s.split(" - ")
    if len(pieces) == 1:
        return s
    for i in range(1, len(pieces)):
        if len(pieces[i].strip().split(")")[0].split()) == 1:
            pieces[i] = ")" + pieces[i].strip().split(")", 1)[1]
        else:
            pieces[i] = " " + pieces[i].strip().split(" ", 1)[1]
    return "".join(pieces).strip()


def _conjuncts(s: str) -> set[str]:
    """The clauses at depth 2 of '(and ...)', types removed."""
    assert s.startswith("(and")
    clauses: set[str] = set()
    depth, start = 0, 0
    for i, c in enumerate(s):
        if c == "(":
            depth += 1
            if depth == 2:
                start = i
        elif c == ")":
            depth -= 1
            if depth == 0:
                break
            if depth == 1:
                clauses.add(_drop_types(s[start : i + 1]))
    return clauses


class _Domain:
    """A PDDL domain's actions: names, parameter tables and pre/post conditions (negations first)."""

    def __init__(self, pddl: str) -> None:
        texts, actions = _attr(pddl, "(:action")
        self.names: list[str] = []
        self.params: list[dict[str, Any]] = []
        for _text, (name, parts) in zip(texts, actions.items()):
            assert len(parts) == 3
            self.names.append(name)
            self.params.append(_param_types(parts[0])[1])
        self.conds: dict[str, list[str]] = {}
        for name in self.names:
            body = pddl.split(f"(:action {name}")[1]
            for key, tag in (("pre", ":precondition"), ("post", ":effect")):
                text = body.split(tag)[1].strip()
                found = _conjuncts(text) if text.startswith("(and") else {text.split(")")[0].strip() + ")"}
                self.conds[f"{name}_{key}"] = sorted(found, key=lambda x: 0 if x.startswith("(not ") else 1)


def _bind(domain: _Domain, action: str) -> tuple[dict[str, str], str]:
    """'(move a b)' -> ({param: object}, 'move'); ValueError for an unknown action, AssertionError for arity."""
    words = action[1:-1].split(" ")
    name = words[0].strip()
    params = domain.params[domain.names.index(name)]
    assert len(words) - 1 == len(params)
    return dict(zip(params, words[1:])), name


def _ground(cond: str, binding: dict[str, str]) -> str:
    for param, obj in binding.items():
        cond = re.sub(rf"\?{param}(?=[^\w-])", obj, cond)
    return cond


def _apply(state: list[str], effects: list[str], binding: dict[str, str]) -> list[str]:
    for cond in effects:
        cond = _ground(cond, binding)
        _, negated = _attr(cond, "(not ")
        if negated:
            assert len(negated) == 1
            if negated[0] in state:
                state.remove(negated[0])
        elif cond.strip() not in state:
            state.append(cond)
    return state


def _holds(state: Any, cond: str) -> bool:
    return not ((cond.startswith("(not ") and cond in state) or (not cond.startswith("(not ") and cond not in state))


@register("symbolic_planning_test", call="context")
def symbolic_planning_test(response: Any, eval_context: dict[str, Any]) -> int:
    """Simulate the plan in `response` (one action per line, or a list of actions; only lines starting with
    '(' count) from eval_context["task_pddl"]'s :init under eval_context["domain_pddl"]; 1 when all
    preconditions and the goal hold. Other types raise (the official scorer's 0); errors from an unknown
    action or a wrong arity score 0 as the official does."""
    domain = _Domain(eval_context["domain_pddl"])
    if isinstance(response, str):
        lines = response.split("\n")
    elif isinstance(response, (tuple, list)):
        lines = list(response)
    else:
        raise ValueError(f"symbolic_planning_test: unsupported response type {type(response).__name__}")
    plan = [line.strip() for line in lines if line.startswith("(")]
    task = eval_context["task_pddl"]
    state = _attr(task, "(:init")[1]
    goal = _attr(task, "(and")[1]
    try:
        for action in plan:
            binding, name = _bind(domain, action)
            if not all(_holds(state, _ground(c, binding)) for c in domain.conds[f"{name}_pre"]):
                log.debug("symbolic_planning_test: precondition of %s not satisfied", action)
                return 0
            state = _apply(state, domain.conds[f"{name}_post"], binding)
        for g in goal:
            if not _holds(state, g):
                log.debug("symbolic_planning_test: goal %s not reached", g)
                return 0
    except (ValueError, AssertionError):
        return 0
    return 1
