"""Typed run configuration: dataclasses, YAML recipes, `key=value` overrides, the resolved copy per run."""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from polyvlm.registry import nearest_key


class ConfigError(ValueError):
    """A recipe or override that names an unknown key or gives a value of the wrong type."""


def _f(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field whose `help` is the field's docstring (shown by `polyvlm config --help-keys`)."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda d=default: json.loads(json.dumps(d)), metadata={"help": help}, **kw)
    return field(default=default, metadata={"help": help}, **kw)


@dataclass
class ModelConfig:
    vision: str = _f("", "Local Hugging Face vision encoder directory (CLIP/SigLIP); empty: build from vision_config.")
    vision_config: dict = _f({}, "Config kwargs for a vision encoder built from scratch; `model_type` is clip_vision_model or siglip_vision_model.")
    vision_feature_layer: int = _f(-2, "Hidden layer whose patch features feed the connector (LLaVA uses -2).")
    vision_select: str = _f("patch", "Which tokens to keep: `patch` (drop CLS, LLaVA default) or `full`.")
    llm: str = _f("", "Local Hugging Face causal LM directory; empty: build from llm_config.")
    llm_config: dict = _f({}, "Config kwargs for a causal LM built from scratch; `model_type` is qwen2, llama or mistral.")
    tokenizer: str = _f("", "Tokenizer directory; empty: the llm directory.")
    connector: str = _f("mlp2x_gelu", "Connector name from the registry: linear, mlp2x_gelu, moe (Parrot), pool1.")
    moe_experts: int = _f(6, "moe connector: number of SwiGLU experts (Parrot uses 6).")
    moe_intermediate: int = _f(0, "moe connector: expert intermediate width; 0 means the LM hidden size.")
    moe_weight: float = _f(0.1, "moe connector: weight of the residual `moe_weight * x` added to the expert mixture.")
    image_aspect_ratio: str = _f("pad", "Image views: `pad` (one square view), `anyres` or `anyres_max_N` (base + tiles, at most N tiles' worth of tokens).")
    image_grid_pinpoints: list | str = _f([], "anyres grids: [[h, w], ...] in pixels, or one string like '(1x1),...,(6x6)' in tiles of the encoder's image size.")
    audio: str = _f("", "Local Hugging Face Whisper directory for the audio encoder; empty: build from audio_config (or no audio).")
    audio_config: dict = _f({}, "Config kwargs for a Whisper encoder built from scratch (`model_type: whisper`); empty with `audio` empty: no audio encoder.")
    audio_connector: str = _f("pool1", "Audio connector: pool1 (one token per input, PandaGPT) or a per-frame connector (linear, mlp2x_gelu).")
    audio_pool: int = _f(1, "Per-frame audio connectors: average every N encoder frames into one token.")
    encoders: dict = _f({}, "Encoders of the modalities beyond image, audio and video (polyvlm.media): {modality: {model_type: a registered encoder, path: its weights (optional), connector: linear (default) or another, ...its config kwargs}}.")
    video_fps: float = _f(1.0, "Video frames sampled per second of video before the frames_upbound cap.")
    frames_upbound: int = _f(32, "Most frames taken from one video (uniformly resampled when the fps gives more).")
    lora_r: int = _f(0, "LoRA rank for stage `lora` (0: stage lora refuses to run).")
    lora_alpha: int = _f(16, "LoRA alpha (scaling alpha / r).")
    lora_dropout: float = _f(0.05, "LoRA dropout.")
    lora_targets: list = _f(["q_proj", "k_proj", "v_proj", "o_proj"], "LM module names LoRA adapts.")
    template: str = _f("chatml", "Chat template: chatml, llama3, vicuna_v1, plain, qwen_2_5, chatml_direct, llava_v1, "
                                     "llava_llama_3, mistral_instruct.")
    max_length: int = _f(2048, "Maximum tokens per sample after media placeholders are expanded.")
    init_from: str = _f("", "A polyvlm checkpoint directory whose weights initialise this model (stage 2 from stage 1), or `hf-llava:PATH` for a Hugging Face Llava directory.")
    connector_init: str = _f("", "Projector weights that initialise the connector: a LLaVA/LLaVA-NeXT `mm_projector.bin`/`.safetensors`, or a Llava directory.")
    dtype: str = _f("float32", "Parameter dtype: float32, bfloat16, float16.")


@dataclass
class DataConfig:
    path: str = _f("", "Training records: a JSON/JSONL/Parquet file of LLaVA conversation records, or a mixture YAML (see `polyvlm data mix`).")
    image_root: str = _f("", "Directory media paths are resolved under; empty: the data file's directory.")
    on_bad_record: str = _f("error", "`error`: stop before the first step naming the record; `skip`: skip, count and log.")
    eval_path: str = _f("", "Optional held-out records scored for loss at the end of training.")
    num_workers: int = _f(0, "Worker processes that check every record before step 1 and decode media during training.")


@dataclass
class TrainConfig:
    stage: str = _f("finetune", "Training stage: align (connector only), finetune (connector + LM), lora.")
    output_dir: str = _f("runs/train", "Run directory: resolved config, logs and checkpoints.")
    max_steps: int = _f(100, "Optimizer steps to run (unless train.epochs is set).")
    epochs: float = _f(0.0, "Passes over the training data (e.g. 1, 3, 0.5); when > 0 it sets the run's length and the "
                            "learning-rate schedule's, ceil(epochs x examples / global batch) steps, in place of "
                            "train.max_steps (logged). 0: train.max_steps.")
    save_every: int = _f(0, "Save a checkpoint every N steps (0: only at the end).")
    lr: float = _f(2e-5, "Peak learning rate of the connector and the LM.")
    vision_lr: float = _f(0.0, "Learning rate of the vision encoder in finetune; 0 keeps it frozen.")
    weight_decay: float = _f(0.0, "AdamW weight decay.")
    warmup_ratio: float = _f(0.03, "Fraction of the run's steps spent in linear warm-up before cosine decay.")
    min_lr_ratio: float = _f(0.0, "Cosine floor as a fraction of the peak learning rate.")
    max_grad_norm: float = _f(1.0, "Gradient clipping norm (0 disables).")
    batch_size: int = _f(8, "Samples per micro-batch.")
    grad_accum: int = _f(1, "Micro-batches per optimizer step.")
    seed: int = _f(0, "Seed for data order and initialisation.")
    log_every: int = _f(10, "Write a log line every N steps.")
    device: str = _f("auto", "auto (cuda, then mps, then cpu), cpu, cuda (this rank's GPU), cuda:N, mps: the values of --device.")
    strategy: str = _f("ddp", "Multi-process strategy under torchrun: ddp or fsdp (FSDP2, one shard unit per decoder layer).")
    nproc: int = _f(1, "`polyvlm train` launches this many processes through torchrun (CPU: gloo, GPU: NCCL).")
    packing: bool = _f(False, "Concatenate each micro-batch's samples into one row without padding; position ids restart and attention stays within each sample.")
    group_by_length: bool = _f(True, "Sort each step's samples by (modality, length) before making micro-batches (unpacked path).")
    resume: str = _f("", "`auto`: continue from the latest complete checkpoint in output_dir; or a checkpoint path; empty: start fresh.")
    keep_last: int = _f(2, "Resumable checkpoints to keep (older ones are deleted after a new one is complete); 0 keeps all.")
    dtype: str = _f("auto", "Compute dtype, the values of --dtype: auto (bf16 autocast on a GPU that supports it, else fp32), bf16, fp32; weights stay fp32 (formerly train.precision).")
    grad_checkpointing: bool = _f(False, "Recompute LM activations in the backward pass to save memory.")
    reuse_freed_memory: bool = _f(True, "CPU on Linux (glibc): keep memory freed by one step for the next (heap up to 32 MB a block, never trimmed) instead of returning it to the OS and faulting it back in zeroed; about 15% faster on small models.")
    cache_features: bool = _f(False, "Keep the frozen vision encoder's outputs per distinct picture (by pixel content) and reuse them in later epochs; align stage or any stage whose encoder is frozen.")
    feature_cache_mb: int = _f(4096, "Memory budget of train.cache_features in MiB (CPU); pictures beyond it are encoded every time.")
    tensorboard: bool = _f(True, "Write TensorBoard event files under output_dir/tensorboard.")
    wandb: bool = _f(False, "Also log to Weights & Biases (needs `pip install 'polyvlm[wandb]'`); a resumed run continues the same wandb run.")


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        """Write the resolved config as YAML (atomically)."""
        from polyvlm.utils import atomic_write_text

        atomic_write_text(Path(path), yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True))


