"""report.png: count axes start at 0, also when a run produced nothing (no axis around zero, -0.04 to 0.04)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from polyvlm.synth.report import plot_report  # noqa: E402


@pytest.mark.parametrize(("counts", "top"), [((0, 0, 0), 1.05), ((40, 10, 30), 42.0)])
def test_count_axes_are_pinned_at_zero(tmp_path, monkeypatch, counts, top):
    figs = []
    monkeypatch.setattr(plt, "close", figs.append)  # keep the figure to read its axes
    rows = [{"index": 0, "stage": "judge", "in": counts[0], "out": counts[1], "rejected": counts[2]}]
    stats = [{"stage": "judge", "scores": {"1": counts[1], "5": counts[1]}}]
    plot_report(rows, stats, tmp_path / "report.png")
    stages, scores = figs[0].axes
    assert stages.get_ylim() == pytest.approx((0.0, top))
    assert scores.get_ylim() == pytest.approx((0.0, 1.05 * max(1, counts[1])))
    assert (tmp_path / "report.png").stat().st_size > 1000
