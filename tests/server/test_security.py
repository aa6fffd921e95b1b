"""Access and safety: the API key (every route class with no key, a wrong key and the right
key; the key never logged), CORS (off by default, named origins only), and the security
headers on every kind of answer (page, API, 401, 413, 404, 500)."""

from __future__ import annotations

import argparse
import base64
import json
import re
import secrets
import socket
from html.parser import HTMLParser
from typing import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from wanwu.cli import serve as cli_serve
from wanwu.server import InferenceService, create_app
from wanwu.server import auth as auth_module
from wanwu.server.config import ConfigError, ServerConfig
from wanwu.server.middleware import CONTENT_SECURITY_POLICY
from wanwu.server.pages import STATIC_DIR

KEY = "test-key-" + "A1b2C3d4E5f6"
MODEL = "efficientnet_lite0"


@pytest.fixture(scope="module")
def keyed(base_config, pool) -> Iterator[TestClient]:
    """An app that requires ``KEY``."""
    config = base_config.with_(api_key=KEY)
    with TestClient(
        create_app(config, service=InferenceService(config, pool=pool)), raise_server_exceptions=False
    ) as c:
        yield c


def _png(coffee) -> bytes:
    return coffee.read_bytes()


def _v2_json(coffee) -> dict:
    return {
        "inputs": [
            {
                "name": "image",
                "datatype": "BYTES",
                "shape": [1],
                "data": [base64.b64encode(coffee.read_bytes()).decode()],
            }
        ]
    }


# route class -> (method, path, request kwargs builder)
PROTECTED = {
    "json api: models": ("GET", "/api/v1/models", lambda p: {}),
    "json api: classify": ("POST", "/api/v1/classify", lambda p: {"content": _png(p)}),
    "v2: server metadata": ("GET", "/v2", lambda p: {}),
    "v2: model metadata": ("GET", f"/v2/models/{MODEL}", lambda p: {}),
    "v2: model ready": ("GET", f"/v2/models/{MODEL}/ready", lambda p: {}),
    "v2: model config": ("GET", f"/v2/models/{MODEL}/config", lambda p: {}),
    "v2: infer": ("POST", f"/v2/models/{MODEL}/infer", lambda p: {"json": _v2_json(p)}),
    "v2: repository": ("POST", "/v2/repository/index", lambda p: {}),
    "torchserve: predictions": ("PUT", f"/predictions/{MODEL}", lambda p: {"content": _png(p)}),
    "metrics (private by default)": ("GET", "/metrics", lambda p: {}),
    "unknown path (deny by default)": ("GET", "/api/v2/whatever", lambda p: {}),
}
OPEN = [
    "/",
    "/static/app.js",
    "/static/style.css",
    "/favicon.ico",
    "/ping",
    "/v2/health/live",
    "/v2/health/ready",
    "/docs",
    "/docs/style.css",
    "/openapi.json",
]


def _error_message(r: httpx.Response) -> str:
    body = r.json()
    return body["error"] if isinstance(body["error"], str) else body["error"]["message"]


@pytest.mark.parametrize("route", list(PROTECTED))
def test_protected_routes_need_the_right_key(keyed, coffee, route):
    method, path, kwargs = PROTECTED[route]
    # no key
    r = keyed.request(method, path, **kwargs(coffee))
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == 'Bearer realm="wanwu"'
    assert "Authorization: Bearer" in _error_message(r)
    if path.startswith("/v2"):
        assert isinstance(r.json()["error"], str)  # the v2 protocol's error shape
    else:
        assert r.json()["error"]["code"] == "unauthorized"
    # wrong key (same length, and a prefix of the right one)
    for wrong in ("x" * len(KEY), KEY[:-1], KEY + "x"):
        r = keyed.request(method, path, headers={"Authorization": f"Bearer {wrong}"}, **kwargs(coffee))
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"] == 'Bearer realm="wanwu", error="invalid_token"'
        assert wrong not in r.text
    # right key
    r = keyed.request(method, path, headers={"Authorization": f"Bearer {KEY}"}, **kwargs(coffee))
    expected = 404 if route.startswith("unknown") else 200
    assert r.status_code == expected, r.text


@pytest.mark.parametrize("path", OPEN)
def test_ui_probes_and_docs_stay_open(keyed, path):
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        r = keyed.get(path, headers=headers)
        assert r.status_code == 200, (path, r.text)
        assert "www-authenticate" not in r.headers


