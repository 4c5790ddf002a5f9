"""The training loop: one or many processes, gradient accumulation with the loss normalised by the supervised
tokens of the whole optimizer step (all micro-batches, all ranks), packing, exact resume, logging."""

from __future__ import annotations

import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
from tqdm import tqdm

from polyvlm.config import Config
from polyvlm.data.dataset import LazyRecords
from polyvlm.data.readers import iter_records
from polyvlm.data.records import Record, RecordError
from polyvlm.models import factory
from polyvlm.models.checkpoint import save_checkpoint
from polyvlm.train import distributed as D
from polyvlm.train.batch import Batch, collate
from polyvlm.train.dataset import TrainDataset
from polyvlm.train.logger import MetricsLogger, progress_line
from polyvlm.train.metrics import StepStats, supervised_tokens
from polyvlm.train.optim import build_optimizer
from polyvlm.train.sampler import StepSampler
from polyvlm.train.stages import apply_stage
from polyvlm.train.state import (
    latest_checkpoint,
    load_state,
    optimizer_state,
    read_state,
    rng_state,
    rotate,
    save_state,
)
from polyvlm.utils import resolve_device, resolve_dtype, reuse_freed_memory, seed_everything

log = logging.getLogger("polyvlm.train")


@dataclass
class TrainResult:
    checkpoint: Path
    history: list[dict] = field(default_factory=list)
    skipped: dict = field(default_factory=dict)
    wall_seconds: float = 0.0
    start_step: int = 0


def load_records(cfg: Config, on_error: Callable[[RecordError], None] | None = None
                 ) -> tuple[Sequence[Record] | LazyRecords, Path]:
    """Records and image root for `cfg.data`: a JSON/JSONL/Parquet file or a mixture YAML (read lazily, by
    byte offset or row group: memory does not grow with the file; each mixture source keeps its own image
    root), another readable format (TSV, messages, compressed, a saved `datasets` folder: read into memory),
    or `builtin:scenes:KIND:N` (generates quick start scenes).

    Records that cannot be parsed go to `on_error` (file, line, id, reason) when read into memory, and to
    the dataset's `data.on_bad_record` policy when read lazily.
    """
    path = cfg.data.path
    if not path:
        raise ValueError("data.path is empty: name a JSON/JSONL/Parquet file of LLaVA records")
    if path.startswith("builtin:scenes"):
        from polyvlm.data.scenes import make_split, write_jsonl

        parts = path.split(":")
        kind = parts[2] if len(parts) > 2 else "qa"
        n = int(parts[3]) if len(parts) > 3 else 512
        out = Path(cfg.train.output_dir) / "data"
        file = out / f"{kind}.jsonl"
        if not file.is_file():  # a resumed run reuses the data it generated
            write_jsonl(make_split(out, n, cfg.train.seed, kind), file)
        return list(iter_records([file])), out
    root = Path(cfg.data.image_root) if cfg.data.image_root else Path(path).parent
    if path.endswith((".yaml", ".yml")):  # a mixture (`polyvlm data mix` format), resolved from its own seed
        records = LazyRecords(path)
        if not len(records):
            raise ValueError(f"{path}: the mixture selects no records")
        return records, root
    if not Path(path).is_file() and not Path(path).is_dir():
        raise FileNotFoundError(f"{path}: no such data file")
    try:
        return LazyRecords([path], image_root=root), root
    except RecordError as e:
        if e.code != "unsupported_format":
            raise
    return list(iter_records([path], on_error=on_error)), root


@contextlib.contextmanager
def _grad_sync(wrapped: torch.nn.Module, sync: bool):
    """Gradients are reduced across processes only on the last micro-batch of a step: DDP's `no_sync`,
    FSDP2's `set_requires_gradient_sync(False)` (unsharded gradients accumulate locally until then)."""
    if sync or not (hasattr(wrapped, "no_sync") or hasattr(wrapped, "set_requires_gradient_sync")):
        yield
    elif hasattr(wrapped, "no_sync"):
        with wrapped.no_sync():
            yield
    else:
        wrapped.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            wrapped.set_requires_gradient_sync(True)


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


