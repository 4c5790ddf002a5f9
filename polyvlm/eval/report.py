"""Evaluation outputs: results.json, samples_<task>.jsonl, results.md (language x task, categories), results.png."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from polyvlm.atomic import mkstemp
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
    for suite in results.get("suites", []):
        lines += ["", f"Suite **{suite['suite']}**: en {_fmt(suite['en'])}, mul {_fmt(suite['mul'])}"]
    for name, t in tasks.items():
        cats = t["metrics"][t["main_metric"]].get("by_category", {})
        if cats:
            lines += ["", f"## {name}: {t['main_metric']} by category", "", "| category | score |", "|---|---|"]
            lines += [f"| {c} | {_fmt(v)} |" for c, v in cats.items()]
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
