"""Open Inference Protocol v2 routes in process: JSON and binary tensors, the classification
extension, and 4xx for every malformed request (``{"error": "..."}``)."""

from __future__ import annotations

import base64
import gzip
import json
import struct

import numpy as np
import pytest

from wanwu.imaging import load_image, preprocess
from wanwu.models import get_spec
from wanwu.server.v2_codec import deserialize_bytes, serialize_bytes

URL = "/v2/models/efficientnet_lite0/infer"


def v2_error(response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    return body["error"]


def tensor_of(path) -> np.ndarray:
    spec = get_spec("efficientnet_lite0")
    return preprocess(load_image(path).image, spec.preprocessing)[None]


def bytes_input(*images: bytes, name: str = "image") -> dict:
    """A BYTES input of base64 JSON strings."""
    data = [base64.b64encode(b).decode() for b in images]
    return {"name": name, "shape": [len(images)], "datatype": "BYTES", "data": data}


def fp32_input(data, shape: list[int]) -> dict:
    return {"name": "input", "shape": shape, "datatype": "FP32", "data": data}


def binary_request(inputs: list[tuple[dict, bytes]], outputs: list[dict] | None = None) -> tuple[bytes, dict]:
    header: dict = {"inputs": []}
    blobs = []
    for meta, blob in inputs:
        header["inputs"].append({**meta, "parameters": {"binary_data_size": len(blob)}})
        blobs.append(blob)
    if outputs is not None:
        header["outputs"] = outputs
    head = json.dumps(header).encode()
    headers = {"Inference-Header-Content-Length": str(len(head)), "Content-Type": "application/octet-stream"}
    return head + b"".join(blobs), headers


def split_binary_response(response) -> tuple[dict, bytes]:
    n = int(response.headers["inference-header-content-length"])
    return json.loads(response.content[:n]), response.content[n:]


# -- server and model endpoints -------------------------------------------------------------
def test_server_metadata_and_health(client):
    meta = client.get("/v2").json()
    assert meta["name"] == "wanwu" and "classification" in meta["extensions"]
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").status_code == 200


def test_model_metadata(client):
    meta = client.get("/v2/models/efficientnet_lite0").json()
    assert meta["inputs"] == [  # two alternatives, each optional (Triton's mark), one per request
        {"name": "input", "datatype": "FP32", "shape": [-1, 3, 224, 224], "optional": True},
        {"name": "image", "datatype": "BYTES", "shape": [-1], "optional": True},
    ]
    assert meta["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 1000]}]
    assert client.get("/v2/models/efficientnet_lite0/versions/1").json() == meta
    lite2 = client.get("/v2/models/efficientnet_lite2").json()
    assert lite2["inputs"][0]["shape"] == [-1, 3, 260, 260]


def test_metadata_inputs_are_what_infer_accepts(client, chelsea):
    """A client that reads the metadata finds the BYTES input and can send it under that name."""
    meta = client.get("/v2/models/efficientnet_lite0").json()
    image = next(i for i in meta["inputs"] if i["datatype"] == "BYTES")
    body = {
        "inputs": [
            {
                "name": image["name"],
                "datatype": "BYTES",
                "shape": [1],
                "data": [base64.b64encode(chelsea.read_bytes()).decode()],
            }
        ],
        "outputs": [{"name": meta["outputs"][0]["name"], "parameters": {"classification": 1}}],
    }
    r = client.post("/v2/models/efficientnet_lite0/infer", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"][0].split(":")[1] in {"281", "282", "285"}  # a cat
    config = client.get("/v2/models/efficientnet_lite0/config").json()
    assert [(i["name"], i["data_type"], i["optional"]) for i in config["input"]] == [
        ("input", "TYPE_FP32", True),
        ("image", "TYPE_STRING", True),
    ]


def test_model_ready_and_unknown(client):
    r = client.get("/v2/models/efficientnet_lite0/ready")
    assert r.status_code == 200 and r.json()["ready"] is True
    assert client.get("/v2/models/efficientnet_lite0/versions/1/ready").status_code == 200
    assert "unknown model" in v2_error(client.get("/v2/models/nope"), 404)
    assert "version" in v2_error(client.get("/v2/models/efficientnet_lite0/versions/7"), 404)
    v2_error(client.post("/v2/models/nope/infer", json={"inputs": []}), 404)


def test_repository_index(client):
    index = client.post("/v2/repository/index").json()
    states = {m["name"]: m["state"] for m in index}
    assert states["efficientnet_lite0"] == "READY"


# -- inference --------------------------------------------------------------------------------
def test_fp32_json_nested_and_flat(client, chelsea, cat_labels):
    x = tensor_of(chelsea)
    for data in (x.tolist(), x.ravel().tolist()):
        r = client.post(URL, json={"id": "r1", "inputs": [fp32_input(data, [1, 3, 224, 224])]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["id"] == "r1" and body["model_name"] == "efficientnet_lite0"
        [out] = body["outputs"]
        assert out["name"] == "probabilities" and out["datatype"] == "FP32" and out["shape"] == [1, 1000]
        probs = np.asarray(out["data"], np.float32)
        assert abs(probs.sum() - 1) < 1e-3
        from wanwu.labels import imagenet_classes

        assert imagenet_classes()[int(probs.argmax())].label in cat_labels


def test_bytes_json_base64_with_classification(client, chelsea, coffee):
    images = [base64.b64encode(p.read_bytes()).decode() for p in (chelsea, coffee)]
    r = client.post(
        URL,
        json={
            "inputs": [{"name": "image", "shape": [2], "datatype": "BYTES", "data": images}],
            "outputs": [{"name": "probabilities", "parameters": {"classification": 3}}],
        },
    )
    assert r.status_code == 200, r.text
    [out] = r.json()["outputs"]
    assert out["datatype"] == "BYTES" and out["shape"] == [2, 3]
    score, index, label = out["data"][0].split(":", 2)
    assert 0 < float(score) <= 1 and label in {"tabby", "tiger cat", "Egyptian cat"} and int(index) in (281, 282, 285)
    assert out["data"][3].split(":", 2)[2] in {"espresso", "cup"}


def test_bytes_binary_in_and_out(client, coffee):
    body, headers = binary_request(
        [({"name": "image", "shape": [1], "datatype": "BYTES"}, serialize_bytes([coffee.read_bytes()]))],
        outputs=[
            {"name": "probabilities", "parameters": {"binary_data": True}},
            {"name": "probabilities", "parameters": {"classification": 2, "binary_data": True}},
        ],
    )
    r = client.post(URL, content=body, headers=headers)
    assert r.status_code == 200, r.text
    head, blob = split_binary_response(r)
    probs_meta, cls_meta = head["outputs"]
    n = probs_meta["parameters"]["binary_data_size"]
    probs = np.frombuffer(blob[:n], "<f4")
    assert probs.shape == (1000,)
    labels = deserialize_bytes(blob[n : n + cls_meta["parameters"]["binary_data_size"]], 2, "out")
    assert labels[0].decode().split(":", 2)[2] == "espresso" and int(np.argmax(probs)) == 967


def test_fp32_binary_matches_bytes_path(client, chelsea):
    x = tensor_of(chelsea)
    meta = {"name": "input", "shape": list(x.shape), "datatype": "FP32"}
    body, headers = binary_request([(meta, x.astype("<f4").tobytes())])
    via_tensor = np.asarray(client.post(URL, content=body, headers=headers).json()["outputs"][0]["data"])
    r = client.post(URL, json={"inputs": [bytes_input(chelsea.read_bytes())]})
    via_bytes = np.asarray(r.json()["outputs"][0]["data"])
    np.testing.assert_allclose(via_tensor, via_bytes, atol=1e-5)


def test_gzip_request_body(client, coffee):
    payload = json.dumps({"inputs": [bytes_input(coffee.read_bytes())]}).encode()
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    r = client.post(URL, content=gzip.compress(payload), headers=headers)
    assert r.status_code == 200


# -- malformed requests: 400 with a string error ------------------------------------------
@pytest.mark.parametrize(
    "request_body, fragment",
    [
        (
            {"inputs": [{"name": "input", "shape": [1, 3, 100, 100], "datatype": "FP32", "data": [0.0] * 30000}]},
            "shape",
        ),
        ({"inputs": [{"name": "input", "shape": [3, 224, 224], "datatype": "FP32", "data": [0.0] * 150528}]}, "shape"),
        (
            {"inputs": [{"name": "input", "shape": [1, 3, 224, 224], "datatype": "FP32", "data": [0.0] * 10}]},
            "elements",
        ),
        (
            {"inputs": [{"name": "input", "shape": [1, 3, 224, 224], "datatype": "INT32", "data": [0] * 150528}]},
            "datatype",
        ),
        ({"inputs": [{"name": "input", "shape": [1], "datatype": "FP99", "data": [0]}]}, "datatype"),
        ({"inputs": [{"name": "input", "shape": [1, 1], "datatype": "FP32", "data": [[0.0], [1.0, 2.0]]}]}, "FP32"),
        (
            {"inputs": [{"name": "input", "shape": [1, 3, 224, 224], "datatype": "FP32", "data": ["x"] * 150528}]},
            "FP32",
        ),
        ({"inputs": [{"name": "image", "shape": [2, 2], "datatype": "BYTES", "data": ["a", "b", "c", "d"]}]}, "shape"),
        ({"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [5]}]}, "strings"),
        ({"inputs": [{"name": "image", "shape": [0], "datatype": "BYTES", "data": []}]}, "empty"),
        (
            {
                "inputs": [
                    {"name": "a", "shape": [1], "datatype": "BYTES", "data": ["x"]},
                    {"name": "b", "shape": [1], "datatype": "BYTES", "data": ["y"]},
                ]
            },
            "one input",
        ),
        ({"inputs": []}, "inputs"),
        ({"inputs": [{"name": "input", "shape": [1, 3, 224, 224], "datatype": "FP32"}]}, "data"),
        ({"inputs": [{"name": "input", "shape": "1,3", "datatype": "FP32", "data": [1]}]}, "shape"),
        (
            {
                "inputs": [{"name": "input", "shape": [1], "datatype": "BYTES", "data": ["aGVsbG8gd29ybGQgaGVsbG8="]}],
                "outputs": [{"name": "logits"}],
            },
            "output",
        ),
        (
            {
                "inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": ["eA=="]}],
                "outputs": [{"name": "probabilities", "parameters": {"classification": -1}}],
            },
            "classification",
        ),
    ],
)
def test_malformed_requests_are_400(client, request_body, fragment):
    message = v2_error(client.post(URL, json=request_body))
    assert fragment in message


def test_nan_input_is_400(client):
    data = [0.0] * 150528
    data[7] = float("nan")
    body = json.dumps({"inputs": [{"name": "input", "shape": [1, 3, 224, 224], "datatype": "FP32", "data": data}]})
    assert "NaN" in v2_error(client.post(URL, content=body, headers={"Content-Type": "application/json"}))


def test_not_json_is_400(client):
    assert "JSON" in v2_error(client.post(URL, content=b"{not json", headers={"Content-Type": "application/json"}))


def test_binary_size_lies_are_400(client):
    body, headers = binary_request([({"name": "input", "shape": [1, 3, 224, 224], "datatype": "FP32"}, b"\x00" * 1000)])
    assert "bytes" in v2_error(client.post(URL, content=body, headers=headers))
    headers["Inference-Header-Content-Length"] = str(len(body) + 10)
    v2_error(client.post(URL, content=body, headers=headers))
    headers["Inference-Header-Content-Length"] = "abc"
    v2_error(client.post(URL, content=body, headers=headers))
    bad_bytes = struct.pack("<I", 1000) + b"short"
    body, headers = binary_request([({"name": "image", "shape": [1], "datatype": "BYTES"}, bad_bytes)])
    v2_error(client.post(URL, content=body, headers=headers))


def test_bad_image_in_bytes_keeps_its_status(client, bomb_png):
    message = v2_error(client.post(URL, json={"inputs": [bytes_input(b"just some text here, no image")]}), 415)
    assert "element 0" in message
    v2_error(client.post(URL, json={"inputs": [bytes_input(bomb_png)]}), 413)


def test_batch_over_max_files_is_413(make_client):
    c = make_client(max_files=2)
    message = v2_error(c.post(URL, json={"inputs": [bytes_input(b"a", b"b", b"c")]}), 413)
    assert "--max-files" in message


def test_still_answers_after_bad_v2_requests(client, coffee):
    for _ in range(3):
        client.post(
            URL, json={"inputs": [{"name": "input", "shape": [1, 3, 5, 5], "datatype": "FP32", "data": [0.0] * 75}]}
        )
        client.post(URL, content=b"\x00\x01")
    r = client.post(
        URL,
        json={
            "inputs": [bytes_input(coffee.read_bytes())],
            "outputs": [{"name": "probabilities", "parameters": {"classification": 1}}],
        },
    )
    assert r.status_code == 200
    assert r.json()["outputs"][0]["data"][0].endswith(":espresso")


def test_gzip_bomb_is_413_and_unknown_encoding_400(make_client):
    c = make_client(max_upload_mb=0.05)
    bomb = gzip.compress(b"0" * (30 * 1024 * 1024))
    assert len(bomb) < 0.05 * 1024 * 1024
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    assert "--max-upload-mb" in v2_error(c.post(URL, content=bomb, headers=headers), 413)
    headers["Content-Encoding"] = "br"
    assert "Content-Encoding" in v2_error(c.post(URL, content=b"{}", headers=headers))


def test_model_metadata_platform_follows_the_engine(make_client):
    from wanwu.engines import get_engine

    for engine in ("onnxruntime", "torch"):
        client = make_client(engine=engine)
        meta = client.get("/v2/models/efficientnet_lite0").json()
        config = client.get("/v2/models/efficientnet_lite0/config").json()
        assert meta["platform"] == config["platform"] == get_engine(engine).v2_platform
        assert config["backend"] == get_engine(engine).v2_backend
    assert get_engine("torch").v2_platform == "pytorch_libtorch"
