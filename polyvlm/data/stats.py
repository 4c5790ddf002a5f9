"""`polyvlm data stats`: records, turns, modality mix, languages, length distribution, per-source counts.

One streaming pass with constant memory: lengths go into count arrays indexed by length (bounded by the
longest sample, not by the number of records). Lengths are in tokens with a tokenizer, otherwise in
characters. `Stats.table()` is the terminal view, `Stats.plot(path)` the PNG.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from polyvlm.atomic import mkstemp
from polyvlm.data.langs import normalize_language
from polyvlm.data.readers import expand_paths, iter_raw
from polyvlm.data.records import MEDIA_KEYS, PLACEHOLDERS


def stat_modalities() -> tuple[str, ...]:
    """The modality mix's rows: text-only, image, multi-image, every other registered modality (polyvlm.media), mixed."""
    return ("text-only", "image", "multi-image", *(m for m in MEDIA_KEYS if m != "image"), "mixed")


def modality_of(obj: dict) -> str:
    """Which media a record carries: text-only, image, multi-image, video, audio, or mixed."""
    kinds = []
    n_img = 0
    for m in MEDIA_KEYS:
        v = obj.get(m)
        if v:
            kinds.append(m)
            if m == "image":
                n_img = len(v) if isinstance(v, list) else 1
    if not kinds:
        return "text-only"
    if len(kinds) > 1:
        return "mixed"
    if kinds[0] == "image":
        return "multi-image" if n_img > 1 else "image"
    return kinds[0]


def _bump(counts: np.ndarray, values: list[int]) -> np.ndarray:
    add = np.bincount(np.asarray(values, dtype=np.int64))
    if len(add) > len(counts):
        counts = np.pad(counts, (0, len(add) - len(counts)))
    counts[: len(add)] += add
    return counts


def _percentile(counts: np.ndarray, q: float) -> int:
    total = counts.sum()
    if total == 0:
        return 0
    return int(np.searchsorted(np.cumsum(counts), q / 100 * total, side="left"))


