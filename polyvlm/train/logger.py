"""Training metrics sinks: JSONL (always), TensorBoard event files, Weights & Biases when installed and asked."""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger("polyvlm.train")


class MetricsLogger:
    """`log(step, {name: value})` to every enabled sink; only rank 0 creates one."""

    def __init__(self, run_dir: Path, tensorboard: bool = True, wandb: bool = False, config: dict | None = None):
        self.jsonl = (run_dir / "train_log.jsonl").open("a", encoding="utf-8")
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tensorboard"))
            except ImportError:
                log.warning("tensorboard is not installed: no event files (pip install tensorboard)")
        self.wandb = None
        if wandb:
            try:
                import wandb as wb

                self.wandb = wb.init(project="polyvlm", dir=str(run_dir), config=config or {})
            except ImportError:
                log.warning("train.wandb=true but wandb is not installed (pip install wandb): logging without it")

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
