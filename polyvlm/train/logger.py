"""Training metrics sinks: JSONL (always), TensorBoard event files, Weights & Biases when installed and asked;
the progress-bar line that shows the same numbers."""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger("polyvlm.train")


def _step(line: str) -> float:
    """The step of a JSONL row; infinity for a line cut short by a crash (so it is dropped)."""
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return float("inf")


class MetricsLogger:
    """`log(step, {name: value})` to every enabled sink; only rank 0 creates one."""

    def __init__(self, run_dir: Path, tensorboard: bool = True, wandb: bool = False, config: dict | None = None,
                 start_step: int = 0, wandb_id: str = ""):
        """`start_step` > 0 (a resumed run): rows after it, logged before the crash, are dropped from every sink,
        since the resumed run logs those steps again. `wandb_id`: the Weights & Biases run to create or continue
        (a resumed run passes the id its checkpoint recorded; wandb ignores steps it already has)."""
        path = run_dir / "train_log.jsonl"
        if start_step > 0 and path.is_file():
            kept = [x for x in path.read_text(encoding="utf-8").splitlines() if _step(x) <= start_step]
            path.write_text("".join(x + "\n" for x in kept), encoding="utf-8")
        self.jsonl = path.open("a", encoding="utf-8")
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=start_step + 1 if start_step else None)
            except ImportError:
                log.warning("tensorboard is not installed: no event files (pip install 'polyvlm[tb]', or "
                            "train.tensorboard=false to silence this)")
        self.wandb = None
        if wandb:
            try:
                import wandb as wb

                ids = {"id": wandb_id} if wandb_id else {}
                self.wandb = wb.init(project="polyvlm", dir=str(run_dir), config=config or {}, resume="allow", **ids)
                if start_step > 0:
                    log.info("continuing Weights & Biases run %s from step %d", wandb_id, start_step)
            except ImportError:
                log.warning("train.wandb=true but wandb is not installed (pip install 'polyvlm[wandb]'): logging without it")

    def log(self, step: int, row: dict) -> None:
        self.jsonl.write(json.dumps({"step": step, **row}, ensure_ascii=False) + "\n")
        self.jsonl.flush()
        flat = {}
        for k, v in row.items():
            if isinstance(v, dict):
                flat.update({f"{k}/{kk}": vv for kk, vv in v.items()})
            elif isinstance(v, (int, float)):
                flat[k] = v
        if self.tb is not None:
            for k, v in flat.items():
                self.tb.add_scalar(k, v, step)
        if self.wandb is not None:
            self.wandb.log(flat, step=step)

    def close(self) -> None:
        self.jsonl.close()
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()


def progress_line(row: dict) -> str:
    """One line with a step row's numbers, for the progress bar and log lines."""
    langs = " ".join(f"{k}={v:.3f}" for k, v in row.get("loss_by_language", {}).items())
    epoch = f"epoch={row['epoch']:.2f} " if "epoch" in row else ""
    return (f"{epoch}loss={row['loss']:.4f} lr={row['lr']:.2e} gnorm={row['grad_norm']:.3f} tok/s={row['tokens_per_s']:.0f} "
            f"sup={row['supervised_fraction']:.2f} pad={row['padding_fraction']:.2f}" + (f" [{langs}]" if langs else ""))
