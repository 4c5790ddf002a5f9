"""hf-llava-next export of `anyres` models: files and configs, LlavaNext logits / greedy parity on images of
several shapes (base view + tiles, unpadding, row newlines), which image layout goes to which format, and
LLaVA-NeXT import (round trip, init_from)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from export_helpers import hf_inputs, offline_forward, read_json, tensors_of
from PIL import Image

from polyvlm.data.records import Turn
from polyvlm.export_cli import main

ANYRES = ["model.image_aspect_ratio=anyres", "model.image_grid_pinpoints=(1x1),...,(2x3)", "model.max_length=1024"]
# (w, h): wide (unpadded rows), tall (unpadded columns), square (1x1 grid), very wide (a 2x3 grid)
SIZES = [(100, 60), (60, 130), (64, 64), (200, 90)]


def image(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def polyvlm_anyres_inputs(processor, question: str, img: Image.Image):
    """input_ids [1, s] with the image's anyres token count, and its MediaBatch (base view + tiles)."""
    n = processor.image_tokens([img.size])
    enc = processor.encode([Turn("user", f"<image>\n{question}")], {"image": 1}, add_generation_prompt=True,
                           media_tokens={"image": n})
    return torch.tensor([enc.input_ids]), processor.images_to_media([img])


@pytest.fixture(scope="module")
def anyres_ckpt(tmp_path_factory):
    from polyvlm.testing import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("anyres") / "ckpt", seed=3, overrides=ANYRES)


@pytest.fixture(scope="module")
def anyres(anyres_ckpt):
    from polyvlm.models.checkpoint import load

    return load(anyres_ckpt)