def coerce(key: str, value: Any, tp: Any) -> Any:
    """Return `value` coerced to the type hint `tp` or raise ConfigError naming the key. int -> float and a
    YAML string such as `1e-3` -> float; `list[X]` / `dict[K, V]` check the container; a dataclass type takes a
    mapping (a whole section, checked by the command's loader); Any takes anything."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if arg is type(None) and value is None:
                return None
            try:
                return coerce(key, value, arg)
            except ConfigError:
                continue
        raise ConfigError(f"config key '{key}': expected {tp}, got {type(value).__name__} {value!r}")
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        tp = dict
    tp = origin or tp
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML reads 1e-3 as a string
        try:
            return float(value)
        except ValueError:
            pass
    if tp in (int, float, str, bool, dict, list) and not (isinstance(value, tp) and not (tp is int and isinstance(value, bool))):
        raise ConfigError(f"config key '{key}': expected {tp.__name__}, got {type(value).__name__} {value!r}")
    return value


_check_type = coerce  # the name other modules used before


def unknown_key(key: str, known: list[str]) -> ConfigError:
    """The one error for a key no schema declares: names it, suggests the nearest known key, lists them."""
    known = sorted(known)
    return ConfigError(f"unknown config key '{key}'{nearest_key(key, known)} (known: {', '.join(known)})")


RENAMED_KEYS = {"train.precision": "train.dtype"}  # old dotted key -> its new name; the old one still works, with a warning


def renamed_key(full: str) -> str | None:
    """The new name of a renamed config key (and a FutureWarning saying so), or None if `full` was not renamed."""
    new = RENAMED_KEYS.get(full)
    if new:
        warnings.warn(f"config key '{full}' is deprecated, use '{new}' (same values)", FutureWarning, stacklevel=4)
    return new


def _merge(obj: Any, data: dict, prefix: str = "") -> None:
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in names and (new := renamed_key(full)):
            if new.rsplit(".", 1)[-1] in data:
                raise ConfigError(f"config keys '{full}' and '{new}' are the same setting; give only '{new}'")
            key, full = new.rsplit(".", 1)[-1], new
        if key not in names:
            raise unknown_key(full, [prefix + n for n in names])
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"config key '{full}': expected a mapping, got {value!r}")
            _merge(current, value, full + ".")
        else:
            setattr(obj, key, coerce(full, value, hints[key]))


def parse_override(text: str) -> tuple[list[str], Any]:
    """`train.lr=1e-3` -> (["train", "lr"], 0.001); values are parsed as YAML scalars (or flow `[...]`/`{...}`)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' is not of the form key=value")
    key, raw = text.split("=", 1)
    keys = key.strip().split(".")
    if not all(keys):
        raise ConfigError(f"override '{text}': empty key")
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override '{key.strip()}': value is not valid YAML: {e}") from None
    return keys, value