def _resume(path: Path, model, opt, sched, position: dict, sharded: bool, rank: int) -> int:
    """Load weights, optimizer, scheduler and RNG states from `path`; returns the step to continue from.

    The data position is the step (the sampler is a function of it), so the step's samples must not have
    changed meaning: the global batch, the seed and the number of examples are checked.
    """
    saved = read_state(path)
    what = {"global_batch": "global batch (train.batch_size x train.grad_accum x processes)", "seed": "train.seed",
            "examples": "number of training examples"}
    for k, name in what.items():
        if k in saved and saved[k] != position[k]:
            raise ValueError(f"train.resume: {path} was written with {name} {saved[k]}, this run has {position[k]}; "
                             "its data position would not carry over")
    if sharded:
        from safetensors.torch import load_file

        from polyvlm.models.lora import has_lora

        if has_lora(model):
            raise ValueError("train.resume of a train.stage=lora run is not supported with train.strategy=fsdp; use ddp")
        D.load_full_state_dict(model, load_file(str(path / "model.safetensors")))
    else:
        from polyvlm.models.checkpoint import load_weights_into

        load_weights_into(model, path)
    return load_state(path, model, opt, sched, sharded, rank)["step"]


def _autocast(dtype_name: str, device: torch.device):
    """`train.dtype` (the values of `--dtype`: auto, bf16, fp32) -> the forward's autocast context. Weights
    and optimizer state stay fp32; fp16 would need loss scaling and is refused."""
    try:
        dtype = resolve_dtype(dtype_name, device)
    except ValueError as e:
        raise ValueError(f"train.dtype: {e}") from None
    if dtype == torch.float16:
        raise ValueError(f"train.dtype must be auto, bf16 or fp32, got '{dtype_name}' (fp16 training needs loss "
                         "scaling, which polyvlm does not do; bf16 has fp32's range)")
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


@dataclass
class _Run:
    """Everything one training run holds between steps."""

    cfg: Config
    device: torch.device
    dd: D.Dist
    out: Path
    model: torch.nn.Module
    processor: object
    ds: TrainDataset
    wrapped: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: object
    params: list[torch.nn.Parameter]
    sampler: StepSampler
    position: dict
    sharded: bool
    steps: int
    start: int = 0
    wandb_id: str = ""  # the Weights & Biases run this run logs to; kept in each checkpoint, so a resumed run continues it
    attn_impl: str | None = None
    autocast: contextlib.AbstractContextManager = field(default_factory=contextlib.nullcontext)


def _read_data(cfg: Config, records: list[Record] | None, image_root: str | Path | None, dd: D.Dist
               ) -> tuple[Sequence[Record] | LazyRecords, Path, list[RecordError]]:
    """The records and their media root; rank 0 reads first (it may generate the data), the others after it."""
    read_errors: list[RecordError] = []
    if records is not None:
        return records, Path(image_root or "."), read_errors
    if dd.main:
        records, root = load_records(cfg, read_errors.append)
    D.barrier(dd)
    if not dd.main:
        records, root = load_records(cfg, read_errors.append)
    return records, root, read_errors


def _prepare_model(model: torch.nn.Module, cfg: Config) -> str:
    """Apply the run's model options (feature cache, activation checkpointing, varlen attention for packing);
    returns the LM's attention implementation, restored by `_restore_model`."""
    tc = cfg.train
    if tc.cache_features:
        if any(p.requires_grad for p in model.vision.parameters()):
            raise ValueError(f"train.cache_features needs a frozen vision encoder; stage {tc.stage} trains it "
                             f"(train.vision_lr={tc.vision_lr})")
        from polyvlm.models.encoders.feature_cache import FeatureCache

        model.vision.feature_cache = FeatureCache(tc.feature_cache_mb << 20)
    if tc.grad_checkpointing:  # non-reentrant: gradients reach adapters even when the LM inputs need none
        enable = getattr(model.llm, "activation_checkpointing_enable", None)  # transformers >= 5 name
        if enable is not None:
            enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    attn_impl = model.llm.config._attn_implementation
    if tc.packing:  # samples of a micro-batch share one row; attention stays within each sample
        from polyvlm.models import varlen

        model.llm.set_attn_implementation(varlen.NAME)
    return attn_impl


def _restore_model(run: _Run) -> None:
    if run.model.vision.feature_cache is not None:
        log.info("%s", run.model.vision.feature_cache.summary())
        run.model.vision.feature_cache = None
    if run.cfg.train.packing:
        run.model.llm.set_attn_implementation(run.attn_impl)


