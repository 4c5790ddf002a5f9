"""hf-llava-onevision: an anyres_max_N polyvlm model exported for LlavaOnevisionForConditionalGeneration; transformers
alone (AutoProcessor + the model class) gives polyvlm's logits and greedy tokens for one image (base + capped tiles)
and for two images (one base view + newline each, as LlavaOnevisionImageProcessor / pack_image_features do);
the directory is read back (hf-llava-onevision layout) and re-exported with identical tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from export_helpers import read_json, tensors_of
from PIL import Image

from polyvlm.data.records import Turn
from polyvlm.export_cli import main
from polyvlm.models.generate import SampleParams, generate_ids
from polyvlm.models.layouts import detect_layout, load_checkpoint

OV = ["model.image_aspect_ratio=anyres_max_2", "model.image_grid_pinpoints=(1x1),...,(2x3)", "model.max_length=2048"]


def image(w: int, h: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def onevision_processor(directory):
    """transformers' LlavaOnevisionProcessor on the exported files. With torchvision installed this is
    `AutoProcessor.from_pretrained(directory)`; torchvision's PyPI wheel needs a CUDA torch, so here the processor
    (its own token expansion and image processing code) is assembled from the same files without the video part."""
    import importlib.util

    from transformers import AutoImageProcessor, AutoProcessor, AutoTokenizer, LlavaOnevisionProcessor

    if importlib.util.find_spec("torchvision") is not None:
        return AutoProcessor.from_pretrained(str(directory))
    proc = object.__new__(LlavaOnevisionProcessor)
    cfg = read_json(directory / "processor_config.json")
    proc.tokenizer = AutoTokenizer.from_pretrained(str(directory))
    proc.image_processor = AutoImageProcessor.from_pretrained(str(directory))
    assert type(proc.image_processor).__name__.startswith("LlavaOnevisionImageProcessor")
    proc.video_processor = None
    proc.chat_template = (directory / "chat_template.jinja").read_text()
    for key in ("num_image_tokens", "vision_feature_select_strategy", "vision_aspect_ratio", "image_token", "video_token"):
        setattr(proc, key, cfg[key])
    proc.image_token_id = proc.tokenizer.convert_tokens_to_ids(proc.image_token)
    proc.video_token_id = proc.tokenizer.convert_tokens_to_ids(proc.video_token)
    return proc


@pytest.fixture(scope="module")
def ov(tmp_path_factory):
    """(polyvlm model, processor, export dir, transformers model, transformers processor)."""
    from transformers import LlavaOnevisionForConditionalGeneration

    from polyvlm.testing import make_tiny_checkpoint

    root = tmp_path_factory.mktemp("ov")
    ckpt = make_tiny_checkpoint(root / "ckpt", seed=5, overrides=OV)
    assert main([str(ckpt), "--format", "hf-llava-onevision", "--out", str(root / "hf")]) == 0
    model, processor = load_checkpoint(ckpt)
    hf = LlavaOnevisionForConditionalGeneration.from_pretrained(str(root / "hf")).eval()
    return model, processor, root / "hf", hf, onevision_processor(root / "hf")


def both_inputs(processor, hf_proc, images: list[Image.Image], question: str):
    """The same prompt through polyvlm (ids, MediaBatch) and through the exported chat template + processor."""
    enc = processor.encode([Turn("user", "<image>\n" * len(images) + question)], {"image": len(images)},
                           add_generation_prompt=True, media_tokens={"image": processor.image_tokens([i.size for i in images])})
    media = processor.images_to_media(images)
    content = [{"type": "image"} for _ in images] + [{"type": "text", "text": question}]
    text = hf_proc.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False)
    hf_in = hf_proc(images=[images], text=text, return_tensors="pt")
    return enc.input_ids, media, hf_in


def test_export_files_and_config(ov):
    _, processor, out, _, hf_proc = ov
    cfg = read_json(out / "config.json")
    assert cfg["architectures"] == ["LlavaOnevisionForConditionalGeneration"] and cfg["model_type"] == "llava_onevision"
    assert cfg["vision_aspect_ratio"] == "anyres_max_2" and cfg["video_token_index"] == processor.media_token_ids["video"]
    assert type(hf_proc).__name__ == "LlavaOnevisionProcessor" and "image_newline" in tensors_of(out)


@pytest.mark.parametrize("sizes", [[(100, 60)], [(60, 130)], [(200, 90)], [(100, 60), (50, 80)]])
def test_transformers_alone_gives_polyvlm_logits(ov, sizes):
    model, processor, _, hf, hf_proc = ov
    images = [image(w, h, seed=w + h) for w, h in sizes]
    ids, media, hf_in = both_inputs(processor, hf_proc, images, "What colour are the shapes?")
    assert hf_in["input_ids"][0].tolist() == ids  # same tokens: template, placeholders and their counts
    if len(images) > 1:
        assert media.image_views == [1, 1]  # multi-image: one base view each
    with torch.no_grad():
        ours = model(torch.tensor([ids]), pixels=media).logits[0, -1]
        theirs = hf(**hf_in).logits[0, -1]
    assert (ours - theirs).abs().max().item() <= 1e-4


@pytest.mark.parametrize("n", [1, 2])
def test_greedy_tokens_match(ov, n):
    model, processor, _, hf, hf_proc = ov
    images = [image(120, 70, seed=4 + i) for i in range(n)]
    ids, media, hf_in = both_inputs(processor, hf_proc, images, "Describe it.")
    ours = generate_ids(model, [ids], media, [SampleParams(max_new_tokens=8)], set(), processor.pad_id)[0]
    with torch.no_grad():
        out = hf.generate(**hf_in, max_new_tokens=8, do_sample=False, eos_token_id=None)
    assert ours == out[0, len(ids):].tolist()


def test_import_then_export_gives_identical_tensors(ov, tmp_path):
    model, processor, out, _, _ = ov
    assert detect_layout(out) == "hf-llava-onevision"
    again, proc2 = load_checkpoint(out)
    assert again.cfg.image_aspect_ratio == "anyres_max_2" and proc2.config.template == processor.config.template
    a, b = model.state_dict(), again.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert main([f"hf-llava-onevision:{out}", "--format", "hf-llava-onevision", "--out", str(tmp_path / "re")]) == 0
    first, second = tensors_of(out), tensors_of(tmp_path / "re")
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_only_anyres_max_models_export_to_onevision(tiny_ckpt, tmp_path, capsys):
    assert main([str(tiny_ckpt), "--format", "hf-llava-onevision", "--out", str(tmp_path / "x")]) == 2
    assert "is not anyres_max_N" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_video_matches_transformers(ov):
    """A 3-frame video: frames resized to the tower's square, projected, pooled bilinearly to ceil(g/2)^2 tokens
    each, one newline after the last frame (LlavaOnevisionModel.get_video_features / apply_pooling); the token
    count is the processor's own `replace_video_token` rule and the prompt its chat template."""
    from polyvlm.models.encoders.media import MediaBatch

    model, processor, _, hf, hf_proc = ov
    frames = [image(90, 60, seed=20 + i) for i in range(3)]
    n = processor.video_tokens([3])
    enc = processor.encode([Turn("user", "<video>\nWhat happens?")], {"video": 1}, add_generation_prompt=True,
                           media_tokens={"video": n})
    pixels = processor.frames_to_pixels(frames)  # [f, 3, S, S]
    expanded = hf_proc.replace_video_token({"pixel_values_videos": [pixels]}, 0)
    assert len(expanded) == n[0] * len("<video>")
    content = [{"type": "video"}, {"type": "text", "text": "What happens?"}]
    text = hf_proc.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False)
    hf_ids = hf_proc.tokenizer(text.replace("<video>", expanded), add_special_tokens=False)["input_ids"]
    assert hf_ids == enc.input_ids
    media = MediaBatch()
    media.video = [pixels]
    with torch.no_grad():
        ours = model(torch.tensor([enc.input_ids]), pixels=media).logits[0, -1]
        theirs = hf(input_ids=torch.tensor([hf_ids]), pixel_values_videos=pixels[None]).logits[0, -1]
    assert (ours - theirs).abs().max().item() <= 1e-4
    greedy = generate_ids(model, [enc.input_ids], media, [SampleParams(max_new_tokens=6)], set(), processor.pad_id)[0]
    with torch.no_grad():
        out = hf.generate(input_ids=torch.tensor([hf_ids]), pixel_values_videos=pixels[None], max_new_tokens=6,
                          do_sample=False, eos_token_id=None)
    assert greedy == out[0, len(hf_ids):].tolist()
