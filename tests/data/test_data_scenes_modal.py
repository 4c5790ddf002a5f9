"""The scenes in ImageBind's other modalities carry what the PandaGPT quick start asks about them, and only that:
the sound's pitch is the colour and its beeps the count; thermal and depth do not depend on the colour and put
`count` shapes on the scene's side; the IMU shakes `count` times towards the side. Files round-trip through
polyvlm's own modality loaders and the records parse."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from polyvlm.data.scenes import COLORS, COUNTS, LANGUAGES, QUESTIONS, SHAPES, SIDES, WORDS, Scene
from polyvlm.data.scenes_modal import (
    CARRIES,
    IMU_SAMPLES,
    PITCHES,
    SAMPLE_RATE,
    chance,
    draw_depth,
    draw_thermal,
    imu_trace,
    make_modal_eval,
    make_text_qa,
    scene_sound,
)


def _blobs(mask: np.ndarray) -> list[list[tuple[int, int]]]:
    """4-connected components of a boolean picture (pixel lists)."""
    seen = np.zeros_like(mask)
    out = []
    for y, x in zip(*np.nonzero(mask)):
        if seen[y, x]:
            continue
        stack, blob = [(y, x)], []
        seen[y, x] = True
        while stack:
            cy, cx = stack.pop()
            blob.append((cy, cx))
            for ny, nx in ((cy + 1, cx), (cy - 1, cx), (cy, cx + 1), (cy, cx - 1)):
                if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
        out.append(blob)
    return out


def _bursts(envelope: np.ndarray, threshold: float) -> int:
    on = envelope > threshold
    return int(on[0]) + int(np.count_nonzero(on[1:] & ~on[:-1]))


@pytest.mark.parametrize("color", list(COLORS))
@pytest.mark.parametrize("count", COUNTS)
def test_sound_pitch_is_the_colour_and_beeps_the_count(color, count):
    wave = scene_sound(Scene(color, "circle", count, "left"), random.Random(count))
    assert wave.shape == (2 * SAMPLE_RATE,) and wave.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(wave))
    peak = np.fft.rfftfreq(len(wave), 1 / SAMPLE_RATE)[spectrum.argmax()]
    nearest = min(PITCHES, key=lambda c: abs(np.log(PITCHES[c] / peak)))
    assert nearest == color, (peak, PITCHES[color])
    envelope = np.abs(wave).reshape(-1, 160).max(1)  # 10 ms frames
    assert _bursts(envelope, 0.1) == count


@pytest.mark.parametrize("draw", [draw_thermal, draw_depth])
def test_thermal_and_depth_do_not_see_colour(draw):
    """The same draws give the same picture whatever the colour: nothing in them can tell red from blue."""
    a = np.asarray(draw(Scene("red", "square", 3, "left"), random.Random(5)))
    b = np.asarray(draw(Scene("blue", "square", 3, "left"), random.Random(5)))
    assert np.array_equal(a, b)
    c = np.asarray(draw(Scene("red", "circle", 3, "left"), random.Random(5)))
    assert not np.array_equal(a, c)  # the shape changes them


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("count", COUNTS)
def test_thermal_and_depth_put_count_shapes_on_the_side(side, count):
    for shape in SHAPES:
        scene = Scene("green", shape, count, side)
        heat = np.asarray(draw_thermal(scene, random.Random(count)), np.float32)
        depth = draw_depth(scene, random.Random(count)).astype(np.float32) / 65535
        assert depth.dtype == np.float32 and heat.shape == depth.shape == (64, 64)
        for arr, thr in ((heat, 140), (depth, 0.6)):
            blobs = [b for b in _blobs(arr > thr) if len(b) >= 6]  # a shape, not a stray noisy pixel
            assert len(blobs) == count, (shape, side, count)
            assert all((np.mean([x for _, x in b]) < 32) == (side == "left") for b in blobs)


def test_depth_relief_differs_by_shape():
    """Inside a shape: a flat box is one level, a dome peaks in its middle, a ramp rises towards its apex."""
    spreads = {}
    for shape in SHAPES:
        d = draw_depth(Scene("red", shape, 1, "left"), random.Random(2)).astype(np.float32) / 65535
        inside = d[d > 0.6]
        spreads[shape] = float(inside.std())
    assert spreads["square"] < 0.02 < min(spreads["circle"], spreads["triangle"])


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("count", COUNTS)
def test_imu_shakes_count_times_towards_the_side(side, count):
    trace = imu_trace(Scene("red", "circle", count, side), random.Random(count))
    assert trace.shape == (6, IMU_SAMPLES) and trace.dtype == np.float32
    assert abs(trace[2].mean() - 9.81) < 0.2  # gravity on z
    x = trace[0]
    sign = -1.0 if side == "left" else 1.0
    assert _bursts((sign * x).reshape(-1, 10).max(1), 1.5) == count  # each shake: out towards the side, then back
    first = x[np.argmax(np.abs(x) > 1.5)]
    assert np.sign(first) == sign


def test_eval_set_asks_each_modality_only_what_it_carries(tmp_path):
    from polyvlm.data.records import parse_record
    from polyvlm.media import load

    recs = make_modal_eval(tmp_path, 3, seed=7)
    assert len(recs) == 6 * 3 * len(CARRIES)
    for r in recs:
        m = r["modality"]
        assert r["qtype"] in CARRIES[m]
        assert (tmp_path / r[m]).is_file()
        rec = parse_record(r, f"eval.jsonl#{r['id']}")
        assert rec.media[m] == [r[m]] and rec.language == r["language"]
        scene = Scene(**r["scene"])
        assert r["answer"] == scene.answer(r["qtype"], r["language"])
    by_modality = {m: [r for r in recs if r["modality"] == m] for m in CARRIES}
    assert all(len(v) == 18 for v in by_modality.values())
    # polyvlm's modality loaders read every file back: 16-bit depth, grey thermal, 6 x T IMU, 16 kHz audio
    depth = load("depth", tmp_path / by_modality["depth"][0]["depth"])
    assert depth.ndim == 2 and depth.dtype in (np.uint16, np.int32) and depth.max() > 255
    assert load("thermal", tmp_path / by_modality["thermal"][0]["thermal"]).mode == "L"
    assert load("imu", tmp_path / by_modality["imu"][0]["imu"]).shape == (6, IMU_SAMPLES)


def test_eval_set_is_reproducible(tmp_path):
    a = make_modal_eval(tmp_path / "a", 2, seed=3)
    b = make_modal_eval(tmp_path / "b", 2, seed=3)
    assert a == b
    for r in a:
        m = r["modality"]
        assert (tmp_path / "a" / r[m]).read_bytes() == (tmp_path / "b" / r[m]).read_bytes()


def test_chance_averages_the_question_types_asked():
    assert chance("audio") == pytest.approx((1 / 6 + 1 / 4) / 2)
    assert chance("thermal") == chance("depth") == pytest.approx((1 / 3 + 1 / 4 + 1 / 2) / 3)
    assert chance("image") == pytest.approx((1 / 6 + 1 / 3 + 1 / 4 + 1 / 2) / 4)


def test_scene_is_a_dataclass_the_records_round_trip():
    s = Scene("red", "circle", 2, "left")
    assert Scene(**dataclasses.asdict(s)) == s


def test_text_qa_is_text_only_and_answers_in_the_question_language():
    """The LM stage's data: the scene written as words inside <Img>...</Img> (any of the six languages), the
    question's own language for the answer, no media key; the same seed gives the same records."""
    recs = make_text_qa(240, seed=5)
    assert recs == make_text_qa(240, seed=5) and recs != make_text_qa(240, seed=6)
    caption_langs, crossed = set(), 0
    for r in recs:
        assert not {"image", "audio", "thermal", "depth", "imu", "video"} & set(r)
        human, answer = r["conversations"][0]["value"], r["conversations"][1]["value"]
        caption, question = human.removeprefix("<Img>").split("</Img> ")
        assert human.startswith("<Img>") and question == QUESTIONS[r["language"]][r["qtype"]]
        assert answer == r["answer"] and answer in WORDS[r["language"]].values()
        lang = next(lang for lang in LANGUAGES if caption.split() and all(w in WORDS[lang].values() for w in caption.split()))
        caption_langs.add(lang)
        crossed += lang != r["language"]
        key = next(k for k, w in WORDS[r["language"]].items() if w == answer)  # the answer names what the caption says
        assert WORDS[lang][key] in caption.split()
    assert caption_langs == set(LANGUAGES) and crossed > len(recs) // 2
