"""Import a Hugging Face Llava or LLaVA-NeXT checkpoint directory (`model.init_from: hf-llava:PATH`, `polyvlm
export hf-llava:PATH --format polyvlm`) as a ready PolyVLM + Processor: weights, tokenizer, processor settings.

transformers reads the weights (any key layout it knows, sharded or not, any dtype); the vision tower, the
language backbone and LM head are then moved into polyvlm's modules without a copy, and the projector
weights are loaded into an `mlp2x_gelu` connector. A LLaVA-NeXT directory becomes an `anyres` model with its
`image_grid_pinpoints` and `image_newline`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, PreTrainedTokenizerBase

from polyvlm.config import ModelConfig
from polyvlm.data.records import PLACEHOLDERS, Turn
from polyvlm.models.anyres import parse_mode, parse_pinpoints
from polyvlm.models.connectors import build_connector
from polyvlm.models.encoders import ENCODERS
from polyvlm.models.layouts.base import adopt_vision_readout
from polyvlm.models.processor import Processor, ProcessorConfig
from polyvlm.models.templates import TEMPLATES, get_template
from polyvlm.models.tokenizer import load_tokenizer, placeholder_ids
from polyvlm.models.vlm import PolyVLM
from polyvlm.utils import DTYPES

log = logging.getLogger("polyvlm.hf_import")
PREFIX = "hf-llava:"
_PROBE = [Turn("user", "<image>\nWhat is shown?"), Turn("assistant", "A red ball."), Turn("user", "Where is it?")]


class HFImportError(ValueError):
    """The directory is not an importable Hugging Face Llava checkpoint; the message names it and says why."""


def _fail(path: Path, reason: str) -> HFImportError:
    return HFImportError(f"{path}: {reason}")


def read_llava_config(path: str | Path):
    """`path`'s LlavaConfig / LlavaNextConfig, after checking polyvlm can represent it exactly."""
    from transformers import LlavaConfig, LlavaNextConfig, LlavaOnevisionConfig

    path = Path(path)
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise _fail(path, "not a Hugging Face model directory (no config.json)")
    try:
        raw = json.loads(cfg_file.read_text())
    except json.JSONDecodeError as e:
        raise _fail(cfg_file, f"not valid JSON: {e}") from None
    mt = raw.get("model_type")
    classes = {"llava": LlavaConfig, "llava_next": LlavaNextConfig, "llava_onevision": LlavaOnevisionConfig}
    if mt not in classes:
        raise _fail(path, f"config.json model_type is '{mt}', not one of {', '.join(classes)}")
    cfg = classes[mt].from_pretrained(str(path))
    if cfg.projector_hidden_act != "gelu" or not cfg.multimodal_projector_bias:
        raise _fail(path, f"projector ({cfg.projector_hidden_act}, bias={cfg.multimodal_projector_bias}) is not "
                          "polyvlm's mlp2x_gelu (gelu, with biases)")
    if not isinstance(cfg.vision_feature_layer, int):
        raise _fail(path, f"vision_feature_layer {cfg.vision_feature_layer} concatenates several layers; polyvlm takes one")
    vt = cfg.vision_config.model_type
    if vt not in ENCODERS:
        raise _fail(path, f"vision tower '{vt}' is not one of polyvlm's encoders ({', '.join(ENCODERS.names())})")
    if vt == "siglip_vision_model" and cfg.vision_feature_select_strategy == "default":
        raise _fail(path, "SigLIP has no CLS token, yet vision_feature_select_strategy 'default' drops the first patch; "
                          "polyvlm cannot reproduce that")
    if mt in ("llava_next", "llava_onevision"):
        try:
            parse_pinpoints(cfg.image_grid_pinpoints, cfg.vision_config.image_size)
        except ValueError as e:
            raise _fail(path, f"image_grid_pinpoints: {e}") from None
        try:
            ok = mt != "llava_onevision" or bool(parse_mode(cfg.vision_aspect_ratio))
        except ValueError:
            ok = False
        if not ok:
            raise _fail(path, f"vision_aspect_ratio '{cfg.vision_aspect_ratio}' is not anyres_max_N")
    return cfg


def detect_template(tokenizer: PreTrainedTokenizerBase, chat_template: str | None = None) -> str | None:
    """The polyvlm template whose rendering of a probe conversation equals the Jinja chat template's, if any."""
    jinja = chat_template or getattr(tokenizer, "chat_template", None)
    if not jinja:
        return None
    messages = [{"role": t.role, "content": t.text} for t in _PROBE]
    try:
        text = tokenizer.apply_chat_template(messages, chat_template=jinja, tokenize=False, add_generation_prompt=True)
    except Exception as e:  # a template may reject this conversation (e.g. require a system turn)
        log.debug("chat template could not render the probe conversation: %s", e)
        return None
    for name in TEMPLATES.names():
        if get_template(name, tokenizer.bos_token).render(_PROBE, add_generation_prompt=True).text == text:
            return name
    return None


