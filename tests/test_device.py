"""`--device` / `--dtype` (and serve's `--max-model-len`): one resolver (polyvlm.utils) behind every command that
runs a model (chat, serve, eval --model, the synth transformers backend) and training's `train.device` /
`train.dtype`; auto picks cpu/fp32 on this machine, explicit bf16 runs on the CPU, bad values fail clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

import polyvlm
from polyvlm.utils import resolve_device, resolve_dtype

NO_GPU = not torch.cuda.is_available() and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


@pytest.fixture
def loaded(monkeypatch) -> list:
    """Every model `polyvlm.load` returns (what load_generator loads), to read its device and dtype."""
    seen = []
    real = polyvlm.load

    def spy(*args, **kwargs):
        model, proc = real(*args, **kwargs)
        seen.append(model)
        return model, proc

    monkeypatch.setattr(polyvlm, "load", spy)
    return seen


def _dtypes(model) -> set[torch.dtype]:
    return {p.dtype for p in model.parameters()}


@pytest.mark.skipif(not NO_GPU, reason="auto picks the GPU here")
def test_auto_resolves_to_cpu_fp32_without_a_gpu():
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("bf16", "cpu") == torch.bfloat16 and resolve_dtype("bfloat16", "cpu") == torch.bfloat16
    assert resolve_dtype("fp16", "cpu") == torch.float16 and resolve_dtype("FP32", "cpu") == torch.float32
    with pytest.raises(ValueError, match=r"device 'cuda': no CUDA device is available here"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match=r"device 'mps': Apple's Metal backend is not available"):
        resolve_device("mps")


def test_bad_values_name_the_value_and_the_choices():
    with pytest.raises(ValueError, match=r"unknown device 'gpu' \(expected auto \(cuda, then mps, then cpu\), cpu, cuda, cuda:N, mps\)"):
        resolve_device("gpu")
    with pytest.raises(ValueError, match=r"unknown dtype 'fp8' \(expected auto, bf16, fp16, fp32\)"):
        resolve_dtype("fp8", "cpu")


def test_auto_on_a_gpu_machine(monkeypatch):
    """The choices made on a CUDA machine (faked here): auto -> this rank's GPU (LOCAL_RANK) and bf16 where the
    GPU has it, fp32 on one without (explicit bf16 there is an error); cuda:N checks N."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert resolve_device("auto") == torch.device("cuda", 1) == resolve_device("cuda")
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(ValueError, match=r"device 'cuda:2': GPU 2 does not exist \(2 visible\)"):
        resolve_device("cuda:2")
    with pytest.raises(ValueError, match="expected cuda:N"):
        resolve_device("cuda:x")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_dtype("auto", "cuda:0") == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)  # a V100 or a T4
    assert resolve_dtype("auto", "cuda:0") == torch.float32
    with pytest.raises(ValueError, match=r"dtype 'bf16': device cuda:0 has no bfloat16 support"):
        resolve_dtype("bf16", "cuda:0")


def test_chat_runs_in_bf16_on_the_cpu(tiny_ckpt, tmp_path, loaded, capsys):
    from polyvlm.serve.chat import main

    img = tmp_path / "red.png"
    Image.new("RGB", (64, 64), (200, 20, 20)).save(img)
    assert main([str(tiny_ckpt), "--image", str(img), "What colour?", "--max-tokens", "3", "--device", "cpu",
                 "--dtype", "bf16"]) == 0, capsys.readouterr().err
    assert _dtypes(loaded[-1]) == {torch.bfloat16} and loaded[-1].device.type == "cpu"
    assert capsys.readouterr().out.endswith("\n")
    if NO_GPU:  # auto: fp32 on the CPU
        assert main([str(tiny_ckpt), "Hi", "--max-tokens", "2"]) == 0
        assert _dtypes(loaded[-1]) == {torch.float32}
    assert main([str(tiny_ckpt), "Hi", "--dtype", "int8"]) == 2
    assert "polyvlm chat: --dtype: unknown dtype 'int8'" in capsys.readouterr().err
    assert main([str(tiny_ckpt), "Hi", "--device", "tpu"]) == 2
    assert "polyvlm chat: --device: unknown device 'tpu'" in capsys.readouterr().err


def test_serve_loads_on_the_device_dtype_and_context_asked(tiny_ckpt, monkeypatch, capsys):
    import uvicorn

    import polyvlm.serve.app as app_mod
    from polyvlm.serve.cli import main

    served = []
    real_create = app_mod.create_app
    monkeypatch.setattr(app_mod, "create_app", lambda gen, cfg: served.append(gen) or real_create(gen, cfg))
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: None)  # everything up to listening on the port
    assert main([str(tiny_ckpt), "--device", "cpu", "--dtype", "bf16", "--max-model-len", "128"]) == 0
    gen = served[-1]
    assert _dtypes(gen.model) == {torch.bfloat16} and gen.max_context == 128
    from polyvlm.infer import ChatRequest, PromptTooLong

    long = ChatRequest([{"role": "user", "content": "word " * 200}], max_new_tokens=4)
    with pytest.raises(PromptTooLong, match="the context is 128"):
        gen.generate([long])
    (out,) = gen.generate([ChatRequest([{"role": "user", "content": "hi"}], max_new_tokens=500)])
    assert out.prompt_tokens + out.completion_tokens <= 128  # answers stop at the context too
    assert main([str(tiny_ckpt), "--max-model-len", "100000"]) == 2
    assert "max_model_len 100000 exceeds the language model's max_position_embeddings 512" in capsys.readouterr().err
    assert main([str(tiny_ckpt), "--dtype", "fp4"]) == 2
    assert "polyvlm serve: --dtype: unknown dtype 'fp4'" in capsys.readouterr().err


