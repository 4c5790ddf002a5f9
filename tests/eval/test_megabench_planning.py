"""symbolic_planning_test against the reference lmms_eval/tasks/megabench/metrics/scoring/symbolic_planning.py
(SymbolicPlanningMetricTest.match), on a hand-written blocksworld domain: valid and invalid plans, traps."""

from __future__ import annotations

from typing import Any

import pytest
from megabench_reference import reference

from polyvlm.eval.metrics.megabench import FIELD_METRICS, score_field

DOMAIN = """(define (domain blocksworld)
  (:requirements :strips :typing)
  (:types block)
  (:predicates (clear ?x - block) (on-table ?x - block) (arm-empty) (holding ?x - block) (on ?x - block ?y - block))
  (:action pickup
    :parameters (?ob - block)
    :precondition (and (clear ?ob) (on-table ?ob) (arm-empty))
    :effect (and (holding ?ob) (not (clear ?ob)) (not (on-table ?ob)) (not (arm-empty))))
  (:action putdown
    :parameters (?ob - block)
    :precondition (holding ?ob)
    :effect (and (clear ?ob) (arm-empty) (on-table ?ob) (not (holding ?ob))))
  (:action stack
    :parameters (?ob ?underob - block)
    :precondition (and (clear ?underob) (holding ?ob))
    :effect (and (arm-empty) (clear ?ob) (on ?ob ?underob) (not (clear ?underob)) (not (holding ?ob))))
  (:action unstack
    :parameters (?ob ?underob - block)
    :precondition (and (on ?ob ?underob) (clear ?ob) (arm-empty))
    :effect (and (holding ?ob) (clear ?underob) (not (on ?ob ?underob)) (not (clear ?ob)) (not (arm-empty)))))
"""
TASK = """(define (problem bw-3) (:domain blocksworld)
  (:objects a b c - block)
  (:init (clear a) (clear b) (clear c) (on-table a) (on-table b) (on-table c) (arm-empty))
  (:goal (and (on a b) (on b c))))
"""
CONTEXT = {"domain_pddl": DOMAIN, "task_pddl": TASK}
GOOD = "(pickup b)\n(stack b c)\n(pickup a)\n(stack a b)"

# the eval_context of sample 3777 of planning_screenshot_blocksworld, copied from TIGER-AI-Lab/MEGA-Bench
# task_examples/Planning/Agents_and_Planning/Symbolic_Planning/planning_screenshot_blocksworld/README.md
REAL_BLOCKSWORLD = {
    'task_pddl': (
        '(define (problem BW-rand-3)\n'
        '(:domain blocksworld-4ops)\n'
        '(:objects b1 b2 b3 )\n'
        '(:init\n'
        '(arm-empty)\n'
        '(on-table b1)\n'
        '(on b2 b3)\n'
        '(on b3 b1)\n'
        '(clear b2)\n'
        ')\n'
        '(:goal\n'
        '(and\n'
        '(on b2 b3)\n'
        '(on b3 b1))\n'
        ')\n'
        ')'
    ),
    'gt_plan': (
        ''
    ),
    'domain_pddl': (
        '(define (domain blocksworld-4ops)\n'
        '  (:requirements :strips)\n'
        '(:predicates (clear ?x)\n'
        '             (on-table ?x)\n'
        '             (arm-empty)\n'
        '             (holding ?x)\n'
        '             (on ?x ?y))\n'
        '\n'
        '(:action pickup\n'
        '  :parameters (?ob)\n'
        '  :precondition (and (clear ?ob) (on-table ?ob) (arm-empty))\n'
        '  :effect (and (holding ?ob) (not (clear ?ob)) (not (on-table ?ob)) \n'
        '               (not (arm-empty))))\n'
        '\n'
        '(:action putdown\n'
        '  :parameters  (?ob)\n'
        '  :precondition (holding ?ob)\n'
        '  :effect (and (clear ?ob) (arm-empty) (on-table ?ob) \n'
        '               (not (holding ?ob))))\n'
        '\n'
        '(:action stack\n'
        '  :parameters  (?ob ?underob)\n'
        '  :precondition (and (clear ?underob) (holding ?ob))\n'
        '  :effect (and (arm-empty) (clear ?ob) (on ?ob ?underob)\n'
        '               (not (clear ?underob)) (not (holding ?ob))))\n'
        '\n'
        '(:action unstack\n'
        '  :parameters  (?ob ?underob)\n'
        '  :precondition (and (on ?ob ?underob) (clear ?ob) (arm-empty))\n'
        '  :effect (and (holding ?ob) (clear ?underob)\n'
        '               (not (on ?ob ?underob)) (not (clear ?ob)) (not (arm-empty)))))'
    ),
}


