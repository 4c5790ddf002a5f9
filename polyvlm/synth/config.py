"""Pipeline files for `polyvlm synth`: typed config, validation with errors naming the file and stage,
and building a stage (with its prompt template and backend) from its spec.

    input: data/seed.jsonl          # JSONL or JSON array; a list of files is read in order
    output: runs/synth/demo
    image_root: data                # media paths are resolved under it (default: the first input's folder)
    runner: local                   # or `ray` (optional extra `polyvlm[ray]`)
    concurrency: 32                 # records in flight per stage
    on_failure: stop                # stop: end the run after the stage, `--resume` retries; skip: record and go on
    backends:
      main: {type: openai, base_url: http://127.0.0.1:8000/v1, model: qwen2-vl, concurrency: 32}
    stages:
      - {stage: categorize}
      - {stage: rewrite, backend: main, n: 2}
      - {stage: judge, backend: main, threshold: 3.5}
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from polyvlm.config import ConfigError, apply_overrides
from polyvlm.synth.backends import BACKENDS, Backend, BackendConfig, BackendError, build_backend
from polyvlm.synth.stages.base import Stage, StageContext, get_stage, params_from_dict
from polyvlm.synth.templates import PromptError, load_prompt


class PipelineError(ValueError):
    """A pipeline file that cannot run; the message names the file and the stage or key."""


@dataclass
class RayConfig:
    address: str = ""  # empty: start a local Ray instance
    num_actors: int = 2  # actor pool size per stage
    num_cpus_per_actor: float = 1.0
    batch_size: int = 64  # records per actor call (processed concurrently inside the actor)
    chunk_size: int = 10000  # records per Ray dataset submitted by the driver


@dataclass
class StageSpec:
    open_keys: ClassVar[bool] = True  # in a pipeline file, any other key of a stage is a stage parameter

    stage: str
    params: dict = field(default_factory=dict)
    backend: str = ""
    prompt: str = ""  # a template file path; empty: the built-in template


@dataclass
class PipelineConfig:
    input: list | str = field(default_factory=list)  # a file or a list of files (normalised to a list)
    output: str = ""
    image_root: str = ""
    runner: str = "local"
    concurrency: int = 32
    shard_size: int = 10000
    final_format: str = "jsonl"  # final/ shards: jsonl, or parquet (polyvlm's layout; conversation records only)
    on_failure: str = "stop"
    on_bad_input: str = "error"  # error: malformed input lines stop the run; skip: reject them with a reason
    seed: int = 0
    progress: bool = True
    ray: RayConfig = field(default_factory=RayConfig)
    backends: dict[str, BackendConfig] = field(default_factory=dict)
    stages: list[StageSpec] = field(default_factory=list)
    path: str = ""

    def resolved_image_root(self) -> Path:
        return Path(self.image_root) if self.image_root else Path(self.input[0]).parent

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("path")
        return d


def _section(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise PipelineError(f"{where}: expected a mapping, got {data!r}")
    try:
        return params_from_dict(cls, data, where)
    except ValueError as e:
        raise PipelineError(str(e)) from None


def pipeline_from_dict(data: dict, where: str = "<pipeline>") -> PipelineConfig:
    """Validate a pipeline mapping; every problem raises PipelineError naming `where` and the key."""
    if not isinstance(data, dict):
        raise PipelineError(f"{where}: top level must be a mapping")
    data = dict(data)
    backends = data.pop("backends", {}) or {}
    stages = data.pop("stages", None)
    ray = data.pop("ray", {}) or {}
    inp = data.pop("input", None)
    cfg: PipelineConfig = _section(PipelineConfig, data, where)
    cfg.path = where
    if inp is None:
        raise PipelineError(f"{where}: missing key 'input'")
    cfg.input = [str(p) for p in (inp if isinstance(inp, list) else [inp])]
    if not cfg.output:
        raise PipelineError(f"{where}: missing key 'output'")
    cfg.ray = _section(RayConfig, ray, f"{where}: ray")
    if not isinstance(backends, dict):
        raise PipelineError(f"{where}: 'backends' must map names to backend settings")
    cfg.backends = {str(k): _section(BackendConfig, v, f"{where}: backends.{k}") for k, v in backends.items()}
    for name, b in cfg.backends.items():
        check_backend(b, f"{where}: backends.{name}")
    if cfg.runner not in ("local", "ray"):
        raise PipelineError(f"{where}: runner must be local or ray, not {cfg.runner!r}")
    if cfg.runner == "ray" and not has_module("ray"):
        raise PipelineError(f"{where}: {RAY_MISSING}")
    if cfg.final_format not in ("jsonl", "parquet"):
        raise PipelineError(f"{where}: final_format must be jsonl or parquet, not {cfg.final_format!r}")
    if cfg.on_failure not in ("stop", "skip"):
        raise PipelineError(f"{where}: on_failure must be stop or skip, not {cfg.on_failure!r}")
    if cfg.on_bad_input not in ("error", "skip"):
        raise PipelineError(f"{where}: on_bad_input must be error or skip, not {cfg.on_bad_input!r}")
    if cfg.concurrency < 1 or cfg.shard_size < 1:
        raise PipelineError(f"{where}: concurrency and shard_size must be >= 1")
    if not isinstance(stages, list) or not stages:
        raise PipelineError(f"{where}: 'stages' must be a non-empty list")
    for i, s in enumerate(stages):
        here = f"{where}: stages[{i}]"
        if not isinstance(s, dict) or "stage" not in s:
            raise PipelineError(f"{here}: each stage is a mapping with a 'stage' name")
        s = dict(s)
        spec = StageSpec(stage=str(s.pop("stage")), backend=str(s.pop("backend", "") or ""),
                         prompt=str(s.pop("prompt", "") or ""), params=s)
        cfg.stages.append(spec)
        # build once without a backend to validate names, params and prompt
        check_stage(spec, cfg, here)
    return cfg


RAY_MISSING = "runner 'ray' needs Ray Data, an optional extra: pip install 'polyvlm[ray]' (or use runner: local)"


def has_module(name: str) -> bool:
    """Whether `name` can be imported, without importing it (an optional extra may be absent)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules
        return False


