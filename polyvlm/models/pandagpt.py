"""PandaGPT (Su et al., 2023) as a PolyVLM: frozen ImageBind (`imagebind` encoder) -> one shared Linear
(`pool1`: PandaGPT's `llama_proj`) -> one token per input, whatever its modality; Vicuna with LoRA on q/k/v/o;
the `pandagpt` template. Several inputs of any modalities are summed into that one row, as PandaGPT's
`extract_multimodal_feature` does; `load_delta` applies a released `pytorch_model.pt` delta.

Released delta (code/model/openllama.py, saved by its agent): an OrderedDict of fp16 tensors
`llama_proj.{weight,bias}` and `llama_model.base_model.model.model.layers.{i}.self_attn.{q,k,v,o}_proj
.lora_{A,B}.default.weight`; the LoRA settings are r=32, alpha=32, dropout=0.1 (code/config/openllama_peft.yaml).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from polyvlm.config import ModelConfig
from polyvlm.data.records import RecordError, Turn
from polyvlm.models.encoders import imagebind_data as ib
from polyvlm.models.encoders.imagebind import ImageBindConfig
from polyvlm.models.lora import apply_lora, has_lora
from polyvlm.models.processor import Processor
from polyvlm.models.vlm import PolyVLM

LORA = {"lora_r": 32, "lora_alpha": 32, "lora_dropout": 0.1, "lora_targets": ["q_proj", "k_proj", "v_proj", "o_proj"]}
MODALITIES = ("image", "video", "audio", "thermal", "depth", "imu")
_IB_NAME = {"image": "vision", "video": "vision"}  # polyvlm modality -> ImageBind tower
_DELTA_LORA = re.compile(r"llama_model\.base_model\.model\.model\.layers\.(\d+)\.self_attn\.([qkvo])_proj\."
                         r"lora_([AB])\.default\.weight")


def _load_image(path: Path, source: str, rid: str | None, fn: Callable) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            return fn([im])[0]
    except (UnidentifiedImageError, OSError) as e:
        raise RecordError(f"image '{path.name}' does not decode: {e}", source, rid, code="media_unreadable") from None


LOADERS: dict[str, Callable[[Path, str, str | None], torch.Tensor]] = {
    "image": lambda p, s, r: _load_image(p, s, r, ib.image_pixels),  # [3, 224, 224]
    "thermal": lambda p, s, r: _load_image(p, s, r, ib.thermal_pixels),  # [1, 224, 224]
    "depth": lambda p, s, r: _load_image(p, s, r, ib.depth_pixels),  # [1, 224, 224]
    "video": ib.load_video_clips,  # [15, 3, 2, 224, 224]
    "audio": ib.load_audio_clips,  # [3, 1, 128, 204]
    "imu": ib.load_imu,  # [6, 2000]
}


def load_input(modality: str, path: str | Path, source: str = "", record_id: str | None = None) -> torch.Tensor:
    """One file of `modality` -> the tensor ImageBind takes for one input (see LOADERS)."""
    if modality not in LOADERS:
        raise RecordError(f"PandaGPT has no modality '{modality}' (known: {', '.join(MODALITIES)})", source,
                          record_id, code="unsupported_modality")
    p = Path(path)
    if not p.is_file():
        raise RecordError(f"{modality} file '{path}' does not exist", source, record_id, code="media_missing")
    return LOADERS[modality](p, source, record_id)


def model_config(llm: str, imagebind: str, imagebind_arch: dict | None = None, max_length: int = 512,
                 **over) -> ModelConfig:
    """The ModelConfig of PandaGPT: `llm` a Vicuna directory, `imagebind` the `imagebind_huge.pth` file."""
    arch = {"model_type": "imagebind", **(imagebind_arch or {})}
    base = {"vision": imagebind, "vision_config": arch, "llm": llm, "connector": "pool1", "template": "pandagpt",
            "max_length": max_length}
    return ModelConfig(**(base | LORA | over))


def is_pandagpt(model: PolyVLM) -> bool:
    """A PandaGPT-shaped model: the imagebind encoder feeding the one-token pool1 connector."""
    return getattr(model.vision, "family", None) == "imagebind" and model.connector.tokens_out == 1


def check_model(model: PolyVLM) -> None:
    if not is_pandagpt(model):
        raise ValueError("a PandaGPT model needs the imagebind encoder and the pool1 connector "
                         f"(got {model.vision.family or type(model.vision).__name__} / {model.cfg.connector})")


def input_tensor(modality: str, item: Any, where: str = "", arch: ImageBindConfig | None = None) -> torch.Tensor:
    """One request input -> the tensor ImageBind takes (the shapes of LOADERS; `arch`: the input sizes of a smaller
    ImageBind, e.g. the quick start's 64 px). `item` is what `polyvlm.media.load` returns for `modality` (PIL image,
    thermal "L" image, depth array [h, w], 16 kHz waveform (t,), IMU [6, T]), a `polyvlm.infer.Video`, or a
    reference (path, bytes, data URI) read here. Raises MediaError naming `where`."""
    from polyvlm import media
    from polyvlm.infer import Video
    from polyvlm.media.video import read_frames

    if modality not in MODALITIES:
        raise media.MediaError(f"PandaGPT has no modality '{modality}' (known: {', '.join(MODALITIES)})", where,
                               "unsupported_modality")
    if modality == "video":
        video = item if isinstance(item, Video) else Video(item)
        if video.source is None:  # frames already sampled: taken as a clip at their rate (1 fps when unknown)
            frames = video.frames or []
            return ib.video_clips(lambda idx: [frames[i] for i in idx], len(frames), video.fps or 1.0)
        raw = media.read_source(video.source, where=where)
        facts = media.probe("video", raw, media.MediaLimits(max_video_frames=0), where=where)
        return ib.video_clips(lambda idx: read_frames(raw, idx, where), facts["frames"], facts["fps"])
    if isinstance(item, (str, bytes, Path)):
        item = media.load(modality, item, where=where)
    a = arch or ImageBindConfig()
    if modality == "image":
        return ib.image_pixels([item], a.image_size)[0]
    if modality == "thermal":
        return ib.thermal_pixels([item], a.image_size)[0]
    if modality == "depth":
        return ib.depth_pixels([item], a.image_size)[0]
    if modality == "audio":
        return ib.audio_clips(item, n_mels=a.audio_mels, frames=a.audio_frames)
    return ib.imu_tensor(item, where or "imu", length=a.imu_length)


def request_inputs(media: dict[str, list[Any]], arch: ImageBindConfig | None = None) -> list[tuple[str, torch.Tensor]]:
    """A request's inputs (modality -> items, as `ChatRequest.media()`) -> (modality, ImageBind tensor) pairs at
    the input sizes of `arch` (default imagebind_huge's); errors name the input (`thermal 2`)."""
    return [(m, input_tensor(m, x, f"{m} {i + 1}", arch)) for m, items in media.items() for i, x in enumerate(items)]


def conversation(turns: list[Turn]) -> list[Turn]:
    """PandaGPT's one media row at the front of the first user turn; every other placeholder removed (all the
    conversation's inputs are summed into that row, as PandaGPT's web demo keeps one modality cache)."""
    from polyvlm.media import PLACEHOLDERS

    out, placed = [], False
    for t in turns:
        text = t.text
        for p in PLACEHOLDERS.values():
            text = text.replace(p + "\n", "").replace(p, "")
        if t.role == "user" and not placed:
            text, placed = "<image>" + text, True
        out.append(Turn(t.role, text))
    return out


def encode_inputs(model: PolyVLM, inputs: list[tuple[str, torch.Tensor]]) -> torch.Tensor:
    """(modality, one input's tensor) pairs -> their projected rows [n, d_lm] (joint embedding -> llama_proj)."""
    check_model(model)
    rows = []
    with torch.no_grad():
        for modality, x in inputs:
            emb = model.vision.embed(_IB_NAME.get(modality, modality), x.unsqueeze(0).to(model.device))  # [1, out]
            rows.append(model.connector(emb.to(model.connector.dtype))[:, 0])  # [1, d_lm]
    return torch.cat(rows) if rows else torch.zeros(0, model.llm.config.hidden_size)


def summed_row(model: PolyVLM, inputs: list[tuple[str, torch.Tensor]]) -> torch.Tensor:
    """PandaGPT's one media row for several inputs: the sum of their projected rows -> [1, d_lm]."""
    if not inputs:
        raise ValueError("PandaGPT needs at least one media input")
    return encode_inputs(model, inputs).sum(0, keepdim=True)


def prompt_ids(processor: Processor, turns: list[Turn]) -> list[int]:
    """The prompt ids of a conversation with media: one image placeholder token for PandaGPT's row."""
    return processor.encode(conversation(turns), {"image": 1}, add_generation_prompt=True, truncate=False).input_ids


def prompt(model: PolyVLM, processor: Processor, turns: list[Turn],
           inputs: list[tuple[str, torch.Tensor]]) -> tuple[list[int], torch.Tensor]:
    """A conversation (ending with the user's turn) + its media -> (prompt ids [s], embeddings [1, s, d]).

    The media are PandaGPT's `<Img>` row in the first user turn; one placeholder stands for all of them."""
    ids_list = prompt_ids(processor, turns)
    ids = torch.tensor([ids_list], device=model.device)
    slot = ids == processor.media_token_ids["image"]
    embeds = model.llm.get_input_embeddings()(ids.masked_fill(slot, 0))
    row = summed_row(model, inputs).to(embeds.dtype)
    return ids_list, embeds.masked_scatter(slot.unsqueeze(-1), row)


def answer(model: PolyVLM, processor: Processor, question: str, media: dict[str, list[str | Path]],
           max_new_tokens: int = 64, temperature: float = 0.0, history: list[Turn] | None = None) -> str:
    """Ask about any mix of files `{"audio": [...], "thermal": [...], ...}`; greedy unless `temperature`."""
    from polyvlm.models.generate import SampleParams, generate_ids

    inputs = [(m, load_input(m, p)) for m, paths in media.items() for p in paths]
    turns = [*(history or []), Turn("user", question)]
    ids, embeds = prompt(model, processor, turns, inputs)
    params = SampleParams(max_new_tokens=max_new_tokens, temperature=temperature)
    out = generate_ids(model, [ids], None, [params], processor.stop_ids, processor.pad_id, embeds=embeds)[0]
    return processor.decode(out).split("###")[0].strip()


def load_delta(model: PolyVLM, path: str | Path) -> None:
    """Apply a released PandaGPT delta (`pytorch_model.pt`, weights_only) to `model`: `llama_proj` into the
    connector, the LoRA A/B matrices into the language model (wrapped with r = the delta's rank, alpha 32)."""
    check_model(model)
    path = Path(path)
    try:
        delta = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"PandaGPT delta '{path}' does not exist") from None
    except Exception as e:  # a pickle needing code, or not a torch file
        raise ValueError(f"{path}: not a weights-only torch state dict ({type(e).__name__}: {e})") from None
    if not isinstance(delta, dict):
        raise ValueError(f"{path}: expected an OrderedDict of tensors, found {type(delta).__name__}")
    unknown = [k for k in delta if k not in ("llama_proj.weight", "llama_proj.bias") and not _DELTA_LORA.fullmatch(k)]
    if unknown or "llama_proj.weight" not in delta:
        raise ValueError(f"{path}: not a PandaGPT delta (unexpected keys {unknown[:3]}"
                         f"{'' if 'llama_proj.weight' in delta else ', no llama_proj.weight'})")
    w = delta["llama_proj.weight"]
    if tuple(w.shape) != tuple(model.connector.proj.weight.shape):
        raise ValueError(f"{path}: llama_proj.weight is {tuple(w.shape)}, this model needs "
                         f"{tuple(model.connector.proj.weight.shape)} (ImageBind width -> LM hidden size)")
    ranks = {v.shape[0] for k, v in delta.items() if k.endswith("lora_A.default.weight")}
    if len(ranks) > 1:
        raise ValueError(f"{path}: LoRA ranks differ across layers: {sorted(ranks)}")
    if not has_lora(model) and ranks:
        model.cfg.lora_r = ranks.pop()
        apply_lora(model)
    state = {("connector.proj." + k[len("llama_proj."):]) if k.startswith("llama_proj.") else "llm." + k[len("llama_model."):]: v
             for k, v in delta.items()}
    own = model.state_dict()
    bad = [k for k, v in state.items() if k not in own or own[k].shape != v.shape]
    if bad:
        raise ValueError(f"{path}: {len(bad)} tensors do not fit this Vicuna (e.g. {bad[0]}: "
                         f"{tuple(state[bad[0]].shape)} vs {tuple(own[bad[0]].shape) if bad[0] in own else 'absent'})")
    lora_missing = [k for k in own if ".lora_" in k and k not in state]
    if lora_missing:
        raise ValueError(f"{path}: no LoRA weights for {len(lora_missing)} adapted matrices (e.g. {lora_missing[0]})")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=False)
    model.eval()


