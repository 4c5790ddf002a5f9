"""Video benchmarks read as published: where each question's video file is (the repo copy's folders, its zip chunks,
or the folder lmms-eval unzips them to), extracted from its zip once on first use, and handed to the model as a
`Video` that the model samples with polyvlm.media's seeking sampler."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, ClassVar

from polyvlm.eval.tasks.base import Sample, TaskError
from polyvlm.eval.tasks.hub import download_command, local_dir
from polyvlm.eval.tasks.published import PublishedTask
from polyvlm.infer import ChatRequest

log = logging.getLogger("polyvlm.eval")


def lmms_cache(name: str) -> Path:
    """lmms-eval's video folder of a task: `$HF_HOME/<dataset_kwargs.cache_dir>` (default HF_HOME ~/.cache/huggingface)."""
    return Path(os.path.expanduser(os.environ.get("HF_HOME", "~/.cache/huggingface/"))) / name


class VideoStore:
    """The video files of one repo, by their path relative to the repo root (`data/<id>.mp4`). Looked up, in order, as
    files under each of `roots`, then as members of the zip files under `zip_root` (their central directories are
    read, nothing is decompressed); a zipped video is extracted to `zip_root/<member>` on first use (what `unzip`
    in the repo folder writes), atomically, so an interrupted run leaves no half file."""

    def __init__(self, roots: list[Path], zip_root: Path | None, where: str):
        self.roots, self.zip_root, self.where = [r for r in roots if r.is_dir()], zip_root, where
        self.members: dict[str, tuple[Path, str]] = {}
        self.zips: list[Path] = sorted(zip_root.rglob("*.zip")) if zip_root is not None else []
        for z in self.zips:
            try:
                with zipfile.ZipFile(z) as zf:
                    for name in zf.namelist():
                        if not name.endswith("/"):
                            self.members.setdefault(name, (z, name))
            except zipfile.BadZipFile as e:
                raise TaskError(f"{z}: not a readable zip file ({e}); download it again") from None

    def find(self, candidates: list[str]) -> str | None:
        """The first of `candidates` (relative paths) that is here, as a file or a zip member."""
        for rel in candidates:
            if any((root / rel).is_file() for root in self.roots) or rel in self.members:
                return rel
        return None

    def describe(self) -> str:
        places = [str(r) for r in self.roots] + ([f"{len(self.zips)} zip file(s) under {self.zip_root}"]
                                                  if self.zips else [])
        return ", ".join(places) or "nowhere (no copy of the repo)"

    def on_disk(self, rel: str) -> bool:
        """True when `rel` is a file already (not only a zip member)."""
        return any((root / rel).is_file() for root in self.roots)

    def label(self, rel: str) -> str:
        """Where `rel` is, for samples files: its file, else `<zip file>:<member>` until it is extracted."""
        for root in self.roots:
            if (root / rel).is_file():
                return str(root / rel)
        archive, member = self.members[rel]
        return f"{archive}:{member}"

    def path(self, rel: str) -> Path:
        """The file of `rel` on disk, extracted from its zip first if it is only zipped."""
        for root in self.roots:
            if (root / rel).is_file():
                return root / rel
        if rel not in self.members or self.zip_root is None:
            raise TaskError(f"{self.where}: video {rel} is not in {self.describe()}")
        archive, member = self.members[rel]
        target = (self.zip_root / member).resolve()
        if self.zip_root.resolve() not in target.parents:
            raise TaskError(f"{archive}: member {member} would be written outside {self.zip_root}")
        if not target.is_file():
            log.info("extracting %s from %s", member, archive.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
            try:
                with zipfile.ZipFile(archive) as zf, zf.open(member) as src, os.fdopen(fd, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                os.replace(tmp, target)
            except (OSError, zipfile.BadZipFile) as e:
                raise TaskError(f"{archive}: cannot extract {member} to {target.parent} ({e})") from None
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        return target


class PublishedVideoTask(PublishedTask):
    """A published benchmark whose questions each name one video file. Subclasses set `lmms_cache_dir` (lmms-eval's
    `dataset_kwargs.cache_dir`) and put the video's candidate paths (relative to the repo root, in the official
    lookup order) in `sample.extra["video_candidates"]`. Every video is located when the task loads (a missing one
    stops the run before any request, with the download command); its bytes are read only when asked."""

    lmms_cache_dir: ClassVar[str] = ""
    revision: ClassVar[str | None] = None  # the repo branch lmms-eval downloads (MVBench: `video`)
    image_columns = ()

    @classmethod
    def download(cls) -> str:
        command = download_command(cls.repo)
        return command.replace(" --local-dir", f" --revision {cls.revision} --local-dir") if cls.revision else command

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {**super().describe(), "download": cls.download()}

    def video_store(self) -> VideoStore:
        local = local_dir(self.repo)
        roots = ([local] if local is not None else []) + [lmms_cache(self.lmms_cache_dir)]
        return VideoStore(roots, local, f"task {self.name}")

    def load(self) -> list[Sample]:
        samples = super().load()
        self.store = self.video_store()
        missing = []
        for s in samples:
            s.extra["video"] = self.store.find(s.extra["video_candidates"])
            if s.extra["video"] is None:
                missing.append(s)
        if missing:
            first = missing[0]
            raise TaskError(f"task {self.name}: {len(missing)} of {len(samples)} videos are not here (first: "
                            f"{first.source}, {' or '.join(first.extra['video_candidates'])}); looked in "
                            f"{self.store.describe()}; download them with\n  {self.download()}")
        return samples

    def samples(self) -> list[Sample]:
        """The samples; each names its video in `media` (shown in samples files) once the headers of the other inputs
        are checked (a zipped video is not extracted for that)."""
        fresh = self._samples is None
        samples = super().samples()
        if fresh:
            for s in samples:
                s.media = {"video": [self.store.label(s.extra["video"])]}
        return samples

    def request(self, sample: Sample) -> ChatRequest:
        """The sample's question with its video file (`<video>` before the text, as lmms-eval's models put it)."""
        path = self.store.path(sample.extra["video"])
        return super().request(dataclasses.replace(sample, media={"video": [str(path)]}))
