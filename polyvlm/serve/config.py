"""Server settings (`ServeConfig`): one typed dataclass whose field help becomes the `polyvlm serve` flags."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass

from polyvlm.config import _f


@dataclass
class ServeConfig:
    host: str = _f("127.0.0.1", "Address to listen on (0.0.0.0 exposes the server to the network).")
    port: int = _f(8000, "TCP port.")
    api_key: str = _f("", "If set, every /v1 request needs `Authorization: Bearer KEY` (env POLYVLM_API_KEY).")
    served_model_name: str = _f("", "Model id reported by /v1/models and accepted in requests; empty: the generator's name.")
    ui: bool = _f(False, "Mount the Gradio web demo at /ui (needs the ui extra: `pip install 'polyvlm[ui]'`).")
    max_batch_size: int = _f(8, "Most requests generated together in one batch.")
    batch_wait_ms: float = _f(10.0, "How long the first request of a batch waits for others to join.")
    batch_arrival_wait_ms: float = _f(50.0, "Longest a batch waits for requests already received but still being decoded.")
    no_batching: bool = _f(False, "Generate one request at a time (same as --max-batch-size 1).")
    max_queue: int = _f(512, "Requests waiting for the model beyond this get HTTP 503.")
    default_max_tokens: int = _f(256, "Completion tokens when a request sets no max_tokens (capped by the context).")
    max_body_mb: float = _f(32.0, "Largest request body accepted, in MiB (HTTP 413 above).")
    max_image_pixels: int = _f(4096 * 4096, "Largest width*height of one image or video frame (decompression bombs).")
    max_media_items: int = _f(8, "Most images + audio clips + videos in one request.")
    max_audio_seconds: float = _f(60.0, "Longest audio clip in one request, in seconds.")
    max_video_frames: int = _f(8, "Frames sampled uniformly from one video (each becomes an image).")
    allowed_media_domains: list = _f([], "Host names whose http(s) image URLs the server may fetch (default: none).")
    allowed_local_media_path: str = _f("", "Directory whose files may be named by file:// image URLs (default: none).")
    fetch_timeout_s: float = _f(10.0, "Timeout for fetching an allowed remote image.")

    @property
    def batch_size(self) -> int:
        return 1 if self.no_batching else max(1, self.max_batch_size)

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)


def add_config_flags(parser: argparse.ArgumentParser, cls: type = ServeConfig) -> None:
    """One `--flag-name` per dataclass field, typed, with the field's help and default."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        help_ = f"{f.metadata.get('help', '')} (default: {default!r})"
        tp = hints[f.name]
        if tp is bool:
            parser.add_argument(flag, dest=f.name, action="store_true", default=default, help=help_)
        elif tp is list:
            parser.add_argument(flag, dest=f.name, action="append", default=None, metavar="A,B",
                                help=help_ + "; repeat the flag or separate values with commas")
        else:
            parser.add_argument(flag, dest=f.name, type=tp, default=default, help=help_)


def config_from_args(args: argparse.Namespace, cls: type = ServeConfig) -> ServeConfig:
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)}
    # `--allowed-media-domains a.com,b.org` and `--allowed-media-domains a.com --allowed-media-domains b.org`
    values["allowed_media_domains"] = [d.strip().lower() for v in values["allowed_media_domains"] or [] for d in v.split(",") if d.strip()]
    return cls(**values)
