"""anyres: grid choice from image_grid_pinpoints, base + tiles, unpadding, newline per row, the anyres_max_N
cap, and token counts known from the image size before encoding (they match what the model fills)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from polyvlm.config import load_config
from polyvlm.data.records import Turn
from polyvlm.data.scenes import write_jsonl
from polyvlm.models import factory
from polyvlm.models.anyres import best_resolution, layout, merge, parse_mode, parse_pinpoints, unpadded_size
from polyvlm.testing import TINY_RECIPE

ANYRES = ["model.image_aspect_ratio=anyres_max_4", "model.image_grid_pinpoints=(1x1),...,(3x3)", "model.max_length=512"]


def test_pinpoints_modes_and_grid_choice():
    pins = parse_pinpoints("(1x1),...,(3x3)", 64)
    assert len(pins) == 9 and (64, 192) in pins and (192, 64) in pins
    assert parse_pinpoints([[64, 128], [128, 64]], 64) == [(64, 128), (128, 64)]
    with pytest.raises(ValueError, match="not a multiple"):
        parse_pinpoints([[100, 64]], 64)
    assert parse_mode("pad") is None and parse_mode("anyres") == 0 and parse_mode("anyres_max_9") == 9
    with pytest.raises(ValueError, match="image_aspect_ratio"):
        parse_mode("anyres_max_")
    assert best_resolution(200, 100, pins) == (128, 192)  # a wide picture gets a wide grid (h, w)
    assert best_resolution(60, 180, pins) == (192, 64)  # a tall one a tall grid
    assert best_resolution(50, 50, pins) == (64, 64)  # small: the smallest grid keeps every pixel, wastes least


def test_unpadded_size_matches_hugging_face_for_every_size():
    """Same rows and columns as transformers' own unpad_image (which rounds to 7 decimals before flooring), so
    an exported LLaVA-NeXT model sees the layout it was trained with; 352x220 on 24x24 is where a bare
    floor differs."""
    from transformers.models.llava_next.modeling_llava_next import unpad_image

    for w, h, cur in [(352, 220, 24), (220, 352, 24), (640, 480, 48), (1000, 3, 24), (7, 999, 16), (333, 333, 24)]:
        ref = unpad_image(torch.zeros(1, cur, cur), (h, w)).shape[1:]
        assert unpadded_size(w, h, cur, cur) == tuple(ref), (w, h, cur)
    for w in range(50, 400, 13):
        for h in range(50, 400, 17):
            ref = unpad_image(torch.zeros(1, 24, 48), (h, w)).shape[1:]
            assert unpadded_size(w, h, 24, 48) == tuple(ref), (w, h)


def test_unpad_and_newline_layout():
    assert unpadded_size(200, 100, 16, 16) == (8, 16)  # wide picture padded top and bottom
    assert unpadded_size(100, 200, 16, 16) == (16, 8)
    pins = parse_pinpoints("(1x1),...,(3x3)", 64)
    lay = layout(200, 100, pins, 64, 8, 0)
    assert (lay.rows, lay.cols) == (2, 3) and (lay.uh, lay.uw) == (lay.fh, lay.fw)
    feats = torch.randn(lay.views, 64, 5)
    newline = torch.full((5,), 7.0)
    out = merge(feats, lay, newline)
    assert out.shape == (lay.tokens, 5) == (64 + lay.fh * (lay.fw + 1), 5)
    torch.testing.assert_close(out[:64], feats[0])  # base view first
    grid = out[64:].reshape(lay.fh, lay.fw + 1, 5)
    assert torch.all(grid[:, -1] == 7.0) and not torch.any(grid[:, :-1] == 7.0)
    # the first kept row is tile row 0 below the top padding, read left to right across tiles
    top = (2 * 8 - lay.uh) // 2
    tiles = feats[1:].reshape(2, 3, 8, 8, 5)
    torch.testing.assert_close(grid[0, :8], tiles[top // 8, 0, top % 8])
    torch.testing.assert_close(grid[0, 8:16], tiles[top // 8, 1, top % 8])


def test_anyres_max_caps_tokens():
    pins = parse_pinpoints("(1x1),...,(6x6)", 64)
    free, capped = layout(640, 600, pins, 64, 8, 0), layout(640, 600, pins, 64, 8, 4)
    assert free.fh * free.fw > 4 * 64 * 1.21
    assert capped.fh * capped.fw <= 4 * 64 and capped.tokens < free.tokens


@pytest.mark.parametrize("size", [(64, 64), (200, 90), (50, 170), (300, 300)])
def test_counts_before_encoding_match_the_model(size):
    torch.manual_seed(0)
    model, proc = factory.build(load_config(TINY_RECIPE, ANYRES).model)
    img = Image.new("RGB", size, "red")
    n = proc.image_tokens([img.size])[0]
    enc = proc.encode([Turn("user", "<image>\nWhat colour?"), Turn("assistant", "red")], {"image": 1},
                      media_tokens={"image": [n]})
    media = proc.images_to_media([img])
    assert media.pixels.shape[0] == media.image_views[0] > 1
    ids = torch.tensor([enc.input_ids])
    with torch.no_grad():
        emb = model.embed(ids, media)
    slots = ids[0] == proc.media_token_ids["image"]
    assert int(slots.sum()) == n
    rows = emb[0, slots]
    newline_rows = (rows == model.image_newline).all(-1).sum()
    lay = layout(*size, parse_pinpoints("(1x1),...,(3x3)", 64), 64, 8, 4)
    assert int(newline_rows) == lay.fh
    with pytest.raises(ValueError, match="pass media_tokens"):
        proc.encode([Turn("user", "<image> hi")], {"image": 1})


def test_anyres_trains_and_generates(tmp_path):
    import polyvlm
    from polyvlm.infer import ChatRequest
    from polyvlm.train.loop import train

    (tmp_path / "images").mkdir()
    Image.new("RGB", (180, 80), "green").save(tmp_path / "images" / "wide.png")
    recs = [{"id": f"w{i}", "image": "images/wide.png", "conversations": [
        {"from": "human", "value": "<image>\nWhat colour?"}, {"from": "gpt", "value": "green"}]} for i in range(2)]
    data = write_jsonl(recs, tmp_path / "w.jsonl")
    cfg = load_config(TINY_RECIPE, [*ANYRES, f"data.path={data}", f"train.output_dir={tmp_path / 'run'}",
                                    "train.max_steps=2", "train.batch_size=2"])
    res = train(cfg, show_progress=False)
    gen = polyvlm.load_generator(res.checkpoint)
    req = ChatRequest([{"role": "user", "content": "What colour?"}], images=[Image.new("RGB", (180, 80))], max_new_tokens=2)
    assert gen.count_prompt_tokens(req) > gen.count_prompt_tokens(ChatRequest([{"role": "user", "content": "What colour?"}])) + 64
    from models_helpers import greedy_by_hand

    (out,) = gen.generate([req])  # the cached, batched decode over the anyres views ...
    want = greedy_by_hand(gen, req, 2)  # ... is the plain full-forward greedy decode
    assert out.completion_tokens == len(want)
    assert out.text == gen.processor.tokenizer.decode(want, skip_special_tokens=True)


def test_multi_image_samples_get_one_base_view_each_in_training(tmp_path):
    """anyres_max_N follows LLaVA-OneVision (transformers' LlavaOnevisionImageProcessor patches an image only when
    it is alone in its sample): a two-image record is encoded, collated and embedded with one padded base view
    plus one newline per image; a one-image record keeps base + tiles; uncapped anyres (LLaVA-NeXT) tiles both."""
    from polyvlm.data.dataset import LazyRecords
    from polyvlm.models.anyres import base_layout
    from polyvlm.train.dataset import TrainDataset

    (tmp_path / "images").mkdir()
    Image.new("RGB", (180, 80), "green").save(tmp_path / "images" / "a.png")
    Image.new("RGB", (60, 90), "blue").save(tmp_path / "images" / "b.png")
    recs = [{"id": "two", "image": ["images/a.png", "images/b.png"], "conversations": [
        {"from": "human", "value": "<image>\n<image>\nWhich colours?"}, {"from": "gpt", "value": "green and blue"}]},
        {"id": "one", "image": "images/a.png", "conversations": [
            {"from": "human", "value": "<image>\nWhat colour?"}, {"from": "gpt", "value": "green"}]}]
    data = write_jsonl(recs, tmp_path / "w.jsonl")
    torch.manual_seed(0)
    model, proc = factory.build(load_config(TINY_RECIPE, ANYRES).model)
    ds = TrainDataset(LazyRecords([data]), proc, tmp_path)
    two, one = ds[0], ds[1]
    assert two.media.image_views == [1, 1] and one.media.image_views[0] > 1
    image_id = proc.media_token_ids["image"]
    assert two.input_ids.count(image_id) == 2 * base_layout(8).tokens == 2 * (64 + 1)
    with torch.no_grad():
        emb = model.embed(torch.tensor([two.input_ids]), two.media)
    rows = emb[0, torch.tensor(two.input_ids) == image_id]
    assert [int(i) for i in (rows == model.image_newline).all(-1).nonzero()] == [64, 129]  # a newline ends each image
    uncapped = factory.build(load_config(TINY_RECIPE, ["model.image_aspect_ratio=anyres", ANYRES[1], "model.max_length=2048"]).model)[1]
    assert all(n > 1 for n in TrainDataset(LazyRecords([data]), uncapped, tmp_path)[0].media.image_views)
