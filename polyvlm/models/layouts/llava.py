"""The original LLaVA / LLaVA-NeXT / LLaVA-OneVision layout (`llava`): the checkpoints the haotian-liu/LLaVA and
LLaVA-VL/LLaVA-NeXT code saves (liuhaotian/llava-v1.5-7b, lmms-lab/llava-onevision-qwen2-*, MMSFT/MAmmoTH-VL-8B,
neulab/Pangea-7B).

Read as that code reads them (LLaVA-NeXT llava/model/llava_arch.py, language_model/llava_{llama,qwen,mistral}.py,
multimodal_projector/builder.py): config.json holds the language model's own keys plus `mm_*` keys; weights are
`model.*` / `lm_head.*` (the LM), `model.vision_tower.vision_tower.*` (the tower, when trained), `model.mm_projector.*`
(`nn.Sequential`: 0 and 2 for mlp2x_gelu, or one `nn.Linear`) and `model.image_newline` (spatial_unpad). The
tokenizer has no `<image>`: the code splices features at id -200; polyvlm adds `<image>` as a special token.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM

from polyvlm.models.layouts.base import (
    LAYOUTS,
    VISION_READOUT,
    CheckpointLayout,
    LayoutError,
    LoadOptions,
    adopt_vision_readout,
    read_config_json,
)
from polyvlm.models.layouts.vision_tower import Tower, read_tower, tower_image_settings
from polyvlm.models.layouts.weights import load_mapped, read_weights

log = logging.getLogger("polyvlm.layouts.llava")

LM_OF_ARCH = {"LlavaLlamaForCausalLM": "llama", "LlavaQwenForCausalLM": "qwen2", "LlavaMistralForCausalLM": "mistral"}
LM_OF_TYPE = {"llava_llama": "llama", "llava_qwen": "qwen2", "llava_mistral": "mistral"}
# the original conversation templates (llava/conversation.py conv_templates) polyvlm renders identically
ORIGINAL_TEMPLATES = {
    "qwen_1_5": "chatml", "qwen_2": "chatml", "qwen_2_5": "qwen_2_5", "chatml_direct": "chatml_direct",
    "v1": "vicuna_v1", "vicuna_v1": "vicuna_v1", "llava_v1": "llava_v1", "llava_llama_3": "llava_llama_3",
    "mistral_instruct": "mistral_instruct", "llava_mistral_instruct": "mistral_instruct",
    "plain": "plain", "v0_plain": "plain",
}
# qwen_1_5 (OneVision, Pangea), vicuna_v1 (LLaVA-1.5), mistral_instruct (llava-v1.6-mistral-7b)
DEFAULT_TEMPLATE = {"qwen2": "chatml", "llama": "vicuna_v1", "mistral": "mistral_instruct"}
PROJECTORS = {"mlp2x_gelu": ("mlp2x_gelu", {"0.": "linear_1.", "2.": "linear_2."}), "linear": ("linear", {"": "proj."})}
_NOT_LM = ("architectures", "model_type", "auto_map", "_name_or_path")


def is_original(raw: dict | None, archs: dict[str, str] = LM_OF_ARCH) -> bool:
    if raw is None:
        return False
    if any(a in archs for a in raw.get("architectures") or []):
        return True
    return raw.get("model_type") in LM_OF_TYPE and "mm_vision_tower" in raw


def lm_type(path: Path, raw: dict, archs: dict[str, str] = LM_OF_ARCH) -> str:
    for a in raw.get("architectures") or []:
        if a in archs:
            return archs[a]
    if raw.get("model_type") in LM_OF_TYPE:
        return LM_OF_TYPE[raw["model_type"]]
    raise LayoutError(f"{path / 'config.json'}: architectures {raw.get('architectures')} name no language model "
                      f"polyvlm reads ({', '.join(archs)})")


def text_config(path: Path, raw: dict, lm: str):
    """The language model's config: config.json's own keys minus the `mm_*` ones."""
    kwargs = {k: v for k, v in raw.items() if not k.startswith("mm_") and k not in _NOT_LM}
    try:
        return AutoConfig.for_model(lm, **kwargs)
    except (ValueError, TypeError) as e:
        raise LayoutError(f"{path / 'config.json'}: not a valid {lm} config: {e}") from None


def pick_template(path: Path, lm: str, wanted: str | None) -> str:
    from polyvlm.models.templates import TEMPLATES

    if wanted:
        if wanted in TEMPLATES:
            return wanted
        if wanted in ORIGINAL_TEMPLATES:
            return ORIGINAL_TEMPLATES[wanted]
        raise LayoutError(f"template '{wanted}' is neither a polyvlm template ({', '.join(TEMPLATES.names())}) nor an "
                          f"original LLaVA one polyvlm renders identically ({', '.join(ORIGINAL_TEMPLATES)})")
    if lm not in DEFAULT_TEMPLATE:
        raise LayoutError(f"{path}: the original code picks the conversation template by --conv-mode, and polyvlm has "
                          f"no default for a {lm} model; pass --template (polyvlm: {', '.join(TEMPLATES.names())})")
    return DEFAULT_TEMPLATE[lm]


def image_mode(path: Path, raw: dict) -> dict:
    """`image_aspect_ratio` / `image_grid_pinpoints` / `mm_patch_merge_type` -> polyvlm's anyres settings."""
    from polyvlm.models.anyres import parse_mode

    f = path / "config.json"
    aspect = raw.get("image_aspect_ratio", "square")
    merge = raw.get("mm_patch_merge_type", "flat")
    if aspect == "pad":
        if "unpad" in merge:
            raise LayoutError(f"{f}: image_aspect_ratio 'pad' with mm_patch_merge_type '{merge}' appends a newline "
                              "embedding to every single-view image, which polyvlm's pad mode does not")
        return {"image_aspect_ratio": "pad"}
    try:
        cap = parse_mode(str(aspect))
    except ValueError:
        cap = None
    if cap is None:
        raise LayoutError(f"{f}: image_aspect_ratio '{aspect}' is not one polyvlm reads (pad, anyres, anyres_max_N; "
                          "'square' resizes without padding, which polyvlm does not)")
    if merge != "spatial_unpad":
        raise LayoutError(f"{f}: mm_patch_merge_type '{merge}' with image_aspect_ratio '{aspect}'; polyvlm's anyres is "
                          "LLaVA-NeXT's spatial_unpad (unpadded tile map, a newline embedding per row)")
    pins = raw.get("image_grid_pinpoints")
    if not pins:
        raise LayoutError(f"{f}: image_aspect_ratio '{aspect}' without image_grid_pinpoints")
    if cap:  # anyres_max_N: polyvlm encodes videos as OneVision (Processor.onevision_video)
        video = {"mm_newline_position": "one_token", "mm_spatial_pool_mode": "bilinear", "mm_spatial_pool_stride": 2}
        differ = {k: raw[k] for k, want in video.items() if raw.get(k, want) != want}
        if differ:
            log.warning("%s: video settings %s differ from OneVision's %s, which polyvlm uses for videos; images are "
                        "unaffected", f, differ, video)
    return {"image_aspect_ratio": str(aspect), "image_grid_pinpoints": pins}


