"""Training: it learns, it normalises loss over accumulation, bad records stop it before step 1 (or are
skipped and counted), and the real `polyvlm train` + `polyvlm chat` commands work end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from polyvlm.config import load_config
from polyvlm.data.scenes import make_split, write_jsonl
from polyvlm.testing import TINY_RECIPE
from polyvlm.train.dataset import BadRecords
from polyvlm.train.loop import train


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    d = tmp_path_factory.mktemp("scenes")
    return write_jsonl(make_split(d, 16, seed=3), d / "qa.jsonl"), d


def _cfg(tmp_path, data: Path, *extra: str):
    return load_config(TINY_RECIPE, [f"data.path={data}", f"train.output_dir={tmp_path / 'run'}", "train.log_every=1", *extra])


def test_training_learns_and_checkpoints(tmp_path, scenes):
    data, _ = scenes
    res = train(_cfg(tmp_path, data, "train.max_steps=30", "train.batch_size=16", "train.lr=3e-3", "train.warmup_ratio=0"),
                show_progress=False)
    losses = [h["loss"] for h in res.history]
    assert losses[-1] < 0.5 * losses[0], losses
    assert (res.checkpoint / "model.safetensors").is_file()
    assert (tmp_path / "run" / "config.yaml").is_file()
    rows = [json.loads(x) for x in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 31))
    assert not list((tmp_path / "run").glob(".*tmp"))  # no half-written checkpoint left


def test_grad_accum_equals_big_batch(tmp_path, scenes):
    """batch 8 x 1 and batch 2 x 4 accumulation take the same first step (loss over supervised tokens)."""
    data, _ = scenes
    a = train(_cfg(tmp_path / "a", data, "train.max_steps=1", "train.batch_size=8", "train.grad_accum=1"), show_progress=False)
    b = train(_cfg(tmp_path / "b", data, "train.max_steps=1", "train.batch_size=2", "train.grad_accum=4"), show_progress=False)
    # the same 8 samples? order is a permutation of the same seed, so the first 8 are the same samples
    assert a.history[0]["supervised_tokens"] == b.history[0]["supervised_tokens"]
    assert a.history[0]["loss"] == pytest.approx(b.history[0]["loss"], rel=1e-4)
    # Adam hides gradient scale in the weights, so compare the gradient norm (taken before clipping) too
    assert a.history[0]["grad_norm"] == pytest.approx(b.history[0]["grad_norm"], rel=1e-4)
    from safetensors.torch import load_file

    wa, wb = load_file(a.checkpoint / "model.safetensors"), load_file(b.checkpoint / "model.safetensors")
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-3, atol=1e-4)


def test_packing_takes_the_same_step(tmp_path, scenes):
    """train.packing=true (one row, varlen attention) gives the step loss and gradient of the padded path."""
    data, _ = scenes
    a = train(_cfg(tmp_path / "a", data, "train.max_steps=1", "train.batch_size=6"), show_progress=False)
    b = train(_cfg(tmp_path / "b", data, "train.max_steps=1", "train.batch_size=6", "train.packing=true"),
              show_progress=False)
    assert a.history[0]["supervised_tokens"] == b.history[0]["supervised_tokens"]
    assert a.history[0]["loss"] == pytest.approx(b.history[0]["loss"], rel=1e-4)
    assert a.history[0]["grad_norm"] == pytest.approx(b.history[0]["grad_norm"], rel=1e-3)
    assert b.history[0]["padding_fraction"] == 0.0


def _mixed_data(d: Path) -> Path:
    """Pictures with short answers and text-only records with long ones: a length and modality spread."""
    recs = make_split(d, 12, seed=7)
    words = "the red square is left of two blue circles and a green triangle".split()
    for i in range(12):
        text = " ".join(words[(i + j) % len(words)] for j in range(4 + 6 * i))
        recs.append({"id": f"text-{i}", "language": "en", "conversations": [
            {"from": "human", "value": f"Repeat: {text}"}, {"from": "gpt", "value": text}]})
    return write_jsonl(recs, d / "mixed.jsonl")


def test_length_grouping_takes_the_same_step_with_less_padding(tmp_path):
    """train.group_by_length sorts a step's samples by (modality, length) into micro-batches: the step's loss
    and gradient stay the same, the padding drops; data.num_workers decodes ahead without changing a thing."""
    data = _mixed_data(tmp_path)
    args = ("train.max_steps=2", "train.batch_size=2", "train.grad_accum=6", "train.warmup_ratio=0")
    a = train(_cfg(tmp_path / "a", data, *args, "train.group_by_length=false"), show_progress=False)
    b = train(_cfg(tmp_path / "b", data, *args, "train.group_by_length=true"), show_progress=False)
    c = train(_cfg(tmp_path / "c", data, *args, "train.group_by_length=true", "data.num_workers=2"), show_progress=False)
    for ra, rb, rc in zip(a.history, b.history, c.history):
        assert ra["supervised_tokens"] == rb["supervised_tokens"]
        assert ra["loss"] == pytest.approx(rb["loss"], rel=1e-5)
        assert ra["grad_norm"] == pytest.approx(rb["grad_norm"], rel=1e-4)
        assert (rb["loss"], rb["grad_norm"], rb["loss_by_language"]) == (rc["loss"], rc["grad_norm"], rc["loss_by_language"])
    assert b.history[-1]["padding_fraction"] < 0.5 * a.history[-1]["padding_fraction"]
    assert set(a.history[0]["loss_by_language"]) >= {"en"}


def test_bf16_checkpointing_and_frozen_encoder(tmp_path, scenes, monkeypatch):
    """train.dtype=bf16 runs the LM under bf16 autocast; train.grad_checkpointing=true recomputes each
    decoder layer in the backward pass (and leaves the gradient as it was); a frozen encoder runs without grad."""
    import polyvlm.train.loop as loop

    seen: dict[str, list] = {"layer": [], "calls": [], "vision_grad": []}
    build = loop.factory.build

    def spy_build(cfg):
        model, proc = build(cfg)
        mlp = model.llm.model.layers[0].mlp
        forward = mlp.forward

        def counted(*args, **kwargs):  # not a hook: torch runs no hooks when a checkpoint recomputes
            seen["calls"].append(1)  # before: a recomputation stops as soon as it has the tensors it needs
            out = forward(*args, **kwargs)
            seen["layer"].append(out.dtype)
            return out

        mlp.forward = counted
        model.vision.tower.embeddings.register_forward_hook(lambda m, i, o: seen["vision_grad"].append(torch.is_grad_enabled()))
        return model, proc

    monkeypatch.setattr(loop.factory, "build", spy_build)
    data, _ = scenes
    args = ("train.max_steps=1", "train.batch_size=4")
    ref = train(_cfg(tmp_path / "ref", data, *args), show_progress=False)
    assert seen["layer"] == [torch.float32] and seen["vision_grad"] == [False]
    assert len(seen["calls"]) == 1
    seen["calls"].clear()
    gc = train(_cfg(tmp_path / "gc", data, *args, "train.grad_checkpointing=true"), show_progress=False)
    assert len(seen["calls"]) == 2  # forward + recomputation in backward
    assert gc.history[0]["grad_norm"] == pytest.approx(ref.history[0]["grad_norm"], rel=1e-5)
    seen["layer"].clear()
    bf = train(_cfg(tmp_path / "bf", data, *args, "train.dtype=bf16"), show_progress=False)
    assert seen["layer"] == [torch.bfloat16]
    assert bf.history[0]["loss"] == pytest.approx(ref.history[0]["loss"], rel=2e-2)
    seen["vision_grad"].clear()
    train(_cfg(tmp_path / "vis", data, *args, "train.vision_lr=1e-4"), show_progress=False)
    assert seen["vision_grad"] == [True]  # a trained encoder keeps its graph
    with pytest.raises(ValueError, match="train.dtype must be auto, bf16 or fp32, got 'fp16'"):
        train(_cfg(tmp_path / "bad", data, *args, "train.dtype=fp16"), show_progress=False)


def _bad_data(d: Path) -> Path:
    recs = make_split(d, 4, seed=5)
    (d / "images" / "broken.png").write_bytes(b"not a png at all")
    recs += [
        {"id": "missing", "image": "images/nope.png", "conversations": recs[0]["conversations"]},
        {"id": "escape", "image": "../secret.png", "conversations": recs[0]["conversations"]},
        {"id": "nohuman", "image": recs[0]["image"], "conversations": [{"from": "gpt", "value": "<image> x"}]},
        {"id": "mismatch", "image": recs[0]["image"], "conversations": [{"from": "human", "value": "no placeholder"},
                                                                        {"from": "gpt", "value": "x"}]},
        {"id": "unreadable", "image": "images/broken.png", "conversations": recs[0]["conversations"]},
    ]
    return write_jsonl(recs, d / "bad.jsonl")


def test_bad_records_stop_before_first_step(tmp_path):
    data = _bad_data(tmp_path)
    with pytest.raises(BadRecords) as e:
        train(_cfg(tmp_path, data, "train.max_steps=2"), show_progress=False)
    msg = str(e.value)
    for rid, reason in [("missing", "not found"), ("escape", "escapes the image root"), ("nohuman", "no human turn"),
                        ("mismatch", "0 <image> placeholder(s) but 1 image file(s)"), ("unreadable", "unreadable image")]:
        assert "bad.jsonl:" in msg and f"id={rid}: " in msg and reason in msg, (rid, msg)
    assert not (tmp_path / "run" / "final").exists()


def test_skip_policy_counts(tmp_path):
    data = _bad_data(tmp_path)
    res = train(_cfg(tmp_path, data, "train.max_steps=2", "train.batch_size=2", "data.on_bad_record=skip"), show_progress=False)
    assert sum(res.skipped.values()) == 5
    assert res.skipped["media_missing"] == 1 and res.skipped["media_escape"] == 1


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "polyvlm", *args], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_cli_train_then_chat(tmp_path, repo_root, scenes):
    data, d = scenes
    out = tmp_path / "cli"
    r = _run("train", str(repo_root / "recipes/tiny.yaml"), f"data.path={data}", f"train.output_dir={out}",
             "train.max_steps=3", "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"checkpoint: {out / 'final'}" in r.stdout
    img = next((d / "images").glob("*.png"))
    r = _run("chat", str(out / "final"), "--image", str(img), "What colour are the shapes?", "--max-tokens", "4", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # bad input: one clear line naming the problem
    r = _run("train", str(repo_root / "recipes/tiny.yaml"), "train.nope=1", cwd=tmp_path)
    assert r.returncode == 2 and "unknown config key 'train.nope'" in r.stderr
    r = _run("chat", str(out / "final"), "--image", str(tmp_path / "none.png"), "hi", cwd=tmp_path)
    assert r.returncode == 1 and "none.png: no such image file" in r.stderr


def test_trains_on_a_mixture_yaml(tmp_path):
    """`data.path=mix.yaml`: sources in different folders, each with its own images, sampled by the mixture's
    strategies; training reads every picture and a bad mixture gets the YAML's error."""
    from polyvlm.train.loop import load_records

    for name, seed in (("a", 1), ("b", 2)):
        d = tmp_path / name
        write_jsonl(make_split(d, 8, seed=seed), d / "qa.jsonl")
    mix = tmp_path / "mix.yaml"
    mix.write_text("seed: 3\nshuffle: true\ndatasets:\n  - path: a/qa.jsonl\n    sampling_strategy: first:3\n"
                   "  - path: b/qa.jsonl\n    sampling_strategy: all\n")
    cfg = _cfg(tmp_path, mix, "train.max_steps=2", "train.batch_size=4")
    records, _ = load_records(cfg)
    assert len(records) == 11
    located = [records.locate(i) for i in range(len(records))]
    assert {root.name for _, root in located} == {"a", "b"}  # each source's media under its own folder
    assert all((root / r.media["image"][0]).is_file() for r, root in located)
    res = train(cfg, show_progress=False)
    assert len(res.history) == 2 and (res.checkpoint / "model.safetensors").is_file()
    (tmp_path / "bad.yaml").write_text("datasets:\n  - path: a/qa.jsonl\n    sampling_strategy: sometimes\n")
    with pytest.raises(ValueError, match="bad.yaml"):
        load_records(_cfg(tmp_path, tmp_path / "bad.yaml"))


