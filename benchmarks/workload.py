"""Shared pieces of the soak and load tools: start a real `wanwu serve`, build a mixed set of
payloads (photos at several sizes and formats, repeats for cache hits, bad uploads), and
sample the server process's RSS and open file descriptors."""

from __future__ import annotations

import asyncio
import io
import os
import random
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import httpx
from PIL import Image

HOST = "127.0.0.1"  # load and soak traffic never leaves loopback


@dataclass(frozen=True)
class Payload:
    name: str
    data: bytes
    content_type: str
    expect_ok: bool  # False: a bad upload that must get a 4xx


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def photo_paths(data_dir: str | None = None) -> list[Path]:
    root = Path(data_dir) if data_dir else Path(str(resources.files("wanwu").joinpath("data/calibration")))
    exts = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
    found = sorted(p for p in root.rglob("*") if p.suffix.lower() in exts)
    if not found:
        raise SystemExit(f"no photos in {root} (a folder of .jpg/.png/.webp/... files, searched recursively)")
    return found


def build_payloads(data_dir: str | None = None, seed: int = 0) -> list[Payload]:
    """Real photos re-encoded at three sizes in four formats, plus five kinds of bad upload."""
    rng = random.Random(seed)
    out: list[Payload] = []
    formats = [
        ("JPEG", "image/jpeg", {"quality": 85}),
        ("PNG", "image/png", {}),
        ("WEBP", "image/webp", {"quality": 80}),
        ("GIF", "image/gif", {}),
    ]
    for path in photo_paths(data_dir):
        base = Image.open(path).convert("RGB")
        for scale in (0.5, 1.0, 3.0):
            size = (max(16, int(base.width * scale)), max(16, int(base.height * scale)))
            img = base.resize(size, Image.Resampling.BILINEAR)
            fmt, ctype, kw = rng.choice(formats)
            buf = io.BytesIO()
            (img.convert("P") if fmt == "GIF" else img).save(buf, fmt, **kw)
            out.append(Payload(f"{path.stem}@{scale}.{fmt.lower()}", buf.getvalue(), ctype, True))
    jpeg = next(p.data for p in out if p.content_type == "image/jpeg")
    out += [
        Payload("random.jpg", rng.randbytes(5000), "image/jpeg", False),
        Payload("truncated.jpg", jpeg[: len(jpeg) // 3], "image/jpeg", False),
        Payload("notes.txt.jpg", b"this is not an image\n" * 20, "image/jpeg", False),
        Payload("empty.png", b"", "image/png", False),
        Payload("bomb.png", _png_header_bomb(), "image/png", False),
    ]
    return out


def _png_header_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


class ServerProcess:
    """`wanwu serve` as a real child process on a free loopback port."""

    def __init__(self, *extra_args: str, env: dict | None = None, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://{HOST}:{self.port}"
        cmd = [sys.executable, "-m", "wanwu.cli", "serve", "--host", HOST, "--port", str(self.port), *extra_args]
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"wanwu-serve-{self.port}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Seconds until /v2/health/ready answers 200."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"wanwu serve exited with {self.proc.returncode}; log: {self.log_path}")
            try:
                if httpx.get(self.url + "/v2/health/ready", timeout=1.0).status_code == 200:
                    return time.monotonic() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"wanwu serve not ready after {timeout:.0f} s; log: {self.log_path}")

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def process_stats(pid: int) -> tuple[float, int]:
    """(RSS in MB, open file descriptors) of a process."""
    import psutil

    p = psutil.Process(pid)
    return p.memory_info().rss / 1e6, p.num_fds()


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """CPU seconds (user + system) of a process, or of one of its threads (``thread``: its
    native id; the process's own id is its main thread, the event loop of `wanwu serve`)."""
    path = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))
    return s[k]


class LeanConnection:
    """One kept-alive HTTP/1.1 connection that sends raw-body POSTs and reads answers with a
    Content-Length (all wanwu answers have one): a load generator costing ~0.2 ms of CPU per
    request where httpx costs ~2 ms, so that on a 2-core machine the clients leave the server
    the CPU a client elsewhere would (as wrk or hey do)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> LeanConnection:
        return cls(*await asyncio.open_connection(HOST, port))

    async def post(self, path: str, data: bytes, content_type: str) -> tuple[int, bytes]:
        head = f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: {content_type}\r\nContent-Length: {len(data)}\r\n\r\n"
        self.writer.write(head.encode() + data)
        status_and_headers = await self.reader.readuntil(b"\r\n\r\n")
        lines = status_and_headers.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
        length = headers.get("content-length")
        if length is None:
            raise RuntimeError(f"an answer without Content-Length: {lines[0]}")
        return status, await self.reader.readexactly(int(length))

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()
