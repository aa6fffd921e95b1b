"""Talking HTTP/1.1 over a bare socket, for tests that send what no client library would."""

from __future__ import annotations

import re
import socket
import time


def read_all(s: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """Everything the server sends within ``timeout``; True if it closed the connection."""
    s.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                return data, True
            data += chunk
    except TimeoutError:
        pass
    except ConnectionResetError:
        return data, True
    return data, False


def statuses(raw: bytes) -> list[int]:
    """The status codes of the responses in ``raw``, in order."""
    return [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)]