def _setup(cfg: Config, records: list[Record] | None, image_root: str | Path | None) -> _Run:
    """Process group, data (checked), model (staged, wrapped), optimizer, sampler, and the resumed state."""
    tc = cfg.train
    try:
        device = resolve_device(tc.device)
    except ValueError as e:
        raise ValueError(f"train.device: {e}") from None
    autocast = _autocast(tc.dtype, device)  # a bad value fails before any work
    if tc.reuse_freed_memory and device.type == "cpu" and reuse_freed_memory():
        log.debug("glibc malloc keeps freed memory for reuse (train.reuse_freed_memory)")
    dd = D.init_distributed(device)
    out = Path(tc.output_dir)
    if dd.main:
        out.mkdir(parents=True, exist_ok=True)
    D.barrier(dd)
    seed_everything(tc.seed)
    records, root, read_errors = _read_data(cfg, records, image_root, dd)
    model, processor = factory.build(cfg.model)  # an init_from checkpoint may set cfg.model's vision readout
    if dd.main:
        cfg.save(out / "config.yaml")
    model.to(device)
    # rank 0 keeps the checked-record arrays in the run directory: a resumed run does not check every record again
    ds = TrainDataset(records, processor, root, cfg.data.on_bad_record, read_errors,
                      cache=out / "data_index.npz" if dd.main else None, num_workers=cfg.data.num_workers)
    log.info("%d training examples (%d skipped) from %s", len(ds), sum(ds.skipped.values()), cfg.data.path or "memory")
    groups = apply_stage(model, tc.stage, tc.lr, tc.vision_lr, tc.weight_decay)
    attn_impl = _prepare_model(model, cfg)
    wrapped = D.wrap(model, tc.strategy, dd, groups)
    keys = list(zip(ds.has_image.tolist(), ds.lengths.tolist())) if tc.group_by_length and not tc.packing else None
    sampler = StepSampler(len(ds), tc.batch_size, tc.grad_accum, dd.world, tc.seed, keys)
    steps = sampler.run_length(tc.epochs, tc.max_steps)
    opt, sched = build_optimizer(groups, steps, tc.warmup_ratio, tc.min_lr_ratio)
    position = {"global_batch": sampler.global_batch, "seed": tc.seed, "examples": len(ds)}
    run = _Run(cfg, device, dd, out, model, processor, ds, wrapped, opt, sched, [p for g in groups for p in g["params"]],
               sampler, position, D.sharded(tc.strategy, dd), steps, attn_impl=attn_impl, autocast=autocast)
    resume_from = _resume_dir(cfg, out)
    if resume_from is not None:
        run.start = _resume(resume_from, model, opt, sched, position, run.sharded, dd.rank)
        log.info("resumed from %s at step %d (epoch %.2f)", resume_from, run.start, sampler.epoch_of(run.start))
        run.wandb_id = read_state(resume_from).get("wandb_id", "")
    if tc.wandb and not run.wandb_id:
        run.wandb_id = uuid.uuid4().hex[:8]  # wandb's run ids are 8 lowercase letters and digits
    return run


def _forward(run: _Run, mb: Batch):
    """One micro-batch through the (wrapped) model -> VLMOutput with `loss_sum`."""
    return run.wrapped(**mb.to(run.device).model_inputs())


def _step(run: _Run, micro: list[Batch], stats: StepStats) -> dict:
    """One optimizer step over this rank's micro-batches; returns the step's log row (summed over ranks).

    Every rank divides by the supervised tokens of the whole step; DDP and FSDP average gradients over ranks,
    so scaling by world makes the result the gradient of sum(token losses) / n_sup. Forward AND backward of
    every micro-batch but the last run with gradient sync off: the gradients are reduced once, after the last.
    """
    tc, dd = run.cfg.train, run.dd
    n_sup = D.all_sum(sum(supervised_tokens(mb) for mb in micro), dd)
    scale = dd.world / max(n_sup, 1.0)
    for m, mb in enumerate(micro):
        with _grad_sync(run.wrapped, m == len(micro) - 1):
            with run.autocast:
                res = _forward(run, mb)
            (res.loss_sum * scale).backward()
        stats.add(mb, float(res.loss_sum.detach()), res.token_loss)
    gnorm = torch.nn.utils.clip_grad_norm_(run.params, tc.max_grad_norm if tc.max_grad_norm > 0 else math.inf)
    gnorm = float(gnorm.full_tensor() if hasattr(gnorm, "full_tensor") else gnorm)  # a DTensor under FSDP
    lr = run.sched.get_last_lr()[0]
    run.opt.step()
    run.sched.step()
    run.opt.zero_grad(set_to_none=True)
    row = stats.finish(n_sup, dd)
    return {"loss": row.pop("loss"), "lr": lr, "grad_norm": round(gnorm, 4), **row}


