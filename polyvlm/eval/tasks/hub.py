"""Where a published benchmark's files are: `$POLYVLM_EVAL_DATA/<owner>/<repo>/`, else the Hugging Face caches,
else a download when online; a missing repo is an error that gives its download command."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from polyvlm.eval.tasks.base import TaskError

ENV = "POLYVLM_EVAL_DATA"


class MissingSplit(TaskError):
    """The repo copy lacks one split (a partial download): the task runs on the splits it has."""


def download_command(repo: str) -> str:
    """What `huggingface-cli` writes where the loader looks first."""
    return f"huggingface-cli download --repo-type dataset {repo} --local-dir ${ENV}/{repo}"


def local_dir(repo: str) -> Path | None:
    """`$POLYVLM_EVAL_DATA/<owner>/<repo>` when it exists."""
    root = os.environ.get(ENV)
    if not root:
        return None
    path = Path(os.path.expanduser(root)) / repo
    return path if path.is_dir() else None


def _hf_home() -> Path:
    return Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))


def cached(repo: str) -> bool:
    """True when the `datasets` cache or the hub cache holds a copy of `repo` (no network)."""
    owner, name = repo.split("/", 1)
    datasets_cache = Path(os.environ.get("HF_DATASETS_CACHE", _hf_home() / "datasets"))
    hub_cache = Path(os.environ.get("HF_HUB_CACHE", _hf_home() / "hub"))
    return (datasets_cache / f"{owner}___{name.lower()}").is_dir() or (datasets_cache / f"{owner}___{name}").is_dir() \
        or (hub_cache / f"datasets--{owner}--{name}").is_dir()


def where(repo: str) -> str:
    """`local` (under $POLYVLM_EVAL_DATA), `cache`, or `missing` (a download when online)."""
    if local_dir(repo) is not None:
        return "local"
    return "cache" if cached(repo) else "missing"


def _missing(repo: str, task: str, reason: str) -> TaskError:
    return TaskError(f"task {task}: dataset {repo} is not available ({reason}); download it with\n  "
                     f"{download_command(repo)}")


def _datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise TaskError("the built-in benchmarks read their Hugging Face datasets with the `datasets` package: "
                        "pip install 'polyvlm[eval]'") from None
    datasets.disable_progress_bars()
    return datasets


def load_split(repo: str, split: str, task: str, config: str | None = None, revision: str | None = None) -> Any:
    """One split of a published repo as `datasets` loads it (`load_dataset(dir, split=...)`), rows in the
    repo's order. The local copy wins; otherwise the repo id goes to `datasets` (its cache, else the hub, at
    `revision` when given: MVBench's `video` branch)."""
    datasets = _datasets()
    local = local_dir(repo)
    source = str(local) if local is not None else repo
    try:
        export = local / config / split if local is not None and config else None
        if export is not None and export.is_dir():  # the Hub's parquet export (`refs/convert/parquet`)
            return datasets.load_dataset("parquet", data_files=sorted(str(f) for f in export.glob("*.parquet")),
                                         split="train")
        if revision and local is None:
            return datasets.load_dataset(source, config, split=split, revision=revision)
        shards = sorted((local / config).glob(f"{split}-*.parquet")) if local is not None and config else []
        if shards:  # push_to_hub's `<config>/<split>-NNNNN-of-NNNNN.parquet`: read directly, so a copy holding only
            # this config (`huggingface-cli download --include '<config>/*'`) loads although its README declares others
            return datasets.load_dataset("parquet", data_files=[str(f) for f in shards], split="train")
        return datasets.load_dataset(source, config, split=split)
    except ValueError as e:  # an unknown split: name the ones the repo has
        if "split" in str(e).lower() or "Unknown" in str(e) or "BuilderConfig" in str(e):
            what = f"config '{config}'" if "BuilderConfig" in str(e) else f"split '{split}'"
            raise MissingSplit(f"task {task}: {source} has no {what} ({e})") from None
        raise TaskError(f"task {task}: cannot read {source} split {split}: {e}") from None
    except FileNotFoundError as e:
        raise _missing(repo, task, str(e).splitlines()[0] if str(e) else "not found") from None
    except (ConnectionError, OSError) as e:
        raise _missing(repo, task, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'offline'}") from None
    except Exception as e:  # datasets raises its own classes for offline mode and missing repos
        if type(e).__name__ in ("DatasetNotFoundError", "OfflineModeIsEnabled", "LocalEntryNotFoundError",
                                "RepositoryNotFoundError", "HfHubHTTPError", "DataFilesNotFoundError"):
            raise _missing(repo, task, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
        raise


def repo_file(repo: str, filename: str, task: str) -> Path:
    """A file of a repo (Parrot's TSVs): the local copy, else the hub cache or a download."""
    local = local_dir(repo)
    if local is not None:
        path = local / filename
        if not path.is_file():
            raise MissingSplit(f"task {task}: {path} not found (the local copy of {repo} lacks {filename}); "
                            f"download it with\n  {download_command(repo)}")
        return path
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo, filename, repo_type="dataset"))
    except Exception as e:  # offline, missing file or missing repo: one message with the command
        raise _missing(repo, task, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else filename}") from None
