"""MEGA-Bench box and point metrics against the reference (lmms-eval 0.7.3's
lmms_eval/tasks/megabench/metrics):
nbbox_iou_tuple/single/sequence (scoring/nbbox_iou.py), dict_nbbox_iou_tuple_agg_jaccard
(scoring/dict_nbbox_iou_tuple_agg_jaccard.py), xml_nbbox_iou_single (scoring/xml_nbbox_iou.py),
xml_norm_point_in_bbox (scoring/xml_norm_point_in_bbox.py), xml_norm_point_distance
(scoring/xml_norm_point_distance.py), sequence_coords_similarity (scoring/coordinate_sequence_match.py), and
the readers they use (scoring/common/conversions.py, scoring/common/metrics.py)."""

from __future__ import annotations

import math

import pytest
from megabench_reference import reference

from polyvlm.eval.metrics.megabench import FIELD_METRICS, score_field
from polyvlm.eval.metrics.megabench import geometry as ours
from polyvlm.eval.metrics.megabench import geometry_parse as parse

# numpy warns on the official NaN of an empty sequence (nbbox_iou_sequence of [] and [])
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def ref_score(fn, *args):
    """The reference called as evaluator.py calls it: an exception scores 0."""
    try:
        return fn(*args)
    except Exception:  # noqa: BLE001
        return 0


def ours_score(name, *args):
    return score_field(FIELD_METRICS.get(name), *args)


def same(a, b) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == pytest.approx(b, abs=1e-9)


BOX_TEXTS = [
    "[0.1, 0.2, 0.5, 0.6]", "[[0.1, 0.2, 0.5, 0.6], [0.5, 0.5, 0.9, 0.9]]", "((0, 0, 1, 1),)", "[]", "",
    "0.1, 0.2, 0.5, 0.6", "[0.1, 0.2, 0.5]", "[[0.1, 0.2, 0.5, 0.6], [1, 2]]", "[[0.1, 'a', 0.5, 0.6]]", "5",
    "None", "not a box", "[[0.1, 0.2, 0.5, 0.6]", '{"a": 1}', "abcd", "[true, 0, 1, 1]", "[[NaN, 0, 1, 1]]",
    "[[0.6, 0.6, 0.2, 0.2]]", "[[0, 0, 0, 0]]", "[[-1, -1, 2, 2]]", "[[0, 0, 1e9, 1]]", "[1, 2, 3, 4]",
    "(0,0,1,1)",
    "[[0.1,0.2,0.5,0.6],[0.1,0.2,0.5,0.6]]", "{0: 1, 1: 2, 2: 3, 3: 4}", "[[0.2, 0.3, 0.45, 0.5]]", "１",
]
BOX_ANSWERS = ["[0.1, 0.2, 0.5, 0.6]", "[[0.1, 0.2, 0.5, 0.6], [0.5, 0.5, 0.9, 0.9]]", "[[0, 0, 1, 1]]", "[]"]


@pytest.mark.parametrize("answer", BOX_ANSWERS)
def test_nbbox_iou_tuple_and_sequence_parity(answer: str) -> None:
    ref = reference("scoring.nbbox_iou")
    for resp in BOX_TEXTS + [[[0.1, 0.2, 0.5, 0.6]], (0.1, 0.2), None, 7, {"a": 1}]:
        assert same(ours_score("nbbox_iou_tuple", resp, answer),
                    ref_score(ref.NbboxIouTuple.match, resp, answer)), (resp, answer)
        assert same(ours_score("nbbox_iou_sequence", resp, answer),
                    ref_score(ref.NbboxIouSequence.match, resp, answer)), (resp, answer)


@pytest.mark.parametrize("answer", ["[0.1, 0.2, 0.5, 0.6]", "[0, 0, 1, 1]", "(0.2, 0.2, 0.4, 0.4)", "oops"])
def test_nbbox_iou_single_parity(answer: str) -> None:
    ref = reference("scoring.nbbox_iou").NbboxIouSingle.match
    for resp in BOX_TEXTS + [[0.1, 0.2, 0.5, 0.6], None]:
        expected = ref_score(ref, resp, answer)
        assert same(ours_score("nbbox_iou_single", resp, answer), expected), (resp, answer)