@pytest.mark.parametrize(
    "header",
    [
        "bearer " + KEY,
        "BEARER " + KEY,
        "Bearer   " + KEY + "  ",  # scheme in any case, spaces
    ],
)
def test_bearer_scheme_is_case_insensitive(keyed, header):
    assert keyed.get("/api/v1/models", headers={"Authorization": header}).status_code == 200


@pytest.mark.parametrize(
    "headers, params",
    [
        ({"Authorization": KEY}, {}),  # no scheme
        ({"Authorization": "Basic " + base64.b64encode(f"user:{KEY}".encode()).decode()}, {}),
        ({"Authorization": "Bearer"}, {}),
        ({"X-API-Key": KEY}, {}),
        ({}, {"api_key": KEY}),  # never from the URL: URLs end up in logs and browser history
        ({"Cookie": f"api_key={KEY}"}, {}),
    ],
)
def test_only_the_bearer_header_carries_the_key(keyed, headers, params):
    assert keyed.get("/api/v1/models", headers=headers, params=params).status_code == 401


def test_key_is_compared_in_constant_time(keyed, monkeypatch):
    calls = []
    real = auth_module.hmac.compare_digest

    def spy(a, b):
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(auth_module.hmac, "compare_digest", spy)
    keyed.get("/api/v1/models", headers={"Authorization": "Bearer short"})
    keyed.get("/api/v1/models", headers={"Authorization": f"Bearer {KEY}"})
    assert calls == [(32, 32), (32, 32)]  # digests: a guess's length does not show either


def test_metrics_follow_the_flag(make_client):
    public = make_client(api_key=KEY, metrics_public=True)
    assert public.get("/metrics").status_code == 200
    assert public.get("/api/v1/models").status_code == 401  # only /metrics opens
    assert make_client().get("/metrics").status_code == 200  # no key at all: everything open


def test_openapi_declares_the_bearer_scheme(keyed, client):
    spec = keyed.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "the server's --api-key",
    }
    classify = spec["paths"]["/api/v1/classify"]["post"]
    assert classify["security"] == [{"bearer": []}] and "401" in classify["responses"]
    assert "security" not in spec["paths"]["/v2/health/ready"]["get"]
    assert "securitySchemes" not in client.get("/openapi.json").json().get("components", {})


