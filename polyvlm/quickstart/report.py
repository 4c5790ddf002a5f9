"""Quick start report: report.json, report.md (tables) and report.png (loss curves; accuracy by language and type).

Every accuracy, chance and baseline is in percent (0-100), the scale of `polyvlm eval` and of the papers' tables."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from polyvlm.utils import atomic_write_text  # noqa: E402


def write_report(out: Path, report: dict, samples: list[dict]) -> None:
    atomic_write_text(out / "report.json", json.dumps(report, indent=2, ensure_ascii=False))
    atomic_write_text(out / "samples.jsonl", "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples))
    langs = list(report["accuracy"])
    types = list(report["accuracy_by_type"])
    by = report["accuracy_by_language_and_type"]
    lines = ["# polyvlm quick start", "", f"checkpoint: `{report['checkpoint']}`  ", f"wall time: {report['wall_seconds']:.0f} s", "",
             "accuracy in percent (0-100)", "",
             "| language | accuracy | chance | majority | " + " | ".join(types) + " |", "|---|---|---|---|" + "---|" * len(types)]
    for lang in langs:
        cells = " | ".join(f"{by.get(f'{lang}/{t}', float('nan')):.1f}" for t in types)
        lines.append(f"| {lang} | {report['accuracy'][lang]:.1f} | {report['chance'][lang]:.1f} | "
                     f"{report['majority'][lang]:.1f} | {cells} |")
    lines += ["", "| question type | accuracy | chance | majority |", "|---|---|---|---|"]
    lines += [f"| {t} | {report['accuracy_by_type'][t]:.1f} | {report['chance_by_type'][t]:.1f} | "
              f"{report['majority_by_type'][t]:.1f} |" for t in types]
    lines += ["", "chance: a uniform guess among the possible answers; majority: always the most frequent training "
              "answer of the question's language and type."]
    enc = report.get("encoder_accuracy") or {}
    if enc:
        lines += ["", "stage 0 (contrastive caption pre-training), zero-shot accuracy of the encoder on held-out inputs: "
                  "the caption nearest to each input, among every possible caption of one language, over the six "
                  "languages", "", "| " + " | ".join(enc) + " |", "|" + "---|" * len(enc),
                  "| " + " | ".join(f"{v:.1f}" for v in enc.values()) + " |"]
    atomic_write_text(out / "report.md", "\n".join(lines) + "\n")

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for name, hist in report["history"].items():
        axes[0].plot([h["step"] for h in hist], [h["loss"] for h in hist], label=name)
    axes[0].set(title="training loss", xlabel="step", ylabel="loss", yscale="log")
    axes[0].legend()
    axes[1].bar(langs, [report["accuracy"][x] for x in langs], color="tab:blue", label="accuracy")
    axes[1].plot(langs, [report["chance"][x] for x in langs], "k--", label="chance")
    axes[1].plot(langs, [report["majority"][x] for x in langs], "k:", label="majority answer")
    axes[1].axhline(80, color="tab:red", lw=0.8, label="default --min-accuracy 80")
    axes[1].set(title="accuracy by language (%)", ylim=(0, 100))
    axes[1].legend(loc="lower right")
    axes[2].bar(types, [report["accuracy_by_type"][t] for t in types], color="tab:green", label="accuracy")
    axes[2].plot(types, [report["chance_by_type"][t] for t in types], "k--", label="chance")
    axes[2].plot(types, [report["majority_by_type"][t] for t in types], "k:", label="majority answer")
    axes[2].set(title="accuracy by question type (%)", ylim=(0, 100))
    axes[2].legend(loc="lower right")
    fig.tight_layout()
    tmp = out / ".report.png.tmp.png"
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(out / "report.png")
