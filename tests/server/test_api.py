"""The JSON API, the TorchServe routes, pages, metrics and every error, in process."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
from PIL import Image

from wanwu.models import get_spec
from wanwu.models.weights import availability
from wanwu.server.middleware import CONTENT_SECURITY_POLICY

ROOT = Path(__file__).resolve().parents[2]
MODEL_KEYS = {"name", "title", "available", "reason", "top1", "params_m", "input_size", "size_mb", "loaded"}
TIMING_KEYS = {"decode", "preprocess", "inference", "postprocess", "total"}


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body["error"]) >= {"code", "message"}
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    assert response.headers.get("x-request-id")
    return body


def top_labels(result: dict, k: int = 1) -> list[str]:
    return [p["label"] for p in result["predictions"][:k]]


# -- models ---------------------------------------------------------------------------------
def test_models_lists_registry(client):
    r = client.get("/api/v1/models")
    assert r.status_code == 200
    body = r.json()
    assert body["default"] == "efficientnet_lite0"
    by_name = {m["name"]: m for m in body["models"]}
    assert "efficientnet_lite0" in by_name and "resnet18" in by_name
    for m in body["models"]:
        assert set(m) == MODEL_KEYS
    lite0 = by_name["efficientnet_lite0"]
    assert lite0["available"] and lite0["loaded"] and lite0["reason"] is None
    assert lite0["input_size"] == 224 and lite0["top1"] == 75.1
    for m in body["models"]:
        assert m["available"] or "weights" in m["reason"]


# -- classify: real photos ------------------------------------------------------------------
def test_classify_cat_multipart(cat_labels, client, chelsea):
    with open(chelsea, "rb") as f:
        r = client.post("/api/v1/classify?top_k=3", files={"file": ("chelsea.png", f, "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["model"], body["engine"], body["precision"]) == ("efficientnet_lite0", "onnxruntime", "fp32")
    [result] = body["results"]
    assert result["filename"] == "chelsea.png"
    assert (result["width"], result["height"]) == (451, 300)
    assert "cached" not in result  # cache hits are not shown by default (privacy)
    assert len(result["predictions"]) == 3
    assert set(result["predictions"][0]) == {"index", "wnid", "label", "label_en", "label_zh", "score"}
    assert top_labels(result)[0] in cat_labels
    scores = [p["score"] for p in result["predictions"]]
    assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1
    assert set(result["timing_ms"]) == TIMING_KEYS
    assert result["timing_ms"]["total"] >= result["timing_ms"]["inference"] > 0


def test_classify_adds_the_policy_verdict_beside_the_raw_predictions(client, chelsea):
    """Chelsea hesitates between cat breeds (no one above the calibrated bar): the verdict is the
    group, in the language asked for, and the raw top-k is unchanged (still k long)."""
    with open(chelsea, "rb") as f:
        body = client.post("/api/v1/classify?top_k=2&lang=zh", files={"file": ("c.png", f, "image/png")}).json()
    [result] = body["results"]
    assert len(result["predictions"]) == 2 and "verdict" not in result["predictions"][0]
    v = result["verdict"]
    assert (v["kind"], v["group"], v["label"], v["label_en"]) == ("group", "cat", "猫", "cat")
    assert v["score"] > result["predictions"][0]["score"] and v["text"].startswith("可能是猫")
    assert v["withheld"] == []


PORTRAIT = next(
    (
        p
        for p in (
            ROOT.parent / "shared" / "faces" / "rose_leslie" / "img1.jpg",
            ROOT.parent.parent / "shared" / "faces" / "rose_leslie" / "img1.jpg",
        )
        if p.is_file()
    ),
    None,
)


@pytest.mark.skipif(PORTRAIT is None, reason="../shared/faces (photos of people) is not next to this checkout")
def test_classify_verdict_is_unsure_and_withholds_sensitive_classes(client):
    """The portrait in a black dress (raw top-1: brassiere 44%): the verdict is "unsure", the raw
    predictions keep the model's answer, and ``withheld`` names the sensitive classes in it."""
    assert PORTRAIT is not None
    result = client.post("/api/v1/classify?top_k=5", content=PORTRAIT.read_bytes()).json()["results"][0]
    assert result["verdict"]["kind"] == "none" and result["verdict"]["label"] is None
    assert result["verdict"]["text"] == "unsure"
    wnids = [p["wnid"] for p in result["predictions"]]
    assert wnids[0] == "n02892767"  # brassiere: the raw answer is unchanged
    assert "n02892767" in result["verdict"]["withheld"] and set(result["verdict"]["withheld"]) <= set(wnids)