def check_backend(b: BackendConfig, where: str) -> None:
    """Fail at load time, before anything is written, on an unknown type or a missing optional extra."""
    if b.type not in BACKENDS:
        try:
            BACKENDS.get(b.type)
        except KeyError as e:
            raise PipelineError(f"{where}: {e}") from None
    if b.type == "vllm" and not has_module("vllm"):
        raise PipelineError(f"{where}: backend 'vllm' needs vLLM, an optional extra: pip install 'polyvlm[vllm]' "
                            "(or use the `openai` backend against a `vllm serve` process)")
    if b.type in ("openai", "vllm") and not b.model:
        raise PipelineError(f"{where}: backend '{b.type}': `model` is required")
    if b.type == "transformers":
        from polyvlm.utils import resolve_device, resolve_dtype

        try:
            resolve_dtype(b.dtype, resolve_device(b.device))
        except ValueError as e:
            raise PipelineError(f"{where}: backend 'transformers': {e}") from None
    if b.concurrency < 1 or b.max_retries < 0 or b.timeout <= 0:
        raise PipelineError(f"{where}: concurrency must be >= 1, max_retries >= 0 and timeout > 0")


def load_pipeline(path: str | Path, overrides: list[str] | None = None) -> PipelineConfig:
    """Read and validate a pipeline file after `KEY=VALUE` overrides (dotted keys: `ray.num_actors=4`,
    `backends.main.concurrency=8`, `stages.1.threshold=4`; a YAML mapping replaces a whole section)."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"pipeline {path}: no such file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise PipelineError(f"pipeline {path}: not valid YAML: {e}") from None
    if isinstance(data, dict) and overrides:
        try:
            apply_overrides(data, overrides, PipelineConfig)
        except ConfigError as e:
            raise PipelineError(f"pipeline {path}: {e}") from None
    return pipeline_from_dict(data, f"pipeline {path}")


def check_stage(spec: StageSpec, cfg: PipelineConfig, where: str) -> None:
    try:
        cls = get_stage(spec.stage)
    except ValueError as e:
        raise PipelineError(f"{where}: {e}") from None
    stage = make_stage(spec, cfg, None, where)
    if stage.uses_backend():
        if not spec.backend:
            raise PipelineError(f"{where}: stage '{cls.name}' calls a model; name one of `backends` with 'backend:'")
        if spec.backend not in cfg.backends:
            raise PipelineError(f"{where}: backend '{spec.backend}' is not defined under `backends` "
                                f"(defined: {', '.join(sorted(cfg.backends)) or 'none'})")


def make_stage(spec: StageSpec, cfg: PipelineConfig, backend: Backend | None, where: str = "") -> Stage:
    """Instantiate a stage with validated params, its prompt template and (when it calls a model) a backend."""
    cls = get_stage(spec.stage)
    where = where or f"{cfg.path}: stage {spec.stage}"
    try:
        params = params_from_dict(cls.Params, spec.params, where)
        prompt = load_prompt(spec.prompt or cls.prompt_name) if (spec.prompt or cls.prompt_name) else None
        return cls(params, StageContext(image_root=cfg.resolved_image_root(), backend=backend, prompt=prompt,
                                        seed=cfg.seed))
    except (ValueError, PromptError) as e:
        msg = str(e)
        raise PipelineError(msg if msg.startswith(where) else f"{where}: {msg}") from None


def make_backend(name: str, cfg: PipelineConfig) -> Backend:
    try:
        return build_backend(cfg.backends[name])
    except (ValueError, BackendError) as e:
        raise PipelineError(f"{cfg.path}: backends.{name}: {e}") from None
