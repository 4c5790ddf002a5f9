"""Duplicate ids over any number of records in bounded memory: 8-byte id hashes spilled to a temp file, and
the look-up that names a duplicate (line and id of chosen records, per format).

`IdHashes.append(h)` once per record (in file order); `repeated()` then returns `(duplicate, first)`
pairs of record positions whose hashes are equal. The hashes live in a temporary file, and the search
reads it once per partition of the hash space, so memory holds one partition (`PART` hashes with their
positions) however many records there are. Equal hashes are candidates: the caller confirms each pair
by reading both ids back (a 64-bit collision is not a duplicate).
"""

from __future__ import annotations

import json
import tempfile
from array import array
from pathlib import Path
from typing import Any

import numpy as np

from polyvlm.data.formats import FORMATS, to_llava_dict
from polyvlm.data.readers import detect_format, iter_raw, open_binary
from polyvlm.data.records import normalise_id

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


def locate_records(path: Path, indices: set[int]) -> dict[int, tuple[int | None, str | None]]:
    """Line and normalised id of some records of one file, in memory that does not grow with the file: the
    format's `locate` capability when it has one, else a pass of its reader."""
    fmt = detect_format(path)
    locate = FORMATS.get(fmt).capability("locate")
    if locate is not None:
        return locate(path, indices)
    return {index: (line, _rid(obj)) for index, line, obj in iter_raw(path, fmt) if index in indices}


def _rid(obj: Any) -> str | None:
    return normalise_id(obj.get("id")) if isinstance(obj, dict) else None


def locate_rows(path: Path, indices: set[int]) -> dict[int, tuple[int | None, str | None]]:
    """Parquet: read only the row groups holding the wanted rows."""
    from polyvlm.data.index import RecordIndex

    ix = RecordIndex(path, cache=False)
    return {i: (None, _rid(ix.raw(i))) for i in indices}


def locate_lines(path: Path, indices: set[int]) -> dict[int, tuple[int | None, str | None]]:
    """JSON lines: one pass over the lines decoding only the wanted ones (the same index rule as the reader)."""
    out: dict[int, tuple[int | None, str | None]] = {}
    last = max(indices)
    index = 0
    with open_binary(path) as f:
        for lineno, line in enumerate(f, 1):
            if lineno == 1 and line.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark
                line = line[3:]
            if not line.strip():
                continue
            if index in indices:
                try:
                    obj = json.loads(line.decode("utf-8"))
                except ValueError:  # JSONDecodeError and UnicodeDecodeError
                    obj = None
                out[index] = (lineno, _rid(to_llava_dict(obj)))
            if index == last:
                break
            index += 1
    return out