@pytest.fixture(scope="module")
def next_dir(anyres_ckpt, tmp_path_factory):
    """`polyvlm export CKPT --format hf-llava-next --out DIR`."""
    out = tmp_path_factory.mktemp("next") / "llava-next"
    assert main([str(anyres_ckpt), "--format", "hf-llava-next", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def hf_next(next_dir):
    from transformers import AutoProcessor, LlavaNextForConditionalGeneration

    return LlavaNextForConditionalGeneration.from_pretrained(str(next_dir)).eval(), AutoProcessor.from_pretrained(str(next_dir))


def test_llava_next_layout(anyres, next_dir):
    model, processor = anyres
    cfg = read_json(next_dir / "config.json")
    assert cfg["model_type"] == "llava_next" and cfg["architectures"] == ["LlavaNextForConditionalGeneration"]
    grids = [[64 * r, 64 * c] for r in (1, 2) for c in (1, 2, 3)]
    assert cfg["image_grid_pinpoints"] == grids
    assert cfg["text_config"]["architectures"] == ["Qwen2ForCausalLM"]
    assert cfg["vision_feature_layer"] == -2 and cfg["vision_feature_select_strategy"] == "default"
    assert cfg["image_token_index"] == processor.tokenizer.convert_tokens_to_ids("<image>")
    pre = read_json(next_dir / "preprocessor_config.json")
    assert pre["image_processor_type"] == "LlavaNextImageProcessor" and pre["image_grid_pinpoints"] == grids
    assert read_json(next_dir / "processor_config.json")["processor_class"] == "LlavaNextProcessor"
    assert read_json(next_dir / "tokenizer_config.json")["processor_class"] == "LlavaNextProcessor"
    tensors = tensors_of(next_dir)
    assert torch.equal(tensors["image_newline"], model.image_newline.detach())


@pytest.mark.parametrize("size", SIZES)
def test_llava_next_logits_match(anyres, hf_next, size):
    """Same token ids (LlavaNextProcessor counts base + unpadded tiles + row newlines as polyvlm does), same
    base view and tiles, same logits."""
    model, processor = anyres
    hf, hf_proc = hf_next
    img = image(*size)
    ids, media = polyvlm_anyres_inputs(processor, "What is in the picture?", img)
    inputs = hf_inputs(hf_proc, "What is in the picture?", img)
    assert inputs["input_ids"].tolist() == ids.tolist()
    assert inputs["image_sizes"].tolist() == [[size[1], size[0]]]
    assert (inputs["pixel_values"][0] - media.pixels).abs().max().item() < 1e-5
    with torch.no_grad():
        ours = model(ids, pixels=media).logits
        theirs = hf(**inputs).logits
    assert ours.shape == theirs.shape
    assert (ours - theirs).abs().max().item() < 1e-4


def test_llava_next_greedy_same_tokens(anyres, hf_next):
    from polyvlm.models.generate import SampleParams, generate_ids

    model, processor = anyres
    hf, hf_proc = hf_next
    img = image(120, 70, seed=4)
    ids, media = polyvlm_anyres_inputs(processor, "Describe it.", img)
    ours = generate_ids(model, [ids[0].tolist()], media, [SampleParams(max_new_tokens=10)], processor.stop_ids,
                        processor.pad_id)[0]
    inputs = hf_inputs(hf_proc, "Describe it.", img)
    with torch.no_grad():
        out = hf.generate(**inputs, max_new_tokens=10, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1]:].tolist()
    cut = next((i for i, t in enumerate(new) if t in processor.stop_ids), len(new))
    assert len(ours) > 0 and ours == new[:cut]


def test_image_layout_picks_the_format(anyres_ckpt, tiny_ckpt, tmp_path, capsys):
    """anyres -> hf-llava-next only; pad -> hf-llava only; anyres_max_N (OneVision's cap) -> neither."""
    from polyvlm.testing import make_tiny_checkpoint

    assert main([str(anyres_ckpt), "--format", "hf-llava", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "LLaVA-NeXT" in err and "--format hf-llava-next" in err
    assert main([str(tiny_ckpt), "--format", "hf-llava-next", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "one padded square view" in err and "export it with `--format hf-llava`" in err
    capped = make_tiny_checkpoint(tmp_path / "capped", overrides=[*ANYRES, "model.image_aspect_ratio=anyres_max_2"])
    for fmt in ("hf-llava", "hf-llava-next"):
        assert main([str(capped), "--format", fmt, "--out", str(tmp_path / fmt)]) == 2
        err = capsys.readouterr().err
        assert "anyres_max_2" in err and "LLaVA-OneVision" in err and "--format hf-llava-onevision" in err
    assert not any((tmp_path / n).exists() for n in ("a", "b", "hf-llava", "hf-llava-next"))


@pytest.mark.slow
def test_fresh_offline_process_loads_llava_next(next_dir):
    vocab = read_json(next_dir / "config.json")["text_config"]["vocab_size"]  # every placeholder token included
    assert offline_forward(next_dir, "LlavaNextForConditionalGeneration", (90, 50)) == [str(vocab), "LlavaNextProcessor"]


def test_llava_next_import_round_trip(anyres, next_dir, tmp_path):
    """`polyvlm export hf-llava:NEXT --format polyvlm`, then back to hf-llava-next: identical tensors and configs,
    and the imported model gives the original's logits."""
    from polyvlm.models.checkpoint import load

    back = tmp_path / "back"
    assert main([f"hf-llava:{next_dir}", "--format", "polyvlm", "--out", str(back), "--max-length", "1024"]) == 0
    model, processor = load(back)
    assert model.cfg.image_aspect_ratio == "anyres" and processor.config.image_aspect_ratio == "anyres"
    img = image(90, 150, seed=8)
    ids, media = polyvlm_anyres_inputs(processor, "Where?", img)
    ref_ids, ref_media = polyvlm_anyres_inputs(anyres[1], "Where?", img)
    assert ids.tolist() == ref_ids.tolist()
    with torch.no_grad():
        assert torch.equal(model(ids, pixels=media).logits, anyres[0](ref_ids, pixels=ref_media).logits)
    again = tmp_path / "again"
    assert main([str(back), "--format", "hf-llava-next", "--out", str(again)]) == 0
    a, b = tensors_of(next_dir), tensors_of(again)
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert read_json(again / "config.json") == read_json(next_dir / "config.json")
    assert read_json(again / "preprocessor_config.json") == read_json(next_dir / "preprocessor_config.json")


def test_init_from_llava_next_needs_anyres(next_dir):
    from polyvlm.config import ModelConfig
    from polyvlm.models import factory

    with pytest.raises(ValueError, match="set model.image_aspect_ratio=anyres"):
        factory.build(ModelConfig(init_from=f"hf-llava:{next_dir}"))
    model, _ = factory.build(ModelConfig(init_from=f"hf-llava:{next_dir}", image_aspect_ratio="anyres_max_4",
                                         image_grid_pinpoints="(1x1),...,(2x2)"))
    assert model.training and model.cfg.image_aspect_ratio == "anyres_max_4"
    assert torch.equal(model.image_newline.detach(), tensors_of(next_dir)["image_newline"])
