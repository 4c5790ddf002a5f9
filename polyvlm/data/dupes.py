"""Duplicate ids over any number of records in bounded memory: 8-byte id hashes spilled to a temp file.

`IdHashes.append(h)` once per record (in file order); `repeated()` then returns `(duplicate, first)`
pairs of record positions whose hashes are equal. The hashes live in a temporary file, and the search
reads it once per partition of the hash space, so memory holds one partition (`PART` hashes with their
positions) however many records there are. Equal hashes are candidates: the caller confirms each pair
by reading both ids back (a 64-bit collision is not a duplicate).
"""

from __future__ import annotations

import tempfile
from array import array

import numpy as np

PART = 1 << 18  # hashes per partition searched at once (about 10 MB of arrays)
BUFFER = 1 << 16  # hashes kept in memory before they are spilled to the file
_READ = 1 << 17  # hashes read from the file per chunk (1 MB)


class IdHashes:
    def __init__(self) -> None:
        self._buf = array("q")
        self._file = tempfile.TemporaryFile(prefix="polyvlm-ids-")
        self._spilled = 0

    def __len__(self) -> int:
        return self._spilled + len(self._buf)

    def append(self, h: int) -> None:
        self._buf.append(h)
        if len(self._buf) >= BUFFER:
            self._spill()

    def _spill(self) -> None:
        if self._buf:
            self._file.write(self._buf.tobytes())
            self._spilled += len(self._buf)
            self._buf = array("q")

    def _chunks(self):
        self._file.seek(0)
        offset = 0
        while True:
            data = self._file.read(_READ * 8)
            if not data:
                return
            chunk = np.frombuffer(data, dtype=np.int64)
            yield offset, chunk
            offset += len(chunk)

    def repeated(self) -> list[tuple[int, int]]:
        """`(duplicate position, first position)` for every record whose hash appeared before, sorted."""
        self._spill()
        parts = max(1, -(-self._spilled // PART))
        pairs: list[tuple[int, int]] = []
        for p in range(parts):
            hs, ps = [], []
            for offset, chunk in self._chunks():
                idx = np.flatnonzero(chunk.view(np.uint64) % np.uint64(parts) == p) if parts > 1 else np.arange(len(chunk))
                hs.append(chunk[idx])
                ps.append(idx + offset)
            if not hs:
                continue
            h, pos = np.concatenate(hs), np.concatenate(ps)
            order = np.argsort(h, kind="stable")  # stable: equal hashes stay in file order, the first one first
            h, pos = h[order], pos[order]
            same = np.concatenate([[False], h[1:] == h[:-1]])
            if not same.any():
                continue
            run = np.cumsum(~same) - 1  # which run of equal hashes each entry belongs to
            first = pos[~same][run]
            dup = np.flatnonzero(same)
            pairs.extend(zip(pos[dup].tolist(), first[dup].tolist()))
        return sorted(pairs)

    def close(self) -> None:
        self._file.close()
