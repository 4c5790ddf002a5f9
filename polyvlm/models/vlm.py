"""PolyVLM: encoders + connector + Hugging Face causal LM; media features replace placeholder embeddings."""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig, PreTrainedModel

from polyvlm.config import ModelConfig
from polyvlm.models.anyres import parse_mode
from polyvlm.models.connectors import Connector, build_connector
from polyvlm.models.encoders.audio import AudioEncoder, build_audio_encoder
from polyvlm.models.encoders.embed import RouterStats, embed_media
from polyvlm.models.encoders.media import MediaBatch
from polyvlm.models.encoders.modality import build_modality_encoders
from polyvlm.models.encoders.vision import VisionEncoder, build_vision_encoder
from polyvlm.models.loss import linear_cross_entropy
from polyvlm.models.processor import IGNORE
from polyvlm.utils import hub_path


@dataclass
class VLMOutput:
    # [b, s, V]; with labels None (the head and the loss ran in chunks over the supervised positions) or, for an LM
    # whose logits are not a plain head, [b, k, V]: only the k positions that predict a supervised token
    logits: torch.Tensor | None
    loss_sum: torch.Tensor | None = None  # scalar: summed token cross-entropy
    n_tokens: torch.Tensor | None = None  # scalar: supervised tokens in the batch
    token_loss: torch.Tensor | None = None  # [b, s-1]: loss of predicting token t+1 at t (0 where unsupervised)

    @property
    def loss(self) -> torch.Tensor:
        assert self.loss_sum is not None and self.n_tokens is not None
        return self.loss_sum / self.n_tokens.clamp(min=1)


