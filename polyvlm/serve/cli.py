"""`polyvlm serve CKPT`: load a checkpoint and serve it over the OpenAI API (plus the web demo with --ui)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from polyvlm.config import ConfigError, add_overrides_argument, parse_args_with_overrides
from polyvlm.serve.config import add_config_flags, config_from_args
from polyvlm.utils import add_device_flags, device_from_args


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="polyvlm serve",
        description="Serve a checkpoint with an OpenAI-compatible API: POST /v1/chat/completions, GET /v1/models, "
                    "GET /health, and the Gradio demo at /ui with --ui.",
    )
    p.add_argument("checkpoint", help="checkpoint directory in any layout polyvlm reads (see `polyvlm export --help`), or FORMAT:DIR")
    add_config_flags(p)
    add_device_flags(p)
    p.add_argument("--max-model-len", type=int, default=None,
                   help="context length in tokens (prompt + answer; default: the checkpoint's max_length)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    add_overrides_argument(p, "port=8001 max_batch_size=4 allowed_media_domains=[example.org]")
    return p


def main(argv: list[str]) -> int:
    try:
        args = parse_args_with_overrides(parser(), argv)
    except ConfigError as e:
        print(f"polyvlm serve: {e}", file=sys.stderr)
        return 2
    cfg = config_from_args(args)
    try:
        device, dtype = device_from_args(args)
    except ValueError as e:
        print(f"polyvlm serve: {e}", file=sys.stderr)
        return 2
    if args.max_model_len is not None and args.max_model_len < 2:
        print(f"polyvlm serve: --max-model-len must be at least 2 tokens, got {args.max_model_len}", file=sys.stderr)
        return 2
    if not cfg.api_key:
        cfg.api_key = os.environ.get("POLYVLM_API_KEY", "")
    from polyvlm.utils import setup_logging

    setup_logging(getattr(logging, args.log_level.upper()))
    if cfg.ui:  # a missing extra first: it needs no checkpoint to report
        try:
            import gradio  # noqa: F401
        except ImportError:
            from polyvlm.serve.webui import MISSING

            print(f"polyvlm serve: {MISSING}", file=sys.stderr)
            return 2
    from polyvlm.models.layouts import LayoutError, resolve

    try:
        resolve(args.checkpoint)  # any checkpoint layout, or FORMAT:DIR; fail before the server starts
    except LayoutError as e:
        print(f"polyvlm serve: checkpoint {args.checkpoint}: {e}", file=sys.stderr)
        return 2
    if cfg.host not in ("127.0.0.1", "localhost", "::1") and not cfg.api_key:
        logging.getLogger("polyvlm.serve").warning("listening on %s without --api-key: anyone who can reach it can use it", cfg.host)

    import uvicorn

    from polyvlm import load_generator
    from polyvlm.serve.app import create_app

    try:
        generator = load_generator(args.checkpoint, device, dtype, args.max_model_len)
    except ValueError as e:
        print(f"polyvlm serve: {e}", file=sys.stderr)
        return 2
    app = create_app(generator, cfg)
    mode = "off" if cfg.batch_size == 1 else f"up to {cfg.batch_size} requests, {cfg.batch_wait_ms:g} ms wait"
    logging.getLogger("polyvlm.serve").info(
        "serving %s (%s, %s, context %d) on http://%s:%d/v1 (batching %s)%s", generator.name, device,
        str(dtype).removeprefix("torch."), generator.max_context, cfg.host, cfg.port, mode,
        f"; demo at http://{cfg.host}:{cfg.port}/ui" if cfg.ui else "")
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level=args.log_level, timeout_graceful_shutdown=5)
    return 0
