"""The synth run report: counts in/out per stage, category and language, rejection reasons, throughput,
score histograms, as Markdown, JSON and a PNG, all built from the stages' `done.json` statistics."""

from __future__ import annotations

import json
from pathlib import Path

from polyvlm.utils import atomic_write_text


def _fmt_counts(d: dict, top: int = 8) -> str:
    items = sorted(d.items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join(f"{k} {v}" for k, v in items[:top])
    return text + (f", +{len(items) - top} more" if len(items) > top else "") if items else "-"


def plot_report(rows: list[dict], stats: list[dict], path: Path) -> None:
    """`report.png`: records in / out / rejected per stage, then one score histogram per scoring stage
    (judge, score)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored = [s for s in stats if s.get("scores")]
    panels = 1 + len(scored)
    fig, axes = plt.subplots(1, panels, figsize=(max(5.5, 0.9 * len(rows) + 2) + 4.5 * len(scored), 3.4),
                             squeeze=False, width_ratios=[max(1.2, 0.2 * len(rows) + 0.4)] + [1] * len(scored))
    ax = axes[0][0]
    xs = list(range(len(rows)))
    for off, key, color in ((-0.27, "in", "#9aa5b1"), (0.0, "out", "#4c72b0"), (0.27, "rejected", "#c44e52")):
        ax.bar([x + off for x in xs], [r[key] for r in rows], width=0.27, color=color, label=key)
    ax.set_xticks(xs, [f"{r['index']} {r['stage']}" for r in rows], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("records")
    ax.set_ylim(0, max([1, *(r[k] for r in rows for k in ("in", "out", "rejected"))]) * 1.05)  # 0 at the bottom, always
    ax.set_title("records per stage")
    ax.legend(fontsize=8)
    for ax, s in zip(axes[0][1:], scored):
        keys = sorted(s["scores"], key=float)
        ax.bar([float(k) for k in keys], [s["scores"][k] for k in keys], width=0.4, color="#4c72b0")
        ax.set_title(f"{s['stage']} scores (n={sum(s['scores'].values())})")
        ax.set_xlabel("score")
        ax.set_ylabel("records")
        ax.set_ylim(0, max([1, *s["scores"].values()]) * 1.05)
        ax.set_xticks(range(1, 6))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)


def write_report(out: Path, stats: list[dict]) -> dict:
    """Write report.md / report.json / report.png under `out`; return the summary dict."""
    rows = []
    total_time = sum(s.get("elapsed_s", 0.0) for s in stats)
    for i, s in enumerate(stats):
        st = s.get("status", {})
        t = s.get("map_elapsed_s") or s.get("elapsed_s") or 0.0
        n = s.get("processed", s["in"]["records"])
        rows.append({
            "index": i, "stage": s["stage"], "in": s["in"]["records"],
            "ok": st.get("ok", 0) if st else s["out"]["records"],  # reduce-only stages: kept = out
            "rejected": st.get("rejected", 0) + s.get("dropped", 0),
            "failed": st.get("failed", 0), "out": s["out"]["records"], "elapsed_s": s.get("elapsed_s", 0.0),
            "records_per_s": round(n / t, 2) if t else None, "backend": s.get("backend", {}),
        })
    summary = {"stages": rows, "total_elapsed_s": round(total_time, 3),
               "final_records": stats[-1]["out"]["records"] if stats else 0, "detail": stats}
    plot_report(rows, stats, out / "report.png")
    lines = ["# polyvlm synth report", "",
             f"Final records: **{summary['final_records']}** in `final/`; total stage time {total_time:.1f} s.", "",
             "| # | stage | in | kept | rejected | failed | out | time (s) | records/s | requests | retries |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        b = r["backend"]
        lines.append(f"| {r['index']} | {r['stage']} | {r['in']} | {r['ok']} | "
                     f"{r['rejected']} | {r['failed']} | {r['out']} | {r['elapsed_s']:.2f} | "
                     f"{r['records_per_s'] if r['records_per_s'] is not None else '-'} | "
                     f"{b.get('requests', '-')} | {b.get('retries', '-')} |")
    lines += ["", "## Languages and categories", "",
              "| stage | languages in | languages out | categories in | categories out |", "|---|---|---|---|---|"]
    for s in stats:
        lines.append(f"| {s['stage']} | {_fmt_counts(s['in']['language'])} | {_fmt_counts(s['out']['language'])} | "
                     f"{_fmt_counts(s['in']['category'])} | {_fmt_counts(s['out']['category'])} |")
    lines += ["", "## Rejection reasons", ""]
    reasons = [(s["stage"], code, n, s.get("rejection_examples", {}).get(code, ""))
               for s in stats for code, n in sorted(s.get("rejections", {}).items(), key=lambda kv: -kv[1])]
    if reasons:
        lines += ["| stage | reason | records | example |", "|---|---|---|---|"]
        lines += [f"| {st} | {code} | {n} | {ex[:100].replace('|', '/')} |" for st, code, n, ex in reasons]
    else:
        lines.append("None.")
    for s in stats:
        if s.get("scores"):
            keys = sorted(s["scores"], key=float)
            lines += ["", f"## Score histogram: {s['stage']}", "", "| score | records |", "|---|---|"]
            lines += [f"| {k} | {s['scores'][k]} |" for k in keys]
    lines += ["", "![records per stage and score histograms](report.png)"]
    atomic_write_text(out / "report.md", "\n".join(lines) + "\n")
    atomic_write_text(out / "report.json", json.dumps(summary, indent=1, ensure_ascii=False))
    return summary