DICT_CASES = [
    ('{"cat": [[0.1, 0.1, 0.5, 0.5]], "dog": [[0.5, 0.5, 0.9, 0.9]]}',
     '{"cat": [[0.1, 0.1, 0.5, 0.5]], "dog": [[0.5, 0.5, 0.8, 0.8]]}'),
    ('{"cat": [[0.1, 0.1, 0.5, 0.5]]}', '{"cat": [[0.1, 0.1, 0.5, 0.5]], "dog": [[0.5, 0.5, 0.8, 0.8]]}'),
    ('```json\n{"cat": "[0.1, 0.1, 0.5, 0.5]"}\n```', '{"cat": [[0.1, 0.1, 0.4, 0.5]]}'),
    ('{"bird": [[0, 0, 1, 1]]}', '{"cat": [[0.1, 0.1, 0.5, 0.5]]}'),
    ("no json here", '{"cat": [[0, 0, 1, 1]]}'),
    ("{}", "{}"), ({"cat": [[0, 0, 1, 1]]}, '{"cat": [[0, 0, 0.5, 1]]}'),
    ('{"cat": [1, 2]}', '{"cat": [[0, 0, 1, 1]]}'),
    ('{"cat": 5}', '{"cat": [[0, 0, 1, 1]]}'), ("", ""), ('{"a": [[0, 0, 1, 1]]}', "not a dict"),
]


@pytest.mark.parametrize("response, answer", DICT_CASES)
def test_dict_nbbox_iou_parity(response, answer) -> None:
    ref = reference("scoring.dict_nbbox_iou_tuple_agg_jaccard").DictNbboxIouTupleAggJaccard.match
    expected = ref_score(ref, response, answer)
    assert same(ours_score("dict_nbbox_iou_tuple_agg_jaccard", response, answer), expected)


XML_BOXES = [
    "<box>0.1, 0.2, 0.5, 0.6</box>",
    "The box is <box>0.1,0.2,0.5,0.6</box> and <box>0.5, 0.5, 0.9, 0.9</box>",
    "<box>0.1, 0.2, 0.5</box>", "<box>a, b, c, d</box>", "", "no box", "<box>0.1, 0.2, 0.5, 0.6", None,
    "<box> 1e-1 , 0.2 , 0.5 , 0.6 </box>", "<box>nan, 0, 1, 1</box>", [0.1, 0.2, 0.5, 0.6], [[0, 0, 1, 1]],
    [1, 2],
    "<box>0.6, 0.6, 0.1, 0.1</box>", "<BOX>0.1, 0.2, 0.5, 0.6</BOX>", "<box>0.1，0.2，0.5，0.6</box>",
]


XML_ANSWERS = ["<box>0.1, 0.2, 0.5, 0.6</box>", "<box>0, 0, 1, 1</box><box>0.5, 0.5, 1, 1</box>", "no box"]


@pytest.mark.parametrize("answer", XML_ANSWERS)
def test_xml_nbbox_iou_parity(answer: str) -> None:
    ref = reference("scoring.xml_nbbox_iou").XmlNbboxIouSingle.match
    for resp in XML_BOXES:
        assert same(ours_score("xml_nbbox_iou_single", resp, answer), ref_score(ref, resp, answer)), resp


XML_POINTS = [
    "<point>0.3, 0.4</point>", "Click <point>0.5,0.5</point>.",
    "<point>0.3, 0.4</point><point>0.1, 0.1</point>",
    "<point>1.2, 0.4</point>", "<point>-0.1, 0.4</point>", "<point>0.3</point>", "<point>a, b</point>", "",
    "0.3, 0.4", None, (0.3, 0.4), [0.3, 0.4, 0.5], ["0.3", "0.4"], "<point>nan, 0.5</point>",
    "<point>1, 1</point>",
    "<point>0, 0</point>", "<point> 0.25 , 0.75 </point>", "<point>0.2, 0.6</point>", (2, 2),
]


@pytest.mark.parametrize("answer", ["<point>0.3, 0.4</point>", "<point>1, 1</point>", "<point>2, 2</point>"])
def test_xml_norm_point_distance_parity(answer: str) -> None:
    ref = reference("scoring.xml_norm_point_distance").XmlNormPointDistance.match
    for resp in XML_POINTS:
        assert same(ours_score("xml_norm_point_distance", resp, answer), ref_score(ref, resp, answer)), resp


@pytest.mark.parametrize("boxes", [["[0.2, 0.3, 0.4, 0.5]"], ["[0.0, 0.0, 0.1, 0.1]", "(0.2, 0.3, 0.4, 0.5)"],
                                   ["[0, 0, 1, 1]"]])
