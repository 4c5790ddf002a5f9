"""`polyvlm quickstart --out DIR`: synthetic multilingual scenes -> stage 0 encoder -> stage 1 align ->
stage 2 finetune -> held-out evaluation -> report.json / report.md / report.png and a chat-ready checkpoint."""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from polyvlm.config import Config, load_config
from polyvlm.models import factory
from polyvlm.models.checkpoint import save_checkpoint
from polyvlm.quickstart.encoder import pretrain_encoder
from polyvlm.quickstart.scenes import CHANCE, LANGUAGES, make_eval_records, make_split, write_jsonl
from polyvlm.utils import seed_everything, setup_logging

log = logging.getLogger("polyvlm.quickstart")
RECIPE = Path(__file__).resolve().parent / "tiny.yaml"


@dataclass
class Plan:
    """Sizes of each stage; `fast` is for tests (minutes -> seconds, no accuracy target)."""

    encoder_steps: int = 150
    captions: int = 1200
    align_steps: int = 60
    qa: int = 6000
    finetune_steps: int = 700
    eval_per_language: int = 40
    batch_size: int = 32

    @classmethod
    def fast(cls) -> Plan:
        return cls(encoder_steps=10, captions=64, align_steps=4, qa=96, finetune_steps=6, eval_per_language=4, batch_size=8)


def run(out: str | Path, seed: int = 0, plan: Plan | None = None, overrides: list[str] | None = None,
        show_progress: bool = True) -> dict:
    from polyvlm.quickstart.evaluate import score
    from polyvlm.quickstart.report import write_report
    from polyvlm.train.loop import train

    plan = plan or Plan()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    seed_everything(seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))

    log.info("generating data under %s", out / "data")
    data = out / "data"
    captions = write_jsonl(make_split(data, plan.captions, seed, "caption", prefix="cap"), data / "captions.jsonl")
    qa = write_jsonl(make_split(data, plan.qa, seed + 1, "qa", prefix="qa"), data / "qa.jsonl")
    eval_records = make_eval_records(out / "eval", plan.eval_per_language, seed=seed + 1234)

    base_cfg = load_config(RECIPE, overrides)
    model, processor = factory.build(base_cfg.model)
    enc_acc = pretrain_encoder(model.vision, plan.encoder_steps, seed=seed, show_progress=show_progress)
    base = save_checkpoint(model, processor, base_cfg, out / "stage0", {"encoder_accuracy": enc_acc})
    del model

    def stage(name: str, init: Path, template: str, kind: str, data_path: Path, steps: int, lr: float) -> Config:
        return load_config(RECIPE, [
            f"model.init_from={init}", f"model.template={template}", f"data.path={data_path}",
            f"train.stage={kind}", f"train.output_dir={out / name}", f"train.max_steps={steps}", f"train.lr={lr}",
            f"train.batch_size={plan.batch_size}", f"train.seed={seed}", *(overrides or []),
        ])

    s1 = train(stage("stage1", base, "plain", "align", captions, plan.align_steps, 1e-3), show_progress=show_progress)
    s2 = train(stage("stage2", s1.checkpoint, "chatml", "finetune", qa, plan.finetune_steps, 1e-3), show_progress=show_progress)

    import polyvlm

    gen = polyvlm.load_generator(s2.checkpoint)
    res = score(gen, eval_records, batch_size=32, show_progress=show_progress)
    chance_lang = sum(CHANCE.values()) / len(CHANCE)
    report = {
        "accuracy": {lang: res["accuracy"].get(lang, 0.0) for lang in LANGUAGES},
        "chance": {lang: chance_lang for lang in LANGUAGES},
        "accuracy_by_type": res["by_type"],
        "chance_by_type": CHANCE,
        "accuracy_by_language_and_type": res["by_lang_type"],
        "encoder_accuracy": enc_acc,
        "wall_seconds": round(time.time() - t0, 1),
        "checkpoint": str(s2.checkpoint),
        "history": {"stage1": s1.history, "stage2": s2.history},
    }
    write_report(out, report, res["samples"])
    return report


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="polyvlm quickstart", description=__doc__)
    p.add_argument("--out", default="runs/quickstart", help="output directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fast", action="store_true", help="seconds-long smoke run (no accuracy target)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("overrides", nargs="*", help="key=value config overrides for every stage")
    args = p.parse_args(argv)
    setup_logging()
    report = run(args.out, args.seed, Plan.fast() if args.fast else Plan(), args.overrides, not args.no_progress)
    print(Path(args.out, "report.md").read_text(encoding="utf-8"))
    ok = all(v >= 0.8 for v in report["accuracy"].values())
    print(f"wall time {report['wall_seconds']:.0f}s; every language >= 0.80: {'yes' if ok else 'no'}")
    print(f"try: polyvlm chat {report['checkpoint']} --image {Path(args.out) / 'eval/images'}/<file>.png "
          f"\"{json.dumps('What colour are the shapes?')[1:-1]}\"")
    return 0