def _image_settings(path: Path) -> dict:
    """image_mean / image_std / size / do_pad from preprocessor_config.json or processor_config.json (or {})."""
    for name, key in (("preprocessor_config.json", None), ("processor_config.json", "image_processor")):
        f = path / name
        if f.is_file():
            try:
                data = json.loads(f.read_text())
            except json.JSONDecodeError as e:
                raise _fail(f, f"not valid JSON: {e}") from None
            if not isinstance(data, dict):
                raise _fail(f, f"holds a JSON {type(data).__name__}, not an object")
            data = data.get(key, {}) if key else data
            if data.get("image_mean"):
                return data
    return {}


def _size_of(settings: dict) -> int | None:
    crop, size = settings.get("crop_size") or {}, settings.get("size") or {}
    if isinstance(crop, dict) and crop.get("height"):
        return int(crop["height"])
    if isinstance(size, dict):
        return int(size.get("shortest_edge") or size.get("height") or 0) or None
    return int(size) if isinstance(size, int) else None


def _check_cfg(path: Path, hcfg, cfg: ModelConfig) -> None:
    """`cfg` must describe what the checkpoint holds (they are saved with every later checkpoint); it takes the
    checkpoint's vision readout (layer, CLS or not) with a logged note."""
    if cfg.connector != "mlp2x_gelu":
        raise ValueError(f"model.connector '{cfg.connector}' differs from the init_from Llava checkpoint's 'mlp2x_gelu'")
    if hcfg.model_type in ("llava_next", "llava_onevision") and parse_mode(cfg.image_aspect_ratio) is None:
        raise ValueError(f"{path}: a LLaVA-NeXT checkpoint encodes images as a base view plus tiles; set "
                         f"model.image_aspect_ratio=anyres (now '{cfg.image_aspect_ratio}') to start from it")
    if getattr(cfg, "audio", "") or getattr(cfg, "audio_config", {}):
        raise ValueError(f"{path}: a Llava checkpoint has no audio encoder; start from it without model.audio / "
                         "model.audio_config, or build the audio model from local parts (model.llm, model.vision)")
    has_cls = hcfg.vision_config.model_type != "siglip_vision_model"
    select = "patch" if hcfg.vision_feature_select_strategy == "default" or not has_cls else "full"
    have = {"vision_feature_layer": hcfg.vision_feature_layer}
    if has_cls:  # without CLS, patch and full are the same tokens: the config's value stands
        have["vision_select"] = select
    adopt_vision_readout(cfg, have, path)


def _tokenizer(path: Path, hcfg, template: str | None) -> tuple[PreTrainedTokenizerBase, str]:
    """The directory's tokenizer and the polyvlm template (given, or detected from its chat template); its
    `<image>` id must be config.json's image_token_index."""
    tokenizer = load_tokenizer(str(path))
    detected = detect_template(tokenizer)
    if template is None:
        if detected is None:
            raise _fail(path, f"its chat template matches none of polyvlm's ({', '.join(TEMPLATES.names())}); "
                              "name one (model.template / --template)")
        template = detected
    elif detected not in (None, template):
        log.warning("%s: its chat template renders like '%s', not the configured '%s'", path, detected, template)
    image_id = tokenizer.convert_tokens_to_ids(PLACEHOLDERS["image"])
    if image_id != hcfg.image_token_index:
        raise _fail(path, f"tokenizer id of <image> is {image_id} but config.json image_token_index is {hcfg.image_token_index}")
    return tokenizer, template


def _parts(path: Path, hcfg, dtype: str, n_tokens: int) -> tuple[Any, Any, Any, Any]:
    """The transformers model of the directory and polyvlm's parts sharing its tensors -> (hf model, vision
    encoder, causal LM, mlp2x_gelu connector); the LM's embeddings grow to `n_tokens` when the tokenizer has more."""
    from transformers import (
        LlavaForConditionalGeneration,
        LlavaNextForConditionalGeneration,
        LlavaOnevisionForConditionalGeneration,
    )

    hf_cls = {"llava_next": LlavaNextForConditionalGeneration, "llava_onevision": LlavaOnevisionForConditionalGeneration
              }.get(hcfg.model_type, LlavaForConditionalGeneration)
    hf = hf_cls.from_pretrained(str(path), dtype=DTYPES[dtype])
    select = "patch" if hcfg.vision_feature_select_strategy == "default" else "full"
    vision = ENCODERS.get(hcfg.vision_config.model_type)(hf.model.vision_tower, hcfg.vision_feature_layer, select)
    if not vision.has_cls:
        vision.select = "patch"  # without CLS, patch and full are the same tokens; patch is polyvlm's default
    with torch.device("meta"):
        llm = AutoModelForCausalLM.from_config(hcfg.text_config)
    setattr(llm, llm.base_model_prefix, hf.model.language_model)
    llm.lm_head = hf.lm_head
    left = [n for n, t in (*llm.named_parameters(), *llm.named_buffers()) if t.is_meta]
    if left:
        raise _fail(path, f"language model parts not filled from the checkpoint: {left[:5]}")
    connector = build_connector("mlp2x_gelu", vision.hidden_size, llm.config.hidden_size)
    connector.load_state_dict(hf.model.multi_modal_projector.state_dict())
    connector.to(DTYPES[dtype])
    if n_tokens > llm.get_input_embeddings().num_embeddings:
        llm.resize_token_embeddings(n_tokens)
    return hf, vision, llm, connector