def key_type(schema: type, keys: list[str]) -> Any:
    """The type hint that dotted `keys` reach in a dataclass `schema`: dataclass fields by name, `dict[str, X]`
    entries by any name, `list[X]` items by index; a plain `dict` or a class with `open_keys = True` accepts
    any key. An unknown field raises `unknown_key` with the nearest full name."""
    tp: Any = schema
    for i, k in enumerate(keys):
        here = ".".join(keys[: i + 1])
        origin = typing.get_origin(tp)
        if dataclasses.is_dataclass(tp):
            names = [f.name for f in dataclasses.fields(tp)]
            if k in names:
                tp = typing.get_type_hints(tp)[k]
            elif getattr(tp, "open_keys", False):
                tp = Any
            else:
                raise unknown_key(here, [".".join([*keys[:i], n]) for n in names])
        elif origin is dict:
            tp = typing.get_args(tp)[1] if typing.get_args(tp) else Any
        elif origin is list or tp is list:
            if not k.isdigit():
                raise ConfigError(f"config key '{here}': '{k}' is not a list index")
            tp = typing.get_args(tp)[0] if typing.get_args(tp) else Any
        elif tp in (dict, Any):
            tp = Any
        else:
            raise ConfigError(f"config key '{'.'.join(keys[:i])}' is a {getattr(tp, '__name__', tp)}; "
                              f"it has no key '{k}'")
    return tp


