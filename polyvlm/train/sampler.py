"""Which samples each rank trains on at each step: a pure function of (seed, step), so runs resume exactly
and 2 ranks x batch 4 see the same samples per optimizer step as 1 rank x batch 8."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

log = logging.getLogger("polyvlm.train")


def steps_for_epochs(epochs: float, n: int, global_batch: int) -> int:
    """Optimizer steps that take `epochs` passes over `n` samples, `global_batch` a step: the last step is
    filled up from the next pass's order, as every step holds a full global batch."""
    if epochs <= 0:
        raise ValueError(f"train.epochs must be > 0, got {epochs}")
    return max(1, math.ceil(epochs * n / global_batch - 1e-9))


class StepSampler:
    """The sample stream is the concatenation of per-epoch permutations of `range(n)` drawn from `seed`.

    Optimizer step `s` consumes `batch_size * grad_accum * world` consecutive samples of the stream. With
    `group_by` (one sort key per sample, e.g. (modality, length)), those samples are sorted by key before
    being dealt out, so micro-batches hold samples of similar length and modality (LLaVA's modality-length
    grouping) while every step still trains on the same set of samples.
    """

    def __init__(self, n: int, batch_size: int, grad_accum: int = 1, world: int = 1, seed: int = 0,
                 group_by: Sequence[tuple] | None = None):
        if n <= 0:
            raise ValueError("no samples to train on")
        self.n, self.batch_size, self.grad_accum, self.world, self.seed = n, batch_size, grad_accum, world, seed
        self.group_by = group_by
        self._perms: dict[int, np.ndarray] = {}

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.grad_accum * self.world

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            if len(self._perms) > 2:
                self._perms.clear()
            self._perms[epoch] = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        return self._perms[epoch]

    def step_samples(self, step: int) -> list[int]:
        """All samples of optimizer step `step` (0-based), over every rank."""
        g = self.global_batch
        out = []
        for p in range(step * g, (step + 1) * g):
            out.append(int(self._perm(p // self.n)[p % self.n]))
        if self.group_by is not None:
            out.sort(key=lambda i: (self.group_by[i], i))
        return out

    def micro_batches(self, step: int, rank: int) -> list[list[int]]:
        """This rank's `grad_accum` micro-batches of step `step`.

        Micro-batch m of rank r takes the slice m * world + r of the step's (sorted) samples, so each
        micro-batch holds neighbours in the sort order.
        """
        samples = self.step_samples(step)
        b = self.batch_size
        return [samples[(m * self.world + rank) * b : (m * self.world + rank + 1) * b] for m in range(self.grad_accum)]

    def run_length(self, epochs: float, max_steps: int) -> int:
        """Optimizer steps of a run: `epochs` passes over the samples when > 0 (`train.epochs` wins, logged), else
        `max_steps`."""
        if not epochs:
            return max_steps
        steps = steps_for_epochs(epochs, self.n, self.global_batch)
        log.info("train.epochs=%g: %d examples, %d a step -> %d steps (train.max_steps=%d not used)", epochs, self.n,
                 self.global_batch, steps, max_steps)
        return steps

    def epoch_of(self, step: int) -> float:
        """Passes over the data completed after `step` steps (1.5: half-way through the second)."""
        return step * self.global_batch / self.n

    def batches(self, start: int, stop: int, rank: int) -> MicroBatches:
        """This rank's micro-batches of steps `start`..`stop - 1`, in training order (a DataLoader batch sampler)."""
        return MicroBatches(self, start, stop, rank)


class MicroBatches:
    """Iterable of index lists, `grad_accum` per step; computed lazily, so a million steps cost nothing upfront."""

    def __init__(self, sampler: StepSampler, start: int, stop: int, rank: int):
        self.sampler, self.start, self.stop, self.rank = sampler, start, stop, rank

    def __len__(self) -> int:
        return max(self.stop - self.start, 0) * self.sampler.grad_accum

    def __iter__(self):
        for step in range(self.start, self.stop):
            yield from self.sampler.micro_batches(step, self.rank)
