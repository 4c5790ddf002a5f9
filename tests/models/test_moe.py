"""Parrot's moe connector: the module against a direct re-computation of its equations on fixed weights,
stage bypass/training, prompt-only routing (answers and padding do not change it), router stats per language."""

from __future__ import annotations

import json
import logging
import math

import pytest
import torch
import torch.nn.functional as F

from polyvlm.config import load_config
from polyvlm.data.records import Turn
from polyvlm.models import factory
from polyvlm.models.connectors import build_connector
from polyvlm.models.connectors.moe import MoEConnector
from polyvlm.testing import TINY_RECIPE
from polyvlm.train.stages import apply_stage

MOE = ["model.connector=moe", "model.moe_experts=3", "model.moe_intermediate=48"]


def _reference(c: MoEConnector, x, cls, prompt, mask):
    """The equations, written out per image with raw weight matrices."""
    def mlp(v):
        p = c.projector
        return F.linear(F.gelu(F.linear(v, p.linear_1.weight, p.linear_1.bias)), p.linear_2.weight, p.linear_2.bias)

    outs = []
    for i in range(x.shape[0]):
        h = mlp(x[i])  # [t, d]
        q = mlp(cls[i])  # [d]
        E = prompt[i][mask[i]]  # [k, d]
        a = torch.softmax(E @ q / math.sqrt(q.shape[0]), dim=0)  # [k]
        s = a @ E  # [d]
        w = torch.softmax(c.router.weight @ s, dim=0)  # [X]
        y = torch.zeros_like(h)
        for j, e in enumerate(c.experts):
            g = h @ e.gate_proj.weight.T
            u = h @ e.up_proj.weight.T
            y = y + w[j] * ((g * torch.sigmoid(g) * u) @ e.down_proj.weight.T)
        outs.append(y + c.moe_weight * h)
    return torch.stack(outs)


def test_moe_matches_equations():
    torch.manual_seed(0)
    c = build_connector("moe", 12, 16, load_config(overrides=["model.moe_experts=4", "model.moe_intermediate=20",
                                                             "model.moe_weight=0.25"]).model)
    assert len(c.experts) == 4 and c.experts[0].gate_proj.out_features == 20 and c.moe_weight == 0.25
    assert c.router.bias is None and all(lin.bias is None for e in c.experts for lin in (e.gate_proj, e.up_proj, e.down_proj))
    x, cls = torch.randn(3, 5, 12), torch.randn(3, 12)
    prompt = torch.randn(3, 7, 16)
    mask = torch.tensor([[1, 1, 1, 0, 0, 1, 0], [1] * 7, [0, 1, 0, 0, 0, 0, 0]], dtype=torch.bool)
    with torch.no_grad():
        got = c(x, cls, prompt, mask)
        want = _reference(c, x, cls, prompt, mask)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert c.last_routing.shape == (3, 4) and torch.allclose(c.last_routing.sum(-1), torch.ones(3))
    # masked-out tokens do not matter
    prompt2 = prompt.clone()
    prompt2[0, 3] += 100.0
    torch.testing.assert_close(c(x, cls, prompt2, mask), got)
    # inactive (stage align): the plain projector
    c.set_active(False)
    torch.testing.assert_close(c(x, cls, prompt, mask), c.projector(x))
    assert not any(p.requires_grad for p in c.experts.parameters()) and not c.router.weight.requires_grad


@pytest.fixture(scope="module")
def moe_model():
    torch.manual_seed(0)
    return factory.build(load_config(TINY_RECIPE, MOE).model)


def test_stages_bypass_then_train(moe_model, caplog):
    model, _ = moe_model
    with caplog.at_level(logging.INFO, logger="polyvlm.train"):
        groups = apply_stage(model, "align", 1e-3)
    names = {id(p) for g in groups for p in g["params"]}
    assert not bool(model.connector.active)
    assert all(id(p) not in names for p in model.connector.router.parameters())
    assert all(id(p) in names for p in model.connector.projector.parameters())
    groups = apply_stage(model, "finetune", 1e-3)
    names = {id(p) for g in groups for p in g["params"]}
    assert bool(model.connector.active) and id(model.connector.router.weight) in names
    assert all(p.requires_grad for p in model.connector.experts.parameters())


def _row(proc, question: str, answer: str):
    enc = proc.encode([Turn("user", "<image>\n" + question), Turn("assistant", answer)], {"image": 1})
    return torch.tensor([enc.input_ids]), torch.tensor([enc.labels])


