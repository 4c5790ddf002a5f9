"""The training dataset's checked-record arrays, cached in the run directory: a resumed run skips the pass
that checks and measures every record (hours at 10M records) when neither the data nor the processor changed."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from polyvlm.data.dataset import LazyRecords

log = logging.getLogger("polyvlm.data")
VERSION = 1


def source_key(records: LazyRecords, processor: Any, on_bad_record: str) -> str:
    """Digest of what the arrays depend on: each data file (path, size, mtime), the resolved mixture order,
    the media roots, every processor setting, the tokenizer and the bad-record policy."""
    h = hashlib.sha256(f"v{VERSION}:{on_bad_record}".encode())
    if records.mixture is not None:
        mix = records.mixture
        files, roots = [s.path for s in mix.sources], [s.root() for s in mix.sources]
        h.update(mix.src_ids.tobytes())
        h.update(mix.rec_ids.tobytes())
    else:
        files, roots = [ix.path for ix in records.indexes], records.roots
    for f in files:
        st = Path(f).stat()
        h.update(f"{Path(f).resolve()}:{st.st_size}:{st.st_mtime_ns};".encode())
    for r in roots:
        h.update(f"root:{Path(r).resolve()};".encode())
    h.update(json.dumps(dataclasses.asdict(processor.config), sort_keys=True, default=str).encode())
    backend = getattr(processor.tokenizer, "backend_tokenizer", None)
    h.update(backend.to_str().encode() if backend is not None else repr(processor.tokenizer.get_vocab()).encode())
    return h.hexdigest()


def load(path: Path, key: str) -> dict[str, Any] | None:
    """The cached arrays when `path` holds them for `key`, else None."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:
                log.info("%s is for other data or settings: checking every record again", path)
                return None
            meta = json.loads(str(z["meta"]))
            return {"index": z["index"], "lengths": z["lengths"], "has_image": z["has_image"],
                    "lang_codes": z["lang_codes"], "lang_names": meta["lang_names"], "skipped": meta["skipped"]}
    except (OSError, ValueError, KeyError) as e:  # unreadable: rebuild
        log.warning("ignoring unreadable %s (%s)", path, e)
        return None


def save(path: Path, key: str, arrays: dict[str, Any]) -> None:
    """Write atomically (temp file + rename): a half-written cache never exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    meta = json.dumps({"lang_names": arrays["lang_names"], "skipped": arrays["skipped"]})
    with open(tmp, "wb") as f:
        np.savez(f, key=np.array(key), meta=np.array(meta), index=arrays["index"], lengths=arrays["lengths"],
                 has_image=arrays["has_image"], lang_codes=arrays["lang_codes"])
    os.replace(tmp, path)
