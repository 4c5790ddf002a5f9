"""A name -> class/function registry: the one style for every kind (encoder, connector, template, task, metric,
backend, stage, data format); an unknown name is an error listing the known ones and the nearest."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class UnknownName(KeyError, ValueError):
    """A name that is not registered; `str()` is the plain message (KeyError would quote it)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def nearest(name: str, known: list[str] | tuple[str, ...] | set[str]) -> str:
    """" (did you mean 'x'?)" for the closest of `known` to `name` (difflib), or ""."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


# What Hugging Face's TrainingArguments and LLaVA's train.py call settings polyvlm names otherwise (last key part)
KEY_ALIASES = {
    "learning_rate": "lr", "num_train_epochs": "epochs", "per_device_train_batch_size": "batch_size",
    "train_batch_size": "batch_size", "gradient_accumulation_steps": "grad_accum",
    "gradient_checkpointing": "grad_checkpointing", "save_steps": "save_every", "logging_steps": "log_every",
    "save_total_limit": "keep_last", "warmup_steps": "warmup_ratio", "bf16": "dtype", "fp16": "dtype",
    "model_max_length": "max_length", "mm_projector_type": "connector", "mm_vision_select_layer": "vision_feature_layer",
    "mm_vision_select_feature": "vision_select", "vision_tower": "vision", "model_name_or_path": "llm",
    "data_path": "path", "image_folder": "image_root", "dataloader_num_workers": "num_workers",
}


def nearest_key(key: str, known: list[str] | tuple[str, ...] | set[str]) -> str:
    """`nearest` for a dotted config key: its last part is compared with the last parts of the keys of the same
    section (a shared `train.` prefix would make any two keys look alike), the field's usual names
    (`learning_rate`) lead to polyvlm's (`lr`); other keys fall back to `nearest` on the whole name."""
    prefix, _, leaf = key.rpartition(".")
    siblings = {k.rpartition(".")[2]: k for k in known if k.rpartition(".")[0] == prefix}
    if not siblings:
        return nearest(key, known)
    alias = KEY_ALIASES.get(leaf.lower())
    if alias in siblings:
        return f" (did you mean '{siblings[alias]}'?)"
    close = difflib.get_close_matches(leaf, sorted(siblings), n=1, cutoff=0.6)
    return f" (did you mean '{siblings[close[0]]}'?)" if close else ""


class Registry(Generic[T]):
    """`@REG.register("name")` on a class or function; `REG.get(name)`; `REG.register_lazy(name, "mod:attr")`
    for entries whose module is heavy or optional (imported on first `get`)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._lazy: dict[str, str] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items or name in self._lazy:
                raise ValueError(f"{self.kind} '{name}' is already registered")
            self._items[name] = obj
            return obj

        return deco

    def register_lazy(self, name: str, target: str) -> None:
        """Register `name` as `module:attribute`, imported the first time it is asked for."""
        if name in self._items or name in self._lazy:
            raise ValueError(f"{self.kind} '{name}' is already registered")
        self._lazy[name] = target

    def get(self, name: str) -> T:
        if name in self._lazy:
            module, attr = self._lazy[name].split(":")
            self._items[name] = getattr(importlib.import_module(module), attr)  # ImportError: stays lazy
            del self._lazy[name]
        if name not in self._items:
            raise UnknownName(f"unknown {self.kind} '{name}'{nearest(name, self.names())} "
                              f"(known: {', '.join(self.names())})")
        return self._items[name]

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.get(name)(*args, **kwargs)  # type: ignore[operator]

    def names(self) -> list[str]:
        return sorted([*self._items, *self._lazy])

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._lazy

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items) + len(self._lazy)
