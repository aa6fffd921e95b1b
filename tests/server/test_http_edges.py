"""HTTP edge cases: wrong content types, empty and odd multipart bodies, 0-byte bodies, 1000
files, hostile file names, the per-request timeout — in process; and over raw sockets
against a real ``wanwu serve``: a 100 MB body (refused before it is read, RSS measured),
lying Content-Length, slow-loris headers and bodies, oversized headers, garbage, and a
check that nothing from a request is ever written to disk."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest
from raw_http import read_all, statuses

MODEL = "efficientnet_lite0"
BODY_TIMEOUT = 1.0
REQUEST_TIMEOUT = 2.0
MB = 1024 * 1024


def multipart(
    parts: list[tuple[bytes, bytes | None, bytes]], boundary: bytes = b"wanwu-test-boundary"
) -> tuple[bytes, dict]:
    """A multipart body built by hand, so file names go on the wire byte for byte:
    ``parts`` = [(field name, raw filename or None, content)]."""
    out = bytearray()
    for name, filename, content in parts:
        out += b"--" + boundary + b"\r\n"
        disposition = b'Content-Disposition: form-data; name="' + name + b'"'
        if filename is not None:
            disposition += b'; filename="' + filename + b'"'
        out += disposition + b"\r\nContent-Type: application/octet-stream\r\n\r\n" + content + b"\r\n"
    out += b"--" + boundary + b"--\r\n"
    return bytes(out), {"Content-Type": "multipart/form-data; boundary=" + boundary.decode()}


def assert_error(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body


# -- content types and empty bodies (in process) ------------------------------------------------
@pytest.mark.parametrize("path", ["/api/v1/classify", f"/predictions/{MODEL}"])
@pytest.mark.parametrize(
    "ctype", ["application/json", "application/problem+json", "text/plain; charset=utf-8", "text/html"]
)
def test_json_or_text_body_is_415_with_what_to_send(client, path, ctype):
    r = client.post(path, content=b'{"image": "aGVsbG8="}', headers={"Content-Type": ctype})
    body = assert_error(r, 415, "unsupported_media_type")
    assert "multipart" in body["error"]["message"] and "--data-binary" in body["error"]["message"]


@pytest.mark.parametrize(
    "ctype", ["application/octet-stream", "image/png", "image/jpeg", "application/x-www-form-urlencoded", None]
)
def test_image_under_any_other_type_is_read(client, coffee, ctype):
    headers = {"Content-Type": ctype} if ctype else {}
    r = client.post("/api/v1/classify?top_k=1", content=coffee.read_bytes(), headers=headers)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "body, code, status",
    [
        (multipart([(b"note", None, b"hello")]), "no_file", 422),  # only another field
        (multipart([]), "no_file", 422),  # no parts at all
        (multipart([(b"file", b"empty.jpg", b"")]), "empty_image", 422),  # a file of 0 bytes
        (multipart([(b"FILE", b"a.png", b"x")]), "no_file", 422),  # names are exact
        ((b"--b\r\n\r\n", {"Content-Type": "multipart/form-data; boundary=b"}), "bad_request", 400),  # cut off
        ((b"", {"Content-Type": "multipart/form-data; boundary=b"}), "bad_request", 400),  # 0 bytes
        ((b"junk", {"Content-Type": "multipart/form-data; boundary=" + "b" * 80}), "bad_request", 400),
    ],
)
def test_odd_multipart_bodies_are_clear_4xx(client, body, code, status):
    content, headers = body
    assert_error(client.post("/api/v1/classify", content=content, headers=headers), status, code)


def test_zero_byte_bodies_everywhere(client):
    assert_error(client.post("/api/v1/classify", content=b""), 422, "empty_image")
    assert_error(client.put(f"/predictions/{MODEL}", content=b""), 422, "empty_image")
    r = client.post(f"/v2/models/{MODEL}/infer", content=b"", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and isinstance(r.json()["error"], str)


def test_thousand_files_in_one_request_is_413(client, coffee):
    body, headers = multipart([(b"file", f"{i}.png".encode(), b"tiny") for i in range(1000)])
    r = client.post("/api/v1/classify", content=body, headers=headers)
    body = assert_error(r, 413, "too_many_files")
    assert "64" in body["error"]["message"] and "--max-files" in body["error"]["message"]
    assert r.headers["connection"] == "close"
    assert client.post("/api/v1/classify?top_k=1", content=coffee.read_bytes()).status_code == 200


HOSTILE_NAMES = {
    b"../../etc/passwd": "passwd",
    b"..\\..\\x.jpg": "x.jpg",
    "名字.jpg".encode(): "名字.jpg",
    b"a\x00b.jpg": "ab.jpg",
    b"/etc/shadow": "shadow",
    b"C:\\Windows\\win.ini": "win.ini",
    b"%2e%2e%2fsecret.png": "%2e%2e%2fsecret.png",  # not URL-decoded: no second meaning
    "x\u202egpj.exe".encode(): "xgpj.exe",  # right-to-left override removed
    b"\xff\xfe.png": "\ufffd\ufffd.png",  # not UTF-8: replaced, not a crash
    b"<img src=x onerror=alert(1)>.png": "<img src=x onerror=alert(1)>.png",  # JSON text; the UI uses textContent
    b"..": "..",
    b"": "upload-",
    b"a" * 1000 + b".jpg": "a" * 255,
}


def test_hostile_file_names_are_echoed_safely(client, coffee):
    photo = coffee.read_bytes()
    body, headers = multipart([(b"file", raw, photo) for raw in HOSTILE_NAMES])
    r = client.post("/api/v1/classify?top_k=1", content=body, headers=headers)
    assert r.status_code == 200, r.text
    names = [item["filename"] for item in r.json()["results"]]
    for name, expected in zip(names, HOSTILE_NAMES.values()):
        assert name.startswith(expected) if expected.endswith("-") else name == expected
        assert "/" not in name.replace("</", "") and "\\" not in name and "\x00" not in name
    # the raw-body route takes the name from X-Filename (UTF-8 bytes in a latin-1 header)
    for raw, expected in [("../../a.jpg", "a.jpg"), ("名字.jpg", "名字.jpg")]:
        r = client.post("/api/v1/classify?top_k=1", content=photo, headers={"X-Filename": raw.encode()})
        assert r.json()["results"][0]["filename"] == expected


def test_request_over_the_time_limit_is_503_and_the_server_goes_on(make_client, coffee, monkeypatch):
    c = make_client(request_timeout=0.5, cache_entries=0)
    engine = c.app.state.ctx.service.pool.get(MODEL).engine
    real_run = engine.run
    finished = threading.Event()

    def slow(batch):
        time.sleep(1.5)
        finished.set()
        return real_run(batch)

    monkeypatch.setattr(engine, "run", slow)
    t0 = time.monotonic()
    r = c.post("/api/v1/classify", content=coffee.read_bytes())
    took = time.monotonic() - t0
    body = assert_error(r, 503, "timeout")
    assert took < 1.4 and r.headers["retry-after"] == "1"
    assert "--request-timeout" in body["error"]["message"] and body["error"]["request_id"] == r.headers["x-request-id"]
    monkeypatch.undo()
    assert finished.wait(5)  # the abandoned forward pass ends in the background
    r = c.post("/api/v1/classify?top_k=1", content=coffee.read_bytes())
    assert r.status_code == 200 and r.json()["results"][0]["predictions"][0]["label"] in {"espresso", "cup"}
    assert 'status="503"' in c.get("/metrics").text


# -- a real server over raw sockets --------------------------------------------------------------
@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> dict[str, Path]:
    dirs = {"cwd": tmp_path_factory.mktemp("serve-cwd"), "tmp": tmp_path_factory.mktemp("serve-tmpdir")}
    return dirs


@pytest.fixture(scope="module")
def server(spawn_server, workdir):
    """Short timeouts; its working directory and TMPDIR are empty folders that must stay empty."""
    return spawn_server(
        "--body-timeout",
        str(BODY_TIMEOUT),
        "--request-timeout",
        str(REQUEST_TIMEOUT),
        cwd=workdir["cwd"],
        env={"TMPDIR": str(workdir["tmp"])},
    )


def connect(server) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def classify_ok(server, photo: Path) -> float:
    t0 = time.monotonic()
    r = httpx.post(server.url + "/api/v1/classify?top_k=1", content=photo.read_bytes(), timeout=30)
    assert r.status_code == 200, r.text
    return time.monotonic() - t0


def rss(server) -> int:
    return psutil.Process(server.proc.pid).memory_info().rss


class PeakRSS:
    """Sample a process's RSS every 10 ms in a thread; ``peak`` is the highest seen."""

    def __init__(self, pid: int):
        self.proc = psutil.Process(pid)
        self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.01)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def test_100mb_body_is_refused_before_it_is_read(server, coffee):
    classify_ok(server, coffee)  # warm: first-request allocations are not the body's fault
    before = rss(server)
    with PeakRSS(server.proc.pid) as sampler, connect(server) as s:
        s.sendall(
            b"POST /api/v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n" % (100 * MB)
        )
        head, _ = read_all(s, 0.5)  # the answer comes before a single body byte is sent
        assert statuses(head) == [413], head[:300]
        assert b"payload_too_large" in head and b"connection: close" in head.lower()
        sent = 0
        chunk = b"\0" * MB
        try:
            while sent < 100 * MB:
                s.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass  # the server closed the connection: it never reads the 100 MB
        assert sent < 100 * MB
    growth = (sampler.peak - before) / MB
    print(
        f"\nRSS growth while refusing a declared 100 MB body: {growth:.1f} MB (sent {sent / MB:.0f} MB before the close)"
    )
    assert growth < 30
    classify_ok(server, coffee)