def test_eval_model_records_its_device_and_dtype(tiny_ckpt, tmp_path, loaded, capsys):
    from polyvlm.eval.cli import main
    from polyvlm.eval.tasks.quickstart import quickstart_available

    if not quickstart_available():
        pytest.skip("polyvlm.data.scenes is not available")
    out = tmp_path / "ev"
    args = ["--model", str(tiny_ckpt), "--tasks", "quickstart", "--limit", "2", "--max-new-tokens", "2", "--out", str(out)]
    assert main([*args, "--device", "cpu", "--dtype", "bf16"]) == 0, capsys.readouterr().err
    assert _dtypes(loaded[-1]) == {torch.bfloat16}
    settings = json.loads((out / "results.json").read_text())["settings"]
    assert settings["device"] == "cpu" and settings["dtype"] == "bfloat16"
    assert main([*args, "--device", "cuda:7"]) == 2
    assert "--device: device 'cuda:7'" in capsys.readouterr().err


def test_synth_transformers_backend_device_and_dtype(tiny_ckpt, tmp_path, loaded, capsys):
    from polyvlm.synth.cli import main

    seed = tmp_path / "seed.jsonl"
    seed.write_text("".join(json.dumps({"id": f"s{i}", "conversations": [
        {"from": "human", "value": f"What is {i} plus {i}?"}, {"from": "gpt", "value": str(2 * i)}]}) + "\n"
        for i in range(2)))
    (tmp_path / "rewrite.yaml").write_text("name: rewrite-tiny\nversion: '1'\nuser: 'Ask: $question'\n")
    pipe = tmp_path / "pipe.yaml"
    pipe.write_text(yaml.safe_dump({
        "input": str(seed), "output": str(tmp_path / "out"), "progress": False,
        "backends": {"m": {"type": "transformers", "checkpoint": str(tiny_ckpt), "batch_size": 2, "dtype": "fp32"}},
        "stages": [{"stage": "rewrite", "backend": "m", "max_tokens": 4, "attempts": 1,
                    "prompt": str(tmp_path / "rewrite.yaml")}]}))
    assert main([str(pipe), "--device", "cpu", "--dtype", "bf16"]) == 0, capsys.readouterr().err
    assert _dtypes(loaded[-1]) == {torch.bfloat16}  # the flag wins over the backend's own `dtype`
    assert main([str(pipe), "--dtype", "fp9"]) == 2
    assert "backends.m (--device/--dtype): backend 'transformers': unknown dtype 'fp9'" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(pipe.read_text().replace("dtype: fp32", "dtype: fp9"))
    assert main([str(bad)]) == 2
    assert "backends.m: backend 'transformers': unknown dtype 'fp9'" in capsys.readouterr().err


def test_training_takes_the_same_values(tmp_path):
    """train.device / train.dtype read the values of --device / --dtype through the same resolver."""
    from polyvlm.config import load_config
    from polyvlm.testing import TINY_RECIPE
    from polyvlm.train.loop import _autocast, train

    assert isinstance(_autocast("auto", torch.device("cpu")), type(_autocast("fp32", torch.device("cpu"))))
    assert isinstance(_autocast("bf16", torch.device("cpu")), torch.autocast)
    cfg = load_config(TINY_RECIPE, [f"train.output_dir={tmp_path}", "train.device=gpu", "train.max_steps=1"])
    with pytest.raises(ValueError, match=r"train.device: unknown device 'gpu' \(expected auto"):
        train(cfg, show_progress=False)
    cfg.train.device, cfg.train.dtype = "cpu", "fp8"
    with pytest.raises(ValueError, match="train.dtype: unknown dtype 'fp8'"):
        train(cfg, show_progress=False)
    assert not (Path(tmp_path) / "final").exists()


def test_export_check_runs_on_the_device_and_dtype_asked(tiny_ckpt, tmp_path, monkeypatch, capsys):
    """`polyvlm export ... --check`: the written layout reloads with the source's logits (fp32: 1e-4; bf16 on
    the CPU: within bf16 rounding); a layout that does not reproduce them exits 1; bad values exit 2."""
    import polyvlm.models.layouts as layouts
    from polyvlm.export_cli import main

    out = tmp_path / "llava"
    args = [str(tiny_ckpt), "--format", "hf-llava", "--out", str(out), "--check", "--check-device", "cpu"]
    assert main(args) == 0, capsys.readouterr().err
    assert "check: max |logit difference|" in capsys.readouterr().out
    assert main([*args, "--check-dtype", "bf16"]) == 0
    assert "on cpu bfloat16 (tolerance 0.05)" in capsys.readouterr().out
    real = layouts.load_checkpoint

    def broken(*a, **k):  # a writer that got one weight wrong
        model, proc = real(*a, **k)
        with torch.no_grad():
            model.llm.get_output_embeddings().weight.add_(0.1)
        return model, proc

    monkeypatch.setattr(layouts, "load_checkpoint", broken)
    assert main(args) == 1
    assert "does not reproduce the source's logits" in capsys.readouterr().err
    assert main([*args, "--check-dtype", "fp2"]) == 2
    assert "--check: unknown dtype 'fp2'" in capsys.readouterr().err
