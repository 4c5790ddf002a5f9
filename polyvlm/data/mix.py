"""Data mixtures: a YAML naming sources with LLaVA-NeXT sampling strategies and per-language caps/weights.

    seed: 0
    shuffle: true                      # shuffle the final order (seeded); default false
    datasets:
      - path: pangea.json              # `json_path` (LLaVA-NeXT's key) works too; relative to the YAML
        sampling_strategy: first:10%   # all | first:N | end:N | random:N | first:P% | end:P% | random:P%
        image_root: images             # default: the data file's directory
        languages: {weights: {ur: 2.0}, caps: {en: 1000}}
    languages: {caps: {en: 5000}}      # across the whole mixture, after each source's own rules

A weight w scales a language's count to round(n * w): w < 1 keeps a random subset, w > 1 repeats every
record floor(w) times plus a random remainder. A cap keeps a random subset of at most N. Language keys
are normalised like record tags (`urdu` = `ur`); `none` means records without a tag. Resolution is a pure
function of the YAML, the seed and the files, so every rank gets the same list without talking.
"""

from __future__ import annotations

import logging
import math
import os
import posixpath
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from polyvlm.data.index import RecordIndex
from polyvlm.data.langs import normalize_language
from polyvlm.data.readers import iter_raw
from polyvlm.data.records import Record, RecordError

_STRATEGY = re.compile(r"^(all|(first|end|random):(\d+)(%?))$")
NONE_LANG = "none"

log = logging.getLogger("polyvlm.data")


class MixtureError(ValueError):
    """A mixture YAML that cannot be resolved; the message names the file, the source and the reason."""


def _lang_key(k: Any) -> str:
    if k is None or (isinstance(k, str) and k.lower() in ("none", "null", "")):
        return NONE_LANG
    return normalize_language(str(k))[0] or str(k)


def _lang_rules(d: Any, where: str) -> dict[str, dict[str, float]]:
    if d is None:
        return {}
    if not isinstance(d, dict) or set(d) - {"weights", "caps"}:
        raise MixtureError(f"{where}: 'languages' takes 'weights' and/or 'caps' mappings, got {d!r}")
    out: dict[str, dict[str, float]] = {}
    for kind in ("weights", "caps"):
        for k, v in (d.get(kind) or {}).items():
            if not isinstance(v, (int, float)) or v < 0:
                raise MixtureError(f"{where}: languages.{kind}.{k} must be a non-negative number, got {v!r}")
            out.setdefault(kind, {})[_lang_key(k)] = float(v)
    return out


@dataclass
class MixSourceKeys:
    """The keys of one `datasets` entry (the schema `key=value` overrides are checked against)."""

    path: str = ""
    json_path: str = ""
    sampling_strategy: str = "all"
    image_root: str = ""
    image_folder: str = ""
    languages: dict = field(default_factory=dict)


@dataclass
class MixtureKeys:
    """The keys of a mixture YAML: `polyvlm data mix M.yaml seed=3 datasets.0.sampling_strategy=first:10%`."""

    seed: int = 0
    shuffle: bool = False
    datasets: list[MixSourceKeys] = field(default_factory=list)
    languages: dict = field(default_factory=dict)


@dataclass
class MixSource:
    path: Path
    strategy: str = "all"
    image_root: Path | None = None
    languages: dict[str, dict[str, float]] = field(default_factory=dict)

    def root(self) -> Path:
        return self.image_root or self.path.parent


def sample_indices(n: int, strategy: str, rng: np.random.Generator) -> np.ndarray:
    """LLaVA-NeXT sampling: `all`, `first:N`, `end:N`, `random:N`, with N a count or a percentage (rounded up)."""
    m = _STRATEGY.match(strategy.strip())
    if not m:
        raise MixtureError(f"unknown sampling_strategy {strategy!r} (all, first:N, end:N, random:N, first:10%)")
    if m.group(1) == "all":
        return np.arange(n, dtype=np.int64)
    kind, num, pct = m.group(2), int(m.group(3)), m.group(4)
    k = min(n, math.ceil(num * n / 100) if pct else num)
    if kind == "first":
        return np.arange(k, dtype=np.int64)
    if kind == "end":
        return np.arange(n - k, n, dtype=np.int64)
    return np.sort(rng.choice(n, size=k, replace=False)).astype(np.int64)


