"""results.png: the score axis starts at 0 and spans the 0-100 scale even when a run scores 0 everywhere."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from polyvlm.eval.report import plot  # noqa: E402


@pytest.mark.parametrize(("scores", "top"), [((0.0, 0.0), 102.0), ((40.0, 12.5), 102.0), ((130.0, 20.0), 132.6)])
def test_score_axis_is_pinned_at_zero(tmp_path, monkeypatch, scores, top):
    figs = []
    monkeypatch.setattr(plt, "close", figs.append)  # keep the figure to read its axis
    tasks = {f"t{i}": {"main_metric": "accuracy", "metrics": {"accuracy": {"overall": s, "by_language": {"en": s}}}}
             for i, s in enumerate(scores)}
    plot({"tasks": tasks}, tmp_path / "results.png")
    (ax,) = figs[0].axes
    assert ax.get_ylim() == pytest.approx((0.0, top))
    assert (tmp_path / "results.png").stat().st_size > 1000
