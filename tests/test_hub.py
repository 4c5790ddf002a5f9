"""Model ids resolve through `huggingface_hub.snapshot_download` (the local cache first, a download when online),
local directories win; offline and not cached, the error gives the download command. Checked through
`polyvlm chat` with HF_HUB_OFFLINE=1 and a private HF cache laid out as huggingface_hub writes it
(huggingface_hub/file_download.py: `models--OWNER--NAME/refs/main` -> `snapshots/<commit>/`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from polyvlm.utils import hub_path


def _chat(repo_root, tmp_path, spec: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PYTHONPATH": str(repo_root)}
    env.pop("HF_HUB_CACHE", None)
    return subprocess.run([sys.executable, "-m", "polyvlm", "chat", spec, "Hi", "--max-tokens", "2"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env=env)


def test_offline_without_a_copy_names_the_download_command(repo_root, tmp_path):
    r = _chat(repo_root, tmp_path, "Qwen/Qwen2-0.5B")
    assert r.returncode != 0
    assert "Qwen/Qwen2-0.5B: offline (HF_HUB_OFFLINE=1) and not in the Hugging Face cache" in r.stderr, r.stderr
    assert "huggingface-cli download Qwen/Qwen2-0.5B --local-dir DIR" in r.stderr


def test_a_cached_snapshot_loads_offline_and_local_directories_win(repo_root, tmp_path, tiny_ckpt, monkeypatch):
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hf" / "hub" / "models--polyvlm-test--tiny"
    shutil.copytree(tiny_ckpt, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    r = _chat(repo_root, tmp_path, "polyvlm-test/tiny")
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith("\n")
    local = tmp_path / "polyvlm-test" / "local"
    local.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert hub_path("polyvlm-test/local") == local.relative_to(tmp_path)  # an existing directory is never looked up
    assert str(hub_path("./runs/x")) == "runs/x" and str(hub_path("/no/such/dir")) == "/no/such/dir"