def map_key(k: str, proj: dict[str, str]) -> str | None:
    """An original weight name -> polyvlm's (None: a tensor polyvlm has no use for)."""
    if k.endswith("rotary_emb.inv_freq"):
        return None
    if k.startswith("model.vision_tower.vision_tower."):
        return "vision.tower." + k[len("model.vision_tower.vision_tower."):]
    if k.startswith("model.mm_projector."):
        rest = k[len("model.mm_projector."):]
        for src, dst in proj.items():
            if rest.startswith(src):
                return "connector." + dst + rest[len(src):]
        return "connector." + rest  # not a projector key: reported as unexpected
    if k == "model.image_newline":
        return "image_newline"
    if k.startswith("model."):
        return "llm.model." + k[len("model."):]
    if k.startswith("lm_head."):
        return "llm." + k
    return k


def build_llava(path: Path, raw: dict, opts: LoadOptions, lm: str, tower: Tower, connector_name: str,
                layout: str = "llava", extra_cfg: dict | None = None):
    """An empty PolyVLM + Processor shaped by an original-layout config (weights not loaded yet); `extra_cfg`:
    more ModelConfig settings (e.g. Parrot's moe_*)."""
    from transformers.initialization import no_init_weights

    from polyvlm.config import ModelConfig
    from polyvlm.models.connectors import build_connector
    from polyvlm.models.encoders.vision import build_vision_encoder
    from polyvlm.models.factory import media_settings
    from polyvlm.models.processor import Processor, ProcessorConfig
    from polyvlm.models.tokenizer import load_tokenizer, placeholder_ids
    from polyvlm.models.vlm import PolyVLM
    from polyvlm.utils import DTYPES

    dtype = opts.dtype or "float32"
    if dtype not in DTYPES:
        raise LayoutError(f"unknown dtype '{dtype}' (known: {', '.join(DTYPES)})")
    template = pick_template(path, lm, opts.template)
    tcfg = text_config(path, raw, lm)
    mm_hidden = raw.get("mm_hidden_size")
    if mm_hidden is not None and mm_hidden != tower.config.hidden_size:
        raise LayoutError(f"{path / 'config.json'}: mm_hidden_size {mm_hidden} differs from the vision tower's "
                          f"hidden_size {tower.config.hidden_size} ({tower.directory / 'config.json'})")
    try:
        tokenizer = load_tokenizer(str(path))
    except (OSError, ValueError) as e:
        raise LayoutError(f"{path}: no readable tokenizer ({e})") from None
    if tokenizer.convert_tokens_to_ids("<image>") in (None, tokenizer.unk_token_id):
        tokenizer.add_tokens(["<image>"], special_tokens=True)  # the original splices at id -200 instead
    mcfg = ModelConfig(vision_feature_layer=tower.feature_layer, vision_select=tower.select, connector=connector_name,
                       template=template, max_length=opts.max_length, init_from=f"{layout}:{path}", dtype=dtype,
                       **image_mode(path, raw), **(extra_cfg or {}))
    with no_init_weights():
        vision = build_vision_encoder("", tower.config, tower.feature_layer, tower.select)
        llm = AutoModelForCausalLM.from_config(tcfg)
        connector = build_connector(connector_name, vision.hidden_size, tcfg.hidden_size, mcfg)
    if len(tokenizer) > llm.get_input_embeddings().num_embeddings:
        llm.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    model = PolyVLM(mcfg, vision, connector, llm, placeholder_ids(tokenizer))
    img = tower_image_settings(tower)
    processor = Processor(tokenizer, ProcessorConfig(
        template=template, max_length=opts.max_length, image_size=vision.image_size,
        image_mean=img.get("image_mean", tuple(vision.mean)), image_std=img.get("image_std", tuple(vision.std)),
        **media_settings(model, mcfg)))
    return model, processor


