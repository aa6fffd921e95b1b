"""``POST /api/v1/explain``: the predictions and the heatmap grid as JSON, the overlay with
``Accept: image/png``; the same inputs, limits and error answers as ``/api/v1/classify``;
counted in ``/metrics``."""

from __future__ import annotations

import io

import pytest
from PIL import Image

MODEL = "efficientnet_lite0"


def test_json_answer_has_predictions_target_and_grid(client, chelsea, cat_labels):
    r = client.post("/api/v1/explain?top_k=3", files={"file": ("chelsea.png", chelsea.read_bytes(), "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == MODEL
    result = body["results"][0]
    assert result["filename"] == "chelsea.png" and (result["width"], result["height"]) == (451, 300)
    assert len(result["predictions"]) == 3 and result["predictions"][0]["label"] in cat_labels
    assert result["target"]["index"] == result["predictions"][0]["index"]
    grid = result["heatmap"]
    assert (len(grid), len(grid[0])) == (43, 64)  # longer side 64 cells, the photo's aspect
    values = [v for row in grid for v in row]
    assert min(values) == 0 and max(values) > 0.9 and max(values) <= 1
    assert 0 < result["crop"]["left"] < result["crop"]["right"] < 451


def test_target_and_lang(client, chelsea):
    r = client.post("/api/v1/explain", params={"target": "n02123045", "lang": "zh"}, content=chelsea.read_bytes())
    assert r.status_code == 200, r.text
    target = r.json()["results"][0]["target"]
    assert (target["wnid"], target["label"]) == ("n02123045", "虎斑猫")


@pytest.mark.parametrize(
    "params, status, code",
    [
        ({"target": "unicorn"}, 404, "unknown_label"),
        ({"target": "dog"}, 400, "ambiguous_label"),
        ({"lang": "fr"}, 400, "unsupported_language"),
    ],
)
def test_bad_parameters_are_4xx(client, chelsea, params, status, code):
    r = client.post("/api/v1/explain", params=params, content=chelsea.read_bytes())
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)


def test_png_overlay(client, coffee):
    r = client.post("/api/v1/explain", content=coffee.read_bytes(), headers={"Accept": "image/png"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(r.content))
    assert image.format == "PNG" and image.size[0] == 600  # coffee.png is 600 x 400; the legend adds a strip
    assert image.size[1] > 400


def test_png_overlay_is_for_one_image(client, chelsea, coffee):
    files = [("file", (p.name, p.read_bytes(), "image/png")) for p in (chelsea, coffee)]
    r = client.post("/api/v1/explain", files=files, headers={"Accept": "image/png"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"


def test_bad_inputs_fail_as_classify_does(client, bomb_png):
    for body in (b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, bomb_png):
        classify = client.post("/api/v1/classify", content=body)
        explain = client.post("/api/v1/explain", content=body)
        assert 400 <= explain.status_code < 500
        assert explain.status_code == classify.status_code
        assert explain.json()["error"] == classify.json()["error"]
    r = client.post("/api/v1/explain", content=b"{}", headers={"content-type": "application/json"})
    assert r.status_code == 415


def test_one_bad_file_among_good_ones(client, chelsea):
    files = [("file", ("good.png", chelsea.read_bytes(), "image/png")), ("file", ("bad.jpg", b"nope", "image/jpeg"))]
    r = client.post("/api/v1/explain", files=files)
    assert r.status_code == 200
    good, bad = r.json()["results"]
    assert good["heatmap"] and bad == {
        "filename": "bad.jpg",
        "error": {"code": "not_an_image", "message": bad["error"]["message"]},
    }


def test_counted_in_metrics(make_client, chelsea):
    c = make_client()
    assert c.post("/api/v1/explain", content=chelsea.read_bytes()).status_code == 200
    assert c.post("/api/v1/explain", content=b"junk").status_code == 415
    text = c.get("/metrics").text
    assert f'wanwu_images_explained_total{{model="{MODEL}"}} 1.0' in text
    assert 'wanwu_http_requests_total{method="POST",route="/api/v1/explain",status="200"} 1.0' in text
    assert f'wanwu_inference_duration_seconds_count{{model="{MODEL}"}} 1.0' in text
    assert 'wanwu_errors_total{code="not_an_image"} 1.0' in text


def test_unknown_model_is_404(client, chelsea):
    r = client.post("/api/v1/explain?model=nope", content=chelsea.read_bytes())
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_model"
