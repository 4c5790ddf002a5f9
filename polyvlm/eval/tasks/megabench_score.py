"""One MEGA-Bench query scored as lmms-eval 0.7.3 lmms_eval/tasks/megabench/evaluator.py (MEGABenchEvaluator
_parse_response, _evaluate_field, evaluate) does it, with the metrics of polyvlm.eval.metrics.megabench."""

from __future__ import annotations

from typing import Any

from polyvlm.eval.tasks.base import Sample, TaskError

SINGLE_FIELD_PARSERS = ("answer_string", "ascii_answer_string", "verbatim_answer_string")
JUDGED = ("gpt_4o_as_judge", "ascii_art_gpt4o_judge")


def _as_string(value: Any) -> Any:
    from polyvlm.eval.metrics.megabench import convert

    return convert.evaluate_as_string(value)


def parse_response(sample: Sample, response: str, parser_name: str | None, answer: dict[str, Any]) -> Any:
    """evaluator._parse_response: a single-field parser gets the task description, the query text and whether the
    answer is one line; the json parser's failure (not a non-empty dict) gives every answer field the raw reply."""
    from polyvlm.eval.metrics.megabench import PARSERS

    name = (parser_name or "unsupported").lower()
    fields = [f for f in answer if not f.startswith("##")]
    if name in SINGLE_FIELD_PARSERS:
        if len(fields) != 1:
            raise TaskError(f"{sample.source}: parser {name} needs an answer of one field, not {fields}")
        key = fields[0]
        return PARSERS.get(name)(response, key, global_description=sample.extra["task_description"],
                                 query_question=sample.extra["query_text"],
                                 is_single_line_ans="\n" not in answer[key])
    parsed = PARSERS.get(name)(response)
    if name == "json" and (not isinstance(parsed, dict) or not parsed):
        return {f: response for f in answer}
    return parsed


def score_field(name: str, field: str, parsed: Any, answer: dict[str, Any], context: Any, aux: bool,
                judge: Any, sample: Sample) -> float | None:
    """evaluator._evaluate_field for one field (None: a judged metric without a judge)."""
    from polyvlm.eval.metrics.megabench import FIELD_METRICS
    from polyvlm.eval.metrics.megabench import score_field as call

    key = (name or "unsupported").lower()
    if key == "unsupported" or key not in FIELD_METRICS:
        if key != "unsupported":
            raise TaskError(f"{sample.source}: metric {name!r} of field {field!r} is not a MEGA-Bench metric")
        return 0.0  # MetricType.UNSUPPORTED: the field gets no score
    metric = FIELD_METRICS.get(key)
    obj = parsed if isinstance(parsed, dict) else {}
    if metric.call == "judge":
        if judge is None:
            return None
        info = obj.get(field) if isinstance(parsed, dict) else parsed
        out = call(metric, info, answer, sample.extra["query_media"], sample.extra["query_text"], context, judge)
    elif metric.call == "context":
        out = call(metric, obj.get(field), context)
    elif metric.call == "object":
        out = call(metric, parsed, context)
    elif metric.call == "context_info":
        out = call(metric, obj.get(field), context)
    else:
        correct = answer if aux else answer.get(field, "")
        out = call(metric, obj.get(field, "") if isinstance(parsed, dict) else "", _as_string(correct))
    if isinstance(out, tuple):
        out = out[0]
    if not isinstance(out, (int, float)):  # a metric returning a non-score on error (constrained_generation): 0
        return 0.0
    return float(out)


def score_query(sample: Sample, response: str, judge: Any = None) -> tuple[float | None, Any, dict[str, float]]:
    """(aggregated query score, parsed reply, field scores); None when a field needs a judge and there is none."""
    from polyvlm.eval.metrics.megabench import AGGREGATIONS

    info, answer, context = sample.extra["metric_info"], sample.target, sample.extra["eval_context"]
    names = [*(info.get("field_score_function") or {}).values(), *(info.get("global_aux_metrics") or {}).values()]
    if judge is None and any(str(n).lower() in JUDGED for n in names):
        return None, response, {}  # a judged field and no --judge: the query is left out, not scored 0
    parsed = parse_response(sample, response, info.get("response_parse_function", "dummy"), answer)
    fields: dict[str, float] = {}
    unscored = False
    for field, name in (info.get("field_score_function") or {}).items():
        value = score_field(name, field, parsed, answer, context, False, judge, sample)
        unscored |= value is None
        if value is not None and (name or "unsupported").lower() != "unsupported":
            fields[field] = value
    for field, name in (info.get("global_aux_metrics") or {}).items():
        value = score_field(name, field, {field: parsed}, answer, context, True, judge, sample)
        unscored |= value is None
        if value is not None and (name or "unsupported").lower() != "unsupported":
            fields[field] = value
    if unscored:
        return None, parsed, fields
    agg = info["aggregation"]
    fn = AGGREGATIONS.get((agg.get("function") or "unsupported").lower())
    return float(fn(fields, agg.get("field_weights") or {})), parsed, fields
