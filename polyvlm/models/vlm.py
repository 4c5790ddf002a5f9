"""PolyVLM: encoders + connector + Hugging Face causal LM; media features replace placeholder embeddings."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig, PreTrainedModel

from polyvlm.config import ModelConfig
from polyvlm.models.connectors import build_connector
from polyvlm.models.encoders.vision import VisionEncoder, build_vision_encoder
from polyvlm.models.processor import IGNORE


@dataclass
class VLMOutput:
    logits: torch.Tensor  # [b, s, V]
    loss_sum: torch.Tensor | None = None  # scalar: summed token cross-entropy
    n_tokens: torch.Tensor | None = None  # scalar: supervised tokens in the batch

    @property
    def loss(self) -> torch.Tensor:
        assert self.loss_sum is not None and self.n_tokens is not None
        return self.loss_sum / self.n_tokens.clamp(min=1)


class PolyVLM(nn.Module):
    """`forward(input_ids [b, s], attention_mask [b, s], pixels [n, 3, H, W]) -> VLMOutput`.

    Every position whose id is the image token takes the next row of the image features, in reading
    order over the batch (row-major), so the n images must be given in the order their placeholders
    appear.
    """

    def __init__(self, cfg: ModelConfig, vision: VisionEncoder, connector: nn.Module, llm: PreTrainedModel,
                 media_token_ids: dict[str, int]):
        super().__init__()
        self.cfg = cfg
        self.vision = vision
        self.connector = connector
        self.llm = llm
        self.media_token_ids = media_token_ids

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels [n, 3, H, W] -> embeddings [n, t, d_lm]. Runs without grad when the encoder is frozen."""
        frozen = not any(p.requires_grad for p in self.vision.parameters())
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            feats = self.vision(pixels)
        return self.connector(feats.to(self.connector_dtype))

    @property
    def connector_dtype(self) -> torch.dtype:
        return next(self.connector.parameters()).dtype

    def embed(self, input_ids: torch.Tensor, pixels: torch.Tensor | None = None) -> torch.Tensor:
        """input_ids [b, s] (+ pixels [n, 3, H, W]) -> inputs_embeds [b, s, d]."""
        image_id = self.media_token_ids["image"]
        is_image = input_ids == image_id
        safe_ids = input_ids.masked_fill(is_image, 0)
        embeds = self.llm.get_input_embeddings()(safe_ids)
        n_slots = int(is_image.sum())
        if pixels is None or pixels.shape[0] == 0:
            if n_slots:
                raise ValueError(f"{n_slots} image placeholder tokens but no images")
            return embeds
        feats = self.encode_images(pixels.to(self.device))  # [n, t, d]
        flat = feats.reshape(-1, feats.shape[-1]).to(embeds.dtype)
        if flat.shape[0] != n_slots:
            raise ValueError(
                f"{n_slots} image placeholder tokens but {pixels.shape[0]} images x {feats.shape[1]} tokens = {flat.shape[0]}"
            )
        return embeds.masked_scatter(is_image.unsqueeze(-1), flat)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, pixels: torch.Tensor | None = None,
        labels: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
    ) -> VLMOutput:
        embeds = self.embed(input_ids, pixels)
        out = self.llm(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids, use_cache=False)
        logits = out.logits
        if labels is None:
            return VLMOutput(logits)
        shift_logits = logits[:, :-1].float()
        shift_labels = labels[:, 1:]
        loss_sum = F.cross_entropy(
            shift_logits.reshape(-1, shift_logits.shape[-1]), shift_labels.reshape(-1), ignore_index=IGNORE, reduction="sum"
        )
        return VLMOutput(logits, loss_sum, (shift_labels != IGNORE).sum())


def _llm_config(cfg: ModelConfig) -> PretrainedConfig:
    kwargs = dict(cfg.llm_config)
    model_type = kwargs.pop("model_type", "qwen2")
    return AutoConfig.for_model(model_type, **kwargs)


def build_model(cfg: ModelConfig, vocab_size: int, media_token_ids: dict[str, int],
                vision_hf: PretrainedConfig | None = None, llm_hf: PretrainedConfig | None = None) -> PolyVLM:
    """Build from `cfg`: pretrained parts from local directories, the rest from configs.

    `vision_hf` / `llm_hf` (from a saved checkpoint) build the parts from configs without weights.
    """
    if vision_hf is not None:
        vision = build_vision_encoder("", vision_hf, cfg.vision_feature_layer, cfg.vision_select)
    else:
        vision = build_vision_encoder(cfg.vision, cfg.vision_config, cfg.vision_feature_layer, cfg.vision_select)
    if llm_hf is not None:
        llm = AutoModelForCausalLM.from_config(llm_hf)
    elif cfg.llm:
        llm = AutoModelForCausalLM.from_pretrained(cfg.llm)
    else:
        llm_cfg = _llm_config(cfg)
        llm_cfg.vocab_size = vocab_size  # a model built from scratch gets exactly the tokenizer's vocabulary
        llm = AutoModelForCausalLM.from_config(llm_cfg)
    if vocab_size > llm.get_input_embeddings().num_embeddings:
        llm.resize_token_embeddings(vocab_size)
    connector = build_connector(cfg.connector, vision.hidden_size, llm.config.hidden_size)
    return PolyVLM(cfg, vision, connector, llm, media_token_ids)