def apply_language_rules(idx: np.ndarray, langs: np.ndarray, names: list[str], rules: dict, rng: np.random.Generator,
                         where: str = "") -> np.ndarray:
    """Select from `idx` (positions) with language codes `langs` (same length): weights, then caps. A rule
    naming a language none of the selected records has does nothing: that is logged, not silent."""
    if not rules:
        return np.arange(len(idx))
    present = {names[c] for c in np.unique(langs)}
    for kind in ("weights", "caps"):
        absent = sorted(set(rules.get(kind, {})) - present)
        if absent:
            log.warning("%s: languages.%s names %s, which none of its selected records has: no effect",
                        where or "mixture", kind, ", ".join(absent))
    keep: list[np.ndarray] = []
    for code in np.unique(langs):
        name = names[code]
        pos = np.flatnonzero(langs == code)
        w = rules.get("weights", {}).get(name)
        if w is not None:
            whole, frac = int(w), w - int(w)
            extra = rng.choice(pos, size=int(round(len(pos) * frac)), replace=False)
            pos = np.sort(np.concatenate([np.tile(pos, whole), extra]))
        cap = rules.get("caps", {}).get(name)
        if cap is not None and len(pos) > cap:
            pos = np.sort(rng.choice(pos, size=int(cap), replace=False))
        keep.append(pos)
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)


