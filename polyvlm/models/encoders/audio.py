"""Audio (PandaGPT-style): Whisper log-mel features in torch of 16 kHz waveforms (decoded by polyvlm.media), and the
Whisper encoder (from a local directory or a config) that turns them into frame features.

Whisper's features: 25 ms Hann windows (n_fft 400) every 10 ms (hop 160) at 16 kHz, power spectrum,
Slaney mel filters up to 8 kHz, log10, floored at (max - 8), then (x + 4) / 4; the waveform is padded or cut
to the encoder's fixed input length (30 s for released models: 3000 frames -> 1500 encoder positions).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, WhisperConfig, WhisperModel
from transformers.audio_utils import mel_filter_bank
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from polyvlm.media.audio import SAMPLE_RATE, resample
from polyvlm.models.encoders import ENCODERS, build_encoder

__all__ = ["SAMPLE_RATE", "AudioEncoder", "LogMel", "build_audio_encoder", "load_audio", "resample"]
N_FFT = 400
HOP = 160


def load_audio(path: str | Path, source: str = "", record_id: str | None = None) -> np.ndarray:
    """WAV/FLAC/OGG file -> float32 mono waveform [samples] at 16 kHz (polyvlm.media; RecordError when unreadable)."""
    from polyvlm.data.media import decode_media

    return decode_media("audio", Path(path), None, source, record_id)


class LogMel(nn.Module):
    """waveforms [n, samples] (16 kHz) -> Whisper log-mel features [n, n_mels, n_samples // 160]."""

    def __init__(self, n_mels: int = 80, n_samples: int = 480_000):
        super().__init__()
        self.n_mels, self.n_samples = n_mels, n_samples
        fb = mel_filter_bank(num_frequency_bins=1 + N_FFT // 2, num_mel_filters=n_mels, min_frequency=0.0,
                             max_frequency=8000.0, sampling_rate=SAMPLE_RATE, norm="slaney", mel_scale="slaney")
        self.register_buffer("filters", torch.from_numpy(np.asarray(fb, dtype=np.float32)).T.contiguous(), persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(waves, N_FFT, HOP, window=self.window, return_complex=True)  # [n, 201, frames + 1]
        power = spec[..., :-1].abs() ** 2
        mel = self.filters @ power  # [n, n_mels, frames]
        log = torch.clamp(mel, min=1e-10).log10()
        log = torch.maximum(log, log.amax(dim=(1, 2), keepdim=True) - 8.0)
        return (log + 4.0) / 4.0

    def features(self, waves: list[np.ndarray]) -> torch.Tensor:
        """Waveforms of any length -> [n, n_mels, n_samples // 160] (each padded with zeros or cut)."""
        batch = torch.zeros(len(waves), self.n_samples)
        for i, w in enumerate(waves):
            w = torch.as_tensor(np.asarray(w, dtype=np.float32)).flatten()[: self.n_samples]
            batch[i, : w.shape[0]] = w
        return self(batch)


@ENCODERS.register("whisper")
class AudioEncoder(nn.Module):
    """`forward(features [n, mels, 2 * P]) -> [n, P // pool, d]`: Whisper encoder states, averaged over `pool` frames.

    P is the encoder's `max_source_positions` (1500 for released Whisper models), d its `d_model`.
    """

    modality = "audio"

    def __init__(self, encoder: WhisperEncoder, pool: int = 1):
        super().__init__()
        if pool < 1:
            raise ValueError(f"model.audio_pool must be >= 1, got {pool}")
        self.encoder, self.pool = encoder, pool
        cfg = encoder.config
        self.hidden_size: int = cfg.d_model
        self.n_mels: int = cfg.num_mel_bins
        self.positions: int = cfg.max_source_positions
        self.n_samples: int = self.positions * 2 * HOP

    @property
    def config(self) -> PretrainedConfig:
        return self.encoder.config

    @property
    def frames_out(self) -> int:
        return self.positions // self.pool

    @classmethod
    def create(cls, path: str, config: dict | PretrainedConfig, pool: int = 1) -> AudioEncoder:
        """From a local Whisper directory, a WhisperConfig, or its kwargs (random init)."""
        if path:
            return cls(WhisperModel.from_pretrained(path).get_encoder(), pool)
        if not isinstance(config, PretrainedConfig):
            config = WhisperConfig(**{k: v for k, v in config.items() if k != "model_type"})
        return cls(WhisperEncoder(config), pool)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        dtype = next(self.encoder.parameters()).dtype
        h = self.encoder(input_features=features.to(dtype)).last_hidden_state  # [n, P, d]
        if self.pool > 1:
            h = F.avg_pool1d(h.transpose(1, 2), self.pool, self.pool).transpose(1, 2)
        return h


def build_audio_encoder(path: str, config: dict | PretrainedConfig, pool: int = 1) -> AudioEncoder | None:
    """The registered audio encoder for a local directory, config kwargs (`model_type`, default whisper) or a
    config object; None when neither is given (a model without audio)."""
    if not path and not config:
        return None
    return build_encoder("audio", path, config, pool=pool)
