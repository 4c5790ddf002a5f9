"""Video benchmarks read as published: where each question's video file is (the repo copy's folders, its zip chunks,
its tar (whole or split in `NAME.tar.part.*`), or the folder lmms-eval unpacks them to), extracted from its archive
once on first use, and handed to the model as a `Video` that the model samples with polyvlm.media's seeking sampler."""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Any, ClassVar

from polyvlm.eval.extract import Extraction, extract_choice
from polyvlm.eval.tasks.base import Sample, TaskError
from polyvlm.eval.tasks.hub import download_command, local_dir
from polyvlm.eval.tasks.published import PublishedTask
from polyvlm.infer import ChatRequest

log = logging.getLogger("polyvlm.eval")


def lmms_cache(name: str) -> Path:
    """lmms-eval's video folder of a task: `$HF_HOME/<dataset_kwargs.cache_dir>` (default HF_HOME ~/.cache/huggingface)."""
    return Path(os.path.expanduser(os.environ.get("HF_HOME", "~/.cache/huggingface/"))) / name


class SplitFile(io.RawIOBase):
    """Files read as one (a tar split with `split`: `videos.tar.part.aa`, `.ab`, ...), seekable, never concatenated on
    disk."""

    def __init__(self, parts: list[Path]):
        super().__init__()
        self.parts, self.sizes = parts, [p.stat().st_size for p in parts]
        self.starts = [sum(self.sizes[:i]) for i in range(len(parts))]
        self.size, self.pos, self.handles = sum(self.sizes), 0, {}

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = offset if whence == 0 else self.pos + offset if whence == 1 else self.size + offset
        return self.pos

    def readinto(self, buf: Any) -> int:
        done, view = 0, memoryview(buf).cast("B")
        while done < len(view) and self.pos < self.size:
            i = max(k for k, start in enumerate(self.starts) if start <= self.pos)
            fh = self.handles.get(i) or self.handles.setdefault(i, open(self.parts[i], "rb"))  # noqa: SIM115
            fh.seek(self.pos - self.starts[i])
            got = fh.readinto(view[done:done + min(len(view) - done, self.starts[i] + self.sizes[i] - self.pos)])
            if not got:
                break
            done, self.pos = done + got, self.pos + got
        return done

    def close(self) -> None:
        for fh in self.handles.values():
            fh.close()
        self.handles = {}
        super().close()


def tar_groups(root: Path) -> dict[str, list[Path]]:
    """The tars under `root`, each as its parts in order (`x.tar` alone, or `x.tar.part.aa`, `x.tar.part.ab`, ...),
    grouped as lmms-eval's api/task.py groups them (by the name before ".tar")."""
    groups: dict[str, list[Path]] = {}
    for f in sorted(root.rglob("*.tar*")):
        if f.is_file() and (f.name.endswith(".tar") or ".tar.part" in f.name):
            groups.setdefault(str(f).split(".tar")[0] + ".tar", []).append(f)
    # a whole tar beside its parts (what `cat parts > x.tar` leaves) is read alone
    return {k: [p for p in v if str(p) == k] or v for k, v in groups.items()}


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
        self.tars: dict[str, tuple[list[Path], tarfile.TarInfo]] = {}
        for name, parts in (tar_groups(zip_root) if zip_root is not None else {}).items():
            self.zips.append(Path(name))
            try:
                with SplitFile(parts) as raw, tarfile.open(fileobj=raw, mode="r:") as tf:
                    for info in tf.getmembers():
                        if info.isfile():
                            self.tars.setdefault(info.name, (parts, info))
            except (tarfile.TarError, OSError) as e:
                raise TaskError(f"{name}: {len(parts)} part(s) do not read as one tar ({e}); download them again") \
                    from None

    def find(self, candidates: list[str]) -> str | None:
        """The first of `candidates` (relative paths) that is here, as a file or a zip member."""
        for rel in candidates:
            if any((root / rel).is_file() for root in self.roots) or rel in self.members or rel in self.tars:
                return rel
        return None

    def describe(self) -> str:
        places = [str(r) for r in self.roots] + ([f"{len(self.zips)} archive(s) under {self.zip_root}"]
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
        if rel in self.tars:
            parts, info = self.tars[rel]
            return f"{str(parts[0]).split('.tar')[0]}.tar:{info.name}"
        archive, member = self.members[rel]
        return f"{archive}:{member}"

    def path(self, rel: str) -> Path:
        """The file of `rel` on disk, extracted from its zip first if it is only zipped."""
        for root in self.roots:
            if (root / rel).is_file():
                return root / rel
        if (rel not in self.members and rel not in self.tars) or self.zip_root is None:
            raise TaskError(f"{self.where}: video {rel} is not in {self.describe()}")
        archive, member = self.members[rel] if rel in self.members else (self.tars[rel][0][0], rel)
        target = (self.zip_root / member).resolve()
        if self.zip_root.resolve() not in target.parents:
            raise TaskError(f"{archive}: member {member} would be written outside {self.zip_root}")
        if not target.is_file():
            log.info("extracting %s from %s", member, archive.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
            try:
                with os.fdopen(fd, "wb") as dst:
                    self._copy_member(rel, dst)
                os.replace(tmp, target)
            except (OSError, zipfile.BadZipFile, tarfile.TarError) as e:
                raise TaskError(f"{archive}: cannot extract {member} to {target.parent} ({e})") from None
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        return target


    def _copy_member(self, rel: str, dst: Any) -> None:
        """Write the archived bytes of `rel` to `dst` (from its zip, or from its tar's parts read as one)."""
        if rel in self.members:
            archive, member = self.members[rel]
            with zipfile.ZipFile(archive) as zf, zf.open(member) as src:
                shutil.copyfileobj(src, dst, 1 << 20)
            return
        parts, info = self.tars[rel]
        with SplitFile(parts) as raw, tarfile.open(fileobj=raw, mode="r:") as tf:
            src = tf.extractfile(info)
            if src is None:
                raise tarfile.TarError(f"{info.name} is not a regular file")
            shutil.copyfileobj(src, dst, 1 << 20)


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

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        """polyvlm's robust reading: the option letter of a multiple-choice question (any script, answer phrases),
        else the trimmed reply; each task's `official` follows its own scorer."""
        return extract_choice(prediction, sample.options) if sample.options else super().extract(sample, prediction)

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