def test_routing_reads_the_prompt_not_the_answer_nor_padding(moe_model):
    model, proc = moe_model
    model.eval()
    model.connector.set_active(True)
    from PIL import Image

    pixels = proc.images_to_pixels([Image.new("RGB", (64, 64), "red")])
    image_id = proc.media_token_ids["image"]

    def image_rows(ids, labels, mask=None):
        with torch.no_grad():
            emb = model.embed(ids, pixels, mask if mask is not None else torch.ones_like(ids), labels)
        return emb[ids == image_id], model.connector.last_routing

    ids_a, lab_a = _row(proc, "What colour are the shapes?", "red")
    ids_b, lab_b = _row(proc, "What colour are the shapes?", "blue")
    ids_c, lab_c = _row(proc, "Какого цвета фигуры?", "red")
    fa, ra = image_rows(ids_a, lab_a)
    fb, rb = image_rows(ids_b, lab_b)
    fc, rc = image_rows(ids_c, lab_c)
    torch.testing.assert_close(fa, fb)  # the answer is not part of the summary
    assert not torch.allclose(ra, rc)  # another prompt routes differently
    # left padding (as in batched generation) does not change the routing
    pad = torch.full((1, 5), proc.pad_id)
    ids_p = torch.cat([pad, ids_a], 1)
    mask_p = torch.cat([torch.zeros(1, 5, dtype=torch.long), torch.ones_like(ids_a)], 1)
    lab_p = torch.cat([torch.full((1, 5), -100), lab_a], 1)
    fp, rp = image_rows(ids_p, lab_p, mask_p)
    torch.testing.assert_close(rp, ra)
    torch.testing.assert_close(fp, fa, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_training_logs_router_per_language(tmp_path, caplog):
    from polyvlm.data.scenes import make_split, write_jsonl
    from polyvlm.train.loop import train

    data = write_jsonl(make_split(tmp_path, 12, seed=1, langs=["en", "zh"]), tmp_path / "qa.jsonl")
    cfg = load_config(TINY_RECIPE, [*MOE, f"data.path={data}", f"train.output_dir={tmp_path / 'run'}",
                                    "train.max_steps=2", "train.batch_size=4", "train.stage=finetune"])
    with caplog.at_level(logging.INFO, logger="polyvlm.checkpoint"):
        res = train(cfg, show_progress=False)
    stats = json.loads((res.checkpoint / "router_stats.json").read_text())
    assert set(stats) == {"en", "zh"}
    logged = [r.getMessage() for r in caplog.records if "moe router mean expert weights per language" in r.getMessage()]
    assert logged and "en [" in logged[-1] and "zh [" in logged[-1]
    for dist in stats.values():
        assert len(dist) == 3 and sum(dist) == pytest.approx(1.0, abs=1e-3)
    import polyvlm

    model, _ = polyvlm.load(res.checkpoint)
    assert bool(model.connector.active)


def test_packed_row_routes_each_sample_on_its_own_prompt(moe_model):
    from PIL import Image

    model, proc = moe_model
    model.eval()
    model.connector.set_active(True)
    pix = proc.images_to_pixels([Image.new("RGB", (64, 64), c) for c in ("red", "blue")])
    rows = [_row(proc, "What colour are the shapes?", "red"), _row(proc, "这些图形是什么颜色？", "蓝色")]
    alone = []
    with torch.no_grad():
        for k, (ids, lab) in enumerate(rows):
            model.embed(ids, pix[k : k + 1], torch.ones_like(ids), lab)
            alone.append(model.connector.last_routing[0])
        ids = torch.cat([r[0] for r in rows], 1)
        lab = torch.cat([r[1] for r in rows], 1)
        pos = torch.cat([torch.arange(r[0].shape[1]) for r in rows]).unsqueeze(0)
        model.embed(ids, pix, None, lab, pos)  # one packed row: position ids restart per sample
    torch.testing.assert_close(model.connector.last_routing, torch.stack(alone))


def test_eval_reports_router_per_language(tmp_path):
    """`polyvlm eval --model` on a moe checkpoint: results.json gives each language's image count and mean
    expert weights (a distribution over the experts) and results.md a table of them."""
    import json

    from polyvlm.eval.cli import main as eval_main
    from polyvlm.testing import make_tiny_checkpoint

    ckpt = make_tiny_checkpoint(tmp_path / "moe", overrides=MOE)
    out = tmp_path / "eval"
    assert eval_main(["--model", str(ckpt), "--tasks", "quickstart", "--limit", "12", "--max-new-tokens", "2",
                      "--out", str(out)]) == 0
    router = json.loads((out / "results.json").read_text())["tasks"]["quickstart"]["router"]
    rows = [json.loads(x) for x in (out / "samples_quickstart.jsonl").read_text(encoding="utf-8").splitlines()]
    langs = {}
    for r in rows:
        langs[r["language"]] = langs.get(r["language"], 0) + 1
    assert {k: v["images"] for k, v in router.items()} == langs and len(langs) > 1
    for v in router.values():
        assert len(v["mean"]) == 3 and abs(sum(v["mean"]) - 1) < 1e-3
    md = (out / "results.md").read_text(encoding="utf-8")
    assert "moe router, mean expert weight per language" in md and "| expert 2 |" in md
