"""`polyvlm quickstart --out DIR`: synthetic multilingual scenes -> stage 0 encoder -> stage 1 align ->
stage 2 finetune -> held-out evaluation -> report.json / report.md / report.png and a chat-ready checkpoint."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from polyvlm.config import Config, load_config
from polyvlm.data.scenes import (
    CHANCE,
    EXTRA_CHANCE,
    LANGUAGES,
    as_eval_records,
    make_eval_records,
    make_multi_image_records,
    make_split,
    make_tone_records,
    write_jsonl,
)
from polyvlm.models import factory
from polyvlm.models.checkpoint import save_checkpoint
from polyvlm.quickstart.encoder import pretrain_audio_encoder, pretrain_encoder
from polyvlm.utils import seed_everything, setup_logging

log = logging.getLogger("polyvlm.quickstart")
RECIPE = Path(__file__).resolve().parent / "tiny.yaml"
DEFAULT_MIN_ACCURACY = 80.0  # percent, every language, full plan


@dataclass
class Plan:
    """Sizes of each stage; `fast` is for tests (minutes -> seconds, no accuracy target)."""

    encoder_steps: int = 500
    encoder_batch_size: int = 32  # scenes per contrastive batch, all with different captions (144 exist)
    encoder_lr: float = 3e-3
    captions: int = 1200
    align_steps: int = 60
    qa: int = 6000
    finetune_steps: int = 1200
    eval_per_language: int = 120  # 30 per question type and language: one error moves a language by < 0.01
    batch_size: int = 32

    @classmethod
    def fast(cls) -> Plan:
        return cls(encoder_steps=10, encoder_batch_size=16, captions=64, align_steps=4, qa=96, finetune_steps=6, eval_per_language=4, batch_size=8)


# the quick start's audio encoder: a 2-layer Whisper over 1 s of 32-bin log-mel, 10 tokens per clip
TINY_WHISPER = ("model.audio_config={model_type: whisper, d_model: 64, encoder_layers: 2, encoder_attention_heads: 4, "
                "encoder_ffn_dim: 128, num_mel_bins: 32, max_source_positions: 50}")


# The language model also reads the encoder's CLS token, the summary stage 0 aligns with the captions (so it
# carries every attribute): from patch tokens alone a tiny LM learns colour, shape and count but not the side
# (it would have to decode positions from token indices), as measured on this machine.
BASE_OVERRIDES = ["model.vision_select=full"]


def variant_overrides(connector: str = "", modalities: tuple[str, ...] = ("image",), multi_image: bool = False) -> list[str]:
    """Config overrides of every stage: `BASE_OVERRIDES` + `--connector`, `--modalities`, `--multi-image`."""
    bad = set(modalities) - {"image", "audio"}
    if bad or "image" not in modalities:
        raise ValueError(f"--modalities must be image or image,audio, got {','.join(modalities)}")
    out = [*BASE_OVERRIDES, f"model.connector={connector}"] if connector else [*BASE_OVERRIDES]
    if "audio" in modalities:
        out += [TINY_WHISPER, "model.audio_connector=mlp2x_gelu", "model.audio_pool=5"]
    if "audio" in modalities or multi_image:
        out.append("model.tokenizer=builtin:tiny-av")
    return out


def make_data(out: Path, plan: Plan, seed: int, audio: bool, multi_image: bool
              ) -> tuple[Path, Path, list[dict], list]:
    """Write the training captions and questions under `out/data` and the held-out scenes under `out/eval`;
    returns (captions.jsonl, qa.jsonl, the question records, the eval records)."""
    log.info("generating data under %s", out / "data")
    data = out / "data"
    cap_recs = make_split(data, plan.captions, seed, "caption", prefix="cap")
    qa_recs = make_split(data, plan.qa, seed + 1, "qa", prefix="qa")
    eval_records = make_eval_records(out / "eval", plan.eval_per_language, seed=seed + 1234)
    n_extra = max(1, plan.eval_per_language // 2) * len(LANGUAGES)
    if audio:
        cap_recs += make_tone_records(data, plan.captions // 2, seed + 2, kind="caption", prefix="tcap")
        qa_recs += make_tone_records(data, plan.qa // 2, seed + 3)
        eval_records += as_eval_records(make_tone_records(out / "eval", n_extra, seed + 1235, prefix="teval"),
                                        out / "eval", "quickstart-eval")
    if multi_image:
        qa_recs += make_multi_image_records(data, plan.qa // 3, seed + 4)
        eval_records += as_eval_records(make_multi_image_records(out / "eval", n_extra, seed + 1236, prefix="peval"),
                                        out / "eval", "quickstart-eval")
    captions = write_jsonl(cap_recs, data / "captions.jsonl")
    qa = write_jsonl(qa_recs, data / "qa.jsonl")
    return captions, qa, qa_recs, eval_records


def run(out: str | Path, seed: int = 0, plan: Plan | None = None, overrides: list[str] | None = None,
        show_progress: bool = True, connector: str = "", modalities: tuple[str, ...] = ("image",),
        multi_image: bool = False) -> dict:
    from polyvlm.quickstart.evaluate import majority_baseline, score
    from polyvlm.quickstart.report import write_report
    from polyvlm.train.loop import train

    plan = plan or Plan()
    overrides = [*variant_overrides(connector, modalities, multi_image), *(overrides or [])]
    audio = "audio" in modalities
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    seed_everything(seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))

    captions, qa, qa_recs, eval_records = make_data(out, plan, seed, audio, multi_image)

    base_cfg = load_config(RECIPE, overrides)
    model, processor = factory.build(base_cfg.model)
    enc_acc = pretrain_encoder(model.vision, processor.tokenizer, plan.encoder_steps, plan.encoder_batch_size,
                               plan.encoder_lr, seed=seed, show_progress=show_progress)
    if model.audio is not None:  # a random Whisper encoder maps every clip to nearly the same states
        enc_acc.update(pretrain_audio_encoder(model.audio, processor, plan.encoder_steps, seed=seed,
                                              show_progress=show_progress))
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
    res = (score_av if audio else score)(gen, eval_records, batch_size=32, show_progress=show_progress)
    chances = {**CHANCE, **EXTRA_CHANCE}
    chances = {t: 100 * chances[t] for t in res["by_type"]}
    chance_lang = sum(chances.values()) / len(chances)
    majority = majority_baseline(qa_recs, eval_records)
    report = {
        "accuracy": {lang: res["accuracy"].get(lang, 0.0) for lang in LANGUAGES},
        "chance": {lang: chance_lang for lang in LANGUAGES},
        "accuracy_by_type": res["by_type"],
        "chance_by_type": chances,
        "accuracy_by_language_and_type": res["by_lang_type"],
        # always answering the most frequent training answer of the question's language and type
        "majority": {lang: majority["accuracy"].get(lang, 0.0) for lang in LANGUAGES},
        "majority_by_type": majority["by_type"],
        "majority_by_language_and_type": majority["by_lang_type"],
        "encoder_accuracy": enc_acc,
        "wall_seconds": round(time.time() - t0, 1),
        "checkpoint": str(s2.checkpoint),
        "history": {"stage1": s1.history, "stage2": s2.history},
    }
    if gen.model.connector.needs_prompt:
        report["router"] = router_by_language(gen, eval_records)
    write_report(out, report, res["samples"])
    if "router" in report:
        _append_router_table(out, report["router"])
    return report


def _requests(records: list, max_new_tokens: int = 8) -> list:
    """Prompt turn, images and audio of quick start records -> ChatRequests."""
    from polyvlm.data.records import resolve_media
    from polyvlm.infer import ChatRequest
    from polyvlm.models.encoders.audio import load_audio
    from polyvlm.train.dataset import open_image

    reqs = []
    for r in records:
        root = Path(r.extra["image_root"])
        imgs = [open_image(resolve_media(root, p, r.source, r.id)) for p in r.media.get("image", [])]
        auds = [load_audio(resolve_media(root, p, r.source, r.id)) for p in r.media.get("audio", [])]
        reqs.append(ChatRequest([{"role": "user", "content": r.turns[0].text}], images=imgs, audios=auds,
                                max_new_tokens=max_new_tokens))
    return reqs


def score_av(gen, records: list, batch_size: int = 32, show_progress: bool = True) -> dict:
    """Like `evaluate.score`, for records that may carry audio: accuracy (%) per language, type, both."""
    from collections import defaultdict

    from tqdm import tqdm

    from polyvlm.quickstart.evaluate import normalize_answer, percent

    hits: dict[str, dict[str, list[int]]] = {"accuracy": defaultdict(list), "by_type": defaultdict(list),
                                             "by_lang_type": defaultdict(list)}
    samples = []
    for i in tqdm(range(0, len(records), batch_size), desc="evaluate", disable=not show_progress, dynamic_ncols=True):
        chunk = records[i : i + batch_size]
        for r, res in zip(chunk, gen.generate(_requests(chunk))):
            ok = int(normalize_answer(res.text) == normalize_answer(r.extra["answer"]))
            for key, k in (("accuracy", r.language or "und"), ("by_type", r.extra["qtype"]),
                           ("by_lang_type", f"{r.language}/{r.extra['qtype']}")):
                hits[key][k].append(ok)
            samples.append({"id": r.id, "language": r.language, "qtype": r.extra["qtype"], "target": r.extra["answer"],
                            "prediction": res.text, "correct": bool(ok)})
    out: dict = {k: percent(d) for k, d in hits.items()}
    out["samples"] = samples
    return out


def router_by_language(gen, records: list, per_language: int = 16) -> dict[str, list[float]]:
    """Mean moe router distribution over each language's evaluation images (one prompt pass per language)."""
    gen.model.router_stats.pop()
    dist = {}
    for lang in LANGUAGES:
        chunk = [r for r in records if r.language == lang and r.media.get("image")][:per_language]
        if chunk:
            gen.generate(_requests(chunk, max_new_tokens=1))
            dist[lang] = gen.model.router_stats.pop().get("und", [])
    return dist