class Mixture:
    """A parsed mixture YAML; `resolve()` gives the `MixtureDataset`."""

    def __init__(self, sources: list[MixSource], seed: int = 0, shuffle: bool = False, languages: dict | None = None, name: str = "<mixture>"):
        if not sources:
            raise MixtureError(f"{name}: 'datasets' lists no sources")
        self.sources, self.seed, self.shuffle, self.languages, self.name = sources, seed, shuffle, languages or {}, name

    @classmethod
    def from_yaml(cls, path: str | Path, seed: int | None = None, overrides: list[str] | None = None) -> Mixture:
        """Read a mixture YAML; `overrides` (`key=value`, dotted keys of `MixtureKeys`) are applied onto it first."""
        from polyvlm.config import ConfigError, apply_overrides

        path = Path(path)
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as e:
            raise MixtureError(f"{path}: cannot read the mixture YAML: {e}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("datasets"), list):
            raise MixtureError(f"{path}: expected a mapping with a 'datasets' list")
        try:
            apply_overrides(doc, overrides or [], MixtureKeys)
        except ConfigError as e:
            raise MixtureError(f"{path}: {e}") from None
        unknown = set(doc) - {"seed", "shuffle", "datasets", "languages"}
        if unknown:
            raise MixtureError(f"{path}: unknown keys {sorted(unknown)} (known: seed, shuffle, datasets, languages)")
        sources = []
        for i, d in enumerate(doc["datasets"]):
            where = f"{path}: datasets[{i}]"
            if not isinstance(d, dict) or not (d.get("path") or d.get("json_path")):
                raise MixtureError(f"{where}: needs 'path' (or 'json_path')")
            extra = set(d) - {"path", "json_path", "sampling_strategy", "image_root", "image_folder", "languages"}
            if extra:
                raise MixtureError(f"{where}: unknown keys {sorted(extra)}")
            p = path.parent / str(d.get("path") or d.get("json_path"))
            root = d.get("image_root") or d.get("image_folder")
            strategy = str(d.get("sampling_strategy", "all"))
            if not _STRATEGY.match(strategy.strip()):
                raise MixtureError(f"{where}: unknown sampling_strategy {strategy!r} (all, first:N, end:N, random:N, first:10%)")
            sources.append(MixSource(p, strategy, path.parent / root if root else None, _lang_rules(d.get("languages"), where)))
        return cls(sources, int(doc.get("seed", 0) if seed is None else seed), bool(doc.get("shuffle", False)),
                   _lang_rules(doc.get("languages"), str(path)), str(path))

    def resolve(self) -> MixtureDataset:
        names: list[str] = []
        codes: dict[str, int] = {}
        per_src_idx, per_src_lang = [], []
        need_langs = bool(self.languages) or any(s.languages for s in self.sources)
        indexes = []
        for s_i, src in enumerate(self.sources):
            try:
                ix = RecordIndex(src.path)
            except Exception as e:
                raise MixtureError(f"{self.name}: source {src.path}: {e}") from None
            indexes.append(ix)
            rng = np.random.default_rng([self.seed, s_i, 0])
            idx = sample_indices(len(ix), src.strategy, rng)
            if need_langs:
                all_langs = np.zeros(len(ix), np.int32)
                for j, (_, _, obj) in enumerate(iter_raw(src.path)):
                    tag = _lang_key(obj.get("language")) if isinstance(obj, dict) else NONE_LANG
                    if tag not in codes:
                        codes[tag] = len(names)
                        names.append(tag)
                    all_langs[j] = codes[tag]
                langs = all_langs[idx]
                sel = apply_language_rules(idx, langs, names, src.languages, np.random.default_rng([self.seed, s_i, 1]),
                                           f"{self.name}: {src.path.name}")
                idx, langs = idx[sel], langs[sel]
            else:
                langs = np.zeros(len(idx), np.int32)
            per_src_idx.append(idx)
            per_src_lang.append(langs)
        src_ids = np.concatenate([np.full(len(x), i, np.int32) for i, x in enumerate(per_src_idx)])
        rec_ids = np.concatenate(per_src_idx)
        if self.languages:
            sel = apply_language_rules(rec_ids, np.concatenate(per_src_lang), names, self.languages,
                                       np.random.default_rng([self.seed, len(self.sources), 2]), self.name)
            src_ids, rec_ids = src_ids[sel], rec_ids[sel]
        if self.shuffle:
            perm = np.random.default_rng([self.seed, len(self.sources), 3]).permutation(len(rec_ids))
            src_ids, rec_ids = src_ids[perm], rec_ids[perm]
        return MixtureDataset(self.sources, indexes, src_ids, rec_ids)


class MixtureDataset:
    """The resolved mixture: `len()`, `[i] -> Record` (read from disk), `root_of(i)` for its media.

    Each Record also carries its source's media root as `record.extra["_image_root"]` (not written out).
    """

    def __init__(self, sources: list[MixSource], indexes: list[RecordIndex], src_ids: np.ndarray, rec_ids: np.ndarray):
        self.sources, self.indexes, self.src_ids, self.rec_ids = sources, indexes, src_ids, rec_ids
        # occurrence number of each (source, record) pair: repeats (weights > 1) get ids `id#2`, `id#3`...
        key = src_ids.astype(np.int64) << 40 | rec_ids
        order = np.argsort(key, kind="stable")
        ks = key[order]
        new_group = np.concatenate([[True], ks[1:] != ks[:-1]]) if len(ks) else np.zeros(0, bool)
        group_start = np.maximum.accumulate(np.where(new_group, np.arange(len(ks)), 0)) if len(ks) else ks
        self.repeat = np.empty(len(ks), np.int32)
        self.repeat[order] = np.arange(len(ks)) - group_start

    def __len__(self) -> int:
        return len(self.rec_ids)

    def root_of(self, i: int) -> Path:
        return self.sources[int(self.src_ids[i])].root()

    def __getitem__(self, i: int) -> Record:
        rec = self.record(i)
        rec.extra["_image_root"] = str(self.root_of(i))
        return rec

    def record(self, i: int) -> Record:
        """Record i as stored, except that the k-th repeat of a record (k >= 2) has the id `id#k`."""
        rec = self.indexes[int(self.src_ids[i])][int(self.rec_ids[i])]
        if self.repeat[i]:
            rec.id = f"{rec.id}#{int(self.repeat[i]) + 1}"
        return rec

    def counts(self) -> dict[str, int]:
        c = Counter(self.src_ids.tolist())
        return {str(s.path): int(c.get(i, 0)) for i, s in enumerate(self.sources)}


def load_mixture(path: str | Path, seed: int | None = None) -> MixtureDataset:
    """Parse and resolve a mixture YAML (what `LazyRecords` calls)."""
    return Mixture.from_yaml(path, seed).resolve()


def iter_rebased(ds: MixtureDataset, on_error: Callable[[RecordError], None] | None = None) -> Iterator[Record]:
    """Every record in mixture order, media paths rebased onto `common_media_root(ds)` (what `data mix` writes).

    A bad record raises its RecordError (file, line, id, reason), or goes to `on_error` and is left out.
    """
    _, prefixes = common_media_root(ds)
    for i in range(len(ds)):
        try:
            rec = ds.record(i)
        except RecordError as e:
            if on_error is None:
                raise
            on_error(e)
            continue
        rebase_media(rec, prefixes[int(ds.src_ids[i])])
        yield rec


def load_mixture_records(path: str | Path, on_error: Callable[[RecordError], None] | None = None,
                         seed: int | None = None) -> tuple[list[Record], Path]:
    """`(records, media root)` of a mixture YAML, the shape of `polyvlm.train.loop.load_records`' result.

    For a trainer that takes a list of records: the mixture resolved from its seed, every record read,
    media paths relative to the one returned root.
    """
    ds = load_mixture(path, seed)
    return list(iter_rebased(ds, on_error)), common_media_root(ds)[0]


def common_media_root(ds: MixtureDataset) -> tuple[Path, list[str]]:
    """One root for all sources and, per source, the prefix to put before its media paths."""
    roots = [Path(os.path.realpath(s.root())) for s in ds.sources]
    common = Path(os.path.commonpath([str(r) for r in roots]))
    prefixes = [Path(os.path.relpath(r, common)).as_posix() for r in roots]
    return common, ["" if p == "." else p for p in prefixes]


def rebase_media(rec: Record, prefix: str) -> None:
    """Prefix relative media paths (data URIs and absolute paths are left for validation to judge)."""
    if not prefix:
        return
    for m, refs in rec.media.items():
        rec.media[m] = [r if r.startswith("data:") or posixpath.isabs(r) else f"{prefix}/{r}" for r in refs]
