"""Image encoder: a Hugging Face CLIP or SigLIP vision tower, from a local directory or built from a config.

Also owns image preprocessing (pad to square with the mean colour, resize, normalise), so that the
placeholder count per image is known before encoding.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn
from transformers import (
    CLIPVisionConfig,
    CLIPVisionModel,
    PretrainedConfig,
    SiglipVisionConfig,
    SiglipVisionModel,
)

from polyvlm.models.encoders import ENCODERS, build_encoder
from polyvlm.models.encoders.feature_cache import FeatureCache

CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
SIGLIP_MEAN, SIGLIP_STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)


class VisionEncoder(nn.Module):
    """Wraps a HF vision tower. `forward(pixels [n, 3, H, W]) -> features [n, t, d]`.

    `t` is `tokens_per_image` (patches, plus CLS when `select == "full"`), `d` is `hidden_size`.
    Also returns the pooled summary `[n, d]` (CLS for CLIP, the pooler output for SigLIP) via `summary`.
    """

    family = ""
    modality = "image"  # also encodes video frames
    resize = "pad"  # how images become squares: `pad` (LLaVA) or `crop` (short side resized, centre crop)
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD

    def __init__(self, tower: nn.Module, feature_layer: int = -2, select: str = "patch"):
        super().__init__()
        if select not in ("patch", "full"):
            raise ValueError(f"model.vision_select must be 'patch' or 'full', got '{select}'")
        self.tower = tower
        self.feature_layer = feature_layer
        self.select = select
        cfg = tower.config
        self.image_size: int = cfg.image_size
        self.patch_size: int = cfg.patch_size
        self.hidden_size: int = cfg.hidden_size
        self.feature_cache: FeatureCache | None = None  # set by `train.cache_features` while the encoder is frozen

    @property
    def has_cls(self) -> bool:
        return True

    @property
    def tokens_per_image(self) -> int:
        n = (self.image_size // self.patch_size) ** 2
        return n + 1 if (self.select == "full" and self.has_cls) else n

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels [n, 3, H, W] -> features [n, t, d] from hidden layer `feature_layer`."""
        return self.forward_with_cls(pixels)[0]

    def forward_with_cls(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """pixels [n, 3, H, W] -> (features [n, t, d], summary [n, d]): the summary is the CLS token of the
        same layer (the mean patch feature for encoders without CLS, e.g. SigLIP); Parrot's router query."""
        cache = self.feature_cache
        if cache is not None and not torch.is_grad_enabled():  # a frozen encoder runs without autograd
            self.feature_cache = None  # the computation below, for the views not cached yet
            try:
                return cache(pixels, self.forward_with_cls)
            finally:
                self.feature_cache = cache
        hs = self.hidden_state(pixels.to(self.dtype))
        cls = hs[:, 0] if self.has_cls else hs.mean(dim=1)
        feats = hs[:, 1:] if (self.has_cls and self.select == "patch") else hs
        return feats, cls

    def hidden_state(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels [n, 3, H, W] -> hidden state `feature_layer` [n, t_all, d] (all tokens), as the tower's
        `hidden_states[feature_layer]`, running only the layers that lead to it: with LLaVA's -2 the last layer, the
        post-layernorm and SigLIP's pooling head are never computed (and hold no activations)."""
        base = getattr(self.tower, "vision_model", self.tower)  # transformers < 5 nests the transformer
        layers = getattr(getattr(base, "encoder", None), "layers", None)
        if not isinstance(layers, nn.ModuleList) or not hasattr(base, "embeddings"):
            return self.tower(pixel_values=pixels, output_hidden_states=True).hidden_states[self.feature_layer]
        n = len(layers)
        if not -(n + 1) <= self.feature_layer <= n:
            raise ValueError(f"model.vision_feature_layer={self.feature_layer}: the encoder has {n} layers "
                             f"(hidden states 0..{n}, or -1..-{n + 1} from the last)")
        h = base.embeddings(pixels)
        if getattr(base, "pre_layrnorm", None) is not None:  # CLIP normalises the embeddings first
            h = base.pre_layrnorm(h)
        for layer in layers[: self.feature_layer % (n + 1)]:  # hidden state i is the output of layer i
            out = layer(h, None)
            h = out[0] if isinstance(out, tuple) else out
        return h

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def preprocess(self, images: list[Image.Image]) -> torch.Tensor:
        """PIL images -> pixels [n, 3, S, S] (see `preprocess_images`)."""
        return preprocess_images(images, self.image_size, self.mean, self.std)


def preprocess_images(
    images: list[Image.Image], size: int, mean: tuple[float, ...], std: tuple[float, ...]
) -> torch.Tensor:
    """PIL images -> pixels [n, 3, size, size]: pad to square with the mean colour (LLaVA's `pad`), resize
    (bicubic), scale to [0, 1] and normalise with `mean` / `std`."""
    mean_a = np.asarray(mean, dtype=np.float32)
    std_a = np.asarray(std, dtype=np.float32)
    out = np.empty((len(images), 3, size, size), dtype=np.float32)
    fill = tuple(int(m * 255) for m in mean)  # as LLaVA and HF do (truncation, not rounding)
    for i, img in enumerate(images):
        img = img.convert("RGB")
        w, h = img.size
        if w != h:
            side = max(w, h)
            canvas = Image.new("RGB", (side, side), fill)
            canvas.paste(img, ((side - w) // 2, (side - h) // 2))
            img = canvas
        if img.size != (size, size):
            img = img.resize((size, size), Image.Resampling.BICUBIC)
        arr = np.asarray(img, dtype=np.float32) / 255.0
        out[i] = ((arr - mean_a) / std_a).transpose(2, 0, 1)
    return torch.from_numpy(out)


@ENCODERS.register("clip_vision_model")
class CLIPEncoder(VisionEncoder):
    family = "clip"

    @classmethod
    def create(cls, path: str, config: dict | PretrainedConfig, feature_layer: int, select: str) -> CLIPEncoder:
        if path:
            tower = CLIPVisionModel.from_pretrained(path)
        else:
            hf = config if isinstance(config, PretrainedConfig) else CLIPVisionConfig(**_kwargs(config))
            tower = CLIPVisionModel(hf)
        return cls(tower, feature_layer, select)


@ENCODERS.register("siglip_vision_model")
class SiglipEncoder(VisionEncoder):
    family = "siglip"
    mean, std = SIGLIP_MEAN, SIGLIP_STD

    @property
    def has_cls(self) -> bool:
        return False

    @classmethod
    def create(cls, path: str, config: dict | PretrainedConfig, feature_layer: int, select: str) -> SiglipEncoder:
        if path:
            tower = SiglipVisionModel.from_pretrained(path)
        else:
            hf = config if isinstance(config, PretrainedConfig) else SiglipVisionConfig(**_kwargs(config))
            tower = SiglipVisionModel(hf)
        return cls(tower, feature_layer, select)


def _kwargs(config: dict) -> dict:
    return {k: v for k, v in config.items() if k != "model_type"}


def build_vision_encoder(
    path: str, config: dict | PretrainedConfig, feature_layer: int = -2, select: str = "patch"
) -> VisionEncoder:
    """The registered image encoder for a local HF directory (its config.json names the type; a full CLIP/SigLIP
    checkpoint gives its vision tower), config kwargs with `model_type`, or a HF config object (random init)."""
    return build_encoder("image", path, config, feature_layer=feature_layer, select=select)
