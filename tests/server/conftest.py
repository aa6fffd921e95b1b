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
from wanwu.server.model_pool import ModelPool

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
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _chunk(b"IEND", b"")
    )


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
def make_client(base_config: ServerConfig, pool: ModelPool, app_clients) -> Callable[..., TestClient]:
    """A fresh app with some settings changed (sharing the loaded model); closed after the test."""
    return lambda **changes: app_clients(base_config.with_(**changes), pool)


# -- real `wanwu serve` processes -----------------------------------------------------------
SRC_DIR = str(Path(__file__).resolve().parents[2] / "src")


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A ``wanwu serve`` subprocess on a free loopback port, its log (stderr) in a file and its
    stdout in another beside it."""

    def __init__(self, args: list[str], log_path: Path, *, env: dict[str, str] | None = None, cwd: Path | None = None):
        import subprocess
        import sys

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        keep = ("WANWU_CACHE_DIR", "WANWU_WEIGHTS_DIR")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("WANWU_") or k in keep}
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC_DIR, full_env.get("PYTHONPATH")]))
        full_env.update(env or {})
        self.stdout_path = log_path.with_name(log_path.stem + ".stdout")
        with open(log_path, "wb") as log, open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "wanwu.cli.serve", "--host", "127.0.0.1", "--port", str(self.port), *args],
                stdout=out,
                stderr=log,
                env=full_env,
                cwd=cwd,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 120) -> ServerProcess:
        import time

        import httpx

        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"wanwu serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/v2/health/ready", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail(f"wanwu serve did not become ready:\n{self.log()}")
            time.sleep(0.1)

    def stop(self, sig: int | None = None, timeout: float = 30) -> int:
        """Send ``sig`` (SIGTERM) and wait; the exit status (killed after ``timeout``)."""
        import signal
        import subprocess

        if self.proc.poll() is None:
            self.proc.send_signal(sig or signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="session")
def spawn_server(tmp_path_factory) -> Iterator[Callable[..., ServerProcess]]:
    """``spawn_server(*flags, env=..., cwd=...)`` -> a ready ``ServerProcess``; any still running
    at the end of the session is stopped."""
    started: list[ServerProcess] = []

    def spawn(
        *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, ready: bool = True
    ) -> ServerProcess:
        server = ServerProcess(list(args), tmp_path_factory.mktemp("serve") / "serve.log", env=env, cwd=cwd)
        started.append(server)
        return server.wait_ready() if ready else server

    yield spawn
    for server in started:
        server.stop(timeout=15)
