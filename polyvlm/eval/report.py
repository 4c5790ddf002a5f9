"""Evaluation outputs: results.json, samples_<task>.jsonl, results.md (language x task, categories), results.png."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from polyvlm.atomic import mkstemp
from polyvlm.eval.extract import Extraction
from polyvlm.eval.tasks import PublishedTask, Task
from polyvlm.eval.tasks.base import Sample, image_label
from polyvlm.eval.tasks.published import official_rng
from polyvlm.utils import atomic_write_text


def _fmt(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1f}"


def _clean(obj: Any) -> Any:
    """NaN -> None so results.json is strict JSON."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def unlabeled_rows(task: Task, unlabeled: list[Sample], answers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Rows of samples whose labels the repo hides: the prediction and both readings, ready for submission."""
    assert isinstance(task, PublishedTask)
    preds = [answers[s.id]["prediction"] for s in unlabeled]
    read = task.official(unlabeled, preds, official_rng())
    out = {}
    for i, s in enumerate(unlabeled):
        row = sample_row(s, answers, None, [], [], [], {}, [], [])
        row.pop("error", None)
        row.update(prediction=preds[i], extracted=task.extract(s, preds[i]).answer, official_answer=read.answers[i])
        out[s.id] = row
    return out


def sample_row(s: Sample, answers: dict[str, dict[str, Any]], i: int | None, preds: list[str], got: list[str | None],
         ext: list[Extraction], per: dict[str, list[float]], metrics: list[str],
         official_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One line of samples_<task>.jsonl: where the sample is (split, row or index), input, target, prediction,
    both readings and every metric's score."""
    row: dict[str, Any] = {"id": s.id, "language": s.language, "category": s.category}
    for key in ("split", "row", "index"):
        if key in s.extra:
            row[key] = int(s.extra[key]) if key != "split" and str(s.extra[key]).isdigit() else s.extra[key]
    row.update(input=s.prompt, images=[image_label(r) for r in s.images], target=s.target)
    row.update({m: refs for m, refs in s.media.items() if refs})  # "thermal": [path], ... as the record named them
    if s.group and s.group != s.id:
        row["group"] = s.group
    if i is not None:
        extra = official_rows[i]
        scores = {m: per[m][i] for m in metrics}
        if "official_score" in extra:
            scores["official"] = extra["official_score"]
        row.update(prediction=preds[i], extracted=got[i], method=ext[i].method, scores=scores,
                   **{k: v for k, v in extra.items() if k != "official_score"})
    else:
        row["error"] = answers.get(s.id, {}).get("error", "not answered")
    return row


def write_samples(out_dir: Path, task: str, rows: list[dict[str, Any]]) -> None:
    atomic_write_text(out_dir / f"samples_{task}.jsonl",
                      "".join(json.dumps(_clean(r), ensure_ascii=False) + "\n" for r in rows))


def _headline(t: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(metric label, {overall, by_language}) of the score a task's table row shows: the official one if any."""
    if t.get("official"):
        return f"{t['official']['metric']} (official)", t["official"]
    return t["main_metric"], t["metrics"][t["main_metric"]]


def markdown(results: dict[str, Any]) -> str:
    tasks = results["tasks"]
    langs = sorted({lang for t in tasks.values() for lang in _headline(t)[1].get("by_language", {})},
                   key=lambda x: (x != "en", x))
    lines = [f"# Evaluation of {results['model']}", ""]
    header = ["task", "metric", "overall", *langs, "mul", "robust", "n", "unparsed", "failed"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, t in tasks.items():
        label, m = _headline(t)
        by_lang = m.get("by_language", {})
        robust = t["metrics"][t["main_metric"]]["overall"] if t.get("official") else None
        cells = [name, label, _fmt(m["overall"]), *[_fmt(by_lang.get(lang)) for lang in langs],
                 _fmt(t["mul"]), _fmt(robust), str(t["n"]), str(t["unparsed"]), str(t["failed"])]
        lines.append("| " + " | ".join(cells) + " |")
    for name, t in tasks.items():
        o = t.get("official")
        if o:
            n_dis = "-" if o["disagree"] is None else str(len(o["disagree"]))
            lines += ["", f"{name}: official {o['metric']} {_fmt(o['overall'])} vs robust {t['main_metric']} "
                          f"{_fmt(t['metrics'][t['main_metric']]['overall'])}; {n_dis} samples read differently, "
                          f"{o['random_fallback']} random letters (seed {o['seed']}); follows {o['follows']}"]
    for suite in results.get("suites", []):  # the papers' layout: each task's en and mul, then their means
        lines += ["", f"Suite **{suite['suite']}**: en {_fmt(suite['en'])}, mul {_fmt(suite['mul'])}", "",
                  "| task | en | mul |", "|---|---|---|"]
        lines += [f"| {name} | {_fmt(v['en'])} | {_fmt(v['mul'])} |" for name, v in suite["tasks"].items()]
        lines.append(f"| mean | {_fmt(suite['en'])} | {_fmt(suite['mul'])} |")
    mega = results.get("megabench") or {}  # MEGA-Bench's one number (its leaderboard's), with its parts
    for key in sorted(k for k in mega if not k.endswith("_tasks")):
        parts = ", ".join(f"{t} x {int(n)}" for t, n in mega[f"{key}_tasks"].items())
        lines += ["", f"MEGA-Bench {key.replace('_', ' ')}: {_fmt(mega[key])} (the subsets' macro means weighted by "
                      f"their tasks: {parts})"]
    for name, t in tasks.items():
        cats = t["metrics"][t["main_metric"]].get("by_category", {})
        if cats:
            lines += ["", f"## {name}: {t['main_metric']} by category", "", "| category | score |", "|---|---|"]
            lines += [f"| {c} | {_fmt(v)} |" for c, v in cats.items()]
    for name, t in tasks.items():  # a task's own groupings (Video-MME: duration, domain, ...), official scores
        o = t.get("official") or {}
        extra = [k for k in o if k.startswith("by_") and k not in ("by_language", "by_category")]
        for key in (["by_category"] if extra and "by_category" in o else []) + extra:
            lines += ["", f"## {name}: official {o['metric']} {key.replace('_', ' ', 1)}", "",
                      "| group | score |", "|---|---|"]
            lines += [f"| {g} | {_fmt(v)} |" for g, v in o[key].items()]
    for name, t in tasks.items():
        router = t.get("router")
        if router:
            width = max(len(r["mean"]) for r in router.values())
            lines += ["", f"## {name}: moe router, mean expert weight per language", "",
                      "| language | images | " + " | ".join(f"expert {k}" for k in range(width)) + " |",
                      "|---|---|" + "---|" * width]
            lines += [f"| {lang} | {r['images']} | " + " | ".join(f"{w:.3f}" for w in r["mean"]) + " |"
                      for lang, r in router.items()]
    for name, t in tasks.items():
        for kind, langs in (t.get("english_fallback") or {}).items():
            lines += ["", f"{name}: no {kind.replace('_', ' ')} of its own for {', '.join(langs)}: English ones used"]
    for name, t in tasks.items():  # open-ended tasks: the share of replies identified as the asked language
        a = t.get("answered_in_language")
        if a:
            rates = ", ".join(f"{k} {_fmt(v)} (n={a['checked'][k]})" for k, v in a["rate"].items()) or "-"
            short = ", ".join(f"{k} {v}" for k, v in a["too_short"].items())
            lines += ["", f"{name}: answered in the question's language ({a['identifier']}): {rates}"
                          + (f"; too short to tell: {short}" if short else "")
                          + (f"; unchecked (no {a['identifier']} model): {', '.join(a['unchecked'])}"
                             if a["unchecked"] else "")]
    failed = [n for n, t in tasks.items() if t["failed"]]
    if failed:
        lines += ["", f"Warning: samples without an answer (failures, not scored) in: {', '.join(failed)}. "
                      "Run the same command again to retry them."]
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    """Bars per language, one group per task (main metric)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = results["tasks"]
    langs = sorted({lang for t in tasks.values() for lang in t["metrics"][t["main_metric"]].get("by_language", {})},
                   key=lambda x: (x != "en", x)) or ["overall"]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(tasks) * max(1, len(langs)) * 0.35 + 2), 3.5))
    width = 0.8 / len(langs)
    for j, lang in enumerate(langs):
        vals = []
        for t in tasks.values():
            m = t["metrics"][t["main_metric"]]
            v = m["overall"] if lang == "overall" else m.get("by_language", {}).get(lang)
            vals.append(0.0 if v is None or (isinstance(v, float) and math.isnan(v)) else v)
        ax.bar([i + j * width for i in range(len(tasks))], vals, width, label=lang)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(tasks))], list(tasks), rotation=20, ha="right")
    ax.set_ylabel("score (0-100)")
    # pinned at 0 and at least 100 (scores are on a 0-100 scale; CIDEr may pass 100): a run that scores 0 everywhere
    # shows empty bars on the real scale, not an axis around zero
    top = max([100.0, *(b.get_height() for b in ax.patches)])
    ax.set_ylim(0, top * 1.02)
    ax.legend(fontsize="small", ncol=min(8, len(langs)), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout()
    fd, tmp = mkstemp(dir=path.parent, suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_results(out_dir: Path, results: dict[str, Any]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    clean = _clean(results)
    atomic_write_text(out_dir / "results.json", json.dumps(clean, ensure_ascii=False, indent=2) + "\n")
    atomic_write_text(out_dir / "results.md", markdown(clean))
    plot(clean, out_dir / "results.png")