def load_weights(model, path: Path, tower: Tower, proj: dict[str, str], what: str,
                 extra_map=None, optional: tuple[str, ...] = ()) -> None:
    """Read every weight file, rename to polyvlm's names, fill `model` (tower from its own directory when the
    checkpoint does not hold it, as the original code loads a frozen tower), then the tokens polyvlm added."""
    state, source = read_weights(path)
    mapped, where, names = {}, {}, {}
    for k, v in state.items():
        new = (extra_map(k) if extra_map else None) or map_key(k, proj)
        if new is None:
            continue
        mapped[new], where[new], names[new] = v, source[k], k
    n_vocab = model.llm.get_input_embeddings().num_embeddings
    for name in ("llm.model.embed_tokens.weight", "llm.lm_head.weight"):  # rows polyvlm added for <image>
        t = mapped.get(name)
        if t is not None and t.shape[0] < n_vocab:
            own = model.state_dict()[name]
            mapped[name] = torch.cat([t, own[t.shape[0]:].to(t.dtype)])
    tied = bool(model.llm.config.tie_word_embeddings)
    opt = optional + (("llm.lm_head.",) if tied else ())
    if not any(k.startswith("vision.tower.") for k in mapped):
        from transformers import CLIPVisionModel, SiglipVisionModel

        cls = CLIPVisionModel if tower.family == "clip" else SiglipVisionModel
        try:
            loaded = cls.from_pretrained(str(tower.directory), config=tower.config)
        except OSError as e:
            raise LayoutError(f"{path}: the checkpoint holds no vision tower weights and {tower.directory} has none "
                              f"either ({e})") from None
        for k, v in loaded.state_dict().items():
            mapped["vision.tower." + k], where["vision.tower." + k] = v, tower.directory
    load_mapped(model, mapped, where, path, what, opt, names)
    if tied:
        model.llm.tie_weights()


