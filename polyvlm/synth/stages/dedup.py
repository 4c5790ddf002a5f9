"""Whole-dataset stages: `dedup` (exact normalised hash + MinHash LSH near-duplicates) and `balance` (caps,
weights and an English share per language and category).

Both decide independently of input order (ties go to the smaller content hash), so a resumed pipeline
whose earlier stage wrote its shards in a different order still ends with the same records.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from polyvlm.data.langs import language_or_none
from polyvlm.synth.stages.base import Stage, register, strip_placeholders
from polyvlm.synth.store import canonical_json

_WS = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s]", re.U)


def record_hash(record: dict, salt: str = "") -> int:
    return int.from_bytes(hashlib.blake2b((salt + canonical_json(record)).encode(), digest_size=8).digest(), "big")


def normalized_text(record: dict, include_media: bool = True) -> str:
    """NFKC, lower case, punctuation dropped, whitespace collapsed; media references prepended."""
    turns = " ".join(strip_placeholders(str(t.get("value", ""))) for t in record.get("conversations", []))
    if not turns and "alt_text" in record:
        turns = str(record["alt_text"])
    text = _WS.sub(" ", _PUNCT.sub(" ", unicodedata.normalize("NFKC", turns).lower())).strip()
    if include_media:
        media = [record.get(k) for k in ("image", "video", "audio") if record.get(k)]
        text = canonical_json(media) + "\n" + text
    return text


@dataclass
class DedupParams:
    exact: bool = True
    near: bool = True
    threshold: float = 0.85  # estimated Jaccard similarity of character shingles counted as a near duplicate
    num_perm: int = 128
    shingle: int = 5  # characters per shingle (works for scripts without spaces)
    include_media: bool = True  # the same text about different images is not a duplicate


@register
class Dedup(Stage):
    name = "dedup"
    Params = DedupParams
    has_map = False
    has_reduce = True

    def reduce(self, records: Callable[[], Iterable[dict]], emit: Callable[[dict], None],
               drop: Callable[[dict, str, str], None]) -> None:
        p = self.params
        # pass 1: the smallest record hash per normalised text
        best: dict[bytes, tuple[int, str]] = {}
        for rec in records():
            h = hashlib.blake2b(normalized_text(rec, p.include_media).encode(), digest_size=12).digest()
            rh = record_hash(rec)
            if not p.exact:
                h = rh.to_bytes(8, "big")
            if h not in best or rh < best[h][0]:
                best[h] = (rh, str(rec.get("id")))
        keep_exact = {rh for rh, _ in best.values()}
        # pass 2: MinHash LSH over the survivors, in hash order
        near_of: dict[int, str] = {}
        if p.near:
            from datasketch import MinHash, MinHashLSH

            sigs: list[tuple[int, str, MinHash]] = []
            for rec in records():
                rh = record_hash(rec)
                if rh not in keep_exact:
                    continue
                text = normalized_text(rec, False)
                grams = {text[i : i + p.shingle] for i in range(max(1, len(text) - p.shingle + 1))}
                m = MinHash(num_perm=p.num_perm, seed=1)
                m.update_batch([g.encode() for g in grams])
                media = canonical_json([rec.get(k) for k in ("image", "video", "audio")]) if p.include_media else ""
                sigs.append((rh, media + "\x00" + str(rec.get("id")), m))
            sigs.sort(key=lambda s: s[0])
            lsh = MinHashLSH(threshold=p.threshold, num_perm=p.num_perm)
            media_of: dict[str, str] = {}
            for rh, tag, m in sigs:
                media, rid = tag.split("\x00", 1)
                hits = [h for h in lsh.query(m) if media_of[h] == media]
                if hits:
                    near_of[rh] = hits[0].split("#", 1)[1]
                    continue
                name = f"{rh}#{rid}"
                media_of[name] = media
                lsh.insert(name, m)
        emitted: set[int] = set()
        for rec in records():
            rh = record_hash(rec)
            if rh not in keep_exact or rh in emitted:
                h = hashlib.blake2b(normalized_text(rec, p.include_media).encode(), digest_size=12).digest()
                drop(rec, "exact_duplicate", f"same normalised text as id={best[h][1]}")
            elif rh in near_of:
                drop(rec, "near_duplicate", f"near duplicate (MinHash J>={p.threshold}) of id={near_of[rh]}")
            else:
                emit(rec)
                emitted.add(rh)  # identical records (same hash) are emitted once


@dataclass
class BalanceParams:
    cap_per_language: dict = field(default_factory=dict)  # {en: 100000, "*": 50000}
    cap_per_category: dict = field(default_factory=dict)  # {ocr: 20000}
    weight_per_language: dict = field(default_factory=dict)  # {sw: 2.0} (> 1 repeats records)
    weight_per_category: dict = field(default_factory=dict)  # {chart: 0.5}
    english_share: float | None = None  # at most this fraction of the output is English (Pangea studied 0.4)
    seed: int = 0


def _lookup(table: dict, key: str, default: float) -> float:
    return float(table.get(key, table.get("*", default)))


@register
class Balance(Stage):
    name = "balance"
    Params = BalanceParams
    has_map = False
    has_reduce = True

    def targets(self, counts: Counter) -> dict[tuple[str, str], int]:
        """Records to keep per (language, category) group from the group sizes."""
        p = self.params
        t = {g: n * _lookup(p.weight_per_language, g[0], 1.0) * _lookup(p.weight_per_category, g[1], 1.0)
             for g, n in counts.items()}
        for axis, caps in ((0, p.cap_per_language), (1, p.cap_per_category)):
            totals: dict[str, float] = defaultdict(float)
            for g, v in t.items():
                totals[g[axis]] += v
            for g in t:
                cap = _lookup(caps, g[axis], math.inf)
                if totals[g[axis]] > cap:
                    t[g] *= cap / totals[g[axis]]
        if p.english_share is not None:
            if not 0 < p.english_share < 1:
                raise ValueError(f"stage balance: english_share must be in (0, 1), got {p.english_share}")
            en = sum(v for g, v in t.items() if g[0].split("-")[0] == "en")
            other = sum(t.values()) - en
            allowed = p.english_share / (1 - p.english_share) * other
            if en > allowed:
                for g in t:
                    if g[0].split("-")[0] == "en":
                        t[g] *= allowed / en
        return {g: int(math.floor(v + 1e-9)) for g, v in t.items()}

    @staticmethod
    def group(rec: dict) -> tuple[str, str]:
        lang = rec.get("language")
        lang = (language_or_none(lang) or str(lang)) if isinstance(lang, str) and lang.strip() else "und"
        return lang, str(rec.get("category") or "uncategorized")

    def reduce(self, records: Callable[[], Iterable[dict]], emit: Callable[[dict], None],
               drop: Callable[[dict, str, str], None]) -> None:
        salt = f"balance:{self.params.seed}:"
        ranks: dict[tuple[str, str], array] = defaultdict(lambda: array("Q"))
        for rec in records():
            ranks[self.group(rec)].append(record_hash(rec, salt))
        target = self.targets(Counter({g: len(r) for g, r in ranks.items()}))
        cut: dict[tuple[str, str], tuple[int, int]] = {}  # group -> (full repeats, rank threshold)
        for g, r in ranks.items():
            n, k = len(r), target[g]
            repeats, rest = divmod(k, n)
            arr = np.frombuffer(r, dtype=np.uint64)
            threshold = int(np.partition(arr, rest - 1)[rest - 1]) if rest else -1
            cut[g] = (repeats, threshold)
        for rec in records():
            g = self.group(rec)
            repeats, threshold = cut[g]
            copies = repeats + (1 if record_hash(rec, salt) <= threshold else 0)
            if copies == 0:
                drop(rec, "balance_cap", f"group language={g[0]} category={g[1]}: keep {target[g]} of {len(ranks[g])}")
            for c in range(copies):
                emit(rec if c == 0 else dict(rec, id=f"{rec.get('id')}#rep{c}"))