def _append_router_table(out: Path, router: dict[str, list[float]]) -> None:
    from polyvlm.utils import atomic_write_text

    n = max((len(v) for v in router.values()), default=0)
    lines = ["", "moe router: mean expert weights per language (evaluation prompts)", "",
             "| language | " + " | ".join(f"expert {i}" for i in range(n)) + " |", "|---|" + "---|" * n]
    lines += [f"| {lang} | " + " | ".join(f"{w:.3f}" for w in dist) + " |" for lang, dist in router.items()]
    md = out / "report.md"
    atomic_write_text(md, md.read_text(encoding="utf-8") + "\n".join(lines) + "\n")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="polyvlm quickstart", description=__doc__)
    p.add_argument("--out", default="runs/quickstart", help="output directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fast", action="store_true", help="seconds-long smoke run (no accuracy target unless --min-accuracy)")
    p.add_argument("--min-accuracy", type=float, default=None,
                   help="exit 1 when any language scores below this accuracy: 0.80 and 80 both mean 80%% (a value "
                        "<= 1 is a fraction, above 1 a percentage); default 80, none with --fast")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--connector", default="", help="connector for every stage, e.g. moe (Parrot); default: the recipe's")
    p.add_argument("--modalities", default="image", help="image, or image,audio (adds the tones task and a Whisper encoder)")
    p.add_argument("--multi-image", action="store_true", help="add two-picture questions (which has more shapes?)")
    p.add_argument("overrides", nargs="*", help="key=value config overrides for every stage")
    args = p.parse_args(argv)
    setup_logging()
    mods = tuple(m.strip() for m in args.modalities.split(",") if m.strip())
    try:
        variant_overrides(args.connector, mods, args.multi_image)
        min_accuracy_percent(args.min_accuracy)
    except ValueError as e:
        print(f"polyvlm quickstart: {e}", file=sys.stderr)
        return 2
    report = run(args.out, args.seed, Plan.fast() if args.fast else Plan(), args.overrides, not args.no_progress,
                 args.connector, mods, args.multi_image)
    print(Path(args.out, "report.md").read_text(encoding="utf-8"))
    print(f"wall time {report['wall_seconds']:.0f}s")
    print(f"try: polyvlm chat {report['checkpoint']} --image {Path(args.out) / 'eval/images'}/<file>.png "
          f"\"{json.dumps('What colour are the shapes?')[1:-1]}\"")
    threshold = None if args.min_accuracy is None and args.fast else min_accuracy_percent(args.min_accuracy)
    if threshold is None:
        return 0
    low = {lang: acc for lang, acc in report["accuracy"].items() if acc < threshold}
    if low:
        worst = ", ".join(f"{lang} {acc:.1f}" for lang, acc in low.items())
        print(f"polyvlm quickstart: below --min-accuracy {threshold:.1f}%: {worst} (report: {Path(args.out) / 'report.md'})",
              file=sys.stderr)
        return 1
    print(f"every language >= {threshold:.1f}%")
    return 0


def min_accuracy_percent(value: float | None, default: float = DEFAULT_MIN_ACCURACY) -> float:
    """`--min-accuracy` on the report's 0-100 scale: None -> `default` (80); a value <= 1 is a fraction (0.8 -> 80),
    above 1 a percentage (80 -> 80)."""
    if value is None:
        return default
    if not 0 <= value <= 100:
        raise ValueError(f"--min-accuracy must be a fraction in [0, 1] or a percentage in (1, 100], got {value}")
    return round(100 * value, 6) if value <= 1 else value  # round: 0.57 is 57, not 56.99999999999999