def prefix_tokens(processor: Processor) -> int:
    """Tokens before PandaGPT's text part: `<s>`, `### Human: <Img>` and the one media row."""
    return 2 + len(processor.tokenizer("### Human: <Img>", add_special_tokens=False).input_ids)


def set_max_tgt_len(model: PolyVLM, processor: Processor, max_tgt_len: int) -> None:
    """PandaGPT's `max_tgt_len` caps the text after the media row (openllama.py process_batch_instance cuts
    input_ids[:, :max_tgt_len]); polyvlm's `max_length` counts the whole sequence: the prefix is added."""
    n = max_tgt_len + prefix_tokens(processor)
    processor.config.max_length = model.cfg.max_length = n


def build(llm: str, imagebind: str, delta: str | Path | None = None, imagebind_arch: dict | None = None,
          max_tgt_len: int = 512) -> tuple[PolyVLM, Processor]:
    """PandaGPT from a Vicuna directory, an ImageBind file and (optionally) a released delta; `max_tgt_len`
    as PandaGPT counts it (text tokens after the media row; the released 13B delta used 400)."""
    from polyvlm.models.factory import build as build_model

    model, processor = build_model(model_config(llm, imagebind, imagebind_arch, max_tgt_len))
    set_max_tgt_len(model, processor, max_tgt_len)
    if delta:
        load_delta(model, delta)
    return model, processor
