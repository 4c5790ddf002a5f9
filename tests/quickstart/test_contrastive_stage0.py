"""Quick start stage 0 (polyvlm.quickstart.encoder): CLIP-style contrastive pre-training of the tiny vision and audio
encoders against captions, with no attribute labels or classifier heads; the pre-trained vision encoder must tell
every attribute of held-out scenes by zero-shot caption retrieval.

The objective follows CLIP (openai/CLIP `clip/model.py`: `logit_scale` is a learnt log, initialised at log(1/0.07),
exponentiated before the logits; open_clip `src/open_clip/loss.py` `ClipLoss`: mean of the two cross-entropies)."""

from __future__ import annotations

import random

import pytest
import torch

from polyvlm.config import load_config
from polyvlm.data.scenes import LANGUAGES, Scene
from polyvlm.models import factory
from polyvlm.models.loss import contrastive_loss
from polyvlm.quickstart import encoder as E
from polyvlm.quickstart.run import RECIPE, variant_overrides


def _model(modalities: tuple[str, ...] = ("image",)):
    return factory.build(load_config(RECIPE, variant_overrides("", modalities)).model)


def test_batches_never_pair_two_inputs_with_the_same_caption():
    """Within each contrastive group every key (hence caption) is distinct, so no positive is counted as a negative;
    the eight tone captions fill a 32-clip batch as four groups of eight."""
    model, processor = _model(("image", "audio"))
    scenes, tones = E.scene_task(model.vision), E.tone_task(model.audio, processor)
    assert len(scenes.keys) == 144 and len(tones.keys) == 8
    rng = random.Random(0)
    keys = E._draw_keys(scenes, rng, 32, 32)
    assert len(set(keys)) == 32
    keys = E._draw_keys(tones, rng, 32, 8)
    assert all(len(set(keys[i : i + 8])) == 8 for i in range(0, 32, 8))
    # the captions name every attribute, in every language
    for lang in LANGUAGES:
        words = scenes.caption(("red", "triangle", 3, "left"), lang).split()
        assert words == Scene("red", "triangle", 3, "left").caption(lang).split() and len(words) == 4


def test_group_loss_is_clip_loss_per_group():
    a, b = torch.randn(16, 8), torch.randn(16, 8)
    assert torch.allclose(E._group_loss(a, b, torch.tensor(10.0), 16), contrastive_loss(a, b, 10.0))
    halves = (contrastive_loss(a[:8], b[:8], 10.0) + contrastive_loss(a[8:], b[8:], 10.0)) / 2
    assert torch.allclose(E._group_loss(a, b, torch.tensor(10.0), 8), halves)


def test_caption_encoder_ignores_padding():
    torch.manual_seed(0)
    text = E.CaptionEncoder(50, 16).eval()
    ids = torch.tensor([[5, 6, 7, 0, 0]])
    short = text(ids[:, :3], torch.ones(1, 3, dtype=torch.bool))
    padded = text(torch.cat([ids, ids * 0 + 9], 0), torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool))
    assert torch.allclose(short[0], padded[0], atol=1e-5)
    with pytest.raises(ValueError, match="longer than the caption encoder's 32"):
        text(torch.zeros(1, 40, dtype=torch.long), torch.ones(1, 40, dtype=torch.bool))


def test_pretraining_updates_only_the_encoder_and_restores_threads():
    """No head or caption tower is left on the model: its parameters are the same tensors, trained in place."""
    model, processor = _model()
    names = [n for n, _ in model.named_parameters()]
    before = {k: v.clone() for k, v in model.vision.state_dict().items()}
    threads = torch.get_num_threads()
    rep = E.pretrain_encoder(model.vision, processor.tokenizer, steps=3, batch_size=8, show_progress=False)
    assert torch.get_num_threads() == threads
    assert [n for n, _ in model.named_parameters()] == names
    assert any(not torch.equal(before[k], v) for k, v in model.vision.state_dict().items())
    assert set(rep) == {"image_caption", "image_color", "image_shape", "image_count", "image_side"}
    assert all(0 <= v <= 100 for v in rep.values())


def test_zero_shot_of_a_perfect_embedding_is_100():
    """`zero_shot` scores the nearest caption: an embedding that is the caption's own gives 100 on every attribute."""
    model, processor = _model()
    task = E.scene_task(model.vision)
    index = {k: i for i, k in enumerate(task.keys)}
    drawn: list[tuple] = []

    def draw(keys, rng):
        drawn[:] = keys
        return torch.zeros(len(keys), 1)

    task.draw = draw
    onehot = torch.eye(len(task.keys))
    rep = E.zero_shot(task, lambda x: onehot[[index[k] for k in drawn]],
                      lambda ids, mask: onehot[: ids.shape[0]],  # the caption bank comes in `task.keys` order
                      processor.tokenizer, seed=0)
    assert rep == {"image_caption": 100.0, "image_color": 100.0, "image_shape": 100.0, "image_count": 100.0,
                   "image_side": 100.0}


@pytest.mark.slow
def test_contrastive_pretraining_teaches_every_attribute():
    """The quick start's stage 0 (500 steps of 32 scenes): zero-shot retrieval among all 144 captions tells colour,
    shape and side of held-out scenes almost always and count mostly (chance: 1/6, 1/3, 1/2, 1/4; 1/144 whole)."""
    model, processor = _model()
    rep = E.pretrain_encoder(model.vision, processor.tokenizer, show_progress=False)
    assert rep["image_color"] >= 95 and rep["image_shape"] >= 95 and rep["image_side"] >= 95, rep
    assert rep["image_count"] >= 80 and rep["image_caption"] >= 75, rep