def test_training_dataset_reads_records_from_disk_and_keeps_only_lengths(tmp_path):
    """Over a data file the dataset keeps arrays (record position, length, has image, language), not records:
    each item is read again by byte offset; an image that disappears after the check follows
    data.on_bad_record (skip: counted, None; error: the record's error)."""
    from polyvlm.data.dataset import LazyRecords
    from polyvlm.data.records import RecordError
    from polyvlm.models import factory
    from polyvlm.train.dataset import TrainDataset

    d = tmp_path / "data"
    data = write_jsonl(make_split(d, 6, seed=5), d / "qa.jsonl")
    cfg = _cfg(tmp_path, data)
    _, processor = factory.build(cfg.model)
    ds = TrainDataset(LazyRecords([data]), processor, d, "skip")
    assert not hasattr(ds, "examples") and ds.lengths.dtype.itemsize == 4 and len(ds) == 6
    first = ds[0]
    assert len(first.input_ids) == ds.lengths[0] and first.media is not None
    assert set(ds.languages) == {ds.language(i) for i in range(6)}
    rec, root = ds.records.locate(int(ds.index[1]))
    (root / rec.media["image"][0]).unlink()
    assert ds[1] is None and ds.skipped["media_missing"] == 1
    ds.on_bad_record = "error"
    with pytest.raises(RecordError, match=rec.id):
        ds[1]


