"""PandaGPT quick start report: report.json, samples.jsonl, report.md (accuracy per modality and language beside
chance and the majority answer) and report.png (the same as bars, axes from 0; the training curves).

Every accuracy, chance and baseline is in percent (0-100), as in the main quick start and `polyvlm eval`."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from polyvlm.utils import atomic_write_text  # noqa: E402


def _markdown(report: dict) -> str:
    acc, maj = report["accuracy_by_modality"], report["majority"]
    langs = list(next(iter(acc.values())))
    lines = ["# polyvlm quick start: PandaGPT on ImageBind, zero-shot modalities", "",
             "The LM stage trained the language model on **text only**, stages 1 and 2 the projection and LoRA on "
             "**pictures only**; every other row is answered from that one modality alone, through ImageBind's joint "
             "space.", "",
             f"checkpoint: `{report['checkpoint']}`  ", f"wall time: {report['wall_seconds']:.0f} s, "
             f"CPU time: {report['cpu_seconds']:.0f} s", "", "accuracy in percent (0-100)", "",
             "| modality | asked | " + " | ".join(langs) + " | chance | majority |",
             "|---|---|" + "---|" * (len(langs) + 2)]
    for m, by in acc.items():
        mean_maj = sum(maj[m].values()) / len(maj[m])
        lines.append(f"| {m}{'' if m == report['trained_on'] else ' (zero-shot)'} | {', '.join(report['questions'][m])} | "
                     + " | ".join(f"{by[lang]:.1f}" for lang in langs)
                     + f" | {report['chance'][m]:.1f} | {mean_maj:.1f} |")
    lines += ["", "| modality | " + " | ".join(["question type", "accuracy"]) + " |", "|---|---|---|"]
    for m, by in report["accuracy_by_type"].items():
        lines += [f"| {m} | {t} | {a:.1f} |" for t, a in by.items()]
    probe = report.get("imagebind_probe") or {}
    if probe:
        lines += ["", "ImageBind after stage 0, on held-out scenes: an input's attribute read as the attribute whose mean "
                  "picture embedding is nearest", "", "| modality/attribute | accuracy |", "|---|---|"]
        lines += [f"| {k} | {v:.1f} |" for k, v in probe.items()]
    lines += ["", "chance: a uniform guess among the possible answers, averaged over the question types asked; majority: "
              "always the most frequent training answer of the question's language and type."]
    return "\n".join(lines) + "\n"


def _plot(out: Path, report: dict) -> None:
    acc = report["accuracy_by_modality"]
    mods = list(acc)
    langs = list(next(iter(acc.values())))
    fig, axes = plt.subplots(1, 2, figsize=(15, 4.5), gridspec_kw={"width_ratios": [2.2, 1]})
    ax = axes[0]
    width = 0.8 / len(langs)
    for j, lang in enumerate(langs):
        ax.bar([i + (j - (len(langs) - 1) / 2) * width for i in range(len(mods))], [acc[m][lang] for m in mods],
               width, label=lang)
    for i, m in enumerate(mods):
        ax.hlines(report["chance"][m], i - 0.42, i + 0.42, colors="k", linestyles="--",
                  label="chance" if i == 0 else None)
        mean_maj = sum(report["majority"][m].values()) / len(report["majority"][m])
        ax.hlines(mean_maj, i - 0.42, i + 0.42, colors="k", linestyles=":", label="majority answer" if i == 0 else None)
    if report.get("min_accuracy") is not None:
        ax.axhline(report["min_accuracy"], color="tab:red", lw=0.8, label=f"--min-accuracy {report['min_accuracy']:g}")
    ax.set_xticks(range(len(mods)), [m if m == report["trained_on"] else f"{m}\n(zero-shot)" for m in mods])
    ax.set(title="accuracy by modality and language (LLM trained on pictures only)", ylim=(0, 100),
           ylabel="accuracy (%)")
    ax.legend(ncol=3, fontsize=8, loc="lower right")
    ax = axes[1]
    for name, hist in report["history"].items():
        ax.plot([h["step"] for h in hist], [h["loss"] for h in hist], label=name)
    ax.set(title="training loss (LM stage, stages 1, 2)", xlabel="step", ylabel="loss", ylim=(0, None), xlim=(0, None))
    ax.legend()
    fig.tight_layout()
    tmp = out / ".report.png.tmp.png"
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(out / "report.png")


def write_report(out: Path, report: dict, samples: list[dict]) -> None:
    atomic_write_text(out / "report.json", json.dumps(report, indent=2, ensure_ascii=False))
    atomic_write_text(out / "samples.jsonl", "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples))
    atomic_write_text(out / "report.md", _markdown(report))
    _plot(out, report)
