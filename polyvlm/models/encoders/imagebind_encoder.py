"""The `imagebind` encoder of the registry: ImageBind as a PolyVLM image encoder whose one feature per input is
the joint embedding, plus `embed(modality, x)` for its other modalities with PandaGPT's post-processing.

PandaGPT (code/model/openllama.py + its ImageBind copy) feeds the LLM the joint embedding of each input:
vision (images; video as the mean over its 2-frame clips) normalised; audio normalised per clip and averaged
over its clips *without* ImageBind's x20; thermal with its x10, depth with its x5 (IMU: x5).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from PIL import Image
from transformers import AutoConfig, PretrainedConfig

from polyvlm.models.encoders import ENCODERS
from polyvlm.models.encoders.imagebind import (
    ImageBindConfig,
    ImageBindModel,
    check_fits,
    read_imagebind_state,
)
from polyvlm.models.encoders.imagebind_data import CLIP_MEAN, CLIP_STD, image_pixels
from polyvlm.models.encoders.vision import VisionEncoder

UNSCALED = ("audio",)  # modalities PandaGPT takes normalised but not multiplied by the logit scale


class ImageBindHFConfig(PretrainedConfig):
    """ImageBind's architecture as a Hugging Face config (saved as a checkpoint's vision_config.json).

    `arch`: ImageBindConfig kwargs (`variant: huge|tiny`, `out_dim`, `towers: {vision: {dim, layers, heads}}`...)."""

    model_type = "imagebind"

    def __init__(self, arch: dict | None = None, **kwargs):
        self.arch = dict(arch or {})
        c = self.architecture()
        kwargs.update(image_size=c.image_size, patch_size=c.patch[1], hidden_size=c.out_dim)
        super().__init__(**kwargs)

    def architecture(self) -> ImageBindConfig:
        return ImageBindConfig.from_dict(self.arch)


AutoConfig.register("imagebind", ImageBindHFConfig, exist_ok=True)


@ENCODERS.register("imagebind")
class ImageBindEncoder(VisionEncoder):
    """`forward_with_cls(pixels [n, 3, 224, 224]) -> ([n, 1, out], [n, out])`: one joint embedding per image.

    Images are resized on their short side and centre-cropped (`resize = "crop"`), as ImageBind's loader does.
    `embed(modality, x) -> [n, out]` for vision (images or [n, clips, 3, 2, S, S] video), audio, thermal,
    depth and imu, post-processed as PandaGPT does."""

    family = "imagebind"
    resize = "crop"
    mean, std = CLIP_MEAN, CLIP_STD

    def __init__(self, tower: ImageBindModel):
        super().__init__(tower, feature_layer=-1, select="full")

    @property
    def tokens_per_image(self) -> int:
        return 1

    def forward_with_cls(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cache = self.feature_cache
        if cache is not None and not torch.is_grad_enabled():
            self.feature_cache = None
            try:
                return cache(pixels, self.forward_with_cls)
            finally:
                self.feature_cache = cache
        emb = self.tower.embed("vision", pixels)
        return emb.unsqueeze(1), emb

    def embed(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        """Inputs of one modality -> joint embeddings [n, out] with PandaGPT's post-processing."""
        return self.tower.embed(modality, x, scale=modality not in UNSCALED)

    def preprocess(self, images: list[Image.Image]) -> torch.Tensor:
        return image_pixels(images, self.image_size)

    @classmethod
    def create(cls, path: str, config: dict | PretrainedConfig, feature_layer: int = -1,
               select: str = "full") -> ImageBindEncoder:
        """From `imagebind_huge.pth` (`path`, published or polyvlm key names; architecture from `config`,
        huge by default) or from a config alone (random weights)."""
        hf = config if isinstance(config, ImageBindHFConfig) else ImageBindHFConfig(
            {k: v for k, v in dict(config or {}).items() if k != "model_type"})
        arch = hf.architecture()
        state = None
        if path:  # read and check first: a mismatch is reported before the (1.2B-parameter) model is allocated
            if not Path(path).is_file():
                raise FileNotFoundError(f"model.vision: ImageBind checkpoint '{path}' is not a file")
            state = read_imagebind_state(path)
            check_fits(arch, state, path)
        tower = ImageBindModel(arch)
        tower.config = hf
        if state is not None:
            tower.load_state_dict(state)
        for p in tower.parameters():  # PandaGPT never trains ImageBind
            p.requires_grad_(False)
        return cls(tower.eval())


def arch_dict(c: ImageBindConfig) -> dict:
    """An ImageBindConfig as plain kwargs (for ImageBindHFConfig.arch)."""
    return dataclasses.asdict(c)