@dataclass
class Stats:
    unit: str = "chars"  # or "tokens"
    records: int = 0
    unreadable: int = 0
    turns: int = 0
    modality: Counter = field(default_factory=Counter)
    languages: Counter = field(default_factory=Counter)
    sources: Counter = field(default_factory=Counter)
    turn_counts: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    length_counts: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))

    def length_summary(self) -> dict[str, int | float]:
        c = self.length_counts
        n = int(c.sum())
        mean = float((np.arange(len(c)) * c).sum() / n) if n else 0.0
        nz = np.flatnonzero(c)
        return {"min": int(nz[0]) if len(nz) else 0, "p50": _percentile(c, 50), "p90": _percentile(c, 90),
                "p99": _percentile(c, 99), "max": int(nz[-1]) if len(nz) else 0, "mean": round(mean, 1)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": self.records, "unreadable_records": self.unreadable, "turns": self.turns,
            "modality": {m: self.modality.get(m, 0) for m in stat_modalities()},
            "languages": dict(self.languages.most_common()),
            "sources": dict(self.sources.most_common()),
            "length_unit": self.unit, "length": self.length_summary(),
            "turns_per_record": {str(i): int(n) for i, n in enumerate(self.turn_counts) if n},
        }

    def table(self) -> str:
        """A plain-text report for the terminal."""
        lines = [f"records  {self.records:>12,}" + (f"   (unreadable: {self.unreadable:,})" if self.unreadable else ""),
                 f"turns    {self.turns:>12,}   ({self.turns / max(self.records, 1):.2f} per record)", "", "modality"]
        for m in stat_modalities():
            n = self.modality.get(m, 0)
            lines.append(f"  {m:<12} {n:>12,}  {100 * n / max(self.records, 1):5.1f}%")
        lines.append(f"\nlanguages ({len(self.languages)})")
        for lang, n in self.languages.most_common(30):
            lines.append(f"  {lang:<12} {n:>12,}  {100 * n / max(self.records, 1):5.1f}%")
        if len(self.languages) > 30:
            lines.append(f"  ... {len(self.languages) - 30} more")
        s = self.length_summary()
        lines.append(f"\nlength ({self.unit})  " + "  ".join(f"{k} {v:,}" for k, v in s.items()))
        lines.append("\nsources")
        for src, n in self.sources.most_common():
            lines.append(f"  {n:>12,}  {src}")
        return "\n".join(lines)

    def figure(self):  # -> matplotlib.figure.Figure
        """Bar charts (modality, languages, sources) and histograms (length, turns) as one matplotlib figure.

        Every count axis starts at 0 (the length histogram's log axis at 1 record), so a small or empty dataset
        is not drawn around an axis from -0.04 to 0.04; a dataset with no readable record says so in each panel.
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator

        fig, ax = plt.subplots(2, 3, figsize=(16, 9))
        mods = [m for m in stat_modalities() if self.modality.get(m)]
        ax[0, 0].bar(mods, [self.modality[m] for m in mods], color="tab:blue")
        ax[0, 0].set_title("modality")
        top = self.languages.most_common(25)
        ax[0, 1].bar([k for k, _ in top], [v for _, v in top], color="tab:green")
        ax[0, 1].set_title(f"languages (top {len(top)} of {len(self.languages)})")
        ax[0, 1].tick_params(axis="x", rotation=70)
        srcs = self.sources.most_common(15)
        ax[0, 2].barh([Path(k).name[-30:] for k, _ in srcs], [v for _, v in srcs], color="tab:purple")
        ax[0, 2].set_title("records per source")
        ax[0, 2].set_xlim(0, max([1, *(v for _, v in srcs)]) * 1.05)
        ax[0, 2].xaxis.set_major_locator(MaxNLocator(integer=True))
        for a, counts in ((ax[0, 0], [self.modality[m] for m in mods]), (ax[0, 1], [v for _, v in top])):
            a.set_ylim(0, max([1, *counts]) * 1.05)
            a.yaxis.set_major_locator(MaxNLocator(integer=True))
        c = self.length_counts
        if c.sum():
            ax[1, 0].hist(np.arange(len(c)), bins=min(60, max(len(c), 1)), weights=c, color="tab:orange")
            ax[1, 0].set_yscale("log")
            ax[1, 0].set_ylim(bottom=0.8)  # log axis: a bar of 1 record stays visible
            ax[1, 0].set_xlim(left=0)
        else:
            ax[1, 0].set(xlim=(0, 1), ylim=(0, 1))
        ax[1, 0].set_title(f"sample length ({self.unit})")
        t = self.turn_counts
        ax[1, 1].bar(np.arange(len(t)), t, color="tab:red")
        ax[1, 1].set_title("turns per record")
        ax[1, 1].set_ylim(0, max(1, int(t.max(initial=0))) * 1.05)
        ax[1, 1].set_xlim(-0.5, max(len(t), 2) - 0.5)
        for a in (ax[1, 1].xaxis, ax[1, 1].yaxis):
            a.set_major_locator(MaxNLocator(integer=True))
        if not self.records:
            why = f"{self.unreadable:,} unreadable record(s): run polyvlm data validate" if self.unreadable else "the dataset is empty"
            for a in (ax[0, 0].xaxis, ax[0, 1].xaxis, ax[0, 2].yaxis, ax[1, 0].xaxis, ax[1, 1].xaxis):
                a.set_ticks([])  # no categories or lengths: no tick placed around an invented 0
            ax[1, 0].yaxis.set_major_locator(MaxNLocator(integer=True))
            for a in (ax[0, 0], ax[0, 1], ax[0, 2], ax[1, 0], ax[1, 1]):
                a.text(0.5, 0.5, f"no records\n({why})", transform=a.transAxes, ha="center", va="center",
                       fontsize=11, color="0.35")
        ax[1, 2].axis("off")
        ax[1, 2].text(0, 0.5, "\n".join(f"{k}: {v:,}" for k, v in self.length_summary().items())
                      + f"\nrecords: {self.records:,}\nturns: {self.turns:,}"
                      + (f"\nunreadable: {self.unreadable:,}" if self.unreadable else ""), fontsize=12, family="monospace")
        fig.tight_layout()
        return fig

    def plot(self, path: str | Path) -> None:
        """`figure()` as a PNG, written atomically."""
        import matplotlib.pyplot as plt

        fig = self.figure()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
        os.close(fd)
        try:
            fig.savefig(tmp, dpi=80)
            os.replace(tmp, path)
        finally:
            plt.close(fig)
            Path(tmp).unlink(missing_ok=True)


def compute_stats(paths: Iterable[str | Path], tokenizer: str | None = None, progress: bool = True) -> Stats:
    """One streaming pass over the files. Unreadable records are counted and skipped (run `validate`)."""
    tok = None
    if tokenizer:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(tokenizer)
    st = Stats(unit="tokens" if tok else "chars")
    lengths: list[int] = []
    nturns: list[int] = []
    pending: list[str] = []
    pending_n: list[int] = []
    ph = tuple(PLACEHOLDERS.values())

    def flush_tokens() -> None:
        ids = tok(pending, add_special_tokens=False)["input_ids"]
        k = 0
        for n in pending_n:
            lengths.append(sum(len(x) for x in ids[k : k + n]))
            k += n
        pending.clear()
        pending_n.clear()

    for path in expand_paths(paths):
        name = str(path)
        for _, _, obj in tqdm(iter_raw(path), desc=f"stats {path.name}", unit=" rec", disable=None if progress else True, mininterval=1.0):
            convs = obj.get("conversations") if obj.__class__ is dict else None
            if convs.__class__ is not list:
                st.unreadable += 1
                continue
            st.records += 1
            st.sources[obj.get("data_source") or name] += 1
            st.modality[modality_of(obj)] += 1
            tag = normalize_language(obj.get("language"))[0]
            st.languages[tag or "(none)"] += 1
            texts = [t.get("value", t.get("content")) for t in convs if t.__class__ is dict]
            texts = [t for t in texts if t.__class__ is str]
            nturns.append(len(convs))
            if tok is None:
                lengths.append(sum(map(len, texts)))
            else:
                for t in texts:
                    for p in ph:
                        t = t.replace(p, "")
                    pending.append(t)
                pending_n.append(len(texts))
                if len(pending_n) >= 512:
                    flush_tokens()
            if len(nturns) >= 65536:
                st.turn_counts = _bump(st.turn_counts, nturns)
                st.turns += sum(nturns)
                nturns.clear()
            if len(lengths) >= 65536:
                st.length_counts = _bump(st.length_counts, lengths)
                lengths.clear()
    if pending_n:
        flush_tokens()
    st.turn_counts = _bump(st.turn_counts, nturns)
    st.turns += sum(nturns)
    st.length_counts = _bump(st.length_counts, lengths)
    return st
