"""Saved answers: every batch reaches the file at once (a killed run keeps it), forced to disk on a time
interval and when the task ends rather than per batch."""

from __future__ import annotations

import os

from polyvlm.eval.runner import Progress


def test_batches_are_readable_at_once_and_synced_on_interval_and_close(tmp_path, monkeypatch):
    syncs = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (syncs.append(fd), real_fsync(fd)))
    p = Progress(tmp_path, "task", rank=0)
    for i in range(50):
        p.append([{"id": f"s{i}", "prediction": "x"}])
        assert len(Progress(tmp_path, "task", rank=0).load()) == i + 1  # what a resumed run would read now
    assert syncs == []  # 50 quick batches: no fsync each
    p.SYNC_SECONDS = 0.0
    p.append([{"id": "late", "prediction": "y"}])
    assert len(syncs) == 1  # the interval passed
    p.close()
    assert len(syncs) == 2 and set(p.load()) == {f"s{i}" for i in range(50)} | {"late"}