def test_classify_coffee_raw_body(client, coffee):
    r = client.post(
        "/api/v1/classify",
        content=coffee.read_bytes(),
        headers={"Content-Type": "image/png", "X-Filename": "mug/../coffee.png"},
    )
    assert r.status_code == 200, r.text
    [result] = r.json()["results"]
    assert result["filename"] == "coffee.png"  # only the last path component is echoed
    assert top_labels(result)[0] in {"espresso", "cup"}
    assert len(result["predictions"]) == 5  # the server's default top_k


def test_classify_raw_body_as_curl_data_binary(client, coffee):
    """curl --data-binary sends application/x-www-form-urlencoded: still the raw image."""
    r = client.post(
        "/api/v1/classify?top_k=1",
        content=coffee.read_bytes(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200
    [result] = r.json()["results"]
    assert result["filename"] == "upload"
    assert top_labels(result)[0] in {"espresso", "cup"}


def test_classify_grace_hopper_uniform_in_top3(client, grace_hopper):
    with open(grace_hopper, "rb") as f:
        r = client.post("/api/v1/classify?top_k=3", files={"file": ("grace_hopper.jpg", f, "image/jpeg")})
    assert r.status_code == 200
    [result] = r.json()["results"]
    assert "military uniform" in top_labels(result, 3)


def test_classify_many_files_keeps_order(cat_labels, client, chelsea, coffee, grace_hopper):
    files = [("file", (p.name, p.read_bytes(), "application/octet-stream")) for p in (coffee, chelsea, grace_hopper)]
    r = client.post("/api/v1/classify?top_k=3", files=files)
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["filename"] for x in results] == ["coffee.png", "chelsea.png", "grace_hopper.jpg"]
    assert top_labels(results[0])[0] in {"espresso", "cup"}
    assert top_labels(results[1])[0] in cat_labels
    assert "military uniform" in top_labels(results[2], 3)


def test_classify_other_model_by_query(cat_labels, client, chelsea):
    if not availability(get_spec("efficientnet_lite1"))[0]:
        pytest.skip("efficientnet_lite1 weights not installed")
    r = client.post("/api/v1/classify?model=efficientnet_lite1&top_k=3", content=chelsea.read_bytes())
    assert r.status_code == 200
    assert r.json()["model"] == "efficientnet_lite1"
    assert top_labels(r.json()["results"][0])[0] in cat_labels
    models = {m["name"]: m for m in client.get("/api/v1/models").json()["models"]}
    assert models["efficientnet_lite1"]["loaded"]


# -- classify: bad input --------------------------------------------------------------------
def test_not_an_image_is_415(client):
    text = b"hello, this is text, not a photo\n" * 20
    r = client.post("/api/v1/classify", files={"file": ("notes.txt", text, "text/plain")})
    body = assert_error(r, 415, "not_an_image")
    assert "notes.txt" in body["error"]["message"]


def test_pdf_is_unsupported_415(client):
    r = client.post("/api/v1/classify", content=b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n")
    body = assert_error(r, 415, "unsupported_format")
    assert "PDF" in body["error"]["message"]


def test_truncated_jpeg_is_422(client, grace_hopper):
    data = grace_hopper.read_bytes()
    r = client.post("/api/v1/classify", files={"file": ("cut.jpg", data[: len(data) // 2], "image/jpeg")})
    assert_error(r, 422, "truncated_image")


def test_empty_body_is_422(client):
    assert_error(client.post("/api/v1/classify", content=b""), 422, "empty_image")
    assert_error(client.post("/api/v1/classify", files={"file": ("e.jpg", b"", "image/jpeg")}), 422, "empty_image")


def test_too_many_pixels_is_413(client, bomb_png):
    r = client.post("/api/v1/classify", files={"file": ("bomb.png", bomb_png, "image/png")})
    body = assert_error(r, 413, "too_many_pixels")
    assert "100000x100000" in body["error"]["message"]


def test_multipart_without_file_field_is_422(client):
    r = client.post("/api/v1/classify", files={"image": ("x.png", b"123", "image/png")})
    assert_error(r, 422, "no_file")


def test_multipart_cut_off_is_400(client):
    body = b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\nabc'
    r = client.post("/api/v1/classify", content=body, headers={"Content-Type": "multipart/form-data; boundary=XyZ"})
    assert_error(r, 400, "bad_request")


def test_multipart_without_boundary_is_400(client):
    r = client.post("/api/v1/classify", content=b"x", headers={"Content-Type": "multipart/form-data"})
    assert_error(r, 400, "bad_request")


def test_some_files_fail_is_200_with_item_errors(cat_labels, client, chelsea):
    files = [
        ("file", ("cat.png", chelsea.read_bytes(), "image/png")),
        ("file", ("junk.bin", b"\x00\x01junk" * 10, "x/y")),
    ]
    r = client.post("/api/v1/classify", files=files)
    assert r.status_code == 200
    ok, bad = r.json()["results"]
    assert top_labels(ok)[0] in cat_labels
    assert bad["filename"] == "junk.bin"
    assert bad["error"]["code"] == "not_an_image" and "predictions" not in bad


def test_all_files_fail_is_first_error_status(client, bomb_png):
    files = [("file", ("a.txt", b"text " * 10, "text/plain")), ("file", ("bomb.png", bomb_png, "image/png"))]
    r = client.post("/api/v1/classify", files=files)
    body = assert_error(r, 415, "not_an_image")
    assert [x["error"]["code"] for x in body["results"]] == ["not_an_image", "too_many_pixels"]


def test_too_many_files_is_413(make_client, coffee):
    c = make_client(max_files=2)
    files = [("file", (f"{i}.png", coffee.read_bytes(), "image/png")) for i in range(3)]
    body = assert_error(c.post("/api/v1/classify", files=files), 413, "too_many_files")
    assert "--max-files" in body["error"]["message"]
    assert c.post("/api/v1/classify", files=files[:2]).status_code == 200


def test_body_over_limit_is_413_by_content_length(make_client, chelsea):
    c = make_client(max_upload_mb=0.05)  # ~52 KB; chelsea.png is larger
    assert chelsea.stat().st_size > 0.05 * 1024 * 1024
    r = c.post("/api/v1/classify", content=chelsea.read_bytes())
    body = assert_error(r, 413, "payload_too_large")
    assert "--max-upload-mb" in body["error"]["message"]
    assert_error(c.post("/api/v1/classify", files={"file": ("c.png", chelsea.read_bytes())}), 413, "payload_too_large")


def test_body_over_limit_is_413_when_streamed_without_length(make_client):
    c = make_client(max_upload_mb=0.05)
    sent = []

    def chunks():
        for _ in range(40):
            sent.append(1)
            yield b"\x00" * 4096

    r = c.post("/api/v1/classify", content=chunks())
    assert_error(r, 413, "payload_too_large")


def test_body_limit_also_guards_v2(make_client):
    c = make_client(max_upload_mb=0.05)
    r = c.post("/v2/models/efficientnet_lite0/infer", content=b"{" + b" " * 100_000 + b"}")
    assert r.status_code == 413
    assert isinstance(r.json()["error"], str)


def test_unknown_model_is_404(client, coffee):
    body = assert_error(client.post("/api/v1/classify?model=nope", content=coffee.read_bytes()), 404, "unknown_model")
    assert "efficientnet_lite0" in body["error"]["message"]  # lists the known models
    assert_error(client.put("/predictions/nope", content=coffee.read_bytes()), 404, "unknown_model")


def test_unavailable_model_is_409_with_how_to(client, pool, coffee, no_weights):
    """What to do, without the server's paths: the page shows it to every visitor."""
    if pool.is_loaded("vgg16"):
        pytest.skip("vgg16 was loaded by another test")
    assert not availability(get_spec("vgg16"))[0]
    body = assert_error(
        client.post("/api/v1/classify?model=vgg16", content=coffee.read_bytes()), 409, "model_unavailable"
    )
    message = body["error"]["message"]
    assert "wanwu download vgg16" in message
    reason = {m["name"]: m for m in client.get("/api/v1/models").json()["models"]}["vgg16"]["reason"]
    assert "wanwu download vgg16" in reason
    for text in (message, reason):
        assert str(no_weights["weights"]) not in text and "/" not in text, text  # no server path


@pytest.mark.parametrize("top_k", ["0", "1001", "abc", "-3", "2.5"])
def test_bad_top_k_is_422(client, coffee, top_k):
    body = assert_error(
        client.post(f"/api/v1/classify?top_k={top_k}", content=coffee.read_bytes()), 422, "invalid_request"
    )
    assert "top_k" in body["error"]["message"]


def test_top_k_bounds_are_accepted(client, coffee):
    for k in (1, 1000):
        r = client.post(f"/api/v1/classify?top_k={k}", content=coffee.read_bytes())
        assert r.status_code == 200 and len(r.json()["results"][0]["predictions"]) == k


def test_unknown_route_and_wrong_method_are_json(client):
    assert_error(client.get("/api/v1/nothing"), 404, "not_found")
    assert_error(client.get("/static/does-not-exist.js"), 404, "not_found")
    r = client.get("/api/v1/classify")
    assert_error(r, 405, "method_not_allowed")
    assert "POST" in r.headers["allow"]


def test_unexpected_exception_is_500_with_request_id(make_client, coffee, monkeypatch):
    c = make_client(cache_entries=0)
    engine = c.app.state.ctx.service.pool.get("efficientnet_lite0").engine

    def broken(batch):
        raise RuntimeError("injected fault")

    monkeypatch.setattr(engine, "run", broken)  # the engine fails inside the inference thread
    r = c.post("/api/v1/classify", content=coffee.read_bytes())
    body = assert_error(r, 500, "internal_error")
    assert body["error"]["request_id"] == r.headers["x-request-id"]
    assert "injected" not in body["error"]["message"]  # internals stay in the log
    monkeypatch.undo()
    r = c.post("/api/v1/classify", content=coffee.read_bytes())
    assert r.status_code == 200  # the next request is served normally


def test_request_id_echoed_or_generated(client):
    r = client.get("/ping", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = client.get("/ping", headers={"X-Request-ID": "bad id\twith junk"})
    assert r.headers["x-request-id"] != "bad id\twith junk" and len(r.headers["x-request-id"]) == 32


def test_cpu_work_runs_off_the_event_loop(make_client, coffee, monkeypatch):
    from wanwu.pipeline import Classifier

    threads: list[str] = []
    decode, forward = Classifier.decode, Classifier.infer

    def spy_decode(*args):
        threads.append(threading.current_thread().name)
        return decode(*args)

    def spy_forward(*args):
        threads.append(threading.current_thread().name)
        return forward(*args)

    monkeypatch.setattr(Classifier, "decode", spy_decode)
    monkeypatch.setattr(Classifier, "infer", spy_forward)  # the batcher binds it on first use
    c = make_client()
    assert c.post("/api/v1/classify", content=coffee.read_bytes()).status_code == 200
    # a lone request runs its forward pass inline on its decode thread; under concurrency the
    # micro-batcher's thread runs it (tests/test_batching.py): never the event loop
    assert threads[0].startswith("wanwu-decode") and threads[1].startswith(("wanwu-decode", "wanwu-infer"))


# -- TorchServe style -----------------------------------------------------------------------
def test_ping(client):
    r = client.get("/ping")
    assert r.status_code == 200 and r.json() == {"status": "Healthy"}


@pytest.mark.parametrize("method", ["put", "post"])
def test_predictions_raw_body(cat_labels, client, chelsea, method):
    r = getattr(client, method)("/predictions/efficientnet_lite0", content=chelsea.read_bytes())
    assert r.status_code == 200
    body = r.json()
    assert len(body) == 5
    best = max(body, key=body.get)
    assert best in cat_labels
    assert list(body.values()) == sorted(body.values(), reverse=True)


def test_predictions_multipart_data_field(client, coffee):
    r = client.post("/predictions/efficientnet_lite0", files={"data": ("coffee.png", coffee.read_bytes())})
    assert r.status_code == 200
    assert next(iter(r.json())) in {"espresso", "cup"}


def test_predictions_bad_image(client):
    assert_error(client.put("/predictions/efficientnet_lite0", content=b"not an image at all"), 415, "not_an_image")


# -- pages, docs, metrics -------------------------------------------------------------------
def test_index_and_static_have_security_headers(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "<html" in r.text.lower()
    for path in ("/", "/static/app.js", "/api/v1/models", "/docs"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
    assert (
        client.get("/static/app.js").headers["content-type"].startswith(("text/javascript", "application/javascript"))
    )


def test_docs_page_is_offline_and_openapi_works(client):
    r = client.get("/docs")
    assert r.status_code == 200
    html = r.text
    assert "/api/v1/classify" in html and "/v2/models/{name}/infer" in html
    assert "<script" not in html and "cdn" not in html.lower() and 'href="http' not in html
    assert "curl -T cat.jpg http://testserver/predictions/" in html and ":8080" not in html  # the real address
    css = client.get("/docs/style.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    spec = client.get("/openapi.json").json()
    classify = spec["paths"]["/api/v1/classify"]["post"]
    assert "multipart/form-data" in classify["requestBody"]["content"]
    assert {p["name"] for p in classify["parameters"]} == {"top_k", "model", "lang"}
    assert "/v2/models/{name}/infer" in spec["paths"]


def test_metrics_count_requests_images_and_errors(make_client, coffee):
    c = make_client()
    c.post("/api/v1/classify", content=coffee.read_bytes())
    c.post("/api/v1/classify", content=b"not an image")
    c.get("/v2/models/efficientnet_lite0")
    c.get("/no/such/path")
    r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'wanwu_http_requests_total{method="POST",route="/api/v1/classify",status="200"} 1.0' in text
    assert 'wanwu_http_requests_total{method="POST",route="/api/v1/classify",status="415"} 1.0' in text
    assert 'route="/v2/models/{name}",status="200"' in text
    assert 'route="<unmatched>",status="404"' in text
    assert 'wanwu_images_classified_total{model="efficientnet_lite0"} 1.0' in text
    assert 'wanwu_errors_total{code="not_an_image"} 1.0' in text
    assert 'wanwu_inference_duration_seconds_count{model="efficientnet_lite0"} 1.0' in text
    assert 'wanwu_http_request_duration_seconds_bucket{le="0.1",route="/api/v1/classify"}' in text
    assert "wanwu_ready 1.0" in text
    assert "process_resident_memory_bytes" in text


def test_not_ready_while_draining(make_client):
    c = make_client()
    assert c.get("/v2/health/ready").status_code == 200
    c.app.state.ctx.service.begin_drain()
    r = c.get("/v2/health/ready")
    assert r.status_code == 400 and r.json() == {"ready": False}
    assert c.get("/ping").status_code == 503
    assert c.get("/v2/health/live").status_code == 200


def test_still_serving_after_bad_requests(cat_labels, client, chelsea, bomb_png, grace_hopper):
    jpeg = grace_hopper.read_bytes()
    bad = [
        dict(content=b"plain text"),
        dict(content=bomb_png),
        dict(content=jpeg[:5000]),
        dict(content=b""),
        dict(files={"x": ("a", b"b")}),
        dict(content=b"\xff\xd8\xff" + b"\x00" * 100),
    ]
    for kwargs in bad:
        r = client.post("/api/v1/classify", **kwargs)
        assert 400 <= r.status_code < 500, r.text
    for _ in range(2):
        r = client.post("/api/v1/classify?top_k=3", content=chelsea.read_bytes())
        assert r.status_code == 200
        assert top_labels(r.json()["results"][0])[0] in cat_labels


def test_tiny_image_answer_carries_a_warning(client):
    buf = io.BytesIO()
    Image.new("RGB", (10, 10), (200, 120, 40)).save(buf, "PNG")
    r = client.post("/api/v1/classify?top_k=1", content=buf.getvalue(), headers={"X-Filename": "tiny.png"})
    assert r.status_code == 200
    result = r.json()["results"][0]
    assert result["predictions"] and "10x10" in result["warnings"][0]