@LAYOUTS.register("llava")
class OriginalLlavaLayout(CheckpointLayout):
    name = "llava"
    summary = ("the original LLaVA / LLaVA-NeXT / LLaVA-OneVision code's checkpoints (config.json architectures "
               f"{'/'.join(LM_OF_ARCH)} with mm_* keys; e.g. liuhaotian/llava-v1.5-7b, "
               "lmms-lab/llava-onevision-qwen2-0.5b-ov, MMSFT/MAmmoTH-VL-8B, neulab/Pangea-7B)")

    def detect(self, path: Path) -> bool:
        return is_original(read_config_json(path))

    def load(self, path: Path, opts: LoadOptions):
        raw = read_config_json(path)
        if raw is None:
            raise LayoutError(f"{path}: no readable config.json")
        lm = lm_type(path, raw)
        tower = read_tower(path, raw, opts.vision_tower)
        ptype = raw.get("mm_projector_type", "linear")
        if ptype not in PROJECTORS:
            raise LayoutError(f"{path / 'config.json'}: mm_projector_type '{ptype}' is not one polyvlm reads "
                              f"({', '.join(PROJECTORS)})")
        connector, proj = PROJECTORS[ptype]
        model, processor = build_llava(path, raw, opts, lm, tower, connector)
        load_weights(model, path, tower, proj, "llava")
        from polyvlm.utils import DTYPES

        model.to(DTYPES[model.cfg.dtype])
        processor = check_init_cfg(path, model, processor, opts)
        log.info("read original LLaVA checkpoint %s (%s tower %s, %s, %s, template %s)", path, tower.family,
                 tower.directory, lm, model.cfg.image_aspect_ratio, model.cfg.template)
        return model, processor


def check_init_cfg(path: Path, model, processor, opts: LoadOptions):
    """`model.init_from`: the run's ModelConfig must describe the checkpoint's parts (it takes the checkpoint's
    vision readout, logged); it then rules the model and the processor (template, max_length, media settings).
    Returns the processor to use."""
    import dataclasses

    from polyvlm.models.factory import media_settings
    from polyvlm.models.processor import Processor

    cfg = opts.cfg
    if cfg is None:
        return processor
    have = model.cfg
    adopt_vision_readout(cfg, {k: getattr(have, k) for k in VISION_READOUT}, path)
    for key in ("connector", "image_aspect_ratio"):
        if getattr(cfg, key) != getattr(have, key):
            raise LayoutError(f"{path}: the checkpoint has model.{key}={getattr(have, key)!r}; the config says "
                              f"{getattr(cfg, key)!r} (set it to start from this checkpoint)")
    model.cfg = cfg
    return Processor(processor.tokenizer, dataclasses.replace(
        processor.config, template=cfg.template, max_length=cfg.max_length, **media_settings(model, cfg)))
