"""Build a (model, processor) pair from a ModelConfig: from an `init_from` checkpoint, or from local
Hugging Face directories and/or configs; `builtin:tiny` (a registered built-in tokenizer) trains offline."""

from __future__ import annotations

import logging

from polyvlm.config import ModelConfig
from polyvlm.models.encoders.modality import configured_modalities
from polyvlm.models.processor import Processor, ProcessorConfig
from polyvlm.models.templates import get_template
from polyvlm.models.tokenizer import add_placeholders, load_tokenizer, placeholder_ids, train_tokenizer
from polyvlm.models.vlm import PolyVLM, build_model
from polyvlm.registry import Registry

log = logging.getLogger("polyvlm.models")


BUILTIN_TOKENIZERS: Registry = Registry("built-in tokenizer")


@BUILTIN_TOKENIZERS.register("builtin:tiny")
def _tiny():
    """BPE trained on the built-in scenes' questions, answers and captions in six languages."""
    from polyvlm.data.scenes import corpus

    return train_tokenizer(corpus() * 4, vocab_size=600)


@BUILTIN_TOKENIZERS.register("builtin:tiny-av")
def _tiny_av():
    """`builtin:tiny` + the multi-image and audio tones vocabulary."""
    from polyvlm.data.scenes import corpus_av

    return train_tokenizer(corpus_av() * 4, vocab_size=700)


@BUILTIN_TOKENIZERS.register("builtin:tiny-pandagpt")
def _tiny_pandagpt():
    """`builtin:tiny` + PandaGPT's prompt format (`### Human: <Img>`, `</Img>`, `\n### Assistant:`, `\n###`), as
    Vicuna's tokenizer takes it in a few tokens: the quick start's PandaGPT prompts shrink from ~53 tokens to ~30."""
    from polyvlm.data.scenes import corpus

    prompt = ["### Human: <Img>", "</Img> ", "\n### Assistant:", "\n###", " Human: "]
    return train_tokenizer(corpus() * 4 + prompt * 40, vocab_size=640)


def builtin_tokenizer(name: str):
    """A tokenizer trained offline on the built-in data (`polyvlm.data.scenes`), by its registered name."""
    return BUILTIN_TOKENIZERS.build(name)


def build(cfg: ModelConfig) -> tuple[PolyVLM, Processor]:
    """`_build`, then `model.connector_init` (a LLaVA projector state) loaded into the connector."""
    model, processor = _build(cfg)
    if cfg.connector_init:
        from polyvlm.models.projector_import import init_connector

        init_connector(model.connector, cfg.connector_init)
    return model, processor


def _build(cfg: ModelConfig) -> tuple[PolyVLM, Processor]:
    """A model and processor for `cfg`. With `init_from` (a checkpoint in any layout), parts and tokenizer come
    from that checkpoint and the template / max_length / connector settings from `cfg`."""
    get_template(cfg.template)  # fail early on an unknown template
    if cfg.init_from:  # any checkpoint layout; it must agree with cfg (polyvlm.models.layouts)
        from polyvlm.models.layouts import load_checkpoint

        model, processor = load_checkpoint(cfg.init_from, cfg=cfg)
        model.train()
        log.info("initialised from checkpoint %s", cfg.init_from)
        return model, processor
    name = cfg.tokenizer or cfg.llm
    if not name:
        raise ValueError("model.tokenizer (or model.llm) must name a tokenizer directory or builtin:tiny")
    tokenizer = builtin_tokenizer(name) if name.startswith("builtin:") else load_tokenizer(name)
    add_placeholders(tokenizer, configured_modalities(cfg.encoders))  # those of the modalities it has encoders for
    model = build_model(cfg, len(tokenizer), placeholder_ids(tokenizer))
    v = model.vision
    processor = Processor(tokenizer, ProcessorConfig(
        template=cfg.template, max_length=cfg.max_length, image_size=v.image_size, image_mean=tuple(v.mean),
        image_std=tuple(v.std), **media_settings(model, cfg),
    ))
    return model, processor


def media_settings(model: PolyVLM, cfg: ModelConfig) -> dict:
    """Processor settings that follow the model's encoders and `cfg`: token counts, anyres, audio, video."""
    from polyvlm.models.encoders.embed import media_tokens

    out = {"tokens_per_media": media_tokens(model), "image_aspect_ratio": cfg.image_aspect_ratio,
           "image_grid_pinpoints": cfg.image_grid_pinpoints, "patch_size": model.vision.patch_size,
           "image_resize": model.vision.resize,
           "video_fps": cfg.video_fps, "frames_upbound": cfg.frames_upbound}
    if model.audio is not None:
        out.update(audio_mels=model.audio.n_mels, audio_samples=model.audio.n_samples)
    return out
