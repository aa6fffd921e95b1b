"""A real ``wanwu serve`` process on a free local port, driven by NVIDIA's
``tritonclient.http`` and by plain httpx: metadata, BYTES and FP32 inputs, the
classification extension, body limits over real sockets, no torch in the process, and a
graceful SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import numpy as np
import pytest

import wanwu
from wanwu.imaging import load_image, preprocess
from wanwu.models import get_spec

tritonclient_http = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402

MODEL = "efficientnet_lite0"
SRC_DIR = str(Path(wanwu.__file__).resolve().parents[1])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    keep = ("WANWU_CACHE_DIR", "WANWU_WEIGHTS_DIR")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANWU_") or k in keep}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC_DIR, env.get("PYTHONPATH")]))
    return env


class RunningServer:
    def __init__(self, proc: subprocess.Popen, port: int, log_path: Path):
        self.proc, self.port, self.log_path = proc, port, log_path
        self.url = f"http://127.0.0.1:{port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[RunningServer]:
    port = _free_port()
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "wanwu.cli.serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "info",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_env(),
        )
    running = RunningServer(proc, port, log_path)
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            pytest.fail(f"wanwu serve exited with {proc.returncode}:\n{running.log()}")
        try:
            if httpx.get(running.url + "/v2/health/ready", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"wanwu serve did not become ready:\n{running.log()}")
        time.sleep(0.2)
    yield running
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, f"SIGTERM should end the server normally:\n{running.log()}"


@pytest.fixture(scope="module")
def triton(server: RunningServer):
    client = tritonclient_http.InferenceServerClient(f"127.0.0.1:{server.port}")
    yield client
    client.close()


def _json_api_top1(server: RunningServer, path: Path) -> str:
    r = httpx.post(server.url + "/api/v1/classify?top_k=1", files={"file": (path.name, path.read_bytes())}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["results"][0]["predictions"][0]["label"]


def _label(index: int) -> str:
    from wanwu.labels import imagenet_classes

    return imagenet_classes()[index].label


def test_startup_log_names_url_and_model(server):
    log = server.log()
    assert f"http://127.0.0.1:{server.port}" in log and MODEL in log


def test_server_and_model_metadata(triton):
    assert triton.is_server_live() and triton.is_server_ready()
    meta = triton.get_server_metadata()
    assert meta["name"] == "wanwu" and "classification" in meta["extensions"]
    model = triton.get_model_metadata(MODEL)
    assert model["inputs"] == [
        {"name": "input", "datatype": "FP32", "shape": [-1, 3, 224, 224], "optional": True},
        {"name": "image", "datatype": "BYTES", "shape": [-1], "optional": True},
    ]
    assert model["outputs"][0] == {"name": "probabilities", "datatype": "FP32", "shape": [-1, 1000]}
    assert triton.is_model_ready(MODEL)
    assert triton.get_model_config(MODEL)["max_batch_size"] >= 1


@pytest.mark.parametrize("binary", [True, False])
def test_bytes_input(triton, server, chelsea, coffee, binary):
    import base64

    photos = [chelsea, coffee]
    raw = [p.read_bytes() for p in photos]
    inp = tritonclient_http.InferInput("image", [len(raw)], "BYTES")
    if binary:
        inp.set_data_from_numpy(np.array(raw, dtype=np.object_), binary_data=True)
    else:  # JSON strings must be text: base64, detected by the server
        inp.set_data_from_numpy(np.array([base64.b64encode(b) for b in raw], dtype=np.object_), binary_data=False)
    out = tritonclient_http.InferRequestedOutput("probabilities", binary_data=binary)
    probs = triton.infer(MODEL, [inp], outputs=[out]).as_numpy("probabilities")
    assert probs.shape == (2, 1000) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-3)
    for p, row in zip(photos, probs):
        assert _label(int(row.argmax())) == _json_api_top1(server, p)


@pytest.mark.parametrize("binary", [True, False])
def test_fp32_input_matches_json_api(triton, server, grace_hopper, binary):
    x = preprocess(load_image(grace_hopper).image, get_spec(MODEL).preprocessing)[None]
    inp = tritonclient_http.InferInput("input", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=binary)
    out = tritonclient_http.InferRequestedOutput("probabilities", binary_data=binary)
    result = triton.infer(MODEL, [inp], outputs=[out])
    probs = result.as_numpy("probabilities")
    assert probs.shape == (1, 1000)
    assert _label(int(probs[0].argmax())) == _json_api_top1(server, grace_hopper)


def test_default_outputs_come_back_binary(triton, coffee):
    inp = tritonclient_http.InferInput("image", [1], "BYTES")
    inp.set_data_from_numpy(np.array([coffee.read_bytes()], dtype=np.object_))
    probs = triton.infer(MODEL, [inp]).as_numpy("probabilities")  # no outputs: binary_data_output
    assert probs.shape == (1, 1000) and _label(int(probs.argmax())) == "espresso"


def test_classification_extension(triton, chelsea, cat_labels):
    inp = tritonclient_http.InferInput("image", [1], "BYTES")
    inp.set_data_from_numpy(np.array([chelsea.read_bytes()], dtype=np.object_))
    out = tritonclient_http.InferRequestedOutput("probabilities", class_count=3)
    classes = triton.infer(MODEL, [inp], outputs=[out]).as_numpy("probabilities")
    assert classes.shape == (1, 3)
    rows = [c.decode().split(":", 2) for c in classes[0]]
    scores = [float(s) for s, _, _ in rows]
    assert scores == sorted(scores, reverse=True)
    assert rows[0][2] in cat_labels and _label(int(rows[0][1])) == rows[0][2]


def test_wrong_shape_and_datatype_are_400(triton, coffee):
    bad_shape = tritonclient_http.InferInput("input", [1, 3, 64, 64], "FP32")
    bad_shape.set_data_from_numpy(np.zeros((1, 3, 64, 64), np.float32))
    with pytest.raises(InferenceServerException) as err:
        triton.infer(MODEL, [bad_shape])
    assert err.value.status() == "400" and "shape" in err.value.message()
    bad_type = tritonclient_http.InferInput("input", [1, 3, 224, 224], "INT32")
    bad_type.set_data_from_numpy(np.zeros((1, 3, 224, 224), np.int32))
    with pytest.raises(InferenceServerException) as err:
        triton.infer(MODEL, [bad_type])
    assert err.value.status() == "400" and "datatype" in err.value.message()
    with pytest.raises(InferenceServerException) as err:
        triton.get_model_metadata("no_such_model")
    assert err.value.status() == "404"
    # and it still answers correctly
    inp = tritonclient_http.InferInput("image", [1], "BYTES")
    inp.set_data_from_numpy(np.array([coffee.read_bytes()], dtype=np.object_))
    assert _label(int(triton.infer(MODEL, [inp]).as_numpy("probabilities").argmax())) == "espresso"


def test_oversized_bodies_refused_over_real_sockets(server, coffee):
    limit = 20 * 1024 * 1024
    r = httpx.post(server.url + "/api/v1/classify", content=b"\x00" * (limit + 1), timeout=60)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

    def chunks():
        for _ in range(limit // 65536 + 2):
            yield b"\x00" * 65536

    r = httpx.post(server.url + "/api/v1/classify", content=chunks(), timeout=60)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    assert _json_api_top1(server, coffee) in {"espresso", "cup"}


def test_curl_style_put_to_predictions(server, chelsea, cat_labels):
    r = httpx.put(server.url + f"/predictions/{MODEL}", content=chelsea.read_bytes(), timeout=30)
    assert r.status_code == 200 and max(r.json(), key=r.json().get) in cat_labels
    assert httpx.get(server.url + "/ping").json() == {"status": "Healthy"}


def test_server_process_has_no_torch(server):
    maps = Path(f"/proc/{server.proc.pid}/maps")
    if not maps.exists():
        pytest.skip("needs /proc")
    loaded = maps.read_text()
    assert "libtorch" not in loaded and "/torch/" not in loaded


def test_app_does_not_import_torch_with_warm_cache(coffee):
    """Build the app, serve a request, and look at sys.modules in a fresh interpreter."""
    script = (
        "import sys, json\n"
        "from fastapi.testclient import TestClient\n"
        "from wanwu.server import ServerConfig, create_app\n"
        "with TestClient(create_app(ServerConfig.from_env(environ={}))) as c:\n"
        f"    r = c.post('/api/v1/classify', content=open({str(coffee)!r}, 'rb').read())\n"
        "print(json.dumps({'status': r.status_code, 'torch': 'torch' in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=_env(), timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"status": 200, "torch": False}
