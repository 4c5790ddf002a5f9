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


def _judged(metric: Any, *args: Any) -> Any:
    """A judged metric: its errors score 0 as MetricType.match's do, except a failed judge request (TaskError)."""
    try:
        return metric.fn(*args)
    except TaskError:
        raise
    except Exception:  # noqa: BLE001 - the official scorer turns every metric error into a 0
        return 0


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
    if key == "ascii_art_gpt4o_judge":  # not a VLMJudgeScore: evaluator.py calls it as a pair metric
        if judge is None:
            return None
        correct = answer if aux else answer.get(field, "")
        out = _judged(metric, obj.get(field, "") if isinstance(parsed, dict) else "", _as_string(correct), judge)
    elif metric.call == "judge":
        if judge is None:
            return None
        info = parsed.get(field) if isinstance(parsed, dict) else parsed
        out = _judged(metric, info, answer, sample.extra["query_media"], sample.extra["query_text"], context, judge,
                   sample.extra["metric_info"].get("gpt4o_eval_configs"))
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


def judge_for(client: Any, open_media: Any) -> Any:
    """A `Judge` over polyvlm's --judge client: temperature 0, the client's token limit (the official sets none),
    pictures as image parts before the text as OpenAIVLMJudger sends them; a reply is cached by the client when
    there is no picture. A request failing three times is a TaskError (the official retries until one answers)."""
    from polyvlm.eval.backends import Failure
    from polyvlm.eval.metrics.megabench.judges import Judge
    from polyvlm.infer.request import ChatRequest

    def once(text: str, pictures: list[str], attempt: int) -> str | None:
        if not pictures:
            return client.ask([text], temperature=0.0, attempt=attempt)[0]
        # the OpenAI content parts as the official request has them (pictures, then the text), sent verbatim: a
        # `<image>` quoted in the text stays text
        parts = [{"type": "image_url", "image_url": {"url": uri}} for uri in pictures] + [{"type": "text", "text": text}]
        res = client.backend.generate([ChatRequest(messages=[{"role": "user", "content": parts}], verbatim=True,
                                                   max_new_tokens=client.max_tokens, temperature=0.0)])[0]
        return None if isinstance(res, Failure) else res.text

    def ask(text: str, pictures: list[str]) -> str:
        for attempt in range(3):  # the official asks until it gets an answer: three tries here
            reply = once(text, pictures, attempt)
            if reply is not None:
                return reply
        raise TaskError("MEGA-Bench judge: the --judge request failed three times (the official scorer asks again "
                        "until it answers); run again to retry")

    return Judge(ask, open_media)
