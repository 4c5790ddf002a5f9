"""PolyVLM: connectors, feature scatter order, checkpoint round trip, generation with/without KV cache."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import polyvlm
from polyvlm.data.records import Turn
from polyvlm.infer import ChatRequest
from polyvlm.models.connectors import CONNECTORS, build_connector
from polyvlm.models.generate import SampleParams, generate_ids


@pytest.mark.parametrize("name", ["linear", "mlp2x_gelu"])
def test_connector_shapes(name):
    c = build_connector(name, 24, 40)
    assert c(torch.randn(3, 7, 24)).shape == (3, 7, 40)


def test_unknown_connector_fails_loudly():
    with pytest.raises(KeyError, match="unknown connector 'nope'"):
        build_connector("nope", 2, 2)
    assert {"linear", "mlp2x_gelu"} <= set(CONNECTORS.names())


@pytest.fixture(scope="module")
def loaded(tiny_ckpt):
    return polyvlm.load(tiny_ckpt)


def _images():
    return [Image.new("RGB", (64, 64), c) for c in ("red", "blue", "green")]


def test_features_replace_placeholders_in_order(loaded):
    model, proc = loaded
    enc = proc.encode([Turn("user", "<image> <image> <image> which?"), Turn("assistant", "a")], {"image": 3})
    ids = torch.tensor([enc.input_ids])
    pixels = proc.images_to_pixels(_images())
    with torch.no_grad():
        emb = model.embed(ids, pixels)
        feats = model.encode_images(pixels)  # [3, t, d]
    image_id = proc.media_token_ids["image"]
    pos = (ids[0] == image_id).nonzero().squeeze(1)
    t = feats.shape[1]
    for k in range(3):
        torch.testing.assert_close(emb[0, pos[k * t : (k + 1) * t]], feats[k])
    with pytest.raises(ValueError, match="image placeholder tokens"):
        model.embed(ids, pixels[:2])


def test_checkpoint_round_trip_same_logits(loaded, tmp_path):
    from polyvlm.config import load_config
    from polyvlm.models.checkpoint import save_checkpoint
    from polyvlm.testing import TINY_RECIPE

    model, proc = loaded
    enc = proc.encode([Turn("user", "<image>\nWhat colour are the shapes?"), Turn("assistant", "red")], {"image": 1})
    ids = torch.tensor([enc.input_ids])
    pixels = proc.images_to_pixels(_images()[:1])
    with torch.no_grad():
        before = model(ids, torch.ones_like(ids), pixels).logits
    save_checkpoint(model, proc, load_config(TINY_RECIPE), tmp_path / "ck")
    model2, proc2 = polyvlm.load(tmp_path / "ck")
    assert proc2.encode([Turn("user", "<image>\nWhat colour are the shapes?"), Turn("assistant", "red")], {"image": 1}).input_ids == enc.input_ids
    with torch.no_grad():
        after = model2(ids, torch.ones_like(ids), pixels).logits
    torch.testing.assert_close(before, after, rtol=0, atol=0)


def test_kv_cache_matches_full_recompute(loaded):
    model, proc = loaded
    prompts = [proc.encode([Turn("user", q)], add_generation_prompt=True).input_ids for q in ("hi", "What shape are they? ok")]
    params = [SampleParams(max_new_tokens=12), SampleParams(max_new_tokens=12)]
    a = generate_ids(model, prompts, None, params, set(), proc.pad_id, use_cache=True)
    b = generate_ids(model, prompts, None, params, set(), proc.pad_id, use_cache=False)
    assert a == b and all(len(x) == 12 for x in a)


def test_batched_equals_single_and_sampling_seeded(tiny_ckpt):
    gen = polyvlm.load_generator(tiny_ckpt)
    imgs = _images()
    reqs = [ChatRequest([{"role": "user", "content": q}], images=[im], max_new_tokens=6)
            for q, im in zip(["What colour?", "Какого цвета фигуры? Скажите", "这些图形是什么颜色？"], imgs)]
    together = [c.text for c in gen.generate(reqs)]
    alone = [gen.generate([r])[0].text for r in reqs]
    assert together == alone
    s = [ChatRequest([{"role": "user", "content": "hi"}], max_new_tokens=8, temperature=1.0, top_p=0.9, seed=7)] * 2
    out = gen.generate(s)
    assert out[0].text == out[1].text and out[0].completion_tokens == 8 and out[0].finish_reason == "length"


def test_streaming_deltas_add_up(tiny_ckpt):
    gen = polyvlm.load_generator(tiny_ckpt)
    pieces: dict[int, list[str]] = {0: [], 1: []}
    reqs = [ChatRequest([{"role": "user", "content": "hi"}], max_new_tokens=5),
            ChatRequest([{"role": "user", "content": "olá"}], max_new_tokens=9)]
    out = gen.generate(reqs, on_token=lambda i, d: pieces[i].append(d))
    for i in range(2):
        assert "".join(pieces[i]) == out[i].text


@pytest.mark.parametrize("lm", ["qwen2", "llama"])
def test_generation_same_tokens_with_and_without_cache_for_each_lm(lm, recwarn):
    """Qwen2 and Llama language models: the KV cache (passed under the installed transformers' own argument
    name, so nothing deprecated is used) gives the tokens of a full recompute, with media in the prompt."""
    import dataclasses
    import logging

    from polyvlm.config import load_config
    from polyvlm.models import factory
    from polyvlm.testing import TINY_RECIPE

    base = load_config(TINY_RECIPE).model
    torch.manual_seed(3)
    llm = {**base.llm_config, "model_type": lm}
    model, proc = factory.build(dataclasses.replace(base, llm_config=llm))
    model.eval()
    assert type(model.llm).__name__ == {"qwen2": "Qwen2ForCausalLM", "llama": "LlamaForCausalLM"}[lm]
    prompts = [proc.encode([Turn("user", "<image>\n" + q)], {"image": 1}, add_generation_prompt=True).input_ids
               for q in ("What colour?", "Какого цвета фигуры?")]
    pixels = proc.images_to_pixels(_images()[:2])
    params = [SampleParams(max_new_tokens=10)] * 2
    hf_log = logging.getLogger("transformers")
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda rec: seen.append(rec.getMessage())  # type: ignore[method-assign]
    hf_log.addHandler(handler)
    try:
        a = generate_ids(model, prompts, pixels, params, set(), proc.pad_id, use_cache=True)
    finally:
        hf_log.removeHandler(handler)
    b = generate_ids(model, prompts, pixels, params, set(), proc.pad_id, use_cache=False)
    assert a == b and all(len(x) == 10 for x in a)
    assert not [m for m in seen if "deprecated" in m]
    assert not [w for w in recwarn if "deprecated" in str(w.message)]


def test_loss_from_supervised_positions_only_equals_the_full_loss(loaded):
    """With labels the LM projects only the positions that predict a supervised token (`logits_to_keep`);
    loss, per-token loss and gradients equal the cross-entropy over the full logits, for a padded batch
    whose rows supervise different positions."""
    import torch.nn.functional as F

    from polyvlm.models.processor import IGNORE

    model, proc = loaded
    rows = [proc.encode([Turn("user", "<image>\nWhat colour?"), Turn("assistant", "red and blue")], {"image": 1}),
            proc.encode([Turn("user", "<image>\nHow many shapes are in the picture?"), Turn("assistant", "3")], {"image": 1})]
    s = max(len(r.input_ids) for r in rows)
    ids = torch.zeros(2, s, dtype=torch.long)
    labels = torch.full((2, s), IGNORE)
    mask = torch.zeros(2, s, dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r.input_ids)
        ids[i, :n], labels[i, :n], mask[i, :n] = torch.tensor(r.input_ids), torch.tensor(r.labels), 1
    pixels = proc.images_to_pixels(_images()[:2])
    model.train()
    try:
        res = model(ids, mask, pixels, labels)
        assert res.logits is None  # the head and the loss ran in chunks over the supervised positions
        grads = torch.autograd.grad(res.loss_sum, [model.connector.parameters().__next__()])
        full = model(ids, mask, pixels).logits[:, :-1].float()
        ref = F.cross_entropy(full.reshape(-1, full.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=IGNORE,
                              reduction="none").view(2, s - 1)
        ref_grads = torch.autograd.grad(ref.sum(), [model.connector.parameters().__next__()])
    finally:
        model.eval()
    torch.testing.assert_close(res.token_loss, ref)
    torch.testing.assert_close(res.loss_sum, ref.sum())
    assert int(res.n_tokens) == int((labels[:, 1:] != IGNORE).sum())
    torch.testing.assert_close(grads[0], ref_grads[0])
