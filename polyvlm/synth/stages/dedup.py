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
import zlib
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
        """Three passes over `records()` (which yields the same records in the same order each time), holding
        flat arrays of about 150 bytes per record instead of Python objects: 10M records fit in a few GB."""
        p = self.params
        # pass 1: content hash, normalised-text hash and id of every record
        rec_h, text_h, ids = array("Q"), array("Q"), _Strings()
        for rec in records():
            rh = record_hash(rec)
            rec_h.append(rh)
            text_h.append(_h64(normalized_text(rec, p.include_media)) if p.exact else rh)
            ids.add(str(rec.get("id")))
        n = len(rec_h)
        rh_a, th_a = np.frombuffer(rec_h, np.uint64), np.frombuffer(text_h, np.uint64)
        # the record kept for each normalised text is the one with the smallest content hash (order-free)
        keeper = np.arange(n)
        if n:
            order = np.lexsort((rh_a, th_a))
            lead = np.ones(n, bool)
            lead[1:] = th_a[order][1:] != th_a[order][:-1]
            keeper[order] = order[np.maximum.accumulate(np.where(lead, np.arange(n), 0))]
        near_of = np.full(n, -1, np.int64)
        if p.near and n:
            self._near(records, keeper, rh_a, near_of)
        for i, rec in enumerate(records()):
            if keeper[i] != i:
                drop(rec, "exact_duplicate", f"same normalised text as id={ids[int(keeper[i])]}")
            elif near_of[i] >= 0:
                drop(rec, "near_duplicate", f"near duplicate (MinHash J>={p.threshold}) of id={ids[int(near_of[i])]}")
            else:
                emit(rec)

    def _near(self, records: Callable[[], Iterable[dict]], keeper: np.ndarray, rh: np.ndarray,
              near_of: np.ndarray) -> None:
        """MinHash LSH over the exact survivors, visited in content-hash order: a record sharing a band with an
        earlier kept record (about the same media) is a near duplicate of it."""
        from datasketch import MinHash, MinHashLSH

        p = self.params
        # the bands x rows split datasketch's LSH picks for this threshold (false positives and negatives
        # weighted equally); the index itself is ours (a sort over band keys), so only its parameters are read
        lsh = MinHashLSH(threshold=p.threshold, num_perm=p.num_perm, weights=(0.5, 0.5))
        bands, rows = lsh.b, lsh.r
        template = MinHash(num_perm=p.num_perm, seed=1)  # permutations made once, not per record
        reuse = {"permutations": template.permutations}
        if hasattr(template, "scheme"):  # datasketch >= 2 asks which hashing scheme the permutations are for
            reuse["scheme"] = template.scheme
        keys, survivors = array("Q"), array("Q")
        for i, rec in enumerate(records()):
            if keeper[i] != i:
                continue
            m = MinHash(num_perm=p.num_perm, seed=1, hashfunc=_same, **reuse)
            m.update_batch(shingle_hashes(normalized_text(rec, False), p.shingle))
            media = canonical_json([rec.get(k) for k in ("image", "video", "audio")]) if p.include_media else ""
            hv = m.hashvalues
            keys.extend(_h64(f"{b}\x00{media}", hv[b * rows : (b + 1) * rows].tobytes()) for b in range(bands))
            survivors.append(i)
        surv = np.frombuffer(survivors, np.uint64).astype(np.int64)
        _, bucket = np.unique(np.frombuffer(keys, np.uint64), return_inverse=True)
        bucket = bucket.reshape(len(surv), bands)
        first_kept = np.full(int(bucket.max()) + 1, -1, np.int64)
        for j in np.argsort(rh[surv], kind="stable"):
            hits = first_kept[bucket[j]]
            hits = hits[hits >= 0]
            if hits.size:
                near_of[surv[j]] = surv[hits[np.argmin(rh[surv[hits]])]]  # reason: the same id in any order
            else:
                first_kept[bucket[j]] = j


def shingle_hashes(text: str, k: int) -> list[int]:
    """Distinct CRC-32s of the `k`-character shingles of `text` (the whole text when shorter). CRC-32 is
    deterministic across processes (a resumed run decides alike) and ~5x cheaper than datasketch's default
    SHA-1 per shingle, which at 10M records is hours of CPU."""
    return list({zlib.crc32(text[j : j + k].encode()) for j in range(max(1, len(text) - k + 1))})


def _same(x: int) -> int:
    return x


def _h64(text: str, extra: bytes = b"") -> int:
    return int.from_bytes(hashlib.blake2b(text.encode() + b"\x00" + extra, digest_size=8).digest(), "big")


class _Strings:
    """Many short strings in one buffer (an id costs its bytes plus 8), read back by index."""

    def __init__(self) -> None:
        self.buf, self.ends = bytearray(), array("Q")

    def add(self, s: str) -> None:
        self.buf += s.encode()
        self.ends.append(len(self.buf))

    def __getitem__(self, i: int) -> str:
        return self.buf[(self.ends[i - 1] if i else 0) : self.ends[i]].decode()


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
