"""benchmarks/gpu_check.py: on a machine without CUDA it says so and exits 0 (run as users run it, from a source
checkout with PYTHONPATH=.); its FLOP count is the parameter count of the transformers model it describes."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest
import torch


def _module(repo_root):
    spec = importlib.util.spec_from_file_location("gpu_check", repo_root / "benchmarks/gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the script would run the check")
def test_without_cuda_it_says_so_and_exits_0(repo_root):
    r = subprocess.run([sys.executable, "benchmarks/gpu_check.py"], cwd=repo_root, capture_output=True, text=True,
                       timeout=300, env={**os.environ, "PYTHONPATH": "."})
    assert r.returncode == 0, r.stderr
    assert "gpu_check: no CUDA device here" in r.stdout and "nothing to check" in r.stdout


def test_flops_count_the_real_model_and_peaks_match_device_names(repo_root):
    from transformers import AutoConfig, AutoModelForCausalLM

    gc = _module(repo_root)
    from benchmarks.train_throughput import SHAPES

    llm = dict(SHAPES["real"]["llm"])
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(llm.pop("model_type"), **llm))
    matrices = sum(p.numel() for n, p in model.named_parameters() if p.dim() == 2)  # no norms, no biases
    assert gc.lm_params(SHAPES["real"]["llm"]) == matrices
    assert gc.peak_tflops("NVIDIA H100 80GB HBM3") == 989.0 and gc.peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert gc.peak_tflops("NVIDIA H200") == 989.0 and gc.peak_tflops("Tesla T4") is None
    assert gc.mfu(0.5e15, 1000.0) == "50.0%"