def test_xml_norm_point_in_bbox_parity(boxes: list[str]) -> None:
    ref = reference("scoring.xml_norm_point_in_bbox").XmlNormPointInBbox.match
    ctx = {"bounding_boxes": boxes}
    for resp in XML_POINTS:
        try:
            expected = ref(resp, ctx)
        except Exception:  # noqa: BLE001
            expected = 0
        assert score_field(FIELD_METRICS.get("xml_norm_point_in_bbox"), resp, ctx) == expected, resp


COORDS = [
    "[(0.1, 0.2), (0.3, 0.4)]", "[[0.1, 0.2], [0.3, 0.5]]", "[(0.1, 0.2)]", "[]", "", "abc", "5",
    "[(0.1, 0.2, 0.3)]",
    "[(0.1, 'a'), (0.3, 0.4)]", '[[0.1, 0.2], [0.3, 0.4]]', "[(0.1, 0.2), (0.3, 0.4)", "[(1, 1), (0, 0)]",
    [[0.1, 0.2], [0.3, 0.4]], [[0.1], [0.2, 0.3]], None, "[(0.1, 0.2), [0.3, 0.4], (5,)]", "{(0.1, 0.2)}",
]


@pytest.mark.parametrize("answer", ["[(0.1, 0.2), (0.3, 0.4)]", "[]"])
def test_sequence_coords_similarity_parity(answer: str) -> None:
    ref = reference("scoring.coordinate_sequence_match").CoordsSequenceSimilarity.match
    for resp in COORDS:
        expected = ref_score(ref, resp, answer)
        assert same(ours_score("sequence_coords_similarity", resp, answer), expected), resp


def test_readers_parity() -> None:
    conv = reference("scoring.common.conversions")
    for text in BOX_TEXTS + [None, 3]:
        assert ref_score(parse.str_to_bboxes, text) == ref_score(conv.str_to_bboxes, text), text
    for text in COORDS:
        assert ref_score(parse.str_to_coords, text) == ref_score(conv.str_to_coords, text), text
    for text in XML_POINTS:
        assert repr(parse.parse_point_2d_from_xml(text)) == repr(conv.parse_point_2d_from_xml(text)), text
    for text in XML_BOXES:
        assert repr(parse.parse_bboxes_from_xml(text)) == repr(conv.parse_bboxes_from_xml(text)), text


def test_absolute() -> None:
    assert ours.nbbox_iou_tuple("[0, 0, 1, 1]", "[[0, 0, 0.5, 1]]") == pytest.approx(0.5)
    # two predictions: one exact (1), one disjoint (0) -> mean 0.5
    assert ours.nbbox_iou_tuple("[[0, 0, 0.5, 0.5], [0.6, 0.6, 0.7, 0.7]]", "[[0, 0, 0.5, 0.5]]") == 0.5
    whole, half = "[[0, 0, 1, 1], [0, 0, 1, 1]]", "[[0, 0, 1, 1], [0, 0, 0.5, 0.5]]"
    assert ours.nbbox_iou_sequence(half, whole) == 0.625
    point = "<point>0.3, 0.4</point>"
    assert ours.xml_norm_point_distance(point, "<point>0, 0</point>") == pytest.approx(0.5)
    ctx = {"bounding_boxes": ["[0.2, 0.3, 0.4, 0.5]"]}
    assert ours.xml_norm_point_in_bbox("<point>0.4, 0.5</point>", ctx) == (
        1, {"[0.2, 0.3, 0.4, 0.5]": False, "(0.2, 0.3, 0.4, 0.5)": True})
    d = 0.1 * math.sqrt(2)
    expected = math.exp(-10 * d / 2 ** .5)
    assert ours.sequence_coords_similarity("[(0.1, 0.1)]", "[(0.2, 0.2)]") == pytest.approx(expected)
    assert ours.dict_nbbox_iou_tuple_agg_jaccard('{"a": [[0, 0, 1, 1]]}', '{"b": [[0, 0, 1, 1]]}') == 0


def test_registered() -> None:
    calls = {n: FIELD_METRICS.get(n).call for n in (
        "nbbox_iou_tuple", "nbbox_iou_single", "nbbox_iou_sequence", "dict_nbbox_iou_tuple_agg_jaccard",
        "xml_nbbox_iou_single", "xml_norm_point_in_bbox", "xml_norm_point_distance",
        "sequence_coords_similarity")}
    assert calls.pop("xml_norm_point_in_bbox") == "context_info" and set(calls.values()) == {"pair"}
