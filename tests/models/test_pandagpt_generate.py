"""PandaGPT through the normal generation path (`polyvlm.load_generator` -> `VLMGenerator`, what chat, serve and
eval call): every ImageBind modality in a `ChatRequest`, one summed row per conversation, PandaGPT's `###` stop.

Reference: yxuansu/PandaGPT code/model/openllama.py (`generate`: the prompt embedding of
`prepare_generation_embedding`, all inputs summed into one row; stopping at `###`), code/web_demo.py (one
modality cache for the whole conversation). `pandagpt.answer` is the in-Python path checked against it in
tests/models/test_pandagpt.py; here the generator must give the same answers."""

from __future__ import annotations

import pytest

import polyvlm
from polyvlm import media
from polyvlm.data.records import Turn
from polyvlm.infer import ChatRequest, Video
from polyvlm.infer.request import media_fields
from polyvlm.models import pandagpt
from polyvlm.testing import make_tiny_pandagpt, write_pandagpt_media


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    return polyvlm.load_generator(make_tiny_pandagpt(tmp_path_factory.mktemp("pandagpt")))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_pandagpt_media(tmp_path_factory.mktemp("media"))


def _decoded(modality: str, path):
    """What the surfaces put in a request: polyvlm.media's decoding (a Video reference for video)."""
    return Video(path) if modality == "video" else media.load(modality, path)


def _ask(gen, question: str, inputs: dict, max_new_tokens: int = 6) -> str:
    req = ChatRequest([{"role": "user", "content": question}], max_new_tokens=max_new_tokens,
                      **media_fields({m: [_decoded(m, p)] for m, p in inputs.items()}))
    return gen.generate([req])[0].text


def test_generator_takes_every_modality_as_pandagpt_answers(gen, files):
    assert gen.pandagpt and gen.modalities == {"image", "video", "audio", "thermal", "depth", "imu"}
    assert gen.turn_stops == ["###"]
    plain = _ask(gen, "What is it?", {})
    answers = {}
    for modality, path in files.items():
        got = _ask(gen, "What is it?", {modality: path})
        want = pandagpt.answer(gen.model, gen.processor, "What is it?", {modality: [path]}, max_new_tokens=6)
        assert got.strip() == want, modality
        answers[modality] = got
    assert all(a != plain for a in answers.values())  # each answer is conditioned on its input
    assert len(set(answers.values())) >= 4


def test_several_modalities_are_summed_and_batches_match_single_requests(gen, files):
    mix = {"audio": files["audio"], "thermal": files["thermal"], "imu": files["imu"]}
    want = pandagpt.answer(gen.model, gen.processor, "Describe.", {m: [p] for m, p in mix.items()}, max_new_tokens=6)
    assert _ask(gen, "Describe.", mix).strip() == want
    reqs = [ChatRequest([{"role": "user", "content": q}], max_new_tokens=5, **kw) for q, kw in [
        ("Warm?", {"extra": {"thermal": [media.load("thermal", files["thermal"])]}}),
        ("Hello there, who are you?", {}),
        ("Hear?", {"audios": [media.load("audio", files["audio"])], "extra": {"depth": [media.load("depth", files["depth"])]}})]]
    batched = [c.text for c in gen.generate(reqs)]
    assert batched == [gen.generate([r])[0].text for r in reqs]
    n = gen.count_prompt_tokens(reqs[0])
    assert n == len(pandagpt.prompt_ids(gen.processor, [Turn("user", "Warm?")]))


def test_later_turns_media_join_the_first_turns_row(gen, files):
    """A thermal attached in turn 2 (`<thermal>` in its text) is summed into the one row of turn 1."""
    th, au = media.load("thermal", files["thermal"]), media.load("audio", files["audio"])
    req = ChatRequest([{"role": "user", "content": "<audio>\nWhat is it?"}, {"role": "assistant", "content": "A beep."},
                       {"role": "user", "content": "<thermal>\nAnd now?"}], audios=[au], extra={"thermal": [th]},
                      max_new_tokens=6)
    history = [Turn("user", "What is it?"), Turn("assistant", "A beep.")]
    want = pandagpt.answer(gen.model, gen.processor, "And now?", {"audio": [files["audio"]], "thermal": [files["thermal"]]},
                           max_new_tokens=6, history=history)
    assert gen.generate([req])[0].text.strip() == want
    ids = pandagpt.prompt_ids(gen.processor, [Turn(m["role"], m["content"]) for m in req.messages])
    assert ids.count(gen.processor.media_token_ids["image"]) == 1 and gen.count_prompt_tokens(req) == len(ids)


def test_bad_inputs_and_a_modality_the_model_lacks(gen, tmp_path):
    from polyvlm.models.generate import VLMGenerator

    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(media.MediaError, match="audio 1: bytes are not readable audio"):
        gen.generate([ChatRequest([{"role": "user", "content": "x"}], audios=[bad.read_bytes()])])
    with pytest.raises(ValueError, match=r"IMU 'imu 1' has shape \(3, 40\)"):
        gen.generate([ChatRequest([{"role": "user", "content": "x"}], extra={"imu": [[[0.0] * 40] * 3]})])
    tiny = VLMGenerator(gen.model, gen.processor)
    tiny.pandagpt, tiny.modalities = False, {"image"}  # what a LLaVA-style image model declares
    with pytest.raises(ValueError, match="this model has no thermal encoder"):
        tiny.count_prompt_tokens(ChatRequest([{"role": "user", "content": "x"}], extra={"thermal": ["heat.png"]}))


def test_streamed_text_never_shows_the_start_of_the_turn_end(gen, files):
    """A stop string made of several tokens ("###" for Vicuna's tokenizer) is held back while it may be forming:
    the streamed deltas join to the final text, never to a prefix of the marker."""
    req = lambda: ChatRequest([{"role": "user", "content": "What is it?"}], max_new_tokens=8,  # noqa: E731
                              extra={"thermal": [media.load("thermal", files["thermal"])]})
    pieces: list[str] = []
    full = gen.generate([req()], on_token=lambda i, d: pieces.append(d))[0].text
    ends = [len("".join(pieces[:k + 1])) for k in range(len(pieces) - 1)]
    # a marker spanning two streamed pieces: its first character arrives one token before the rest
    cut = next(b - 1 for b in ends if b > 1 and full.find(full[b - 1:b + 1]) == b - 1)
    saved, gen.turn_stops = gen.turn_stops, [full[cut:cut + 2]]
    try:
        deltas: list[str] = []
        done = gen.generate([req()], on_token=lambda i, d: deltas.append(d))[0]
    finally:
        gen.turn_stops = saved
    assert done.text == full[:cut] and "".join(deltas) == full[:cut] and done.finish_reason == "stop"
