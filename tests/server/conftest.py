"""Shared fixtures for the server tests: real photos, crafted bad inputs, and in-process apps
that share one loaded model."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import Callable, Iterator

import matplotlib
import pytest
import skimage
from fastapi.testclient import TestClient

from wanwu.server import InferenceService, ServerConfig, create_app
from wanwu.server.models import ModelPool

SKIMAGE_DATA = Path(os.path.dirname(skimage.__file__)) / "data"


@pytest.fixture(scope="session")
def cat_labels() -> set[str]:
    """What chelsea.png may be called (the model splits its vote among the three)."""
    return {"tabby", "tiger cat", "Egyptian cat"}


@pytest.fixture(scope="session")
def chelsea() -> Path:
    return SKIMAGE_DATA / "chelsea.png"


@pytest.fixture(scope="session")
def coffee() -> Path:
    return SKIMAGE_DATA / "coffee.png"


@pytest.fixture(scope="session")
def grace_hopper() -> Path:
    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG header declaring ``width`` x ``height`` with a tiny IDAT: a bomb
    that must be refused from the header, before any pixel is allocated."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _chunk(b"IEND", b"")


@pytest.fixture(scope="session")
def bomb_png() -> bytes:
    return png_claiming(100_000, 100_000)


@pytest.fixture(scope="session")
def base_config() -> ServerConfig:
    """Defaults only: the developer's WANWU_* variables must not change the tests."""
    return ServerConfig.from_env(environ={})


@pytest.fixture(scope="session")
def pool(base_config: ServerConfig) -> ModelPool:
    return ModelPool(base_config)


@pytest.fixture(scope="session")
def client(base_config: ServerConfig, pool: ModelPool) -> Iterator[TestClient]:
    app = create_app(base_config, service=InferenceService(base_config, pool=pool))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def make_client(base_config: ServerConfig, pool: ModelPool) -> Iterator[Callable[..., TestClient]]:
    """A fresh app with some settings changed (sharing the loaded model); closed after the test."""
    opened: list[TestClient] = []

    def make(**changes) -> TestClient:
        config = base_config.with_(**changes)
        c = TestClient(create_app(config, service=InferenceService(config, pool=pool)), raise_server_exceptions=False)
        c.__enter__()
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.__exit__(None, None, None)