def _checkpoint(run: _Run, step: int, final: bool) -> Path:
    """Write `final` (weights) or `checkpoint-STEP` (weights + resumable state); every rank must call it."""
    tc, dd = run.cfg.train, run.dd
    sd = D.full_state_dict(run.wrapped, tc.strategy, dd)
    path = run.out / ("final" if final else f"checkpoint-{step}")
    writer = None
    if not final:  # every rank takes part in gathering sharded optimizer state and the RNG states
        osd = optimizer_state(run.model, run.opt, run.sharded) if dd.main or run.sharded else None
        rngs = D.gather_objects(rng_state(), dd)
        extra = {**run.position, "samples_seen": step * run.sampler.global_batch, "world": dd.world}
        if run.wandb_id:
            extra["wandb_id"] = run.wandb_id
        writer = lambda d: save_state(d, step, osd, run.sched, rngs, extra)  # noqa: E731
    if dd.main:
        save_checkpoint(run.model, run.processor, run.cfg, path, {"step": step}, write_extra=writer, state_dict=sd)
        if not final:
            rotate(run.out, tc.keep_last)
    D.barrier(dd)
    return path


def _loader(run: _Run) -> torch.utils.data.DataLoader:
    """This rank's micro-batches from the resumed step on, decoded and collated ahead of the step by
    data.num_workers processes (none: inline)."""
    tc = run.cfg.train
    make = partial(collate, packing=tc.packing, pad_id=run.processor.pad_id)
    return torch.utils.data.DataLoader(run.ds, batch_sampler=run.sampler.batches(run.start, run.steps, run.dd.rank),
                                       collate_fn=make, num_workers=run.cfg.data.num_workers)


def _bar_title(run: _Run, done: int) -> str:
    """The progress bar's title: the stage and, with `train.epochs`, the pass the next step belongs to."""
    epochs = run.cfg.train.epochs
    if not epochs:
        return run.cfg.train.stage
    current = min(int(run.sampler.epoch_of(min(done, run.steps - 1))) + 1, math.ceil(epochs))
    return f"{run.cfg.train.stage} epoch {current}/{epochs:g}"


def train(cfg: Config, records: list[Record] | None = None, image_root: str | Path | None = None,
          show_progress: bool = True) -> TrainResult:
    """Run `train.max_steps` optimizer steps (or `train.epochs` passes) of `cfg.train.stage`; returns the final
    checkpoint path."""
    t0 = time.time()
    tc = cfg.train
    run = _setup(cfg, records, image_root)
    run.model.train()
    history: list[dict] = []
    metrics = (MetricsLogger(run.out, tc.tensorboard, tc.wandb, cfg.to_dict(), run.start, run.wandb_id)
               if run.dd.main else None)
    bar = tqdm(total=run.steps, initial=run.start, desc=_bar_title(run, run.start),
               disable=not (show_progress and run.dd.main), dynamic_ncols=True)
    stats = StepStats(sorted({lang or "und" for lang in run.ds.languages}))
    batches = iter(_loader(run))
    try:
        for step in range(run.start, run.steps):
            row = {**_step(run, [next(batches) for _ in range(tc.grad_accum)], stats),
                   "epoch": round(run.sampler.epoch_of(step + 1), 4)}
            history.append({"step": step + 1, **row})
            bar.set_description(_bar_title(run, step + 1), refresh=False)
            bar.set_postfix_str(progress_line(row))
            bar.update(1)
            if metrics is not None and ((step + 1) % tc.log_every == 0 or step + 1 == run.steps):
                metrics.log(step + 1, row)
                if not show_progress:
                    log.info("step %d/%d %s", step + 1, run.steps, progress_line(row))
            if tc.save_every and (step + 1) % tc.save_every == 0 and step + 1 < run.steps:
                _checkpoint(run, step + 1, final=False)
        final = _checkpoint(run, run.steps, final=True)
    finally:
        bar.close()
        _restore_model(run)
        if metrics is not None:
            metrics.close()
    log.info("saved %s", final)
    D.cleanup(run.dd)
    return TrainResult(final, history, dict(run.ds.skipped), time.time() - t0, run.start)
