"""MEGA-Bench's readers of boxes and points and their distances, as the geometry metrics use them:
str_to_bboxes, str_to_coords, parse_point_2d_from_xml, parse_bboxes_from_xml
(lmms_eval/tasks/megabench/metrics/scoring/common/conversions.py) and calculate_iou, point_distance
(scoring/common/metrics.py). Errors the official lets escape (e.g. len() of a bare number) escape here too:
the evaluator scores them 0."""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Sequence
from numbers import Number
from typing import Any

Box = Sequence[float]


def str_to_bboxes(text: Any) -> list:
    """'[[x1, y1, x2, y2], ...]' or one '[x1, y1, x2, y2]' (Python literal, else JSON) -> the 4-number boxes.

    Not a string, or neither literal nor JSON -> []; items that are not 4 ints/floats are dropped."""
    if not isinstance(text, str):
        return []
    try:
        boxes = ast.literal_eval(text)
    except (SyntaxError, ValueError):
        try:
            boxes = json.loads(text)
        except json.JSONDecodeError:
            return []
    if len(boxes) == 4 and isinstance(boxes[0], Number):
        boxes = [boxes]
    if not isinstance(boxes, (tuple, list)):
        return []
    return [b for b in boxes
            if isinstance(b, (tuple, list)) and len(b) == 4 and all(isinstance(c, (float, int)) for c in b)]


def str_to_coords(text: Any, dim: int = 2) -> list:
    """'[(x, y), ...]' (Python literal, else JSON on a syntax error) -> the points of `dim` ints/floats.

    Not a string or not JSON -> []; a literal that is not iterable raises (as the official)."""
    if not isinstance(text, str):
        return []
    try:
        coords = ast.literal_eval(text)
    except SyntaxError:
        try:
            coords = json.loads(text)
        except json.JSONDecodeError:
            return []
    return [c for c in coords
            if isinstance(c, (tuple, list)) and len(c) == dim and all(isinstance(v, (float, int)) for v in c)]


_POINT = re.compile(r"<point>(.*?)</point>")
_BOX = re.compile(r"<box>(.*?)</box>")


def parse_point_2d_from_xml(text: Any) -> tuple[float, ...] | None:
    """The one '<point>x, y</point>' of the text as floats; None if absent, repeated or not two numbers."""
    if not isinstance(text, str):
        return None
    found = _POINT.findall(text)
    if len(found) != 1:
        return None
    parts = found[0].split(",")
    if len(parts) != 2:
        return None
    try:
        return tuple(float(p.strip()) for p in parts)
    except ValueError:
        return None


def parse_bboxes_from_xml(text: Any) -> list[tuple[float, ...]]:
    """Every '<box>x1, y1, x2, y2</box>' of the text as 4 floats (others skipped); not a string -> []."""
    if not isinstance(text, str):
        return []
    boxes = []
    for inner in _BOX.findall(text):
        parts = inner.split(",")
        if len(parts) != 4:
            continue
        try:
            boxes.append(tuple(float(p.strip()) for p in parts))
        except ValueError:
            continue
    return boxes


def box_iou(a: Box, b: Box) -> float:
    """IoU of two (x1, y1, x2, y2) boxes; 0 when the union is not positive (areas may be negative, as
    official)."""
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0


def calculate_iou(predicted: Sequence[Box], target: Sequence[Box]) -> list[float]:
    """For each predicted box, its best IoU over the target boxes (0 with no targets)."""
    scores = []
    for p in predicted:
        best = 0
        for t in target:
            best = max(best, box_iou(p, t))
        scores.append(best)
    return scores


def point_distance(predicted: Sequence[float], target: Sequence[float]) -> float:
    """Euclidean distance of two points of the same dimension (ValueError otherwise)."""
    if len(predicted) != len(target):
        raise ValueError("point_distance: the points have different dimensions")
    return math.sqrt(sum((p - t) ** 2 for p, t in zip(predicted, target)))
