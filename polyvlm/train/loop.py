"""The training loop: one or many processes, gradient accumulation with the loss normalised by the supervised
tokens of the whole optimizer step (all micro-batches, all ranks), packing, exact resume, logging."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import defaultdict
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
from polyvlm.train import distributed as D
from polyvlm.train.dataset import TrainDataset, collate
from polyvlm.train.logger import MetricsLogger
from polyvlm.train.optim import build_optimizer
from polyvlm.train.packing import collate_varlen
from polyvlm.train.sampler import StepSampler
from polyvlm.train.stages import apply_stage
from polyvlm.train.state import latest_checkpoint, load_state, rotate, save_state
from polyvlm.utils import pick_device, seed_everything

log = logging.getLogger("polyvlm.train")


@dataclass
class TrainResult:
    checkpoint: Path
    history: list[dict] = field(default_factory=list)
    skipped: dict = field(default_factory=dict)
    wall_seconds: float = 0.0
    start_step: int = 0


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
        file = out / f"{kind}.jsonl"
        if not file.is_file():  # a resumed run reuses the data it generated
            write_jsonl(make_split(out, n, cfg.train.seed, kind), file)
        return list(iter_records([file])), out
    root = Path(cfg.data.image_root) if cfg.data.image_root else Path(path).parent
    return list(iter_records([path], on_error=on_error)), root


def _resume_dir(cfg: Config, out: Path) -> Path | None:
    r = cfg.train.resume
    if not r:
        return None
    if r == "auto":
        return latest_checkpoint(out)
    p = Path(r)
    if not (p / "trainer_state.json").is_file():
        raise FileNotFoundError(f"train.resume={r}: not a resumable checkpoint (no trainer_state.json)")
    return p


def _per_language(res, batch: dict) -> dict[str, tuple[float, int]]:
    """Summed loss and supervised tokens per language of the samples in `batch` (via segment ids)."""
    seg = batch["segment_ids"][:, 1:].to(res.token_loss.device)
    sup = batch["labels"][:, 1:].to(seg.device) != IGNORE
    out: dict[str, list] = defaultdict(lambda: [0.0, 0])
    for k, lang in enumerate(batch["languages"]):
        m = (seg == k) & sup
        out[lang or "und"][0] += float(res.token_loss.detach()[m].sum())
        out[lang or "und"][1] += int(m.sum())
    return {k: (v[0], v[1]) for k, v in out.items()}


def train(cfg: Config, records: list[Record] | None = None, image_root: str | Path | None = None,
          show_progress: bool = True) -> TrainResult:
    """Run `cfg.train.max_steps` optimizer steps of `cfg.train.stage`; returns the final checkpoint path."""
    t0 = time.time()
    tc = cfg.train
    device = pick_device(tc.device)
    dd = D.init_distributed(device)
    out = Path(tc.output_dir)
    if dd.main:
        out.mkdir(parents=True, exist_ok=True)
        cfg.save(out / "config.yaml")
    D.barrier(dd)
    seed_everything(tc.seed)
    read_errors: list[RecordError] = []
    if records is None:
        if dd.main:
            records, root = load_records(cfg, read_errors.append)
        D.barrier(dd)  # rank 0 may have generated the data
        if not dd.main:
            records, root = load_records(cfg, read_errors.append)
    else:
        root = Path(image_root or ".")
    model, processor = factory.build(cfg.model)
    model.to(device)
    ds = TrainDataset(records, processor, root, cfg.data.on_bad_record, read_errors)
    log.info("%d training examples (%d skipped) from %s", len(ds), sum(ds.skipped.values()), cfg.data.path or "memory")
    groups = apply_stage(model, tc.stage, tc.lr, tc.vision_lr, tc.weight_decay)
    if tc.grad_checkpointing:
        model.llm.gradient_checkpointing_enable()
    attn_impl = model.llm.config._attn_implementation
    if tc.packing:  # samples of a micro-batch share one row; attention stays within each sample
        from polyvlm.models import varlen

        model.llm.set_attn_implementation(varlen.NAME)
    wrapped = D.wrap(model, tc.strategy, dd)
    opt, sched = build_optimizer(groups, tc.max_steps, tc.warmup_ratio, tc.min_lr_ratio)
    params = [p for g in groups for p in g["params"]]
    start = 0
    resume_from = _resume_dir(cfg, out)
    if resume_from is not None:
        if dd.enabled and tc.strategy == "fsdp":
            raise ValueError("train.resume with train.strategy=fsdp is not supported yet; resume with ddp")
        from polyvlm.models.checkpoint import load_weights_into

        load_weights_into(model, resume_from)
        start = load_state(resume_from, opt, sched)["step"]
        log.info("resumed from %s at step %d", resume_from, start)
    keys = [(bool(ex.images), len(ex.input_ids)) for ex in ds.examples] if tc.group_by_length and not tc.packing else None
    sampler = StepSampler(len(ds), tc.batch_size, tc.grad_accum, dd.world, tc.seed, keys)
    model.train()
    history: list[dict] = []
    metrics = MetricsLogger(out, tc.tensorboard, tc.wandb, cfg.to_dict()) if dd.main else None
    bar = tqdm(total=tc.max_steps, initial=start, desc=tc.stage, disable=not (show_progress and dd.main), dynamic_ncols=True)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if tc.precision == "bf16"
                else contextlib.nullcontext())
    sup_total = pad_total = tok_total = 0.0
    t_start = time.time()

    def make_batch(idx: list[int]) -> dict:
        items = [ds[j] for j in idx]
        if tc.packing:
            return collate_varlen(items)
        return collate(items, processor.pad_id)

    def checkpoint(step: int, final: bool) -> Path | None:
        sd = D.full_state_dict(wrapped, tc.strategy, dd)
        path = out / ("final" if final else f"checkpoint-{step}")
        if dd.main:
            writer = None if final else (lambda d: save_state(d, step, opt, sched))
            save_checkpoint(model, processor, cfg, path, {"step": step}, write_extra=writer, state_dict=sd)
            if not final:
                rotate(out, tc.keep_last)
        D.barrier(dd)
        return path

    try:
        for step in range(start, tc.max_steps):
            micro = [make_batch(idx) for idx in sampler.micro_batches(step, dd.rank)]
            local_sup = sum(int((mb["labels"][:, 1:] != IGNORE).sum()) for mb in micro)
            # every rank divides by the supervised tokens of the whole step; DDP averages gradients over
            # ranks, so scaling by world makes the result the gradient of sum(token losses) / n_sup
            n_sup = D.all_sum(local_sup, dd)
            scale = dd.world / max(n_sup, 1.0)
            total = 0.0
            lang_loss: dict[str, list] = defaultdict(lambda: [0.0, 0])
            for m, mb in enumerate(micro):
                sync = m == len(micro) - 1 or not hasattr(wrapped, "no_sync")
                ctx = contextlib.nullcontext() if sync else wrapped.no_sync()
                with ctx, autocast:
                    res = wrapped(mb["input_ids"].to(device),
                                  None if mb["attention_mask"] is None else mb["attention_mask"].to(device),
                                  None if mb["pixels"] is None else mb["pixels"].to(device), mb["labels"].to(device),
                                  None if mb["position_ids"] is None else mb["position_ids"].to(device),
                                  mb.get("attn_kwargs"))
                    loss = res.loss_sum * scale
                loss.backward()
                total += float(res.loss_sum.detach())
                for lang, (s, n) in _per_language(res, mb).items():
                    lang_loss[lang][0] += s
                    lang_loss[lang][1] += n
                cells = mb["input_ids"].numel()
                real = int((mb["segment_ids"] >= 0).sum()) if tc.packing else int(mb["attention_mask"].sum())
                tok_total += real
                pad_total += cells - real
            sup_total += local_sup
            gnorm = float(torch.nn.utils.clip_grad_norm_(params, tc.max_grad_norm if tc.max_grad_norm > 0 else math.inf))
            lr = sched.get_last_lr()[0]
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step_loss = D.all_sum(total, dd) / max(n_sup, 1.0)
            elapsed = max(time.time() - t_start, 1e-9)
            row = {"loss": round(step_loss, 6), "lr": lr, "grad_norm": round(gnorm, 4), "supervised_tokens": int(n_sup),
                   "tokens_per_s": round(tok_total * dd.world / elapsed, 1),
                   "supervised_tokens_per_s": round(sup_total * dd.world / elapsed, 1),
                   "supervised_fraction": round(sup_total / max(tok_total + pad_total, 1), 4),
                   "padding_fraction": round(pad_total / max(tok_total + pad_total, 1), 4),
                   "loss_by_language": {k: round(s / max(n, 1), 5) for k, (s, n) in sorted(lang_loss.items())}}
            history.append({"step": step + 1, **row})
            bar.set_postfix(loss=f"{step_loss:.4f}", tok_s=f"{row['tokens_per_s']:.0f}", pad=f"{row['padding_fraction']:.2f}")
            bar.update(1)
            if metrics is not None and ((step + 1) % tc.log_every == 0 or step + 1 == tc.max_steps):
                metrics.log(step + 1, row)
                if not show_progress:
                    log.info("step %d/%d loss %.4f lr %.2e grad_norm %.3f tok/s %.0f", step + 1, tc.max_steps,
                             step_loss, lr, gnorm, row["tokens_per_s"])
            if tc.save_every and (step + 1) % tc.save_every == 0 and step + 1 < tc.max_steps:
                checkpoint(step + 1, final=False)
        final = checkpoint(tc.max_steps, final=True)
    finally:
        bar.close()
        if tc.packing:
            model.llm.set_attn_implementation(attn_impl)
        if metrics is not None:
            metrics.close()
    log.info("saved %s", final)
    D.cleanup(dd)
    return TrainResult(final, history, dict(ds.skipped), time.time() - t0, start)
