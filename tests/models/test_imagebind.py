"""ImageBind parity: polyvlm's ImageBindModel against the packaged reference (`imagebind-unofficial`, a copy of
facebookresearch/ImageBind's imagebind/models/*.py) with the same random weights, per modality; the published
key names (imagebind_model.py: modality_preprocessors / modality_trunks / modality_heads /
modality_postprocessors) load into ours; PandaGPT's unscaled audio (PandaGPT code/model/ImageBind/models/
imagebind_model.py applies only the Normalize of the audio post-processor)."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest
import torch
from torch import nn

from polyvlm.models.encoders.imagebind import (
    ImageBindModel,
    convert_published_state,
    imagebind_tiny_config,
    load_imagebind_state,
    map_published_key,
)

D, OUT = 32, 24


def _stub(name: str, **attrs) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    return mod


class _DropPath(nn.Module):
    """timm's DropPath only acts in training; the parity runs in eval."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x):
        assert not self.training
        return x


def _unavailable(*a, **k):
    raise RuntimeError("stubbed for the parity test (only the text tokenizer uses it)")


@pytest.fixture(scope="module")
def ref():
    """The reference model module, imported without its package __init__ (which loads data.py and with it
    torchvision / torchaudio / pytorchvideo, which have no CPU builds for this torch). Stubs stand in only
    for names the model code imports but the model never calls in eval: timm.layers (DropPath: training
    only; trunc_normal_: torch's), ftfy and iopath (the BPE tokenizer)."""
    spec = importlib.util.find_spec("imagebind")
    if spec is None or spec.submodule_search_locations is None:
        pytest.skip("imagebind-unofficial is not installed (make install: pip install --no-deps imagebind-unofficial)")
    pytest.importorskip("einops")
    saved = dict(sys.modules)
    stubs = {
        "imagebind": _stub("imagebind", __path__=list(spec.submodule_search_locations)),
        "ftfy": _stub("ftfy", fix_text=_unavailable),
        "iopath": _stub("iopath", __path__=[]), "iopath.common": _stub("iopath.common", __path__=[]),
        "iopath.common.file_io": _stub("iopath.common.file_io", g_pathmgr=types.SimpleNamespace(open=_unavailable)),
    }
    if importlib.util.find_spec("timm") is None:
        stubs |= {"timm": _stub("timm", __path__=[]),
                  "timm.layers": _stub("timm.layers", DropPath=_DropPath, trunc_normal_=nn.init.trunc_normal_)}
    for k in [k for k in sys.modules if k == "imagebind" or k.startswith("imagebind.")]:
        del sys.modules[k]
    sys.modules.update(stubs)
    try:
        import imagebind.models.imagebind_model as ref_model

        yield ref_model
    finally:
        sys.modules.clear()
        sys.modules.update(saved)


@pytest.fixture(scope="module")
def pair(ref):
    """(reference, ours) tiny models with the same random weights (every parameter perturbed, so LayerNorm
    weights and biases are not the identity)."""
    torch.manual_seed(0)
    kw = {}
    for m in ("vision", "text", "audio", "depth", "thermal", "imu"):
        kw |= {f"{m}_embed_dim": D, f"{m}_num_blocks": 2, f"{m}_num_heads": 2}
    r = ref.ImageBindModel(out_embed_dim=OUT, **kw).eval()
    with torch.no_grad():
        for p in r.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    ours = ImageBindModel(imagebind_tiny_config(dim=D, layers=2, heads=2, out_dim=OUT)).eval()
    ours.load_state_dict(convert_published_state(r.state_dict()), strict=True)
    return r, ours


def _inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    text = torch.randint(1, 49000, (2, 77), generator=g)
    text[0, 9], text[0, 10:] = 49407, 0  # end-of-text token, then padding
    text[1, 40], text[1, 41:] = 49407, 0
    return {
        "vision": torch.randn(2, 3, 224, 224, generator=g),
        "text": text,
        "audio": torch.randn(2, 3, 1, 128, 204, generator=g),  # 3 clips per input
        "depth": torch.rand(2, 1, 224, 224, generator=g),
        "thermal": torch.rand(2, 1, 224, 224, generator=g),
        "imu": torch.randn(2, 6, 2000, generator=g),
    }


