"""The FastAPI app: OpenAI-compatible `/v1/chat/completions` (plain and SSE), `/v1/models`, `/health`, optional `/ui`."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from polyvlm.infer import Batcher, BatcherError, Completion, Generator
from polyvlm.serve.config import ServeConfig
from polyvlm.serve.errors import APIError, error_body
from polyvlm.serve.protocol import ParsedChat, fit_context, parse_chat
from polyvlm.serve.stops import StopStream, truncate_at_stop

log = logging.getLogger("polyvlm.serve")


def _error_response(e: APIError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if e.status == 401 else None
    return JSONResponse(e.body(), status_code=e.status, headers=headers)


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than `limit` bytes whether or not Content-Length is sent."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise APIError(f"request body is {declared} bytes, over the limit of {limit}", status=413, code="request_too_large")
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise APIError(f"request body is over the limit of {limit} bytes", status=413, code="request_too_large")
    return bytes(buf)


def _install_error_handlers(app: FastAPI) -> None:
    """Every error leaves as OpenAI's `{"error": {...}}` with its status; a batcher refusal keeps its code."""

    @app.exception_handler(APIError)
    async def _api_error(_: Request, e: APIError) -> JSONResponse:
        return _error_response(e)

    @app.exception_handler(BatcherError)
    async def _batcher_error(_: Request, e: BatcherError) -> JSONResponse:
        return _error_response(APIError(e.message, status=e.status, code=e.code))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, e: StarletteHTTPException) -> JSONResponse:
        return _error_response(APIError(str(e.detail), status=e.status_code, code="not_found" if e.status_code == 404 else None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, e: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return _error_response(APIError(f"internal error: {type(e).__name__}", status=500, code="internal_error"))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, e: RequestValidationError) -> JSONResponse:
        return _error_response(APIError(f"invalid request: {e.errors()}", code="invalid_value"))


def _check_key(request: Request, api_key: str) -> None:
    """401 unless `api_key` is empty or the request carries `Authorization: Bearer <api_key>`."""
    if not api_key:
        return
    auth = request.headers.get("authorization", "")
    if not auth:
        raise APIError("missing API key: send 'Authorization: Bearer KEY'", status=401, code="missing_api_key")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), api_key.encode()):
        raise APIError("incorrect API key", status=401, code="invalid_api_key")


def _json_body(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except RecursionError:
        raise APIError("request body is nested too deeply", code="invalid_json") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, and integers over Python's 4300-digit limit
        raise APIError(f"request body is not valid JSON: {e}", code="invalid_json") from None


async def chat_completion(request: Request, generator: Generator, batcher: Batcher, cfg: ServeConfig,
                          served: str) -> Any:
    """POST /v1/chat/completions: parse and decode off the event loop, queue, answer (JSON or SSE)."""
    _check_key(request, cfg.api_key)
    body = _json_body(await _read_body(request, cfg.max_body_bytes))

    def prepare() -> ParsedChat:  # media decoding and tokenizing are CPU work: off the event loop
        parsed = parse_chat(body, cfg, set(generator.modalities), served)
        fit_context(generator, parsed.request, parsed.max_tokens_given)
        return parsed

    deltas: asyncio.Queue[str | None] = asyncio.Queue()  # unbounded: the model never waits for a client
    with batcher.arriving():  # queued before it stops counting as arriving, so a forming batch sees it
        parsed = await run_in_threadpool(prepare)
        future = batcher.enqueue(parsed.request, deltas.put_nowait if parsed.stream else None)
    rid = f"chatcmpl-{uuid.uuid4().hex}"
    if parsed.stream:
        return StreamingResponse(_sse(future, deltas, parsed, rid, served), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    done = await future
    text, finish = truncate_at_stop(done.text, parsed.request.stop, done.finish_reason)
    return {
        "id": rid, "object": "chat.completion", "created": int(time.time()), "model": served,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                     "finish_reason": finish}],
        "usage": _usage(done),
    }


def create_app(generator: Generator, config: ServeConfig | None = None, *, ui: bool | None = None) -> FastAPI:
    """An app serving `generator`; `config` sets limits, batching and auth; `ui=True` mounts Gradio at /ui."""
    cfg = config or ServeConfig()
    served = cfg.served_model_name or generator.name
    created = int(time.time())
    batcher = Batcher(generator, cfg.batch_size, cfg.batch_wait_ms, cfg.max_queue, cfg.batch_arrival_wait_ms)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        batcher.close()

    app = FastAPI(title="polyvlm", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.batcher, app.state.config, app.state.generator = batcher, cfg, generator
    _install_error_handlers(app)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": served, "queued": batcher.pending,
                "batch_sizes": {str(k): v for k, v in sorted(batcher.batch_sizes.items())}}

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        _check_key(request, cfg.api_key)
        return {"object": "list", "data": [{"id": served, "object": "model", "created": created, "owned_by": "polyvlm",
                                             "max_model_len": generator.max_context}]}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        return await chat_completion(request, generator, batcher, cfg, served)

    if cfg.ui if ui is None else ui:
        from polyvlm.serve.webui import mount_ui

        try:
            app = mount_ui(app, batcher, generator, cfg)
        except BaseException:
            batcher.close()
            raise
    return app


def _usage(c: Completion) -> dict[str, int]:
    return {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens,
            "total_tokens": c.prompt_tokens + c.completion_tokens}


def _chunk(rid: str, model: str, delta: dict, finish: str | None = None) -> str:
    body = {"id": rid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


async def _sse(task: asyncio.Future, deltas: asyncio.Queue, parsed: ParsedChat, rid: str, model: str) -> AsyncIterator[str]:
    """SSE events: a role delta, content deltas as tokens arrive, a finish chunk, optional usage, `[DONE]`."""
    task.add_done_callback(lambda _: deltas.put_nowait(None))  # after every token: both go through call_soon
    stops = StopStream(parsed.request.stop)
    try:
        yield _chunk(rid, model, {"role": "assistant", "content": ""})
        finished = False
        while not finished and (delta := await deltas.get()) is not None:
            # tokens that arrived while the last event was being sent go out as one event: under load the
            # loop spends its time on the model's batch, not on one event (and one client parse) per token
            while not deltas.empty():
                more = deltas.get_nowait()
                if more is None:
                    finished = True
                    break
                delta += more
            if text := stops.push(delta):
                yield _chunk(rid, model, {"content": text})
        try:
            done = task.result()
        except APIError as e:
            yield f"data: {json.dumps(e.body())}\n\n"
        except BatcherError as e:
            yield f"data: {json.dumps(APIError(e.message, status=e.status, code=e.code).body())}\n\n"
        except Exception as e:  # pragma: no cover - the batcher wraps generator errors in BatcherError
            yield f"data: {json.dumps(error_body(str(e), 'server_error'))}\n\n"
        else:
            if rest := stops.finish(done.text):
                yield _chunk(rid, model, {"content": rest})
            yield _chunk(rid, model, {}, "stop" if stops.stopped else done.finish_reason)
            if parsed.include_usage:
                usage = {"id": rid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                         "choices": [], "usage": _usage(done)}
                yield f"data: {json.dumps(usage)}\n\n"
        yield "data: [DONE]\n\n"
    finally:
        if not task.done():  # client went away: drop the request if it has not started
            task.cancel()
