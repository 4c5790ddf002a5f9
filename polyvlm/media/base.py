"""The Modality declaration and its registry, media limits, and `MediaError` (a refusal naming the input)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from polyvlm.registry import Registry

# PIL's own decompression-bomb threshold (about 89.5 megapixels): the default pixel limit for data files.
DEFAULT_MAX_PIXELS = int(1024 * 1024 * 1024 // 4 // 3)

# a refusal's `code` -> the coarse code a bad training/validation record reports (`RecordError.code`)
_RECORD_CODES = {
    "media_empty": "media_empty", "media_not_found": "media_missing", "media_url_not_allowed": "media_escape",
    "media_too_large": "media_too_large", "image_too_large": "media_too_large", "audio_too_long": "media_too_large",
}


class MediaError(ValueError):
    """Media that cannot be used. `where` names the input (file, record key or request parameter), `code` the
    reason (`invalid_image`, `image_too_large`, `media_url_not_allowed`, ...), `status` the HTTP status a
    server answers with. `str()` is `where: reason`."""

    def __init__(self, reason: str, where: str = "", code: str = "media_unreadable", status: int = 400):
        self.reason, self.where, self.code, self.status = reason, where, code, status
        super().__init__(f"{where}: {reason}" if where else reason)

    @property
    def record_code(self) -> str:
        """The code of this refusal for a data record (`media_unreadable`, `media_too_large`, ...)."""
        return _RECORD_CODES.get(self.code, "media_unreadable")


@dataclass
class MediaLimits:
    """What one input may cost, checked from headers before decoding where the format allows.

    `max_bytes`: encoded size (files, downloads, inline data). `max_pixels`: width*height of an image or a
    video frame (decompression bombs). `max_audio_seconds`: clip length. `video_fps` / `max_video_frames`:
    the video sampler (frames at `video_fps`, uniformly resampled to at most `max_video_frames` (0: no cap); fps 0 =
    uniform only). `extra`: limits of modalities added later, by name.
    """

    max_bytes: int = 1 << 30
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_audio_seconds: float = float("inf")
    video_fps: float = 0.0
    max_video_frames: int = 8
    extra: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Modality:
    """One kind of media, declared once; processor, embedding merge, data validation and stats, the API
    protocol and the terminal chat all read this declaration.

    - `name`: the modality (`image`); also the encoder input it feeds.
    - `placeholder`: the token that stands for one input in the text (`<image>`).
    - `record_key`: the key of a LLaVA record that lists its files (`"image": "a.jpg"` or a list).
    - `api_part`: the OpenAI chat content part type that carries it (`image_url`), or None.
    - `load(raw: bytes | Path, limits, where) -> decoded`: the decoder (PIL RGB image, 16 kHz waveform
      `(t,)` float32, list of PIL frames, ...), raising MediaError naming `where`.
    - `probe(raw, limits, where) -> dict`: header facts without a full decode (`size`, `seconds`, `frames`,
      `fps`); what data checks read before step 1.
    - `check`: what `polyvlm data validate` runs per file (`"load"`: a full decode, `"probe"`: headers).
    - `part_source(part, where) -> str | bytes`: the URL / data URI (str) or raw bytes a content part holds.
    - `limits`: the `MediaLimits` fields this modality honours (documentation and server flags).
    - `to_tensor(decoded) -> Tensor`: for a modality added after image/audio/video, what its encoder reads of
      one input (the processor puts it in `MediaBatch.extra[name]`; the model's `ModalityEncoder` for it,
      `polyvlm.models.encoders.modality`, turns those into feature rows).
    """

    name: str
    placeholder: str
    record_key: str
    api_part: str | None
    load: Callable[..., Any]
    probe: Callable[..., dict]
    part_source: Callable[[dict, str], str | bytes] | None = None
    check: str = "probe"
    limits: tuple[str, ...] = ("max_bytes",)
    help: str = ""
    to_tensor: Callable[[Any], Any] | None = None


MODALITIES: Registry[Modality] = Registry("modality")


def register_modality(modality: Modality) -> Modality:
    """Add a modality to the registry (one call in its module under polyvlm/media/)."""
    for other in map(MODALITIES.get, MODALITIES.names()):
        for attr in ("placeholder", "record_key", "api_part"):
            if getattr(modality, attr) is not None and getattr(other, attr) == getattr(modality, attr):
                raise ValueError(f"modality '{modality.name}': {attr} {getattr(modality, attr)!r} is already "
                                 f"used by '{other.name}'")
    out = MODALITIES.register(modality.name)(modality)
    _VERSION[0] += 1
    return out


def unregister_modality(name: str) -> None:
    """Remove a modality (tests that register a toy one)."""
    MODALITIES._items.pop(name, None)
    _VERSION[0] += 1


_VERSION = [0]  # bumped on every change, so the live views below rebuild only then


def get_modality(name: str) -> Modality:
    """The modality called `name`; an unknown name raises KeyError listing the known ones."""
    return MODALITIES.get(name)


def modalities() -> list[Modality]:
    """Every registered modality, in registration order (image, audio, video, then later ones)."""
    return list(MODALITIES._items.values())


def by_part(part_type: str) -> Modality | None:
    """The modality an OpenAI content part type carries (`image_url` -> image), or None."""
    return next((m for m in modalities() if m.api_part == part_type), None)


def by_record_key(key: str) -> Modality | None:
    return next((m for m in modalities() if m.record_key == key), None)


class _Live(Mapping):
    """A read-only mapping computed from the registry at each use (so a modality registered later shows)."""

    def __init__(self, item: Callable[[Modality], Any], key: Callable[[Modality], Any] = lambda m: m.name):
        self._item, self._key = item, key
        self._cache: tuple[int, dict] = (-1, {})

    def _dict(self) -> dict:
        if self._cache[0] != _VERSION[0]:
            self._cache = (_VERSION[0], {self._key(m): self._item(m) for m in modalities() if self._key(m) is not None})
        return self._cache[1]

    def __getitem__(self, k: Any) -> Any:
        return self._dict()[k]

    def __iter__(self) -> Iterator:
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._dict())

    def __repr__(self) -> str:
        return repr(self._dict())


class _LiveKeys(Sequence):
    """A tuple-like view of the record keys, read from the registry at each use."""

    _cache: tuple[int, tuple[str, ...]] = (-1, ())

    def _t(self) -> tuple[str, ...]:
        if self._cache[0] != _VERSION[0]:
            self._cache = (_VERSION[0], tuple(m.record_key for m in modalities()))
        return self._cache[1]

    def __iter__(self) -> Iterator[str]:
        return iter(self._t())

    def __len__(self) -> int:
        return len(self._t())

    def __contains__(self, k: object) -> bool:
        return k in self._t()

    def __getitem__(self, i: Any) -> Any:
        return self._t()[i]

    def __repr__(self) -> str:
        return repr(self._t())


PLACEHOLDERS: Mapping[str, str] = _Live(lambda m: m.placeholder)  # modality -> placeholder
PART_MODALITY: Mapping[str, str] = _Live(lambda m: m.name, key=lambda m: m.api_part)  # content part -> modality
API_PARTS: Mapping[str, str] = _Live(lambda m: m.api_part, key=lambda m: m.name if m.api_part else None)  # the inverse
RECORD_KEYS: Sequence[str] = _LiveKeys()  # record keys that name media files
