"""The training loop: one process, gradient accumulation with loss normalised by the supervised tokens of
the whole optimizer step, clipping, warm-up + cosine, progress bar, JSONL log, atomic checkpoints."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from polyvlm.config import Config
from polyvlm.data.readers import iter_records
from polyvlm.data.records import Record, RecordError
from polyvlm.models import factory
from polyvlm.models.checkpoint import save_checkpoint
from polyvlm.models.processor import IGNORE
from polyvlm.train.dataset import TrainDataset, collate
from polyvlm.train.optim import build_optimizer
from polyvlm.train.stages import apply_stage
from polyvlm.utils import pick_device, seed_everything

log = logging.getLogger("polyvlm.train")


@dataclass
class TrainResult:
    checkpoint: Path
    history: list[dict] = field(default_factory=list)
    skipped: dict = field(default_factory=dict)
    wall_seconds: float = 0.0


def load_records(cfg: Config, on_error: Callable[[RecordError], None] | None = None) -> tuple[list[Record], Path]:
    """Records and image root for `cfg.data` (`builtin:scenes:KIND:N` generates quick start scenes).

    Records that cannot be parsed go to `on_error` (file, line, id, reason) instead of stopping the read.
    """
    path = cfg.data.path
    if not path:
        raise ValueError("data.path is empty: name a JSON/JSONL/Parquet file of LLaVA records")
    if path.startswith("builtin:scenes"):
        from polyvlm.quickstart.scenes import make_split, write_jsonl

        parts = path.split(":")
        kind = parts[2] if len(parts) > 2 else "qa"
        n = int(parts[3]) if len(parts) > 3 else 512
        out = Path(cfg.train.output_dir) / "data"
        file = write_jsonl(make_split(out, n, cfg.train.seed, kind), out / f"{kind}.jsonl")
        return list(iter_records([file])), out
    root = Path(cfg.data.image_root) if cfg.data.image_root else Path(path).parent
    return list(iter_records([path], on_error=on_error)), root


def _batches(ds: TrainDataset, batch_size: int, seed: int, pad_id: int):
    """Endless shuffled micro-batches; the order depends only on the seed and the epoch."""
    epoch = 0
    while True:
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(len(ds), generator=g).tolist()
        bs = min(batch_size, len(ds))
        for i in range(0, len(order) - bs + 1, bs):  # the last incomplete batch is dropped
            items = [ds[j] for j in order[i : i + bs]]
            if any(it is not None for it in items):
                yield collate(items, pad_id)
        epoch += 1


def train(cfg: Config, records: list[Record] | None = None, image_root: str | Path | None = None,
          show_progress: bool = True) -> TrainResult:
    """Run `cfg.train.max_steps` optimizer steps of `cfg.train.stage`; returns the final checkpoint path."""
    t0 = time.time()
    tc = cfg.train
    out = Path(tc.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / "config.yaml")
    seed_everything(tc.seed)
    read_errors: list[RecordError] = []
    if records is None:
        records, root = load_records(cfg, read_errors.append)
    else:
        root = Path(image_root or ".")
    model, processor = factory.build(cfg.model)
    device = pick_device(tc.device)
    model.to(device)
    ds = TrainDataset(records, processor, root, cfg.data.on_bad_record, read_errors)
    log.info("%d training examples (%d skipped) from %s", len(ds), sum(ds.skipped.values()), cfg.data.path or "memory")
    groups = apply_stage(model, tc.stage, tc.lr, tc.vision_lr, tc.weight_decay)
    opt, sched = build_optimizer(groups, tc.max_steps, tc.warmup_ratio, tc.min_lr_ratio)
    params = [p for g in groups for p in g["params"]]
    model.train()
    batches = _batches(ds, tc.batch_size, tc.seed, processor.pad_id)
    history: list[dict] = []
    log_path = out / "train_log.jsonl"
    log_file = log_path.open("a", encoding="utf-8")
    bar = tqdm(total=tc.max_steps, desc=f"{tc.stage}", disable=not show_progress, dynamic_ncols=True)
    tokens_seen, t_start = 0, time.time()
    try:
        for step in range(tc.max_steps):
            micro = [next(batches) for _ in range(tc.grad_accum)]
            # the loss of the step is sum(token losses) / (supervised tokens in the whole step)
            n_sup = sum(int((mb["labels"][:, 1:] != IGNORE).sum()) for mb in micro)
            total = 0.0
            for mb in micro:
                res = model(mb["input_ids"].to(device), mb["attention_mask"].to(device),
                            None if mb["pixels"] is None else mb["pixels"].to(device), mb["labels"].to(device))
                loss = res.loss_sum / max(n_sup, 1)
                loss.backward()
                total += float(loss.detach())
                tokens_seen += int(mb["attention_mask"].sum())
            gnorm = float(torch.nn.utils.clip_grad_norm_(params, tc.max_grad_norm if tc.max_grad_norm > 0 else math.inf))
            lr = sched.get_last_lr()[0]
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            tps = tokens_seen / max(time.time() - t_start, 1e-9)
            row = {"step": step + 1, "loss": round(total, 5), "lr": lr, "grad_norm": round(gnorm, 4),
                   "supervised_tokens": n_sup, "tokens_per_s": round(tps, 1)}
            history.append(row)
            bar.set_postfix(loss=f"{total:.4f}", tok_s=f"{tps:.0f}")
            bar.update(1)
            if (step + 1) % tc.log_every == 0 or step + 1 == tc.max_steps:
                log_file.write(json.dumps(row) + "\n")
                log_file.flush()
                if not show_progress:
                    log.info("step %d/%d loss %.4f lr %.2e grad_norm %.3f tok/s %.0f", step + 1, tc.max_steps, total, lr, gnorm, tps)
            if tc.save_every and (step + 1) % tc.save_every == 0 and step + 1 < tc.max_steps:
                save_checkpoint(model, processor, cfg, out / f"checkpoint-{step + 1}", {"step": step + 1})
    finally:
        bar.close()
        log_file.close()
    final = save_checkpoint(model, processor, cfg, out / "final", {"step": tc.max_steps})
    log.info("saved %s", final)
    return TrainResult(final, history, dict(ds.skipped), time.time() - t0)
