"""Fixtures for the media tests: a loopback HTTP server with an image, a redirect, a large file and a 404."""

from __future__ import annotations

import pytest
from media_helpers import png_bytes

from polyvlm.testing import loopback_http


@pytest.fixture(scope="module")
def http_server():
    png = png_bytes((10, 200, 10))
    big = b"\0" * 50_000

    with loopback_http({"/img.png": png, "/big.bin": big}, {"/redirect": "/img.png"}) as url:
        yield url