def _put(data: dict, keys: list[str], value: Any, text: str) -> None:
    """Set `value` at dotted `keys` in nested dicts/lists, creating the missing mappings."""
    cursor: Any = data
    for i, k in enumerate(keys):
        last = i == len(keys) - 1
        if isinstance(cursor, list):
            at = int(k)
            if at >= len(cursor):
                raise ConfigError(f"override '{text}': index {at} is out of range ({len(cursor)} items)")
            if last:
                cursor[at] = value
            cursor = cursor[at]
        elif last:
            cursor[k] = value
        else:
            if not isinstance(cursor.get(k), (dict, list)):
                cursor[k] = {}
            cursor = cursor[k]


def apply_overrides(data: dict, overrides: list[str] | tuple[str, ...], schema: type) -> dict:
    """The one `key=value` override syntax of every command: each override (dotted key, YAML value) is checked
    against the dataclass `schema` (unknown key: `unknown_key` with the nearest name; wrong type: ConfigError
    naming the key), coerced like a recipe value, and set into the raw mapping `data` (returned)."""
    for text in overrides:
        keys, value = parse_override(text)
        if new := renamed_key(".".join(keys)):
            keys = new.split(".")
        _put(data, keys, coerce(".".join(keys), value, key_type(schema, keys)), text)
    return data


OVERRIDES_HELP = "settings as KEY=VALUE (dotted keys, YAML values), applied after the flags; e.g. {example}"


def add_overrides_argument(parser: argparse.ArgumentParser, example: str) -> None:
    """The positional `KEY=VALUE ...` of every command that reads settings (parse with `parse_args_with_overrides`)."""
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDES_HELP.format(example=example))


def parser_schema(parser: argparse.ArgumentParser) -> type:
    """A dataclass with one field per option of `parser` (its dest, typed from the action) for `apply_overrides`."""
    fields: list[tuple[str, Any]] = []
    for a in parser._actions:
        if a.dest in (argparse.SUPPRESS, "help", "overrides") or not a.option_strings and a.nargs == "*":
            continue
        if a.nargs == 0 and isinstance(a.const, bool):  # store_true / store_false
            tp: Any = bool
        elif isinstance(a, argparse._AppendAction):
            tp = list
        else:
            tp = a.type if a.type in (int, float, str) else (str if a.type is None else Any)
        fields.append((a.dest, tp | None if a.default is None and tp not in (bool, Any) else tp))
    return dataclasses.make_dataclass(f"{parser.prog.replace(' ', '_')}_settings", fields)


