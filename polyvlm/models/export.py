"""Export a polyvlm model to the Hugging Face Llava layout (`hf-llava`: `LlavaForConditionalGeneration` +
`LlavaProcessor`) or, for `anyres` models, the LLaVA-NeXT layout (`hf-llava-next`:
`LlavaNextForConditionalGeneration` + `LlavaNextProcessor`), which transformers loads with `from_pretrained`
and vLLM serves.

What is written (the llava-hf Hub layout, read by transformers 4.x and 5.x and every vLLM release):

- `config.json` (`LlavaConfig` / `LlavaNextConfig`: vision/text sub-configs, image token, `vision_feature_layer`,
  `vision_feature_select_strategy`, `text_config.architectures`, LLaVA-NeXT's `image_grid_pinpoints`) and
  `generation_config.json` (end-of-turn stop ids);
- weights as safetensors shards with keys `vision_tower.vision_model.*`, `multi_modal_projector.linear_{1,2}.*`,
  `language_model.model.*`, `language_model.lm_head.*`, LLaVA-NeXT's `image_newline`
  (+ `model.safetensors.index.json` when sharded);
- the tokenizer with a chat template that renders exactly like the polyvlm template (string content, or
  OpenAI-style lists of `{"type": "image"}` / `{"type": "text"}` parts), also inside `tokenizer_config.json`;
- `processor_config.json`, `chat_template.jinja`, and for older readers `chat_template.json` and
  `preprocessor_config.json` (`LlavaImageProcessor`: pad to square with the mean colour, bicubic resize,
  normalise; `LlavaNextImageProcessor`: base view + tiles of the best-fitting pinpoint grid).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import torch
from tqdm import tqdm

from polyvlm.atomic import save_safetensors
from polyvlm.models.anyres import parse_mode, parse_pinpoints
from polyvlm.models.connectors import MLP2xGelu
from polyvlm.models.processor import Processor
from polyvlm.models.templates import Template
from polyvlm.models.vlm import PolyVLM
from polyvlm.utils import DTYPES, atomic_dir

log = logging.getLogger("polyvlm.export")

FORMATS = ("hf-llava", "hf-llava-next", "hf-llava-onevision")
ARCH = {"hf-llava": "LlavaForConditionalGeneration", "hf-llava-next": "LlavaNextForConditionalGeneration",
        "hf-llava-onevision": "LlavaOnevisionForConditionalGeneration"}
SUPPORTED_LMS = ("llama", "qwen2", "mistral")
SUPPORTED_VISION = ("clip_vision_model", "siglip_vision_model")
# polyvlm parameter prefix -> llava-hf checkpoint prefix
KEY_MAP = (
    ("vision.tower.", "vision_tower.vision_model."),
    ("connector.", "multi_modal_projector."),
    ("llm.model.", "language_model.model."),
    ("llm.lm_head.", "language_model.lm_head."),
    ("image_newline", "image_newline"),  # LLaVA-NeXT: the embedding that ends every row of tiles
)
# why a connector cannot become a Llava projector, and what to use instead
REFUSED_CONNECTORS = {
    "moe": "the Parrot `moe` connector re-weights visual tokens with a prompt-conditioned mixture of experts, "
           "which LlavaForConditionalGeneration has no place for",
    "pool1": "the `pool1` connector maps each input to one pooled token (PandaGPT style), not one token per patch",
    "linear": "the `linear` connector is one layer, while LlavaForConditionalGeneration's projector is "
              "Linear-GELU-Linear",
}
INSTEAD = ("keep the polyvlm checkpoint and serve it with `polyvlm serve CKPT` (OpenAI-compatible API) or load it "
           "with `polyvlm.load_generator`")


class ExportError(ValueError):
    """The model cannot be written in the requested format; the message says why and what to use instead."""


def _check_aspect(aspect: str, fmt: str) -> None:
    """`pad` goes to hf-llava, uncapped `anyres` to hf-llava-next, anyres_max_N (OneVision's cap) to hf-llava-onevision."""
    cap = parse_mode(aspect)
    if fmt == "hf-llava-onevision":
        if not cap:
            raise ExportError(
                f"cannot export to hf-llava-onevision: model.image_aspect_ratio '{aspect}' is not anyres_max_N (LLaVA-"
                "OneVision's capped tiles); export a `pad` model with `--format hf-llava`, an `anyres` one with "
                "`--format hf-llava-next`")
        return
    if cap:
        raise ExportError(
            f"cannot export to {fmt}: model.image_aspect_ratio '{aspect}' caps each image's tile features at {cap} "
            "tiles' worth of tokens (LLaVA-OneVision's anyres_max), which neither LlavaForConditionalGeneration nor "
            "LlavaNextForConditionalGeneration does; export it with `--format hf-llava-onevision`"
        )
    if fmt == "hf-llava" and cap == 0:
        raise ExportError(
            f"cannot export to hf-llava: model.image_aspect_ratio '{aspect}' encodes each image as a base view plus "
            "tiles, which is the LLaVA-NeXT layout (LlavaNextForConditionalGeneration), not Llava; export it with "
            "`--format hf-llava-next`"
        )
    if fmt == "hf-llava-next" and cap is None:
        raise ExportError(
            f"cannot export to hf-llava-next: model.image_aspect_ratio '{aspect}' encodes each image as one padded "
            "square view, which is the Llava layout, not LLaVA-NeXT's base view plus tiles; export it with "
            "`--format hf-llava`"
        )


def check_exportable(model: PolyVLM, processor: Processor, fmt: str = "hf-llava") -> None:
    """Raise ExportError unless `model` is CLIP/SigLIP + mlp2x_gelu + Llama/Qwen2/Mistral, images only, with
    the image layout of `fmt` (hf-llava: `pad`; hf-llava-next: `anyres`)."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format '{fmt}' (known: {', '.join(FORMATS)})")
    cfg = model.cfg
    name = cfg.connector
    if name in REFUSED_CONNECTORS:
        raise ExportError(f"cannot export to {fmt}: {REFUSED_CONNECTORS[name]}; {INSTEAD}")
    if name != "mlp2x_gelu":
        raise ExportError(f"cannot export to {fmt}: connector '{name}' is not the LLaVA mlp2x_gelu projector; {INSTEAD}")
    _check_aspect(str(getattr(cfg, "image_aspect_ratio", "pad") or "pad"), fmt)
    extra = sorted(n for n, m in model.named_children()
                   if n not in ("vision", "connector", "llm") and any(True for _ in m.parameters()))
    if extra:
        raise ExportError(
            f"cannot export to {fmt}: the model has parts Llava has no place for ({', '.join(extra)}; e.g. an audio "
            f"encoder); {INSTEAD}"
        )
    vt = model.vision.tower.config.model_type
    if vt not in SUPPORTED_VISION:
        raise ExportError(f"cannot export to {fmt}: vision encoder '{vt}' is not CLIP or SigLIP; {INSTEAD}")
    lt = model.llm.config.model_type
    if lt not in SUPPORTED_LMS:
        raise ExportError(f"cannot export to {fmt}: language model '{lt}' is not one of {', '.join(SUPPORTED_LMS)}; {INSTEAD}")
    if hasattr(model.llm, "peft_config"):
        raise ExportError(f"cannot export to {fmt}: the language model carries LoRA adapters, which Llava has no "
                          "place for; fold them in first with `polyvlm merge-lora CKPT --out MERGED` and export MERGED")
    if processor.media_token_ids.get("image") is None:
        raise ExportError(f"cannot export to {fmt}: the tokenizer has no <image> token")
    if not isinstance(model.connector, MLP2xGelu):
        raise ExportError(f"cannot export to {fmt}: connector {type(model.connector).__name__} has no linear_1/linear_2")


def select_strategy(model: PolyVLM) -> str:
    """polyvlm's `vision_select` -> Llava's `vision_feature_select_strategy` ("default" drops CLS, "full" keeps all)."""
    return "default" if (model.vision.has_cls and model.vision.select == "patch") else "full"


def pinpoints(model: PolyVLM) -> list[list[int]]:
    """The anyres grids as LLaVA-NeXT's `image_grid_pinpoints`: [[height, width], ...] in pixels."""
    return [list(p) for p in parse_pinpoints(model.cfg.image_grid_pinpoints, model.vision.image_size)]


def llava_config(model: PolyVLM, processor: Processor, dtype: torch.dtype, fmt: str = "hf-llava") -> dict:
    """The `config.json` of the exported model as a dict (a LlavaConfig / LlavaNextConfig plus keys older
    readers look for)."""
    from transformers import LlavaConfig, LlavaNextConfig

    llm_cfg = model.llm.config.to_dict()
    llm_cfg["architectures"] = [type(model.llm).__name__]  # vLLM picks the text backbone from it
    vis_cfg = model.vision.tower.config.to_dict()
    vis_cfg.pop("architectures", None)
    kwargs = dict(
        vision_config=vis_cfg, text_config=llm_cfg, image_token_index=processor.media_token_ids["image"],
        image_seq_length=model.vision.tokens_per_image, projector_hidden_act="gelu", multimodal_projector_bias=True,
        vision_feature_layer=model.vision.feature_layer, vision_feature_select_strategy=select_strategy(model),
        tie_word_embeddings=bool(model.llm.config.tie_word_embeddings),
    )
    if fmt == "hf-llava-onevision":
        from transformers import LlavaOnevisionConfig

        kwargs.pop("image_seq_length")
        config = LlavaOnevisionConfig(**kwargs, image_grid_pinpoints=pinpoints(model),
                                      vision_aspect_ratio=model.cfg.image_aspect_ratio,
                                      video_token_index=processor.media_token_ids["video"])
    elif fmt == "hf-llava-next":
        config = LlavaNextConfig(**kwargs, image_grid_pinpoints=pinpoints(model))
    else:
        config = LlavaConfig(**kwargs)
    config.architectures = [ARCH[fmt]]
    data = config.to_diff_dict()
    data.pop("_name_or_path", None)
    for sub in ("text_config", "vision_config"):
        data[sub].pop("_name_or_path", None)
    dname = str(dtype).removeprefix("torch.")
    data["dtype"] = data["torch_dtype"] = dname  # `torch_dtype`: transformers < 4.56
    data["text_config"]["architectures"] = llm_cfg["architectures"]
    for sub in ("text_config", "vision_config"):
        data[sub]["dtype"] = data[sub]["torch_dtype"] = dname
    rope = data["text_config"].get("rope_parameters") or {}
    if "rope_theta" in rope and "rope_theta" not in data["text_config"]:
        data["text_config"]["rope_theta"] = rope["rope_theta"]  # transformers 4.x reads the flat key
    return data


def llava_state_dict(model: PolyVLM, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """polyvlm parameters -> llava-hf key names (see KEY_MAP), floating tensors cast to `dtype`.

    A tied LM head is left out, as Hugging Face does; every other tensor must map or ExportError is raised.
    """
    tied = bool(model.llm.config.tie_word_embeddings)
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, tensor in model.state_dict().items():
        for src, dst in KEY_MAP:
            if key.startswith(src):
                new = dst + key[len(src):]
                break
        else:
            raise ExportError(f"cannot export to hf-llava: parameter '{key}' has no place in the Llava layout")
        if tied and new == "language_model.lm_head.weight":
            continue
        t = tensor.detach().to("cpu")
        if t.is_floating_point():
            t = t.to(dtype)
        t = t.contiguous()
        out[new] = t.clone() if t.data_ptr() in seen else t  # safetensors refuses shared storage
        seen.add(t.data_ptr())
    return out


_CONTENT = re.compile(r"(messages\[0\]|message)\['content'\]")
CONTENT_MACRO = (
    "{%- macro pv_content(c) -%}{%- if c is string -%}{{ c }}{%- else -%}{%- for part in c -%}"
    "{%- if part['type'] == 'image' -%}{{ '<image>\\n' }}{%- elif part['type'] == 'video' -%}{{ '<video>\\n' }}"
    "{%- elif part['type'] == 'text' -%}{{ part['text'] }}"
    "{%- endif -%}{%- endfor -%}{%- endif -%}{%- endmacro -%}"
)


def hf_chat_template(template: Template) -> str:
    """The polyvlm template as a Hugging Face chat template that also takes OpenAI-style content lists.

    String content renders exactly as `template.render`; a list renders each image part as `<image>\\n` and
    each text part as its text, in order (so `[image, text]` gives LLaVA's `<image>\\nquestion`).
    """
    if not template.jinja:
        raise ExportError(f"chat template '{template.name}' has no Jinja form to export")
    return CONTENT_MACRO + _CONTENT.sub(lambda m: f"pv_content({m.group(0)})", template.jinja)


def image_processor_dict(processor: Processor, fmt: str = "hf-llava") -> dict:
    """Legacy `preprocessor_config.json`. hf-llava: LLaVA's pad-to-square (mean colour), bicubic resize,
    normalise. hf-llava-next: base view + tiles of the best pinpoint grid (`do_pad` pads the tile count)."""
    c = processor.config
    out = {
        "image_processor_type": "LlavaImageProcessor", "processor_class": "LlavaProcessor",
        "do_pad": True, "do_convert_rgb": True, "do_resize": True, "size": {"shortest_edge": c.image_size},
        "resample": 3, "do_center_crop": True, "crop_size": {"height": c.image_size, "width": c.image_size},
        "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
        "image_mean": list(c.image_mean), "image_std": list(c.image_std),
    }
    if fmt == "hf-llava-next":
        grids = parse_pinpoints(c.image_grid_pinpoints, c.image_size)
        out.update(image_processor_type="LlavaNextImageProcessor", processor_class="LlavaNextProcessor",
                   image_grid_pinpoints=[list(p) for p in grids])
    return out


def _write_weights(state: dict[str, torch.Tensor], out: Path, max_shard_size: str | int) -> int:
    """safetensors shards (+ index when more than one). Returns the number of shards."""
    from huggingface_hub import split_torch_state_dict_into_shards

    split = split_torch_state_dict_into_shards(state, filename_pattern="model{suffix}.safetensors", max_shard_size=max_shard_size)
    for filename, keys in tqdm(split.filename_to_tensors.items(), desc="writing shards", disable=len(split.filename_to_tensors) < 2):
        save_safetensors({k: state[k] for k in keys}, out / filename, metadata={"format": "pt"})
    if split.is_sharded:
        index = {"metadata": {"total_size": sum(t.numel() * t.element_size() for t in state.values())},
                 "weight_map": split.tensor_to_filename}
        (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2, sort_keys=True))
    return len(split.filename_to_tensors)


def _write_processor(model: PolyVLM, processor: Processor, out: Path, fmt: str = "hf-llava") -> None:
    """Tokenizer, chat template, processor_config.json and the legacy preprocessor_config.json / chat_template.json."""
    from transformers import (
        LlavaImageProcessorPil,
        LlavaNextImageProcessorPil,
        LlavaNextProcessor,
        LlavaProcessor,
    )

    next_ = fmt == "hf-llava-next"
    v = model.vision
    strategy = select_strategy(model)
    n_extra = 1 if v.has_cls else 0  # LlavaProcessor: patches + CLS, minus one under "default"
    chat = hf_chat_template(processor.template)
    ip_dict = image_processor_dict(processor, fmt)
    ip_cls, proc_cls = (LlavaNextImageProcessorPil, LlavaNextProcessor) if next_ else (LlavaImageProcessorPil, LlavaProcessor)
    ip = ip_cls(**{k: val for k, val in ip_dict.items() if k not in ("image_processor_type", "processor_class")})
    tok = processor.tokenizer
    old_template = tok.chat_template
    try:
        tok.chat_template = chat
        hf_proc = proc_cls(image_processor=ip, tokenizer=tok, patch_size=v.patch_size,
                           vision_feature_select_strategy=strategy, chat_template=chat, image_token="<image>",
                           num_additional_image_tokens=n_extra)
        hf_proc.save_pretrained(str(out))
    finally:
        tok.chat_template = old_template
    pc_path = out / "processor_config.json"
    pc = json.loads(pc_path.read_text()) if pc_path.is_file() else {}
    pc.pop("image_processor", None)  # the image processor lives in preprocessor_config.json for every reader
    pc.update({"processor_class": proc_cls.__name__, "patch_size": v.patch_size, "image_token": "<image>",
               "vision_feature_select_strategy": strategy, "num_additional_image_tokens": n_extra})
    pc_path.write_text(json.dumps(pc, indent=2, sort_keys=True))
    (out / "preprocessor_config.json").write_text(json.dumps(ip_dict, indent=2))
    legacy_tokenizer_files(out, chat, proc_cls.__name__)


def legacy_tokenizer_files(out: Path, chat: str, processor_class: str) -> None:
    """chat_template.json and the chat template / processor class inside tokenizer_config.json, for older readers."""
    # processors of transformers 4.43-4.51 read only this file; newer ones prefer it too (same template)
    (out / "chat_template.json").write_text(json.dumps({"chat_template": chat}, indent=2, ensure_ascii=False))
    tc_path = out / "tokenizer_config.json"
    tc = json.loads(tc_path.read_text())
    tc["chat_template"] = chat  # readers older than chat_template.jinja (transformers < 4.43)
    tc["processor_class"] = processor_class
    if tc.get("tokenizer_class") == "TokenizersBackend":  # transformers 5's generic name; 4.x knows the fast class
        tc["tokenizer_class"] = "PreTrainedTokenizerFast"
    if isinstance(tc.get("extra_special_tokens"), list):
        tc.setdefault("additional_special_tokens", tc["extra_special_tokens"])  # 4.x key
    tc_path.write_text(json.dumps(tc, indent=2, ensure_ascii=False))


def export_hf_llava(model: PolyVLM, processor: Processor, out: str | Path, dtype: str | None = None,
                    max_shard_size: str | int = "5GB", fmt: str = "hf-llava") -> Path:
    """Write `model` + `processor` as a Hugging Face Llava (`fmt` hf-llava) or LLaVA-NeXT (hf-llava-next)
    directory at `out` (atomically). Returns `out`.

    `dtype` (float32, bfloat16, float16) casts the weights; default: the model's own dtype.
    """
    from transformers import GenerationConfig

    check_exportable(model, processor, fmt)
    if dtype is not None and dtype not in DTYPES:
        raise ExportError(f"unknown dtype '{dtype}' (known: {', '.join(DTYPES)})")
    tdtype = DTYPES[dtype] if dtype else model.llm.dtype
    out = Path(out)
    with atomic_dir(out) as tmp:
        (tmp / "config.json").write_text(json.dumps(llava_config(model, processor, tdtype, fmt), indent=2, sort_keys=True))
        tok = processor.tokenizer
        stops = sorted(processor.stop_ids)
        gen = GenerationConfig(bos_token_id=tok.bos_token_id, pad_token_id=processor.pad_id,
                               eos_token_id=stops[0] if len(stops) == 1 else stops)
        gen.save_pretrained(str(tmp))
        n = _write_weights(llava_state_dict(model, tdtype), tmp, max_shard_size)
        if fmt == "hf-llava-onevision":
            from polyvlm.models.layouts.hf_onevision import write_onevision_processor

            write_onevision_processor(model, processor, tmp)
        else:
            _write_processor(model, processor, tmp, fmt)
    log.info("exported %s as %s (%d weight file(s), %s) to %s", type(model.llm).__name__, ARCH[fmt], n, tdtype, out)
    return out


def export_checkpoint(ckpt: str | Path, out: str | Path, dtype: str | None = None, max_shard_size: str | int = "5GB",
                      fmt: str = "hf-llava") -> Path:
    """Load the polyvlm checkpoint `ckpt` and export it with `export_hf_llava`."""
    from polyvlm.models.checkpoint import load

    model, processor = load(ckpt)
    return export_hf_llava(model, processor, out, dtype=dtype, max_shard_size=max_shard_size, fmt=fmt)
