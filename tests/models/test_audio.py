"""Audio (PandaGPT): 16 kHz log-mel in torch equals Whisper's feature extractor, files are read and resampled,
pool1 / per-frame connectors give the announced token counts, multi-image records, and a record mixing
images, audio and text trains and generates."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

import polyvlm
from polyvlm.config import load_config
from polyvlm.data.records import RecordError, Turn
from polyvlm.data.scenes import write_jsonl
from polyvlm.infer import ChatRequest
from polyvlm.models import factory
from polyvlm.models.encoders.audio import LogMel, load_audio, resample
from polyvlm.testing import TINY_RECIPE

WHISPER = ("model.audio_config={model_type: whisper, d_model: 32, encoder_layers: 1, encoder_attention_heads: 2, "
           "encoder_ffn_dim: 64, num_mel_bins: 16, max_source_positions: 25}")


def _tone(freq: float, seconds: float, sr: int) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_log_mel_equals_whisper_feature_extractor():
    from transformers import WhisperFeatureExtractor

    wave = _tone(440, 1.3, 16000) + np.random.RandomState(0).randn(int(1.3 * 16000)).astype(np.float32) * 0.01
    want = WhisperFeatureExtractor(feature_size=80)(wave, sampling_rate=16000, return_tensors="np").input_features[0]
    got = LogMel(80, 480_000).features([wave])[0].numpy()
    assert got.shape == (80, 3000)
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_files_are_read_as_16k_mono(tmp_path):
    stereo = np.stack([_tone(1000, 0.5, 22050), _tone(1000, 0.5, 22050)], axis=1)
    sf.write(tmp_path / "a.wav", stereo, 22050)
    sf.write(tmp_path / "b.flac", _tone(1000, 0.5, 8000), 8000)
    for name in ("a.wav", "b.flac"):
        w = load_audio(tmp_path / name)
        assert w.ndim == 1 and abs(len(w) - 8000) <= 1
        peak = np.argmax(np.abs(np.fft.rfft(w))) * 16000 / len(w)
        assert abs(peak - 1000) < 5  # the tone keeps its pitch through resampling
    assert resample(np.ones(160, np.float32), 16000).shape == (160,)
    (tmp_path / "bad.wav").write_bytes(b"RIFF????not audio")
    with pytest.raises(RecordError, match="unreadable audio 'bad.wav'"):
        load_audio(tmp_path / "bad.wav", "data.jsonl:3", "r3")


@pytest.mark.parametrize("connector,pool,tokens", [("pool1", 1, 1), ("linear", 5, 5), ("mlp2x_gelu", 1, 25)])
def test_audio_token_counts(connector, pool, tokens):
    model, proc = factory.build(load_config(TINY_RECIPE, [WHISPER, f"model.audio_connector={connector}",
                                                          f"model.audio_pool={pool}"]).model)
    assert proc.config.tokens_per_media["audio"] == tokens
    enc = proc.encode([Turn("user", "<audio>\nHow many beeps?"), Turn("assistant", "two")], {"audio": 1})
    audio_id = proc.media_token_ids["audio"]
    assert enc.input_ids.count(audio_id) == tokens
    feats = proc.audio_features([_tone(880, 0.3, 16000)])
    assert feats.shape == (1, 16, 50)
    from polyvlm.models.encoders.media import MediaBatch

    ids = torch.tensor([enc.input_ids])
    with torch.no_grad():
        emb = model.embed(ids, MediaBatch(audio=feats))
        direct = model.audio_connector(model.audio(feats))[0]
    torch.testing.assert_close(emb[0][ids[0] == audio_id], direct)


def test_model_without_audio_refuses_audio(tiny_ckpt):
    gen = polyvlm.load_generator(tiny_ckpt)
    assert "audio" not in gen.modalities
    with pytest.raises(RecordError, match="no audio encoder"):
        gen.count_prompt_tokens(ChatRequest([{"role": "user", "content": "<audio> hi"}], audios=[np.zeros(160)]))


def _mixed_data(d):
    (d / "images").mkdir(parents=True, exist_ok=True)
    for name, colour in (("r", "red"), ("b", "blue")):
        Image.new("RGB", (64, 64), colour).save(d / "images" / f"{name}.png")
    sf.write(d / "beep.wav", _tone(880, 0.4, 44100), 44100)
    recs = []
    for i in range(4):
        recs.append({"id": f"mix{i}", "image": ["images/r.png", "images/b.png"], "audio": "beep.wav", "language": "en",
                     "conversations": [{"from": "human", "value": "<image> <image>\n<audio>\nWhich picture is red?"},
                                       {"from": "gpt", "value": "the first"}]})
        recs.append({"id": f"multi{i}", "image": ["images/b.png", "images/r.png"], "language": "pt",
                     "conversations": [{"from": "human", "value": "Primeira <image> segunda <image> qual é vermelha?"},
                                       {"from": "gpt", "value": "a segunda"}]})
        recs.append({"id": f"text{i}", "language": "zh", "conversations": [{"from": "human", "value": "你好"},
                                                                          {"from": "gpt", "value": "你好"}]})
    return write_jsonl(recs, d / "mixed.jsonl")


def test_multi_image_features_in_order(tiny_ckpt):
    model, proc = polyvlm.load(tiny_ckpt)
    imgs = [Image.new("RGB", (64, 64), c) for c in ("red", "blue")]
    enc = proc.encode([Turn("user", "A <image> then B <image> ?"), Turn("assistant", "B")], {"image": 2})
    ids = torch.tensor([enc.input_ids])
    t = proc.config.tokens_per_media["image"]
    image_id = proc.media_token_ids["image"]
    assert enc.input_ids.count(image_id) == 2 * t
    pos = (ids[0] == image_id).nonzero().squeeze(1)
    assert (pos[t] - pos[t - 1]) > 1  # text between the two runs
    pixels = proc.images_to_pixels(imgs)
    with torch.no_grad():
        emb = model.embed(ids, pixels)
        feats = model.encode_images(pixels)
    torch.testing.assert_close(emb[0, pos[:t]], feats[0])
    torch.testing.assert_close(emb[0, pos[t:]], feats[1])


@pytest.mark.slow
def test_record_mixing_image_audio_text_trains(tmp_path):
    from polyvlm.train.loop import train

    data = _mixed_data(tmp_path)
    cfg = load_config(TINY_RECIPE, [WHISPER, f"data.path={data}", f"train.output_dir={tmp_path / 'run'}",
                                    "train.max_steps=6", "train.batch_size=6", "train.lr=3e-3", "train.warmup_ratio=0"])
    res = train(cfg, show_progress=False)
    losses = [h["loss"] for h in res.history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    assert (res.checkpoint / "audio_config.json").is_file()
    gen = polyvlm.load_generator(res.checkpoint)
    assert {"image", "audio"} <= gen.modalities
    req = ChatRequest([{"role": "user", "content": "<image> <image>\n<audio>\nWhich picture is red?"}],
                      images=[Image.new("RGB", (64, 64), "red"), Image.new("RGB", (64, 64), "blue")],
                      audios=[_tone(880, 0.4, 16000)], max_new_tokens=4)
    alone = gen.generate([req])[0]
    both = gen.generate([req, ChatRequest([{"role": "user", "content": "hi"}], max_new_tokens=4)])[0]
    assert alone.text == both.text and alone.prompt_tokens == gen.count_prompt_tokens(req)


def test_generator_passes_audio_to_the_model(tmp_path):
    from polyvlm.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    cfg = load_config(TINY_RECIPE, [WHISPER, "model.audio_connector=linear", "model.audio_pool=5"])
    model, proc = factory.build(cfg.model)
    gen = polyvlm.load_generator(save_checkpoint(model, proc, cfg, tmp_path / "ck"))
    assert gen.modalities == {"image", "video", "audio"}
    low, high = _tone(300, 0.5, 16000), np.random.RandomState(1).randn(8000).astype(np.float32)
    reqs = [ChatRequest([{"role": "user", "content": "How many beeps?"}], audios=[a], max_new_tokens=5) for a in (low, high)]
    assert gen.count_prompt_tokens(reqs[0]) == gen.count_prompt_tokens(
        ChatRequest([{"role": "user", "content": "How many beeps?"}])) + 5 + 1  # 5 audio tokens + "\n"
    ids = [torch.tensor([gen._encode(r)]) for r in reqs]
    media = [gen._media([r]) for r in reqs]
    with torch.no_grad():
        a, b = (gen.model.embed(i, m) for i, m in zip(ids, media))
    assert not torch.allclose(a, b)  # the waveform reaches the embeddings
    out = gen.generate(reqs)
    assert [o.text for o in out] == [gen.generate([r])[0].text for r in reqs]


def test_packed_batches_keep_media_in_order():
    from polyvlm.models.encoders.media import MediaBatch
    from polyvlm.models.processor import Features
    from polyvlm.train.batch import collate

    a = MediaBatch(torch.zeros(1, 3, 4, 4), [1], [(4, 4)], ["en"], torch.zeros(1, 16, 50))
    b = MediaBatch(torch.ones(2, 3, 4, 4), [1, 1], [(4, 4), (8, 8)], ["zh", "zh"])
    items = [Features([1, 2], [1, 2], a, "en"), Features([3], [3], None, "pt"), Features([4, 5, 6], [4, 5, 6], b, "zh")]
    mb = collate(items, packing=True).media
    assert isinstance(mb, MediaBatch) and mb.image_langs == ["en", "zh", "zh"] and mb.pixels[:, 0, 0, 0].tolist() == [0, 1, 1]
    assert mb.audio.shape == (1, 16, 50) and mb.to("cpu").image_sizes == [(4, 4), (4, 4), (8, 8)]


@pytest.mark.slow
def test_quickstart_moe_audio_multi_image(tmp_path, capsys):
    """`polyvlm quickstart --connector moe --modalities image,audio --multi-image`: the tones and two-picture
    questions join the scenes, and the report gives per-language accuracy and the router per language."""
    import json

    from polyvlm.cli import main

    out = tmp_path / "qs"
    assert main(["quickstart", "--out", str(out), "--fast", "--no-progress", "--connector", "moe",
                 "--modalities", "image,audio", "--multi-image"]) == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert set(report["accuracy"]) == {"en", "zh", "pt", "ar", "tr", "ru"}
    assert all(0.0 <= v <= 100.0 for v in report["accuracy"].values())  # percent, as `polyvlm eval`
    assert {"beeps", "pitch", "more", "color", "side"} <= set(report["accuracy_by_type"])
    # stage 0 pre-trains both encoders contrastively against captions and reports zero-shot retrieval
    assert {"audio_beeps", "audio_pitch", "audio_caption", "image_side"} <= set(report["encoder_accuracy"])
    assert set(report["router"]) == set(report["accuracy"]) and all(len(v) == 6 for v in report["router"].values())
    assert all(sum(v) == pytest.approx(1.0, abs=1e-3) for v in report["router"].values())
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {s["qtype"] for s in samples} >= {"beeps", "pitch", "more"}
    for lang, acc in report["accuracy"].items():  # what the samples say, tone and two-picture questions included
        got = [s["correct"] for s in samples if s["language"] == lang]
        assert got and acc == pytest.approx(100 * sum(got) / len(got)), lang
    assert "moe router" in (out / "report.md").read_text() and "| language | accuracy | chance | majority |" in capsys.readouterr().out
