"""transformers' LLaVA-OneVision layout (`hf-llava-onevision`: LlavaOnevisionForConditionalGeneration +
LlavaOnevisionProcessor, e.g. llava-hf/llava-onevision-qwen2-0.5b-ov-hf): import through polyvlm.models.hf_import,
export of `anyres_max_N` models through polyvlm.models.export plus the OneVision processor written here.

OneVision's image rule, which polyvlm follows (polyvlm.models.anyres.base_only): an image alone in its sample gets a
base view + tiles (capped at N tiles' worth of tokens); each image of a multi-image sample gets only its base view
(padded to a square with the mean colour) and one newline embedding.
"""

from __future__ import annotations

import json
from pathlib import Path

from polyvlm.models.layouts.base import LAYOUTS, read_config_json
from polyvlm.models.layouts.hf_llava import _HFLlavaBase


def write_onevision_processor(model, processor, out: Path) -> None:
    """Tokenizer, chat template and the files of a LlavaOnevisionProcessor: `processor_config.json`,
    `preprocessor_config.json` (LlavaOnevisionImageProcessor: pinpoint tiles, black padding inside the grid, bicubic
    resize, normalise) and `video_preprocessor_config.json` (frames resized to the tower's size), written as the
    processor's `save_pretrained` writes them (the processor class itself needs torchvision to be built)."""
    from transformers import LlavaOnevisionImageProcessorPil

    from polyvlm.models.export import (
        ExportError,
        hf_chat_template,
        legacy_tokenizer_files,
        pinpoints,
        select_strategy,
    )

    v, c = model.vision, processor.config
    strategy = select_strategy(model)
    if v.has_cls and strategy == "full":
        raise ExportError("cannot export to hf-llava-onevision: a CLIP tower feeding its CLS token (vision_select full) "
                          "breaks OneVision's square tile map; train with model.vision_select=patch")
    grid = v.image_size // v.patch_size
    common = dict(size={"height": v.image_size, "width": v.image_size}, image_mean=list(c.image_mean),
                  image_std=list(c.image_std), resample=3, do_resize=True, do_rescale=True, rescale_factor=1 / 255,
                  do_normalize=True, do_convert_rgb=True)
    ip = LlavaOnevisionImageProcessorPil(**common, image_grid_pinpoints=pinpoints(model), do_pad=True)
    chat = hf_chat_template(processor.template)
    tok = processor.tokenizer
    old = tok.chat_template
    try:
        tok.chat_template = chat
        tok.save_pretrained(str(out))
    finally:
        tok.chat_template = old
    (out / "chat_template.jinja").write_text(chat)
    image_cfg = {**json.loads(ip.to_json_string()), "image_processor_type": "LlavaOnevisionImageProcessor",
                 "processor_class": "LlavaOnevisionProcessor"}
    (out / "preprocessor_config.json").write_text(json.dumps(image_cfg, indent=2))
    video = {**common, "video_processor_type": "LlavaOnevisionVideoProcessor", "processor_class": "LlavaOnevisionProcessor"}
    (out / "video_preprocessor_config.json").write_text(json.dumps(video, indent=2))
    (out / "processor_config.json").write_text(json.dumps({
        "processor_class": "LlavaOnevisionProcessor", "num_image_tokens": grid * grid + (1 if v.has_cls else 0),
        "vision_feature_select_strategy": strategy, "vision_aspect_ratio": model.cfg.image_aspect_ratio,
        "image_token": "<image>", "video_token": "<video>"}, indent=2))
    legacy_tokenizer_files(out, chat, "LlavaOnevisionProcessor")


@LAYOUTS.register("hf-llava-onevision")
class HFOnevisionLayout(_HFLlavaBase):
    name = "hf-llava-onevision"
    summary = ("transformers LlavaOnevisionForConditionalGeneration (config.json model_type 'llava_onevision', e.g. "
               "llava-hf/llava-onevision-qwen2-0.5b-ov-hf); an anyres_max_N model")
    writes = True

    def detect(self, path: Path) -> bool:
        raw = read_config_json(path)
        return raw is not None and raw.get("model_type") == "llava_onevision"

