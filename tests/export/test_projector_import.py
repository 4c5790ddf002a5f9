"""`model.connector_init`: LLaVA / LLaVA-NeXT stage-1 projector states (torch or safetensors) into connectors."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from polyvlm.models.connectors import LinearConnector, MLP2xGelu
from polyvlm.models.projector_import import ProjectorInitError, init_connector


def llava_projector_state(d_enc: int = 64, d_lm: int = 128, seed: int = 0) -> dict[str, torch.Tensor]:
    """What LLaVA's stage 1 saves as mm_projector.bin for mlp2x_gelu (plus LLaVA-NeXT's image_newline)."""
    g = torch.Generator().manual_seed(seed)
    return {
        "model.mm_projector.0.weight": torch.randn(d_lm, d_enc, generator=g),
        "model.mm_projector.0.bias": torch.randn(d_lm, generator=g),
        "model.mm_projector.2.weight": torch.randn(d_lm, d_lm, generator=g),
        "model.mm_projector.2.bias": torch.randn(d_lm, generator=g),
        "model.image_newline": torch.randn(d_lm, generator=g),
    }


def assert_loaded(mlp: MLP2xGelu, state: dict[str, torch.Tensor]) -> None:
    assert torch.equal(mlp.linear_1.weight, state["model.mm_projector.0.weight"])
    assert torch.equal(mlp.linear_1.bias, state["model.mm_projector.0.bias"])
    assert torch.equal(mlp.linear_2.weight, state["model.mm_projector.2.weight"])
    assert torch.equal(mlp.linear_2.bias, state["model.mm_projector.2.bias"])


@pytest.mark.parametrize("fmt", ["bin", "safetensors"])
def test_llava_mm_projector_file(tmp_path, fmt):
    state = llava_projector_state()
    f = tmp_path / f"mm_projector.{fmt}"
    torch.save(state, f) if fmt == "bin" else save_file(state, str(f))
    mlp = MLP2xGelu(64, 128)
    assert init_connector(mlp, f) == ["linear_1.bias", "linear_1.weight", "linear_2.bias", "linear_2.weight"]
    assert_loaded(mlp, state)
    mlp2 = MLP2xGelu(64, 128)
    init_connector(mlp2, tmp_path)  # a directory holding mm_projector.*
    assert_loaded(mlp2, state)


def test_projector_inside_a_larger_connector(tmp_path):
    """e.g. Parrot's moe connector starts from the stage-1 MLP projector it wraps."""

    class Wrapped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mlp = MLP2xGelu(64, 128)
            self.router = nn.Linear(128, 4, bias=False)

    state = llava_projector_state(seed=1)
    torch.save(state, tmp_path / "mm_projector.bin")
    w = Wrapped()
    router = w.router.weight.clone()
    init_connector(w, tmp_path / "mm_projector.bin")
    assert_loaded(w.mlp, state)
    assert torch.equal(w.router.weight, router)


def test_linear_projector_and_hf_directory(tmp_path, exported, tiny):
    g = torch.Generator().manual_seed(2)
    state = {"model.mm_projector.weight": torch.randn(128, 64, generator=g), "model.mm_projector.bias": torch.randn(128, generator=g)}
    torch.save(state, tmp_path / "p.bin")
    lin = LinearConnector(64, 128)
    init_connector(lin, tmp_path / "p.bin")
    assert torch.equal(lin.proj.weight, state["model.mm_projector.weight"])
    mlp = MLP2xGelu(64, 128)
    init_connector(mlp, exported)  # a Hugging Face Llava directory: only its projector tensors are read
    assert torch.equal(mlp.linear_2.weight, tiny[0].connector.linear_2.weight)


def test_errors_name_the_file_and_reason(tmp_path):
    state = llava_projector_state(d_enc=32)
    torch.save(state, tmp_path / "small.bin")
    with pytest.raises(ProjectorInitError, match=r"small.bin: linear_1.weight has shape \[128, 32\] but the connector expects \[128, 64\]"):
        init_connector(MLP2xGelu(64, 128), tmp_path / "small.bin")
    with pytest.raises(ProjectorInitError, match="do not form a linear projector"):
        init_connector(LinearConnector(32, 128), tmp_path / "small.bin")
    torch.save({"other.weight": torch.zeros(2)}, tmp_path / "none.bin")
    with pytest.raises(ProjectorInitError, match="no projector tensors"):
        init_connector(MLP2xGelu(64, 128), tmp_path / "none.bin")
    torch.save({"model.mm_projector.0.weight": torch.zeros(2), "hook": Opaque()}, tmp_path / "code.bin")
    with pytest.raises(ProjectorInitError, match="weights_only=True"):
        init_connector(MLP2xGelu(64, 128), tmp_path / "code.bin")
    with pytest.raises(ProjectorInitError, match="no such file"):
        init_connector(MLP2xGelu(64, 128), tmp_path / "missing.bin")
    (tmp_path / "sharded").mkdir()
    (tmp_path / "sharded" / "model.safetensors.index.json").write_text("{}")
    with pytest.raises(ProjectorInitError, match="model.safetensors.index.json: not a safetensors index"):
        init_connector(MLP2xGelu(64, 128), tmp_path / "sharded")
    (tmp_path / "bad.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ProjectorInitError, match="bad.safetensors: not a readable safetensors file"):
        init_connector(MLP2xGelu(64, 128), tmp_path / "bad.safetensors")


class Opaque:
    """An arbitrary object: `weights_only=True` refuses to unpickle it."""


def test_config_key_initialises_the_built_model(tmp_path):
    from polyvlm.config import load_config
    from polyvlm.models import factory
    from polyvlm.testing import TINY_RECIPE

    state = llava_projector_state(seed=3)
    save_file(state, str(tmp_path / "mm_projector.safetensors"))
    cfg = load_config(TINY_RECIPE, [f"model.connector_init={tmp_path / 'mm_projector.safetensors'}"])
    model, _ = factory.build(cfg.model)
    assert_loaded(model.connector, state)
