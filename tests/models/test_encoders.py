"""Encoders of every modality come from one registry (`ENCODERS`, each entry with its modality), chosen by model
type; a wrong type is an error naming the modality, the type and the known ones."""

from __future__ import annotations

import pytest
import torch
from transformers import CLIPConfig, CLIPModel, WhisperConfig

from polyvlm.models.encoders import ENCODERS, build_encoder, encoder_names
from polyvlm.models.encoders.audio import AudioEncoder, build_audio_encoder
from polyvlm.models.encoders.vision import CLIPEncoder, SiglipEncoder, build_vision_encoder
from polyvlm.registry import UnknownName

TINY_CLIP = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
             "image_size": 32, "patch_size": 16}
TINY_WHISPER = {"model_type": "whisper", "d_model": 16, "encoder_layers": 1, "encoder_attention_heads": 2,
                "encoder_ffn_dim": 32, "num_mel_bins": 8, "max_source_positions": 10, "decoder_layers": 1,
                "decoder_attention_heads": 2, "decoder_ffn_dim": 32}


def test_each_modality_lists_its_encoders():
    assert encoder_names("image") == ["clip_vision_model", "imagebind", "siglip_vision_model"]
    assert encoder_names("audio") == ["whisper"]
    assert {ENCODERS.get(n).modality for n in ENCODERS.names()} == {"image", "audio"}


def test_config_kwargs_pick_the_class_by_model_type():
    assert type(build_vision_encoder("", {**TINY_CLIP, "model_type": "siglip_vision_model"})) is SiglipEncoder
    assert type(build_vision_encoder("", TINY_CLIP)) is CLIPEncoder  # the default image type
    audio = build_audio_encoder("", TINY_WHISPER, pool=2)
    assert type(audio) is AudioEncoder and audio.frames_out == 5
    assert build_audio_encoder("", {}) is None  # a model without audio
    obj = build_encoder("audio", "", WhisperConfig(**{k: v for k, v in TINY_WHISPER.items() if k != "model_type"}))
    assert obj(torch.zeros(1, 8, 20)).shape == (1, 10, 16)


def test_wrong_modality_or_unknown_type_is_a_clear_error():
    with pytest.raises(UnknownName, match=r"unknown audio encoder 'clip_vision_model' \(registered for image\) "
                                          r"\(known: whisper\)"):
        build_audio_encoder("", {**TINY_CLIP, "model_type": "clip_vision_model"})
    with pytest.raises(UnknownName, match=r"unknown image encoder 'clip_vison_model' \(did you mean 'clip_vision_model'\?\) "
                                          r"\(known: clip_vision_model, imagebind, "
                                          r"siglip_vision_model\)"):
        build_vision_encoder("", {**TINY_CLIP, "model_type": "clip_vison_model"})


def test_a_full_clip_directory_gives_its_vision_tower(tmp_path):
    cfg = CLIPConfig(vision_config=TINY_CLIP, text_config={"hidden_size": 16, "intermediate_size": 32,
                                                          "num_hidden_layers": 1, "num_attention_heads": 2})
    CLIPModel(cfg).save_pretrained(tmp_path)
    enc = build_vision_encoder(str(tmp_path), {})
    assert type(enc) is CLIPEncoder and enc.hidden_size == 16


@pytest.mark.parametrize("family", ["clip_vision_model", "siglip_vision_model"])
@pytest.mark.parametrize("layer", [-1, -2, -3, 0, 1, 2])
def test_features_equal_the_towers_hidden_state_without_the_layers_after_it(family, layer, monkeypatch):
    """`hidden_states[feature_layer]` of the HF tower's own forward (transformers' CLIPVisionModel /
    SiglipVisionModel), computed without the layers after it: LLaVA's -2 never runs the last layer."""
    torch.manual_seed(0)
    enc = build_vision_encoder("", {**TINY_CLIP, "num_hidden_layers": 2, "model_type": family}, layer, "full")
    pixels = torch.randn(3, 3, 32, 32)
    ref = enc.tower(pixel_values=pixels, output_hidden_states=True).hidden_states[layer]
    ran = []
    for i, block in enumerate(enc.tower.encoder.layers):
        monkeypatch.setattr(block, "forward", lambda *a, _f=block.forward, _i=i, **k: ran.append(_i) or _f(*a, **k))
    feats, summary = enc.forward_with_cls(pixels)
    torch.testing.assert_close(feats, ref, rtol=1e-5, atol=1e-5)
    assert ran == list(range(layer % 3))
    torch.testing.assert_close(summary, ref[:, 0] if family == "clip_vision_model" else ref.mean(1))
    with pytest.raises(ValueError, match=r"vision_feature_layer=-4: the encoder has 2 layers"):
        build_vision_encoder("", {**TINY_CLIP, "model_type": family}, -4, "full")(pixels)