def test_100mb_streamed_without_length_is_cut_at_the_limit(server, coffee):
    before = rss(server)

    def chunks():
        for _ in range(100):
            yield b"\0" * MB

    with PeakRSS(server.proc.pid) as sampler:
        r = httpx.post(server.url + "/api/v1/classify", content=chunks(), timeout=60)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    growth = (sampler.peak - before) / MB
    print(f"\nRSS growth while cutting a chunked 100 MB body at the 20 MB limit: {growth:.1f} MB")
    assert growth < 30 + 20  # at most the 20 MB it may legally hold, plus the same slack
    classify_ok(server, coffee)


def test_expect_100_continue_is_not_granted_to_an_oversized_body(server):
    with connect(server) as s:
        s.sendall(
            b"PUT /predictions/%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n"
            % (MODEL.encode(), 100 * MB)
        )
        raw, closed = read_all(s, 2)
    assert statuses(raw) == [413] and closed  # no "100 Continue": the client never sends the body


def test_slow_loris_bodies_get_408_while_others_are_served(server, coffee):
    """Headers and a few body bytes, then a stall (or a trickle): 408 and the connection is
    closed after about --body-timeout, and meanwhile other clients are answered at once."""
    stalled, trickling = [], []
    for _ in range(4):
        s = connect(server)
        s.sendall(b"POST /api/v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n\xff\xd8\xff")
        stalled.append(s)
    t = connect(server)
    t.sendall(b"POST /api/v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
    trickling.append(t)
    t0 = time.monotonic()
    assert classify_ok(server, coffee) < BODY_TIMEOUT  # not stuck behind the stalled clients
    for _ in range(8):  # a byte every 0.3 s never stalls for --body-timeout, but is far too slow
        try:
            t.sendall(b"\0")
        except OSError:
            break
        time.sleep(0.3)
    for s in stalled + trickling:
        raw, closed = read_all(s, 5)
        s.close()
        assert statuses(raw) == [408], raw[:300]
        assert b"body_timeout" in raw and closed
    elapsed = time.monotonic() - t0
    assert elapsed < BODY_TIMEOUT + 5
    classify_ok(server, coffee)


def test_slow_headers_are_cut_off(server, coffee):
    with connect(server) as s:
        s.sendall(b"POST /api/v1/classify HTTP/1.1\r\nHost: x\r\nContent-Le")  # and nothing more
        t0 = time.monotonic()
        raw, closed = read_all(s, BODY_TIMEOUT + 4)
    assert closed and raw == b"" and time.monotonic() - t0 < BODY_TIMEOUT + 2
    with connect(server) as s:  # a connection that never says anything
        raw, closed = read_all(s, BODY_TIMEOUT + 4)
    assert closed
    classify_ok(server, coffee)


def test_slow_headers_on_a_kept_alive_connection_are_cut_off(server):
    """uvicorn's keep-alive timer stops at the first byte of the next request; ours does not."""
    with connect(server) as s:
        s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        first, _ = read_all(s, 0.5)
        assert statuses(first) == [200]
        s.sendall(b"GET /pi")  # the next request starts, and stops
        t0 = time.monotonic()
        raw, closed = read_all(s, BODY_TIMEOUT + 6)
    assert closed and raw == b"" and time.monotonic() - t0 < BODY_TIMEOUT + 2


def test_connection_limit_answers_503(spawn_server):
    limited = spawn_server("--max-connections", "3")
    idle = [connect(limited) for _ in range(3)]
    try:
        r = httpx.get(limited.url + "/ping", timeout=5)
        assert r.status_code == 503  # uvicorn's plain-text refusal, not a hang or a crash
    finally:
        for s in idle:
            s.close()
    time.sleep(0.2)
    assert httpx.get(limited.url + "/ping", timeout=5).status_code == 200
    assert limited.stop() == 0


def test_slow_but_steady_upload_is_not_the_servers_working_time(server, coffee):
    """Sending takes longer than --request-timeout, but no gap reaches --body-timeout: 200."""
    photo = coffee.read_bytes()
    step = len(photo) // 4 + 1
    parts = [photo[i : i + step] for i in range(0, len(photo), step)]
    with connect(server) as s:
        s.sendall(
            b"POST /api/v1/classify?top_k=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
            % len(photo)
            + parts[0]
        )
        for part in parts[1:]:
            time.sleep(REQUEST_TIMEOUT / 3)
            s.sendall(part)
        raw, _ = read_all(s, 10)
    assert statuses(raw) == [200], raw[:300]
    assert b'"espresso"' in raw or b'"cup"' in raw


def test_content_length_larger_than_the_body(server, coffee):
    photo = coffee.read_bytes()
    with connect(server) as s:  # the client waits for an answer that needs bytes it never sends
        s.sendall(
            b"POST /api/v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (len(photo) + 1000) + photo
        )
        t0 = time.monotonic()
        raw, closed = read_all(s, BODY_TIMEOUT + 5)
    assert statuses(raw) == [408] and closed and time.monotonic() - t0 < BODY_TIMEOUT + 2
    with connect(server) as s:  # ... or hangs up its sending side
        s.sendall(b"POST /api/v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + photo[:100])
        s.shutdown(socket.SHUT_WR)
        raw, closed = read_all(s, BODY_TIMEOUT + 5)
    assert closed and all(400 <= code < 500 for code in statuses(raw))
    classify_ok(server, coffee)


def test_content_length_smaller_than_the_body(server, coffee):
    """The bytes past Content-Length are not part of the image; here they are no valid request
    either, and get the protocol's 400 — never a 2xx, never a 500. h11 answers the first
    request (415) before refusing the rest; httptools refuses what arrived in one piece at once."""
    with connect(server) as s:
        s.sendall(
            b"POST /api/v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
            b"\x89PNG\r" + b"\n\x1a\nGARBAGE-NOT-HTTP\r\n\r\n" + b"\0" * 5000
        )
        raw, closed = read_all(s, 5)
    # the 5 bytes: not an image; the rest: not HTTP
    assert statuses(raw) in ([415, 400], [400]), raw[:500]
    assert closed and b"500" not in raw.split(b"\r\n", 1)[0]
    classify_ok(server, coffee)


@pytest.mark.parametrize(
    "request_bytes, expected",
    [
        (b"POST /api/v1/classify HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", {400, 431}),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 100, {400}),  # a TLS hello on the plain port
        (b"GARBAGE\r\n\r\n", {400}),
        (
            b"POST /api/v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            {400},
        ),
        (b"POST /api/v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", {400}),
        (b"POST /api/v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello", {400}),
        (b"POST /api/v1/classify HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", {400, 501}),
        (b"GET /../../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", {404}),
        (b"GET /static/../../../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", {404}),
        (b"GET /static/%2e%2e/%2e%2e/config.py HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", {404}),
        (b"GET /api/v1/models HTTP/1.1\r\n\r\n", {400}),  # HTTP/1.1 without Host
    ],
)
def test_malformed_requests_get_4xx_not_5xx(server, request_bytes, expected):
    with connect(server) as s:
        s.sendall(request_bytes)
        raw, _ = read_all(s, 3)
    got = statuses(raw)
    assert got and got[0] in expected, raw[:300]


def test_nothing_from_a_request_touches_the_disk(server, workdir, coffee):
    """Run from an empty working directory with an empty TMPDIR (onnxruntime leaves a small
    ``.ses`` session file there when the model loads: taken as the baseline)."""
    photo = coffee.read_bytes()
    baseline = {p.name: p.stat().st_size for d in workdir.values() for p in d.iterdir()}
    assert set(baseline) <= {".ses"}
    etc_passwd = Path("/etc/passwd").stat().st_mtime_ns
    body, headers = multipart([(b"file", raw, photo) for raw in HOSTILE_NAMES])
    r = httpx.post(server.url + "/api/v1/classify?top_k=1", content=body, headers=headers, timeout=30)
    assert r.status_code == 200
    big = photo * 40  # a multipart body over 1 MB: a form parser would spool it to TMPDIR
    body, headers = multipart([(b"file", b"../../spooled.png", big)])
    assert httpx.post(server.url + "/api/v1/classify", content=body, headers=headers, timeout=30).status_code in (
        200,
        422,
    )
    for name in ("../../etc/passwd", "../escape.png", "/tmp/abs.png"):
        r = httpx.put(server.url + f"/predictions/{MODEL}", content=photo, headers={"X-Filename": name}, timeout=30)
        assert r.status_code == 200
    assert {p.name: p.stat().st_size for d in workdir.values() for p in d.iterdir()} == baseline
    assert not (workdir["cwd"].parent / "escape.png").exists() and not Path("/tmp/abs.png").exists()
    assert Path("/etc/passwd").stat().st_mtime_ns == etc_passwd
    open_files = [f.path for f in psutil.Process(server.proc.pid).open_files()]
    assert not any(str(workdir["cwd"]) in p or str(workdir["tmp"]) in p for p in open_files)


def test_server_log_has_no_traceback(server):
    log = server.log()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log[-3000:]
