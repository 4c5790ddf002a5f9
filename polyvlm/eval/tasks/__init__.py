"""Task registry: task kinds by `type`, tasks by name (the published benchmarks built in), suites, and `--tasks`
entries (names, .tsv/.jsonl/.yaml, suites)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# Importing the benchmark families registers them in PUBLISHED.
from polyvlm.eval.tasks import (  # noqa: F401
    activitynetqa,
    ai2d,
    blink,
    chartqa,
    docvqa,
    egoschema,
    flores,
    infovqa,
    llava_wilder,
    lmms,
    longvideobench,
    mathverse,
    mathvista,
    megabench,
    mlvu,
    mmbench_en,
    mmmlu,
    mmstar,
    mmvet,
    mvbench,
    nextqa,
    ocrbench,
    pangea,
    pangea_chat,
    parrot,
    perceptiontest,
    realworldqa,
    seedbench,
    text,
    tydiqa,
    videomme,
    wildvision,
)
from polyvlm.eval.tasks.base import Sample, Task, TaskError, TaskSpec, load_image
from polyvlm.eval.tasks.chat import JudgeTask
from polyvlm.eval.tasks.jsonl import CaptionTask, TextTask, VQATask, YesNoTask
from polyvlm.eval.tasks.mcq import MCQTask
from polyvlm.eval.tasks.published import PUBLISHED, PublishedTask
from polyvlm.eval.tasks.quickstart import QuickstartTask, quickstart_available
from polyvlm.registry import Registry

TASK_TYPES: Registry[type[Task]] = Registry("task type")
for _name, _cls in {"mcq": MCQTask, "vqa": VQATask, "yesno": YesNoTask, "caption": CaptionTask, "text": TextTask,
                    "judge": JudgeTask, "quickstart": QuickstartTask}.items():
    TASK_TYPES.register(_name)(_cls)
TASKS: Registry[Callable[[], Task]] = Registry("task")

# The seeds' tables: PangeaBench (Pangea), MMMB + Multilingual MMBench (Parrot), lmms-eval reasoning (MAmmoTH-VL).
SUITES: dict[str, list[str]] = {
    "pangeabench": ["xgqa", "marvl", "maxm", "xm100", "xmmmu", "m3exam", "cvqa", "m_llavabench", "xchatbench"],
    "pangeabench_text": ["xstorycloze", "mgsm", "mmmlu", "flores", "tydiqa"],
    "parrot": ["mmmb", "mtl_mmbench_dev"],
    "megabench": ["megabench_core", "megabench_open"],  # results.json "megabench": the task-weighted overall
    "mammoth_vl": ["mmmu_val", "mmmu_pro", "mmmu_pro_vision", "muirbench", "mathverse", "chartqa", "docvqa_val", "infovqa_val",
                   "mathvista_testmini", "mmstar", "ai2d", "realworldqa", "ocrbench",
                   "seedbench", "mmbench_en_dev", "mmvet", "blink", "megabench_core", "megabench_open",
                   "videomme", "mvbench", "egoschema_subset", "seedbench_video",
                   "perceptiontest_val_mc", "mlvu_dev", "nextqa_mc_test",
                   "longvideobench_val_v", "activitynetqa", "llava_wilder", "wildvision"],
}


def build_task(spec: TaskSpec) -> Task:
    if spec.type not in TASK_TYPES:
        raise TaskError(f"task {spec.name}: unknown type '{spec.type}' (known: {', '.join(TASK_TYPES.names())})")
    return TASK_TYPES.get(spec.type)(spec)


def register_task(spec: TaskSpec | dict[str, Any]) -> None:
    """Register a task under its name, built on first use."""
    spec = spec if isinstance(spec, TaskSpec) else TaskSpec.from_dict(spec)
    TASKS.register(spec.name)(lambda s=spec: build_task(s))


BUILTIN_DIR = Path(__file__).parent / "builtin"
BUILTIN_SUITES: dict[str, Path] = {}


def _register_builtins() -> None:
    """The published benchmarks, shipped task YAMLs (data under $POLYVLM_EVAL_DATA) and suites, plus `quickstart`."""
    for name in PUBLISHED.names():
        if name not in TASKS:
            TASKS.register(name)(PUBLISHED.get(name))
    for path in sorted(BUILTIN_DIR.glob("*.yaml")):
        obj = yaml.safe_load(path.read_text(encoding="utf-8"))
        if "suite" in obj:
            BUILTIN_SUITES.setdefault(str(obj["suite"]), path)
        elif obj["name"] not in TASKS:
            register_task(TaskSpec.from_yaml(path))
    # The quick start's synthetic task exists only once the lead engineer's scene generator is importable.
    if "quickstart" not in TASKS and quickstart_available():
        register_task(TaskSpec(name="quickstart", type="quickstart", max_new_tokens=8,
                               group_by=["language", "category"]))


@dataclass
class Suite:
    """A named group of tasks; the report adds `en` and `mul` (mean over non-English languages)."""

    name: str
    tasks: list[str] = field(default_factory=list)


def task_from_path(path: Path) -> Task:
    if path.is_dir():
        if any(path.glob("*.tsv")):
            return build_task(TaskSpec(name=path.name, type="mcq", data=str(path)))
        if any(path.glob("*.jsonl")):
            return build_task(TaskSpec(name=path.name, type="vqa", data=str(path)))
        raise TaskError(f"{path}: a task directory must hold .tsv or .jsonl files")
    if path.suffix == ".tsv":
        return build_task(TaskSpec(name=path.stem, type="mcq", data=str(path)))
    if path.suffix == ".jsonl":
        return build_task(TaskSpec(name=path.stem, type="vqa", data=str(path)))
    raise TaskError(f"{path}: a task file is .tsv, .jsonl or .yaml")


def resolve(entries: list[str]) -> tuple[list[Task], list[Suite]]:
    """`--tasks` entries -> tasks (in order, each once) and the suites they came from."""
    _register_builtins()
    tasks: dict[str, Task] = {}
    suites: list[Suite] = []

    def add(task: Task) -> None:
        if task.name in tasks:
            raise TaskError(f"two tasks are named '{task.name}'; give one a different name")
        tasks[task.name] = task

    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        path = BUILTIN_SUITES.get(entry, Path(entry))
        if entry in TASKS:
            add(TASKS.get(entry)())
        elif entry in SUITES:
            for member in SUITES[entry]:
                add(TASKS.get(member)())
            suites.append(Suite(entry, list(SUITES[entry])))
        elif path.suffix in (".yaml", ".yml") and path.is_file():
            obj = yaml.safe_load(path.read_text(encoding="utf-8"))
            if isinstance(obj, dict) and "suite" in obj:
                suite = Suite(str(obj["suite"]))
                members = obj.get("tasks")
                if not isinstance(members, list) or not members:
                    raise TaskError(f"{path}: a suite needs a non-empty 'tasks' list")
                for i, member in enumerate(members):
                    if isinstance(member, dict):
                        member.setdefault("base_dir", str(path.parent))
                        task = build_task(TaskSpec.from_dict(member, f"{path} task {i}"))
                    elif isinstance(member, str) and member in TASKS:
                        task = TASKS.get(member)()
                    elif isinstance(member, str):
                        sub = path.parent / member
                        if sub.suffix in (".yaml", ".yml"):
                            task = build_task(TaskSpec.from_yaml(sub))
                        elif sub.exists():
                            task = task_from_path(sub)
                        else:
                            raise TaskError(f"{path}: suite task '{member}' is neither a registered task nor a file")
                    else:
                        raise TaskError(f"{path}: suite task {i} must be a name, a path or a task mapping")
                    add(task)
                    suite.tasks.append(task.name)
                suites.append(suite)
            else:
                add(build_task(TaskSpec.from_yaml(path)))
        elif path.exists():
            add(task_from_path(path))
        else:
            known = ", ".join(TASKS.names()) or "none"
            raise TaskError(f"--tasks: '{entry}' is neither a registered task (known: {known}) nor an existing file")
    return list(tasks.values()), suites


def listing() -> list[dict[str, Any]]:
    """`--tasks list`: every built-in task with its languages, repo, whether its data is here, and the suites."""
    _register_builtins()
    rows = []
    for name in TASKS.names():
        if name in PUBLISHED:
            info = PUBLISHED.get(name).describe()
        else:
            info = {"task": name, "repo": "", "languages": [], "data": "files", "download": "", "follows": ""}
        info["suites"] = [s for s, members in SUITES.items() if name in members]
        rows.append(info)
    return rows


__all__ = ["PublishedTask", "SUITES", "TASKS", "TASK_TYPES", "Sample", "Suite", "Task", "TaskError", "TaskSpec", "build_task", "load_image",
           "listing", "register_task", "resolve"]