def parse_args_with_overrides(parser: argparse.ArgumentParser, argv: list[str] | None,
                              config: type | None = None) -> argparse.Namespace:
    """Parse flags and positionals in any order, then apply the `KEY=VALUE` overrides onto the namespace with the
    same checks as a recipe (unknown key: nearest name suggested; wrong type or choice: the key named). A required
    flag may be given as an override (`tasks=mmbench` for `--tasks mmbench`); mutually exclusive flags stay so.

    `config`: the dataclass schema of the file the command reads (e.g. a mixture YAML). An override whose first
    key is one of its fields (and not a flag) is checked against it and kept, as written, in
    `args.config_overrides` for the command to apply onto that file with `apply_overrides`.
    """
    required = [a for a in parser._actions if a.required and a.option_strings]
    for a in required:
        a.required = False
    try:
        args = parser.parse_intermixed_args(argv)
    finally:
        for a in required:
            a.required = True
    flags = parser_schema(parser)
    flag_names = [f.name for f in dataclasses.fields(flags)]
    file_names = [f.name for f in dataclasses.fields(config)] if config is not None else []
    mine, theirs = [], []
    for text in getattr(args, "overrides", None) or []:
        keys, _ = parse_override(text)
        if keys[0] not in flag_names and keys[0] in file_names:
            apply_overrides({}, [text], config)  # checked now, applied by the command
            theirs.append(text)
        elif keys[0] not in flag_names and file_names:
            raise unknown_key(".".join(keys), [*flag_names, *file_names])
        else:
            mine.append(text)
    args.config_overrides = theirs
    data = apply_overrides({}, mine, flags)
    choices = {a.dest: a.choices for a in parser._actions if a.choices}
    for key, value in data.items():
        if key in choices and value not in choices[key]:
            raise ConfigError(f"config key '{key}': expected one of {', '.join(map(str, choices[key]))}, got {value!r}")
        setattr(args, key, value)
    _check_flags(parser, args, required)
    return args


def _check_flags(parser: argparse.ArgumentParser, args: argparse.Namespace, required: list[argparse.Action]) -> None:
    """After the overrides: every required flag set, at most one flag of each mutually exclusive group."""
    missing = [a for a in required if getattr(args, a.dest, None) in (None, "")]
    if missing:
        parser.error("the following arguments are required: " +
                     ", ".join(f"{a.option_strings[0]} (or {a.dest}=VALUE)" for a in missing))
    for group in parser._mutually_exclusive_groups:
        given = [a for a in group._group_actions if getattr(args, a.dest, None) not in (None, a.default)]
        if len(given) > 1:
            parser.error(f"argument {given[1].option_strings[0]}: not allowed with argument {given[0].option_strings[0]}")


def load_config(recipe: str | Path | None = None, overrides: list[str] | None = None, base: dict | None = None) -> Config:
    """Build a Config from defaults, then an optional `base` dict, the YAML recipe, then overrides."""
    cfg = Config()
    if base:
        _merge(cfg, base)
    data: dict = {}
    if recipe:
        path = Path(recipe)
        if not path.is_file():
            raise ConfigError(f"recipe {path}: no such file")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"recipe {path}: not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"recipe {path}: top level must be a mapping")
        try:
            _merge(cfg, data)
        except ConfigError as e:
            raise ConfigError(f"recipe {path}: {e}") from None
    if overrides:  # onto the resolved values: `model.llm_config.num_hidden_layers=2` keeps the other llm_config keys
        _merge(cfg, apply_overrides(cfg.to_dict(), overrides, Config))
    return cfg


def config_from_dict(data: dict) -> Config:
    cfg = Config()
    _merge(cfg, data)
    return cfg


def help_keys() -> list[tuple[str, str, Any]]:
    """(key, help, default) for every config key, for `polyvlm config --keys`."""
    rows = []
    for section in dataclasses.fields(Config):
        sub = getattr(Config(), section.name)
        for f in dataclasses.fields(sub):
            rows.append((f"{section.name}.{f.name}", f.metadata.get("help", ""), getattr(sub, f.name)))
    return rows