class PolyVLM(nn.Module):
    """`forward(input_ids [b, s], attention_mask [b, s], pixels [n, 3, H, W] | MediaBatch) -> VLMOutput`.

    Every position whose id is a media token (image, video, audio) takes the next row of that modality's
    features, in reading order over the batch (row-major), so inputs must be given in the order their
    placeholders appear. `audio` / `audio_connector` exist when the config names an audio encoder;
    `encoders` / `encoder_connectors` (by modality) for the other modalities `model.encoders` names;
    `image_newline` [d_lm] when images are anyres. `router_stats` gathers moe router distributions per language.
    """

    def __init__(self, cfg: ModelConfig, vision: VisionEncoder, connector: Connector, llm: PreTrainedModel,
                 media_token_ids: dict[str, int], audio: AudioEncoder | None = None,
                 audio_connector: Connector | None = None, encoders: nn.ModuleDict | None = None,
                 encoder_connectors: nn.ModuleDict | None = None):
        super().__init__()
        self.cfg = cfg
        self.vision = vision
        self.connector = connector
        self.llm = llm
        self.media_token_ids = media_token_ids
        self.audio = audio
        self.audio_connector = audio_connector
        self.encoders = encoders if encoders is not None else nn.ModuleDict()
        self.encoder_connectors = encoder_connectors if encoder_connectors is not None else nn.ModuleDict()
        if parse_mode(cfg.image_aspect_ratio) is not None:
            d = llm.config.hidden_size
            self.image_newline = nn.Parameter(torch.randn(d) / d**0.5)
        self.router_stats = RouterStats()

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels [n, 3, H, W] -> embeddings [n, t, d_lm]. Runs without grad when the encoder is frozen.

        No prompt here: the connector's prompt-free `project` (`embed` routes a moe connector with the prompt)."""
        frozen = not any(p.requires_grad for p in self.vision.parameters())
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            feats = self.vision(pixels)
        return self.connector.project(feats.to(self.connector_dtype))

    @property
    def connector_dtype(self) -> torch.dtype:
        return self.connector.dtype

    def embed(self, input_ids: torch.Tensor, pixels: torch.Tensor | MediaBatch | None = None,
              attention_mask: torch.Tensor | None = None, labels: torch.Tensor | None = None,
              position_ids: torch.Tensor | None = None) -> torch.Tensor:
        """input_ids [b, s] (+ pixels [n, 3, H, W] or a MediaBatch) -> inputs_embeds [b, s, d].

        The mask, labels and position ids only tell the moe connector which tokens form each sample's prompt.
        """
        return embed_media(self, input_ids, pixels, attention_mask, labels, position_ids)

    def _every_media_parameter_in_graph(self, embeds: torch.Tensor) -> torch.Tensor:
        """embeds [b, s, d] + 0 x (every trainable parameter of the encoders, connectors, image_newline).

        While training, a batch without images (or audio, or with an expert no input chose) would leave those
        parameters without a gradient on this process only: DDP then waits for buckets that never fill, and
        FSDP2's reduce-scatter gets buffers of different sizes per rank (gloo aborts). With this zero term every
        process produces the same set of gradients every micro-batch, whatever its modalities.
        """
        if not (self.training and torch.is_grad_enabled()):
            return embeds
        parts = [self.vision, self.connector, self.audio, self.audio_connector, self.encoders, self.encoder_connectors]
        params = [p for m in parts if m is not None for p in m.parameters() if p.requires_grad]
        newline = getattr(self, "image_newline", None)
        if newline is not None and newline.requires_grad:
            params.append(newline)
        if not params:
            return embeds
        zero = torch.stack([p.sum().float() for p in params]).sum() * 0.0
        return embeds + zero.to(embeds.dtype)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, pixels: torch.Tensor | None = None,
        labels: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
        attn_kwargs: dict | None = None,
    ) -> VLMOutput:
        """`attn_kwargs`: sample boundaries of a packed row (`cu_seq_lens_q` ...) for varlen attention."""
        embeds = self.embed(input_ids, pixels, attention_mask, labels, position_ids)
        embeds = self._every_media_parameter_in_graph(embeds)
        extra = dict(attn_kwargs or {})
        if labels is None:
            out = self.llm(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids,
                           use_cache=False, **extra)
            return VLMOutput(out.logits)
        shift_labels = labels[:, 1:]
        sup = shift_labels != IGNORE  # [b, s-1]: position t predicts supervised token t+1
        parts = _decoder_and_head(self.llm)
        if parts is not None:  # the head and the loss in chunks over supervised positions: no [tokens, V] logits
            decoder, head = parts
            hidden = decoder(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids,
                             use_cache=False, **extra).last_hidden_state  # [b, s, d]
            loss_sum, kept = linear_cross_entropy(hidden[:, :-1][sup], head.weight, head.bias, shift_labels[sup])
            token_loss = kept.new_zeros(shift_labels.shape)  # [b, s-1], 0 where not supervised
            token_loss[sup] = kept
            return VLMOutput(None, loss_sum, sup.sum(), token_loss)
        keep = None
        if _takes_logits_to_keep(self.llm):
            # the vocabulary projection and the loss only where a supervised token is predicted (for every row:
            # the union over the batch; a packed row is exact)
            keep = sup.any(0).nonzero().squeeze(1)  # [k] positions t predicting t+1
            extra["logits_to_keep"] = keep
        logits = self.llm(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids,
                          use_cache=False, **extra).logits
        if keep is None:
            keep = torch.arange(shift_labels.shape[1], device=logits.device)
            logits = logits[:, :-1]
        kept_labels = shift_labels[:, keep]  # [b, k]
        kept_loss = F.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]), kept_labels.reshape(-1), ignore_index=IGNORE, reduction="none"
        ).view_as(kept_labels)
        token_loss = kept_loss.new_zeros(shift_labels.shape)  # [b, s-1], 0 where not supervised
        token_loss[:, keep] = kept_loss
        return VLMOutput(logits, token_loss.sum(), sup.sum(), token_loss)


# config keys of causal LMs whose logits are not just `lm_head(hidden)` (Gemma 2's soft cap, Cohere's and
# Granite's scales): those keep the LM's own forward
_LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale")


