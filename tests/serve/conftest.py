"""Fixtures for the serve tests: fake generator, in-process TestClient, a live uvicorn server on loopback, media bytes."""

from __future__ import annotations

import contextlib

import pytest
from fastapi.testclient import TestClient
from serve_fakes import FakeGenerator
from serve_helpers import b64, data_uri, live_server, png_bytes, wav_bytes  # noqa: F401

from polyvlm.serve.app import create_app
from polyvlm.serve.config import ServeConfig


@pytest.fixture
def fake() -> FakeGenerator:
    return FakeGenerator(batch_sleep=0.01)


@pytest.fixture
def make_client():
    """make_client(generator, **config) -> TestClient (lifespan run, batcher closed at teardown)."""
    stack = contextlib.ExitStack()

    def make(gen=None, **cfg) -> TestClient:
        app = create_app(gen or FakeGenerator(batch_sleep=0.0), ServeConfig(**cfg))
        return stack.enter_context(TestClient(app, raise_server_exceptions=False))

    with stack:
        yield make
