"""Small pieces of the server without HTTP: config from the environment, the serve CLI,
file-name cleaning, and the v2 codec."""

from __future__ import annotations

import argparse
import base64
import json

import numpy as np
import pytest

from wanwu.cli import serve as cli_serve
from wanwu.errors import UnknownModelError
from wanwu.server.config import ConfigError, ServerConfig
from wanwu.server.errors import InvalidTensorError
from wanwu.server.uploads import clean_filename
from wanwu.server.v2_codec import (
    OutputTensor,
    decode_request,
    deserialize_bytes,
    encode_response,
    serialize_bytes,
)


# -- config -----------------------------------------------------------------------------------
def test_config_defaults():
    c = ServerConfig.from_env(environ={})
    assert (c.host, c.port, c.model) == ("127.0.0.1", 8080, "efficientnet_lite0")
    assert (c.engine, c.precision, c.top_k) == ("onnxruntime", "fp32", 5)
    assert c.max_upload_bytes == 20 * 1024 * 1024 and c.max_pixels == 40_000_000 and c.max_files == 64


def test_config_env_then_overrides():
    env = {
        "WANWU_PORT": "9001",
        "WANWU_MAX_PIXELS": "12M",
        "WANWU_TOP_K": "3",
        "WANWU_THREADS": "auto",
        "WANWU_MAX_UPLOAD_MB": "2.5",
        "WANWU_HOST": "",
    }
    c = ServerConfig.from_env(environ=env, top_k=7, host=None)
    assert (c.port, c.max_pixels, c.top_k, c.threads) == (9001, 12_000_000, 7, None)
    assert (c.max_upload_mb, c.host) == (2.5, "127.0.0.1")


@pytest.mark.parametrize(
    "env, fragment",
    [
        ({"WANWU_PORT": "eighty"}, "WANWU_PORT"),
        ({"WANWU_TOP_K": "0"}, "--top-k / WANWU_TOP_K"),
        ({"WANWU_ENGINE": "tensorrt"}, "--engine"),
        ({"WANWU_MAX_UPLOAD_MB": "-1"}, "--max-upload-mb"),
        ({"WANWU_PORT": "70000"}, "--port"),
    ],
)
def test_config_errors_name_the_setting(env, fragment):
    with pytest.raises(ConfigError) as err:
        ServerConfig.from_env(environ=env)
    assert fragment in err.value.message


def test_config_unknown_model():
    with pytest.raises(UnknownModelError):
        ServerConfig.from_env(environ={"WANWU_MODEL": "alexnet"})


# -- CLI --------------------------------------------------------------------------------------
def _serve_parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="wanwu")
    return cli_serve.add_parser(root.add_subparsers(dest="command"))


def test_serve_help_shows_env_vars_and_examples():
    text = _serve_parser().format_help()
    for var in ("WANWU_HOST", "WANWU_PORT", "WANWU_MODEL", "WANWU_MAX_UPLOAD_MB", "WANWU_MAX_PIXELS", "WANWU_TOP_K"):
        assert var in text
    assert "curl -T cat.jpg" in text and "default: 8080" in text


def test_serve_flags_override_env(monkeypatch):
    monkeypatch.setenv("WANWU_PORT", "9100")
    monkeypatch.setenv("WANWU_TOP_K", "4")
    root = argparse.ArgumentParser()
    cli_serve.add_parser(root.add_subparsers(dest="command"))
    args = root.parse_args(["serve", "--port", "9200", "--max-upload-mb", "3"])
    c = cli_serve.config_from_args(args)
    assert (c.port, c.top_k, c.max_upload_mb) == (9200, 4, 3.0)


def test_every_server_setting_has_its_flag_with_help_and_variable():
    """The serve flags are generated from ServerConfig's table: a field added there is a flag
    here, its help followed by its variable (compared without white space: argparse wraps lines,
    also after a hyphen)."""
    import dataclasses

    text = "".join(_serve_parser().format_help().split())
    for f in dataclasses.fields(ServerConfig):
        if f.name in cli_serve.NOT_FLAGS:
            continue
        help_text = cli_serve.MODEL_HELP.get(f.name) or f.metadata["help"]
        assert f"{ServerConfig.flag_name(f.name)}" in text, f.name
        assert "".join(f"{help_text} [env {f.metadata['env']}".split()) in text, f.name


def test_generated_serve_flags_parse_as_before():
    root = argparse.ArgumentParser()
    cli_serve.add_parser(root.add_subparsers(dest="command"))
    args = root.parse_args(["serve", "--library", "--show-cache-hits", "--no-metrics-public", "--log-level", "debug"])
    c = ServerConfig.from_args(args, environ={"WANWU_METRICS_PUBLIC": "1", "WANWU_SHOW_CACHE_HITS": "0"})
    assert (c.library, c.show_cache_hits, c.metrics_public, c.log_level) == ("", True, False, "debug")
    args = root.parse_args(["serve", "--library", "cat.db", "--workers", "auto", "-k", "3"])
    c = ServerConfig.from_args(args, environ={})
    assert (c.library, c.workers, c.top_k, c.port, c.show_cache_hits) == ("cat.db", None, 3, 8080, False)
    with pytest.raises(SystemExit):
        root.parse_args(["serve", "--log-level", "loud"])


def test_serve_bad_config_exits_2(capsys):
    assert cli_serve.main(["--top-k", "0"]) == 2
    assert "--top-k" in capsys.readouterr().err


# -- uploads ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw, expected",
    [
        ("cat.jpg", "cat.jpg"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\dog.png", "dog.png"),
        ("a\x00b\nc.jpg", "abc.jpg"),
        ("", "upload"),
        (None, "upload"),
        ("/", "upload"),
        ("猫.jpg", "猫.jpg"),
    ],
)
def test_clean_filename(raw, expected):
    assert clean_filename(raw) == expected


# -- v2 codec ---------------------------------------------------------------------------------
def test_bytes_serialization_roundtrip():
    items = [b"", b"abc", bytes(range(256))]
    assert deserialize_bytes(serialize_bytes(items), 3, "x") == items
    with pytest.raises(InvalidTensorError):
        deserialize_bytes(serialize_bytes(items), 2, "x")


def test_json_bytes_elements_base64_detected_raw_kept():
    blob = bytes(range(200))
    body = {
        "inputs": [
            {
                "name": "i",
                "shape": [3],
                "datatype": "BYTES",
                "data": [base64.b64encode(blob).decode(), "short text", {"b64": base64.b64encode(b"hi").decode()}],
            }
        ]
    }
    req = decode_request(json.dumps(body).encode())
    assert req.inputs[0].data == [blob, b"short text", b"hi"]


def test_encode_response_json_and_binary():
    probs = np.full((1, 4), 0.25, np.float32)
    body, headers = encode_response("m", "1", "id7", [OutputTensor("p", "FP32", (1, 4), probs)])
    assert "Inference-Header-Content-Length" not in headers and b'"id":"id7"' in body
    body, headers = encode_response("m", "1", None, [OutputTensor("p", "FP32", (1, 4), probs, binary=True)])
    n = int(headers["Inference-Header-Content-Length"])
    assert np.frombuffer(body[n:], "<f4").tolist() == [0.25] * 4
