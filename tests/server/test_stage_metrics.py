"""Stage times are recorded by the stage runner, with one meaning per histogram on every route:
``wanwu_inference_duration_seconds`` counts forward passes (never cache hits, never per image),
``wanwu_stage_duration_seconds`` counts one image's decode / preprocess / postprocess."""

from __future__ import annotations

import base64
import re

MODEL = "efficientnet_lite0"


def _count(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    m = re.search(rf"^{name}_count\{{{re.escape(want)}\}} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def _passes(client) -> int:
    batcher = client.app.state.ctx.service.batchers.get(MODEL)
    return batcher.batches if batcher else 0


def test_torchserve_cache_hit_records_no_forward_pass(make_client, chelsea):
    c = make_client()
    for _ in range(2):  # the second is a result cache hit
        assert c.put(f"/predictions/{MODEL}", content=chelsea.read_bytes()).status_code == 200
    text = c.get("/metrics").text
    assert _count(text, "wanwu_inference_duration_seconds", model=MODEL) == 1 == _passes(c)
    assert _count(text, "wanwu_stage_duration_seconds", model=MODEL, stage="decode") == 1
    assert _count(text, "wanwu_stage_duration_seconds", model=MODEL, stage="postprocess") == 2


def test_json_api_records_forward_passes_not_images(make_client, chelsea, coffee, grace_hopper):
    c = make_client(batch_size=1)  # one pass per image: three files, three passes
    files = [("file", (p.name, p.read_bytes(), "image/png")) for p in (chelsea, coffee, grace_hopper)]
    assert c.post("/api/v1/classify", files=files).status_code == 200
    assert c.post("/api/v1/classify", content=coffee.read_bytes()).status_code == 200  # cache hit
    text = c.get("/metrics").text
    assert _count(text, "wanwu_inference_duration_seconds", model=MODEL) == 3 == _passes(c)
    assert _count(text, "wanwu_stage_duration_seconds", model=MODEL, stage="decode") == 3
    assert _count(text, "wanwu_stage_duration_seconds", model=MODEL, stage="preprocess") == 3


def test_v2_records_each_forward_pass(make_client, chelsea, coffee):
    c = make_client(batch_size=1)  # a 2-image request is run as 2 passes
    images = [base64.b64encode(p.read_bytes()).decode() for p in (chelsea, coffee)]
    body = {"inputs": [{"name": "input", "datatype": "BYTES", "shape": [2], "data": images}]}
    assert c.post(f"/v2/models/{MODEL}/infer", json=body).status_code == 200
    text = c.get("/metrics").text
    assert _count(text, "wanwu_inference_duration_seconds", model=MODEL) == 2 == _passes(c)
    assert _count(text, "wanwu_stage_duration_seconds", model=MODEL, stage="decode") == 2