def test_key_from_a_file(tmp_path, make_client):
    path = tmp_path / "key"
    path.write_text(KEY + "\n")
    c = make_client(api_key_file=str(path))
    assert c.get("/api/v1/models").status_code == 401
    assert c.get("/api/v1/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


@pytest.mark.parametrize(
    "environ, fragment",
    [
        ({"WANWU_API_KEY": "has space"}, "--api-key / WANWU_API_KEY"),
        ({"WANWU_API_KEY": "ключ"}, "visible ASCII"),
        ({"WANWU_API_KEY_FILE": "/nonexistent/key"}, "cannot read /nonexistent/key"),
        ({"WANWU_API_KEY": "k3y-Xyz", "WANWU_API_KEY_FILE": "/etc/hostname"}, "use one"),
        ({"WANWU_CORS_ORIGINS": "not-an-origin"}, "--cors-origin / WANWU_CORS_ORIGINS"),
        ({"WANWU_CORS_ORIGINS": "https://a.example/path"}, "is not an origin"),
        ({"WANWU_METRICS_PUBLIC": "perhaps"}, "WANWU_METRICS_PUBLIC"),
        ({"WANWU_REQUEST_TIMEOUT": "-1"}, "--request-timeout"),
        ({"WANWU_BODY_TIMEOUT": "-1"}, "--body-timeout"),
    ],
)
def test_bad_access_settings_name_the_setting(environ, fragment):
    with pytest.raises(ConfigError) as err:
        ServerConfig.from_env(environ=environ)
    assert fragment in err.value.message
    if "WANWU_API_KEY" in environ:
        assert environ["WANWU_API_KEY"] not in err.value.message  # a key is never echoed


def test_config_never_shows_the_key():
    c = ServerConfig.from_env(
        environ={"WANWU_API_KEY": KEY, "WANWU_CORS_ORIGINS": "https://a.example/, http://localhost:3000"}
    )
    assert c.api_key == KEY and KEY not in repr(c) and KEY not in str(c)
    assert c.cors_origins == ("https://a.example", "http://localhost:3000")
    assert ServerConfig.from_env(environ={"WANWU_METRICS_PUBLIC": "yes"}).metrics_public is True


def test_key_is_never_logged_by_a_real_server(spawn_server, coffee):
    """Run with the key in the environment, get refused and accepted, and read the whole log."""
    key = secrets.token_urlsafe(24)
    server = spawn_server("--log-level", "debug", env={"WANWU_API_KEY": key})
    url = server.url
    assert httpx.get(url + "/api/v1/models").status_code == 401
    assert httpx.get(url + "/api/v1/models", headers={"Authorization": "Bearer nope"}).status_code == 401
    r = httpx.post(url + "/api/v1/classify", content=coffee.read_bytes(), headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200
    assert httpx.get(url + "/v2/health/ready").status_code == 200
    # a body the server would refuse as too large: 401 first, without reading it
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"POST /api/v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n")
        head = s.recv(65536)
    assert head.startswith(b"HTTP/1.1 401"), head[:200]
    log = server.log()
    assert server.stop() == 0
    assert key not in log and key not in server.log()
    assert "API key required" in log and "refused 1 request(s) with a wrong API key" in log


# -- CORS -------------------------------------------------------------------------------------
ORIGIN = "https://photos.example"
PREFLIGHT = {
    "Origin": ORIGIN,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


def test_cors_is_off_by_default(client):
    r = client.get("/api/v1/models", headers={"Origin": ORIGIN})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    r = client.options("/api/v1/classify", headers=PREFLIGHT)
    assert r.status_code == 405  # not honoured: no CORS handler answers it
    assert not any(h.startswith("access-control-") for h in r.headers)


def test_cors_allows_named_origins_only(make_client):
    c = make_client(cors_origins=(ORIGIN, "http://localhost:3000"), api_key=KEY)
    r = c.options("/api/v1/classify", headers=PREFLIGHT)  # preflights carry no key
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in r.headers["access-control-allow-headers"].lower()
    assert "POST" in r.headers["access-control-allow-methods"]
    # the answers themselves, 401 included, are readable by the allowed page
    r = c.get("/api/v1/models", headers={"Origin": ORIGIN})
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == ORIGIN
    r = c.get("/api/v1/models", headers={"Origin": ORIGIN, "Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in r.headers["access-control-expose-headers"].lower()
    # another origin: no grant
    evil = {**PREFLIGHT, "Origin": "https://evil.example"}
    r = c.options("/api/v1/classify", headers=evil)
    assert r.status_code == 400 and "access-control-allow-origin" not in r.headers
    r = c.get("/api/v1/models", headers={"Origin": "https://evil.example", "Authorization": f"Bearer {KEY}"})
    assert "access-control-allow-origin" not in r.headers


def test_cors_origin_flag_repeatable_and_comma_list(monkeypatch):
    monkeypatch.setenv("WANWU_CORS_ORIGINS", "https://ignored.example")
    root = argparse.ArgumentParser()
    cli_serve.add_parser(root.add_subparsers(dest="command"))
    args = root.parse_args(
        ["serve", "--cors-origin", "https://a.example", "--cors-origin", "http://b.example:8000,http://c.example"]
    )
    assert cli_serve.config_from_args(args).cors_origins == (
        "https://a.example",
        "http://b.example:8000",
        "http://c.example",
    )


# -- security headers -------------------------------------------------------------------------
def _assert_security_headers(r: httpx.Response) -> None:
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, r.request.url
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["x-frame-options"] == "DENY"


def test_csp_allows_no_inline_code():
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["script-src"] == "'self'" and directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY and "unsafe-eval" not in CONTENT_SECURITY_POLICY


class _InlineFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"inline handler {name} on <{tag}>")
            if value and value.strip().lower().startswith("javascript:"):
                self.problems.append(f"javascript: URL on <{tag}>")
            if name == "style":
                self.problems.append(f"inline style on <{tag}>")
        if tag == "script":
            src = dict(attrs).get("src")
            if not src or re.match(r"(https?:)?//", src):
                self.problems.append(f"<script> without a same-origin src: {src!r}")
            self._in_script = True
        if tag == "link" and re.match(r"(https?:)?//", dict(attrs).get("href") or ""):
            self.problems.append("third-party stylesheet")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.problems.append("inline script body")


def test_ui_page_has_no_inline_script_or_style(client):
    html = client.get("/").text
    finder = _InlineFinder()
    finder.feed(html)
    assert finder.problems == []
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', html)
    assert scripts and all(client.get(s).status_code == 200 for s in scripts)
    assert (STATIC_DIR / "app.js").read_text().count("innerHTML") == 0  # text goes in as text


def test_security_headers_on_every_kind_of_answer(make_client, coffee, monkeypatch):
    c = make_client(api_key=KEY, max_upload_mb=1, cache_entries=0)
    auth = {"Authorization": f"Bearer {KEY}"}
    answers = [
        c.get("/"),
        c.get("/static/app.js"),
        c.get("/docs"),
        c.get("/openapi.json"),
        c.get("/ping"),
        c.get("/api/v1/models", headers=auth),
        c.get("/api/v1/models"),  # 401
        c.get("/api/v1/nothing", headers=auth),  # 404
        c.post("/api/v1/classify", content=b"\0" * (2 * 1024 * 1024), headers=auth),  # 413 before the route
        c.post("/api/v1/classify", content=b"not an image", headers=auth),  # 415 from the route
    ]
    engine = c.app.state.ctx.service.pool.get(MODEL).engine
    monkeypatch.setattr(engine, "run", lambda batch: 1 / 0)
    answers.append(c.post("/api/v1/classify", content=coffee.read_bytes(), headers=auth))  # 500
    monkeypatch.undo()
    assert [r.status_code for r in answers] == [200] * 6 + [401, 404, 413, 415, 500]
    for r in answers:
        _assert_security_headers(r)
    assert json.loads(answers[-1].text)["error"]["request_id"] == answers[-1].headers["x-request-id"]


# -- CLI --------------------------------------------------------------------------------------
def test_serve_help_documents_the_new_flags():
    root = argparse.ArgumentParser(prog="wanwu")
    text = cli_serve.add_parser(root.add_subparsers(dest="command")).format_help()
    for flag, env in [
        ("--api-key", "WANWU_API_KEY"),
        ("--api-key-file", "WANWU_API_KEY_FILE"),
        ("--metrics-public", "WANWU_METRICS_PUBLIC"),
        ("--cors-origin", "WANWU_CORS_ORIGINS"),
        ("--request-timeout", "WANWU_REQUEST_TIMEOUT"),
        ("--body-timeout", "WANWU_BODY_TIMEOUT"),
        ("--max-connections", "WANWU_MAX_CONNECTIONS"),
        ("--max-files", "WANWU_MAX_FILES"),
    ]:
        assert flag in text and env in text, flag
    assert "/v2/health/ready" in text and "Authorization: Bearer" in text


def test_a_key_file_that_holds_no_key_stops_the_server_in_one_line(tmp_path):
    import subprocess
    import sys

    empty = tmp_path / "empty.key"
    empty.write_text("\n")
    for path, fragment in [
        (empty, f"{empty} is empty: write the key into it as one line"),
        (tmp_path / "missing.key", f"cannot read {tmp_path / 'missing.key'}: No such file or directory"),
        (tmp_path, f"cannot read {tmp_path}: Is a directory"),
    ]:
        with pytest.raises(ConfigError) as err:
            ServerConfig.from_env(environ={"WANWU_API_KEY_FILE": str(path)})
        assert err.value.message == f"--api-key-file / WANWU_API_KEY_FILE: {fragment}"
    binary = tmp_path / "binary.key"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="is not text"):
        ServerConfig.from_env(environ={}, api_key_file=str(binary))
    proc = subprocess.run(
        [sys.executable, "-m", "wanwu.cli", "serve", "--api-key-file", str(empty), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert (
        proc.stderr
        == f"wanwu serve: error: --api-key-file / WANWU_API_KEY_FILE: {empty} is empty: write the key into it as one line\n"
    )


def test_a_key_file_every_user_can_read_is_named_in_a_warning(tmp_path, caplog):
    path = tmp_path / "key"
    path.write_text(KEY + "\n")
    path.chmod(0o644)
    with caplog.at_level("INFO", logger="wanwu.server"):
        cli_serve._log_access(ServerConfig.from_env(environ={}, api_key_file=str(path)))
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        f"the API key file {path} can be read by every user of this machine (mode 0644): chmod 600 it if others use this machine"
    ]
    assert KEY not in caplog.text
    caplog.clear()
    path.chmod(0o600)
    with caplog.at_level("INFO", logger="wanwu.server"):
        cli_serve._log_access(ServerConfig.from_env(environ={}, api_key_file=str(path)))
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_help_and_readme_give_the_key_by_file():
    from pathlib import Path

    root = argparse.ArgumentParser(prog="wanwu")
    text = " ".join(cli_serve.add_parser(root.add_subparsers(dest="command")).format_help().split())
    assert "`ps` shows it to every user of the machine: prefer" in text
    assert "not --api-key KEY: every user of the machine can read a process's command line (`ps`)" in text
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert "$(cat" not in readme and "--api-key-file key.txt" in readme
