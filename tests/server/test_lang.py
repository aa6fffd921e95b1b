"""Class names in the reader's language over HTTP: ``?lang=`` and ``Accept-Language`` on the
JSON API and the TorchServe route; the v2 classification extension stays English."""

from __future__ import annotations

import base64

import pytest

CATS_ZH = {"虎斑猫", "条纹猫", "埃及猫"}
CATS_EN = {"tabby", "tiger cat", "Egyptian cat"}


def classify(client, photo, query: str = "", headers: dict | None = None):
    return client.post(
        f"/api/v1/classify{query}", content=photo.read_bytes(), headers={"Content-Type": "image/png", **(headers or {})}
    )


@pytest.mark.parametrize(
    "query,headers,lang",
    [
        ("?lang=zh", {}, "zh"),
        ("?lang=zh-CN", {"Accept-Language": "en"}, "zh"),  # the parameter wins over the header
        ("", {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}, "zh"),
        ("", {"Accept-Language": "fr-FR, zh;q=0.5, en;q=0.4"}, "zh"),
        ("?lang=en", {"Accept-Language": "zh-CN"}, "en"),
        ("", {"Accept-Language": "de-DE"}, "en"),
        ("", {}, "en"),
    ],
)
def test_classify_labels_in_the_language_asked_for(client, chelsea, query, headers, lang):
    r = classify(client, chelsea, query, headers)
    assert r.status_code == 200, r.text
    assert "accept-language" in r.headers["vary"].lower()
    body = r.json()
    assert body["lang"] == lang
    top = body["results"][0]["predictions"][0]
    assert top["label_zh"] in CATS_ZH and top["label_en"] in CATS_EN
    assert top["label"] == (top["label_zh"] if lang == "zh" else top["label_en"])
    if lang == "zh":  # UTF-8 on the wire, not \\u escapes
        assert top["label_zh"].encode() in r.content


def test_unknown_language_is_a_400(client, chelsea):
    r = classify(client, chelsea, "?lang=fr")
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "unsupported_language" and "zh" in error["message"]


def test_torchserve_route_in_chinese(client, chelsea, coffee):
    r = client.put("/predictions/efficientnet_lite0?lang=zh", content=chelsea.read_bytes())
    assert r.status_code == 200, r.text
    assert max(r.json(), key=r.json().get) in CATS_ZH
    r = client.put("/predictions/efficientnet_lite0", content=coffee.read_bytes(), headers={"Accept-Language": "zh"})
    assert next(iter(r.json())) in {"意式浓缩咖啡", "杯子"}
    assert client.put("/predictions/efficientnet_lite0?lang=xx", content=coffee.read_bytes()).status_code == 400


def test_v2_classification_extension_stays_english(client, chelsea):
    r = client.post(
        "/v2/models/efficientnet_lite0/infer",
        headers={"Accept-Language": "zh-CN"},
        json={
            "inputs": [
                {
                    "name": "image",
                    "shape": [1],
                    "datatype": "BYTES",
                    "data": [base64.b64encode(chelsea.read_bytes()).decode()],
                }
            ],
            "outputs": [{"name": "probabilities", "parameters": {"classification": 1}}],
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"][0].split(":", 2)[2] in CATS_EN


def _truncated_jpeg(photo) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.open(photo).convert("RGB").save(out, "JPEG")
    return out.getvalue()[: len(out.getvalue()) // 2]


@pytest.mark.parametrize(
    "query,headers,needle",
    [
        ("?lang=zh", {}, "不完整"),
        ("", {"Accept-Language": "zh-CN"}, "不完整"),  # how the page asks: its own language, as a header
        ("", {}, "is truncated"),
    ],
)
def test_an_image_error_comes_in_the_language_of_the_request(client, chelsea, query, headers, needle):
    """Issue 26 item 12: in 中文 the page showed "truncated.jpg is truncated…" in English."""
    files = {"file": ("truncated.jpg", _truncated_jpeg(chelsea), "image/jpeg")}
    r = client.post(f"/api/v1/classify{query}", files=files, headers=headers)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "truncated_image"
    assert needle in error["message"] and "truncated.jpg" in error["message"]


def test_a_route_error_comes_in_chinese_too(client, chelsea):
    r = classify(client, chelsea, "?lang=zh&model=resnet50")
    assert r.status_code == 404, r.text
    assert r.json()["error"]["message"].startswith("未知的模型：")  # the kind in Chinese, details after it