PLANS: list[Any] = [
    GOOD,
    GOOD + "\n",
    "Plan:\n" + GOOD + "\nDone.",
    "  " + GOOD,  # an indented first action does not start with '(' and is skipped
    GOOD.split("\n"),
    tuple(GOOD.split("\n")),
    "(pickup a)\n(stack a b)\n(pickup b)\n(stack b c)",  # b is not clear any more
    "(pickup b)\n(stack b c)",  # goal not reached
    "(pickup b)\n(stack b c)\n(pickup a)\n(stack a b)\n(unstack a b)",  # undone
    "(pickup b)\n(stack b c)\n(pickup a)\n(stack a b)\n(unstack a b)\n(stack a b)",
    "(fly b)",  # unknown action
    "(pickup b c)",  # wrong arity
    "(pickup  b)",  # double space: arity
    "(pickup B)\n(stack B c)",
    "",
    "(",
    "()",
    "pickup b\nstack b c",
    None,
    42,
    {"plan": GOOD},
    ["(pickup b)", "(stack b c)", 3],
    "(pickup b)\n(stack b c)\n(pickup a)\n(stack a b)\n(pickup c)",
    "（pickup b）",
]


def ours(response: Any, context: dict[str, Any]) -> Any:
    return score_field(FIELD_METRICS.get("symbolic_planning_test"), response, context)


def ref(response: Any, context: dict[str, Any]) -> Any:
    try:
        return reference("scoring.symbolic_planning").SymbolicPlanningMetricTest.match(response, context)
    except Exception:  # noqa: BLE001 - MetricType.match's 0
        return 0


@pytest.mark.parametrize("plan", PLANS)
def test_plans_match_reference(plan: Any) -> None:
    assert ours(plan, dict(CONTEXT)) == ref(plan, dict(CONTEXT))


@pytest.mark.parametrize("context", [
    {"domain_pddl": DOMAIN, "task_pddl": TASK.replace("(:init", "(:init (on c a)")},
    {"domain_pddl": DOMAIN, "task_pddl": TASK.replace("(and (on a b) (on b c))", "(on a b)")},
    {"domain_pddl": DOMAIN, "task_pddl": TASK.replace("(on b c))", "(not (clear c)))")},
    {"domain_pddl": DOMAIN, "task_pddl": ""},
    {"domain_pddl": DOMAIN},
    {"domain_pddl": "", "task_pddl": TASK},
    {"domain_pddl": DOMAIN.split("(:action putdown")[0] + ")", "task_pddl": TASK},
    {"domain_pddl": DOMAIN.replace("?ob ?underob - block", "?ob - block ?underob - block"), "task_pddl": TASK},
])
def test_contexts_match_reference(context: dict[str, Any]) -> None:
    for plan in PLANS[:10]:
        assert ours(plan, dict(context)) == ref(plan, dict(context)), plan


def test_absolute() -> None:
    assert ours(GOOD, CONTEXT) == 1
    assert ours("(pickup b)\n(stack b c)", CONTEXT) == 0
    assert ours("(fly b)", CONTEXT) == 0
    assert ours(None, CONTEXT) == 0


REAL_PLANS = [
    "",  # the goal already holds in :init
    "(unstack b2 b3)\n(stack b2 b3)",
    "(unstack b2 b3)\n(putdown b2)",
    "(unstack b2 b3)\n(putdown b2)\n(pickup b2)\n(stack b2 b3)",
    "(unstack b1 b3)",  # the task's demonstration answer, not valid here
    "(pickup b2)",
]


@pytest.mark.parametrize("plan", REAL_PLANS)
def test_real_context_matches_reference(plan: str) -> None:
    assert ours(plan, dict(REAL_BLOCKSWORLD)) == ref(plan, dict(REAL_BLOCKSWORLD))


def test_real_context_absolute() -> None:
    assert [ours(p, REAL_BLOCKSWORLD) for p in REAL_PLANS] == [1, 1, 0, 1, 0, 0]