def _decoder_and_head(llm: nn.Module) -> tuple[nn.Module, nn.Linear] | None:
    """(decoder returning `last_hidden_state`, LM head) when logits are exactly `head(hidden)`, else None.

    A peft wrapper's base model is used: its LoRA layers are wrapped in place, so the decoder keeps them."""
    base = llm.get_base_model() if hasattr(llm, "get_base_model") else llm
    head = getattr(base, "lm_head", None)
    decoder = getattr(base, "model", None)
    if type(head) is not nn.Linear or not isinstance(decoder, PreTrainedModel):
        return None
    if any(getattr(base.config, k, None) not in (None, 1, 1.0) for k in _LOGIT_TRANSFORMS):
        return None
    return decoder, head


@functools.cache
def _forward_takes_logits_to_keep(cls: type) -> bool:
    return "logits_to_keep" in inspect.signature(cls.forward).parameters


def _takes_logits_to_keep(llm: nn.Module) -> bool:
    """Whether the causal LM's forward can project only chosen positions (`logits_to_keep` as a 1-D index
    tensor; Llama, Qwen2, Mistral and most others do). A peft wrapper passes it through to its base model."""
    base = llm.get_base_model() if hasattr(llm, "get_base_model") else llm
    return _forward_takes_logits_to_keep(type(base))


def _llm_config(cfg: ModelConfig) -> PretrainedConfig:
    kwargs = dict(cfg.llm_config)
    model_type = kwargs.pop("model_type", "qwen2")
    return AutoConfig.for_model(model_type, **kwargs)


def build_model(cfg: ModelConfig, vocab_size: int, media_token_ids: dict[str, int],
                vision_hf: PretrainedConfig | None = None, llm_hf: PretrainedConfig | None = None,
                audio_hf: PretrainedConfig | None = None) -> PolyVLM:
    """Build from `cfg`: pretrained parts from local directories, the rest from configs.

    `vision_hf` / `llm_hf` / `audio_hf` (from a saved checkpoint) build the parts from configs without weights.
    """
    if vision_hf is not None:
        vision = build_vision_encoder("", vision_hf, cfg.vision_feature_layer, cfg.vision_select)
    else:
        vision_src = str(hub_path(cfg.vision)) if cfg.vision else cfg.vision  # a directory, or a hub id
        vision = build_vision_encoder(vision_src, cfg.vision_config, cfg.vision_feature_layer, cfg.vision_select)
    if llm_hf is not None:
        llm = AutoModelForCausalLM.from_config(llm_hf)
    elif cfg.llm:
        llm = AutoModelForCausalLM.from_pretrained(str(hub_path(cfg.llm)))
    else:
        llm_cfg = _llm_config(cfg)
        # a model built from scratch gets the tokenizer's vocabulary, or the larger one its config names (Qwen2
        # pads 151,646 tokens to 151,936 rows)
        llm_cfg.vocab_size = max(vocab_size, int(cfg.llm_config.get("vocab_size", 0)))
        llm = AutoModelForCausalLM.from_config(llm_cfg)
    if vocab_size > llm.get_input_embeddings().num_embeddings:
        llm.resize_token_embeddings(vocab_size)
    connector = build_connector(cfg.connector, vision.hidden_size, llm.config.hidden_size, cfg)
    audio = build_audio_encoder(cfg.audio if audio_hf is None else "", audio_hf or cfg.audio_config, cfg.audio_pool)
    audio_connector = None if audio is None else build_connector(cfg.audio_connector, audio.hidden_size, llm.config.hidden_size, cfg)
    encoders, encoder_connectors = build_modality_encoders(cfg.encoders, llm.config.hidden_size, cfg)
    return PolyVLM(cfg, vision, connector, llm, media_token_ids, audio, audio_connector, encoders, encoder_connectors)