def _image_mode(path: Path, hcfg, image_size: int, is_next: bool) -> tuple[dict, dict]:
    """(the image processor's settings, the anyres ModelConfig keys: LLaVA-NeXT is polyvlm's uncapped anyres,
    OneVision its anyres_max_N); differences from polyvlm's image handling are logged."""
    settings = _image_settings(path)
    size = _size_of(settings)
    if size is not None and size != image_size:
        log.warning("%s: image processor size %d differs from the vision tower's %d; using %d", path, size,
                    image_size, image_size)
    if not is_next and settings and settings.get("do_pad") is not True:
        log.info("%s: its image processor crops to the centre; polyvlm pads images to a square instead", path)
    if not is_next:
        return settings, {}
    aspect = hcfg.vision_aspect_ratio if hcfg.model_type == "llava_onevision" else "anyres"
    return settings, {"image_aspect_ratio": aspect, "image_grid_pinpoints": [list(p) for p in hcfg.image_grid_pinpoints]}


def import_hf_llava(path: str | Path, template: str | None = None, max_length: int = 2048,
                    dtype: str = "float32", cfg: ModelConfig | None = None) -> tuple[PolyVLM, Processor]:
    """Load the Llava directory `path` -> (PolyVLM in eval mode, Processor).

    `template` names the polyvlm chat template; None detects it from the directory's chat template and
    fails when none matches. Without `cfg`, the model's `cfg` records the checkpoint's settings, so a
    checkpoint saved from it reloads without the original directory. With `cfg` (`init_from`), template,
    max_length and dtype come from it, it must agree with the checkpoint, and parts it adds to a plain
    build (e.g. anyres' image_newline when starting from Llava) start from their usual initialisation.
    """
    from polyvlm.models.factory import media_settings  # the same processor settings a fresh build gets

    path = Path(path)
    hcfg = read_llava_config(path)
    is_next = hcfg.model_type in ("llava_next", "llava_onevision")  # base view + tiles, image_newline
    if cfg is not None:
        _check_cfg(path, hcfg, cfg)
        template, max_length, dtype = cfg.template, cfg.max_length, cfg.dtype
    if dtype not in DTYPES:
        raise HFImportError(f"unknown dtype '{dtype}' (known: {', '.join(DTYPES)})")
    tokenizer, template = _tokenizer(path, hcfg, template)
    hf, vision, llm, connector = _parts(path, hcfg, dtype, len(tokenizer))
    settings, anyres = _image_mode(path, hcfg, vision.image_size, is_next)
    mcfg = cfg or ModelConfig(vision_feature_layer=vision.feature_layer, vision_select=vision.select,
                              connector="mlp2x_gelu", template=template, max_length=max_length,
                              init_from=f"{PREFIX}{path}", dtype=dtype, **anyres)
    model = PolyVLM(mcfg, vision, connector, llm, placeholder_ids(tokenizer)).eval()
    if is_next and hasattr(model, "image_newline"):
        model.image_newline = hf.model.image_newline
    processor = Processor(tokenizer, ProcessorConfig(
        template=template, max_length=max_length, image_size=vision.image_size,
        image_mean=tuple(settings.get("image_mean", vision.mean)), image_std=tuple(settings.get("image_std", vision.std)),
        **media_settings(model, mcfg),
    ))
    log.info("imported Hugging Face %s %s (%s + %s, template %s)", type(hf).__name__, path,
             hcfg.vision_config.model_type, hcfg.text_config.model_type, template)
    return model, processor


def build_from_config(cfg: ModelConfig) -> tuple[PolyVLM, Processor]:
    """`model.init_from: hf-llava:PATH`: the imported model in train mode, `cfg` attached."""
    model, processor = import_hf_llava(cfg.init_from[len(PREFIX):], cfg=cfg)
    model.train()
    return model, processor