def test_cached_encoder_features_give_the_same_run(tmp_path, monkeypatch):
    """train.cache_features=true over 3 epochs of align: the vision tower encodes each distinct picture once
    (later epochs are served from the cache) and the weights equal those of a run without the cache; a stage
    that trains the encoder refuses the option."""
    import polyvlm.train.loop as loop

    d = tmp_path / "data"
    data = write_jsonl(make_split(d, 8, seed=4), d / "qa.jsonl")
    encoded: list[int] = []
    build = loop.factory.build

    def spy_build(cfg):
        model, proc = build(cfg)
        model.vision.tower.embeddings.register_forward_hook(lambda m, i, o: encoded.append(o.shape[0]))
        return model, proc

    monkeypatch.setattr(loop.factory, "build", spy_build)
    args = ("train.stage=align", "train.max_steps=6", "train.batch_size=4", "train.group_by_length=false")
    runs = {}
    for name, extra in (("plain", ()), ("cached", ("train.cache_features=true",))):
        encoded.clear()
        runs[name] = train(_cfg(tmp_path / name, data, *args, *extra), show_progress=False)
        runs[name + "_views"] = sum(encoded)
    assert runs["plain_views"] == 24 and runs["cached_views"] == 8  # 6 steps x 4 pictures vs 8 distinct ones
    from safetensors.torch import load_file

    a, b = (load_file(runs[n].checkpoint / "model.safetensors") for n in ("plain", "cached"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="needs a frozen vision encoder"):
        train(_cfg(tmp_path / "bad", data, "train.stage=finetune", "train.vision_lr=1e-5", "train.cache_features=true",
                   "train.max_steps=1"), show_progress=False)


def test_checked_records_are_cached_for_a_resumed_run(tmp_path, monkeypatch):
    """The pass that checks every record runs once per run directory: a resumed run reads its arrays from
    RUN/data_index.npz; a changed data file (or processor setting) checks again."""
    from polyvlm.train.dataset import TrainDataset

    d = tmp_path / "data"
    data = write_jsonl(make_split(d, 20, seed=6), d / "qa.jsonl")
    prepared: list[str] = []
    real = TrainDataset._prepare

    def counting(self, rec, root):
        prepared.append(rec.id)
        return real(self, rec, root)

    monkeypatch.setattr(TrainDataset, "_prepare", counting)
    first = train(_cfg(tmp_path, data, "train.max_steps=2", "train.batch_size=2", "train.save_every=1"), show_progress=False)
    checked = len(prepared)
    assert checked >= 20 and (tmp_path / "run" / "data_index.npz").is_file()
    prepared.clear()
    again = train(_cfg(tmp_path, data, "train.max_steps=3", "train.batch_size=2", "train.resume=auto"), show_progress=False)
    assert len(prepared) == 0 and again.start_step == 1  # no pass over all 20, and a step checks no record again
    assert len(first.history) == 2
    prepared.clear()
    write_jsonl(make_split(d, 21, seed=6), data)  # the data changed: every record is checked again
    train(_cfg(tmp_path, data, "train.max_steps=1", "train.batch_size=2", "train.output_dir=" + str(tmp_path / "run")),
          show_progress=False)
    assert len(prepared) >= 21


def test_record_check_in_worker_processes_equals_one_process(tmp_path):
    """data.num_workers shares the pass that checks every record: the same arrays, skip counts and errors
    (in file order) as one process, under both bad-record policies."""
    from polyvlm.data.dataset import LazyRecords
    from polyvlm.models import factory
    from polyvlm.train.dataset import TrainDataset

    data = _bad_data(tmp_path)
    _, processor = factory.build(_cfg(tmp_path, data).model)
    runs = [TrainDataset(LazyRecords([data]), processor, tmp_path, "skip", num_workers=w) for w in (0, 2)]
    one, two = runs
    assert len(one) == 4 and one.skipped == two.skipped and sum(one.skipped.values()) == 5
    for name in ("index", "lengths", "has_image", "_lang_codes"):
        assert getattr(one, name).tolist() == getattr(two, name).tolist(), name
    assert one.languages == two.languages
    messages = []
    for w in (0, 2):
        with pytest.raises(BadRecords) as e:
            TrainDataset(LazyRecords([data]), processor, tmp_path, "error", num_workers=w)
        messages.append(str(e.value))
    assert messages[0] == messages[1] and "id=missing" in messages[0] and "id=unreadable" in messages[0]


def test_cpu_training_reuses_freed_memory_unless_told_not_to(tmp_path, scenes, monkeypatch):
    import polyvlm.train.loop as loop

    calls = []
    monkeypatch.setattr(loop, "reuse_freed_memory", lambda: calls.append(1) or True)
    data, _ = scenes
    train(_cfg(tmp_path / "a", data, "train.max_steps=1", "train.batch_size=2", "train.device=cpu"), show_progress=False)
    assert calls == [1]
    train(_cfg(tmp_path / "b", data, "train.max_steps=1", "train.batch_size=2", "train.device=cpu",
               "train.reuse_freed_memory=false"), show_progress=False)
    assert calls == [1]