@pytest.mark.parametrize("modality", ["vision", "text", "audio", "depth", "thermal", "imu"])
def test_joint_embeddings_match_reference(pair, modality):
    r, ours = pair
    x = _inputs()[modality]
    with torch.no_grad():
        want = r({modality: x})[modality]
        got = ours.embed(modality, x)
    assert got.shape == want.shape == (2, OUT)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)


def test_video_clips_match_reference(pair):
    """Video: [b, clips, 3, 2, S, S] embedded per 2-frame clip and averaged."""
    r, ours = pair
    x = torch.randn(1, 3, 3, 2, 224, 224, generator=torch.Generator().manual_seed(2))
    x[:, :, :, 1] += 0.5  # the two frames differ
    with torch.no_grad():
        torch.testing.assert_close(ours.embed("vision", x), r({"vision": x})["vision"], atol=1e-4, rtol=0)


def test_pandagpt_audio_is_normalised_not_scaled(pair):
    """PandaGPT's copy keeps only the Normalize of the audio post-processor (no x20), then averages clips."""
    r, ours = pair
    x = _inputs()["audio"]
    with torch.no_grad():
        scaled = r({"audio": x})["audio"]
        post = r.modality_postprocessors["audio"]
        r.modality_postprocessors["audio"] = post[0]
        try:
            want = r({"audio": x})["audio"]
        finally:
            r.modality_postprocessors["audio"] = post
        got = ours.embed("audio", x, scale=False)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    torch.testing.assert_close(scaled, want * 20, atol=1e-4, rtol=0)
    assert float(ours.logit_scale("thermal")) == pytest.approx(10.0)
    assert float(ours.logit_scale("depth")) == pytest.approx(5.0)
    assert ours.logit_scale("vision") is None


def test_published_file_loads_with_weights_only(pair, tmp_path):
    r, _ = pair
    path = tmp_path / "imagebind_tiny.pth"
    torch.save(r.state_dict(), path)
    fresh = ImageBindModel(imagebind_tiny_config(dim=D, layers=2, heads=2, out_dim=OUT)).eval()
    load_imagebind_state(fresh, path)
    x = _inputs()["thermal"]
    with torch.no_grad():
        torch.testing.assert_close(fresh.embed("thermal", x), r({"thermal": x})["thermal"], atol=1e-4, rtol=0)
    wrong = ImageBindModel(imagebind_tiny_config(dim=16, layers=2, heads=2, out_dim=OUT))
    with pytest.raises(ValueError, match=r"imagebind_tiny.pth: does not fit.*vision width 16.*"
                                         r"stems.vision.cls_token \(1, 1, 32\) vs \(1, 1, 16\)"):
        load_imagebind_state(wrong, path)


def test_huge_architecture_has_every_published_key(ref, monkeypatch):
    """`imagebind_huge`'s keys and shapes (built on the meta device: no memory) map one to one onto ours."""
    linspace = torch.linspace  # drop-path rates are read with .item(): computed on the CPU
    monkeypatch.setattr(torch, "linspace", lambda *a, **k: linspace(*a, **(k | {"device": "cpu"})))
    with torch.device("meta"):
        r = ref.imagebind_huge(pretrained=False)
        ours = ImageBindModel()
    theirs = {map_published_key(k): v.shape for k, v in r.state_dict().items() if map_published_key(k)}
    mine = {k: v.shape for k, v in ours.state_dict().items()}
    assert theirs == mine
    assert sum(v.numel() for v in mine.values()) > 1.1e9


def test_bad_checkpoint_is_named(tmp_path):
    bad = tmp_path / "x.pth"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="x.pth"):
        load_imagebind_state(ImageBindModel(imagebind_tiny_config()), bad)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_imagebind_state(ImageBindModel(imagebind_tiny_config()), Path(tmp_path / "missing.pth"))
    with pytest.raises(KeyError, match="no modality 'smell'"):
        ImageBindModel(imagebind_tiny_config()).embed("smell", torch.zeros(1))
