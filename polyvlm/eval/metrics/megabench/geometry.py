"""MEGA-Bench's box and point metrics on normalised [0, 1] coordinates: nbbox_iou_tuple/single/sequence
(lmms_eval/tasks/megabench/metrics/scoring/nbbox_iou.py), dict_nbbox_iou_tuple_agg_jaccard
(scoring/dict_nbbox_iou_tuple_agg_jaccard.py), xml_nbbox_iou_single (scoring/xml_nbbox_iou.py),
xml_norm_point_in_bbox (scoring/xml_norm_point_in_bbox.py), xml_norm_point_distance
(scoring/xml_norm_point_distance.py) and sequence_coords_similarity (scoring/coordinate_sequence_match.py)."""

from __future__ import annotations

import ast
from numbers import Number
from typing import Any

import numpy as np

from polyvlm.eval.metrics.megabench import register
from polyvlm.eval.metrics.megabench.geometry_parse import (
    calculate_iou,
    parse_bboxes_from_xml,
    parse_point_2d_from_xml,
    point_distance,
    str_to_bboxes,
    str_to_coords,
)


@register("nbbox_iou_tuple")
def nbbox_iou_tuple(response: Any, answer: Any) -> float:
    """Mean over the predicted boxes of each one's best IoU with an answer box (strings read by
    str_to_bboxes); 0 without predicted boxes or when a box cannot be measured."""
    responses = response if isinstance(response, (tuple, list)) else str_to_bboxes(response)
    targets = answer if isinstance(answer, (tuple, list)) else str_to_bboxes(answer)
    try:
        scores = calculate_iou(responses, targets)
    except Exception:  # noqa: BLE001 - the official: malformed boxes score 0
        return 0
    return sum(scores) / len(scores) if scores else 0


@register("nbbox_iou_single")
def nbbox_iou_single(response: Any, answer: str) -> float:
    """IoU of one predicted box with one answer box, both Python literals; 0 on a syntax error or a malformed
    box (other unreadable literals raise, which the evaluator scores 0)."""
    target = ast.literal_eval(answer)
    try:
        predicted = ast.literal_eval(response)
    except SyntaxError:
        return 0
    try:
        scores = calculate_iou([predicted], [target])
    except Exception:  # noqa: BLE001
        return 0
    return sum(scores) / len(scores) if scores else 0


@register("nbbox_iou_sequence")
def nbbox_iou_sequence(response: Any, answer: Any) -> float:
    """Mean IoU of the i-th predicted box with the i-th answer box (tracking); 0 if the counts differ
    (NaN, as numpy's mean of nothing, when both are empty)."""
    if not isinstance(response, (tuple, list)):
        response = str_to_bboxes(str(response))
    targets = answer if isinstance(answer, (tuple, list)) else str_to_bboxes(answer)
    if len(targets) != len(response):
        return 0
    return np.mean([calculate_iou([r], [t]) for r, t in zip(response, targets)])


@register("dict_nbbox_iou_tuple_agg_jaccard")
def dict_nbbox_iou_tuple_agg_jaccard(response: Any, answer: Any) -> float:
    """nbbox_iou_tuple per key over the union of the keys of the two dicts (a missing key has no boxes),
    averaged; 0 if the response does not read as a dict (cast_to_dict: JSON in the text)."""
    from polyvlm.eval.metrics.megabench.convert import cast_to_dict

    responses, targets = cast_to_dict(response), cast_to_dict(answer)
    if not isinstance(responses, dict):
        return 0
    keys = set(responses) | set(targets)
    total = sum(nbbox_iou_tuple(responses.get(k, []), targets.get(k, [])) for k in keys)
    return total / len(keys)


@register("xml_nbbox_iou_single")
def xml_nbbox_iou_single(response: Any, answer: Any) -> float:
    """Mean over the '<box>x1, y1, x2, y2</box>' boxes of the response of each one's best IoU with an answer
    box; 0 without boxes."""
    responses = response if isinstance(response, (tuple, list)) else parse_bboxes_from_xml(response)
    targets = answer if isinstance(answer, (tuple, list)) else parse_bboxes_from_xml(answer)
    if len(responses) == 0:
        return 0
    if isinstance(responses[0], Number) and len(responses) == 4:
        responses = [responses]
    scores = calculate_iou(responses, targets)
    return sum(scores) / len(scores) if scores else 0


@register("xml_norm_point_in_bbox", call="context_info")
def xml_norm_point_in_bbox(response: Any, eval_context: dict) -> tuple[int, dict]:
    """(1, matched) if the '<point>x, y</point>' of the response lies in one of eval_context['bounding_boxes']
    (strings '[x1, y1, x2, y2]', bounds included), else (0, matched); `matched` maps each box string to False,
    and the str() of the tuple of the box hit (a new key unless the string was written that way) to True."""
    matched = {box: False for box in eval_context["bounding_boxes"]}
    boxes = [str_to_bboxes(box)[0] for box in eval_context["bounding_boxes"]]
    assert boxes, "xml_norm_point_in_bbox: eval_context has no bounding_boxes"
    if not isinstance(response, (tuple, list)):
        response = parse_point_2d_from_xml(response)
        if not response:
            return 0, matched
    elif len(response) != 2:
        return 0, matched
    x, y = response
    for x1, y1, x2, y2 in boxes:
        if x1 <= x <= x2 and y1 <= y <= y2:
            matched[str((x1, y1, x2, y2))] = True
            return 1, matched
    return 0, matched


def _normalised_point(point: Any) -> tuple:
    if not isinstance(point, (tuple, list)):
        point = parse_point_2d_from_xml(point)
        if not point:
            raise ValueError("no <point>x, y</point> in the text")
    elif len(point) != 2:
        raise ValueError("the point is not 2D")
    if not all(0 <= c <= 1 for c in point):
        raise ValueError("the point is not normalised to [0, 1]")
    return tuple(point)


@register("xml_norm_point_distance")
def xml_norm_point_distance(response: Any, answer: Any) -> float:
    """max(0, 1 - distance) of two '<point>x, y</point>' points; 0 if either is missing or outside
    [0, 1]^2."""
    try:
        pred, target = _normalised_point(response), _normalised_point(answer)
    except ValueError:
        return 0
    return max(0, 1 - point_distance(pred, target))


@register("sequence_coords_similarity")
def sequence_coords_similarity(response: Any, answer: Any, k: float = 10) -> float:
    """Mean over keypoints of exp(-k * distance / sqrt(2)) of the i-th predicted and answer points (strings
    read by str_to_coords); 0 if the point arrays differ in shape."""
    if not isinstance(response, (tuple, list)):
        response = str_to_coords(response, dim=2)
    if not isinstance(answer, (tuple, list)):
        answer = str_to_coords(answer, dim=2)
    try:
        pred = np.array(response)
    except ValueError:
        return 0
    gt = np.array(answer)
    if pred.shape != gt.shape:
        return 0
    distances = np.linalg.norm(pred - gt, axis=1)
    return np.mean(np.exp(-k * (distances / np.sqrt(2))))
