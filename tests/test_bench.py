"""Smoke tests of `wanwu bench`: the commands run on 3 photos and write Markdown, JSON and PNG.
No timing is asserted: this machine is shared and its speed varies."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from wanwu.bench import accuracy, decode, quantization, stats, targets
from wanwu.bench.variants import Variant, baseline, engine_variants, parse_threads
from wanwu.cli import main

# three bundled photos, renamed as ImageNet photos: <wnid>_<label>.jpg
PHOTOS = {
    "chelsea.jpg": "n02123045_tabby.jpg",
    "coffee.jpg": "n07920052_espresso.jpg",
    "rocket.jpg": "n04008634_projectile.jpg",
}


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory) -> Path:
    root = Path(str(resources.files("wanwu").joinpath("data/calibration")))
    out = tmp_path_factory.mktemp("photos")
    for src, dst in PHOTOS.items():
        shutil.copy(root / src, out / dst)
    return out


QUICK = ["--engines", "onnxruntime", "--precision", "fp32", "--runs", "3", "--warmup", "1", "-q"]


def test_help_lists_commands_and_examples(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for command in ("latency", "throughput", "accuracy", "compare", "examples:"):
        assert command in text


def test_bench_without_command_prints_help(capsys):
    assert main(["bench"]) == 2
    assert "BENCH_COMMAND" in capsys.readouterr().out


def test_latency_writes_markdown_json_and_plot(photo_dir, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["bench", "latency", "--data", str(photo_dir), "--out", str(out), *QUICK]) == 0
    md = (out / "bench-latency.md").read_text()
    data = json.loads((out / "bench" / "latency.json").read_text())
    assert (out / "bench" / "latency-latency.png").stat().st_size > 0
    rows = data["latency"]["results"]
    base = rows[baseline("efficientnet_lite0").key]
    assert base["variant"]["baseline"] and base["speedup_p50"] == pytest.approx(1.0)
    ort = next(r for r in rows.values() if r["variant"]["engine"] == "onnxruntime")
    assert ort["stages"]["total"]["n"] == 3 and ort["speedup_p50"] > 0
    assert set(ort["stages"]) == {"decode", "preprocess", "inference", "postprocess", "total"}
    assert "torch fp32 1t (baseline)" in md and "## Machine" in md and "## Targets" in md
    assert "torch eager, fp32, batch 1, one thread** — the common textbook setup" in md
    assert "article" not in md.lower() and "issue" not in md.lower()  # written for users, not for us
    assert data["machine"]["cpu"]["isa"].keys() >= {"avx2", "avx512f", "avx512_vnni"}
    assert data["machine"]["packages"]["onnxruntime"]
    assert "targets:" in capsys.readouterr().err


def test_accuracy_reports_topk_and_agreement(photo_dir, tmp_path):
    out = tmp_path / "acc"
    assert main(["bench", "accuracy", "--data", str(photo_dir), "--out", str(out), *QUICK]) == 0
    data = json.loads((out / "bench" / "accuracy.json").read_text())
    rows = data["accuracy"]["results"]
    assert data["accuracy"]["n"] == 3
    for r in rows.values():
        assert 0 <= r["top1"] <= r["top3"] <= r["top5"] <= 100
        assert 0 < r["mean_confidence"] <= 100
    assert rows[baseline("efficientnet_lite0").key]["agreement"] == 100.0
    ort = next(r for r in rows.values() if r["variant"]["engine"] == "onnxruntime")
    assert ort["agreement"] == 100.0  # fp32 ONNX matches torch to ~1e-5
    assert (out / "bench-accuracy.md").is_file()


def test_accuracy_needs_data(capsys):
    assert main(["bench", "accuracy", *QUICK]) == 2
    assert "--data" in capsys.readouterr().err


def test_labeled_photos_flat_and_imagefolder(tmp_path, photo_dir):
    tree = tmp_path / "tree" / "n01440764"
    tree.mkdir(parents=True)
    shutil.copy(next(photo_dir.iterdir()), tree / "fish.jpg")
    (tmp_path / "tree" / "notes.txt").write_text("not a photo")
    assert [p.index for p in accuracy.labeled_photos(tmp_path / "tree")] == [0]
    flat = accuracy.labeled_photos(photo_dir)
    assert sorted(p.wnid for p in flat) == sorted(v.split("_")[0] for v in PHOTOS.values())
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(Exception, match="no ImageNet-named photos"):
        accuracy.labeled_photos(empty)


def test_scores_topk_confidence_agreement():
    logits = np.full((2, 1000), -10.0)
    logits[0, 5], logits[0, 7] = 3.0, 2.0  # label 7 is 2nd
    logits[1, 9] = 5.0  # label 9 is 1st
    s = accuracy.scores(logits, np.array([7, 9]), reference_top1=np.array([5, 1]))
    assert s["top1"] == 50.0 and s["top3"] == 100.0 and s["top5"] == 100.0
    assert s["agreement"] == 50.0
    assert 50 < s["mean_confidence"] < 100


def test_summarize_and_ratio():
    s = stats.summarize(list(range(1, 101)))
    assert s["n"] == 100 and s["min"] == 1 and 50 <= s["p50"] <= 51 and s["p99"] > s["p90"] > s["p50"]
    assert stats.ratio(10.0, 2.0) == 5.0
    assert stats.ratio(10.0, 40.0, higher_is_better=True) == 4.0
    assert stats.ratio(None, 1.0) is None


def test_interleave_alternates_blocks():
    order = []
    stats.interleave(
        {"a": lambda i: order.append(("a", i)), "b": lambda i: order.append(("b", i))},
        runs=4,
        warmup=1,
        block=2,
        settle=0,
    )
    assert order == [
        ("a", -1),
        ("b", -1),
        ("a", 0),
        ("a", 1),
        ("b", 0),
        ("b", 1),
        ("a", 2),
        ("a", 3),
        ("b", 2),
        ("b", 3),
    ]


def test_variants_always_start_with_the_baseline():
    vs = engine_variants(["efficientnet_lite0"], ["openvino", "onnxruntime", "torch"], ["fp32", "int8"], [2])
    assert vs[0] == baseline("efficientnet_lite0") and vs[0].is_baseline
    assert not any(v.engine == "torch" and v.precision == "int8" for v in vs)
    assert [v.engine for v in vs[1:]] == ["torch", "onnxruntime", "onnxruntime", "openvino", "openvino"]
    assert parse_threads(["1", "all", "1"], []) == sorted({1, parse_threads(["all"], [])[0]})


def test_verdict_rules():
    ok = quantization.int8_verdict(1.3, 80.0, 79.5, 96.0)
    assert ok["qualifies"]
    assert not quantization.int8_verdict(0.9, 80.0, 80.0, 100.0)["qualifies"]  # not faster
    assert not quantization.int8_verdict(1.5, 80.0, 78.5, 99.0)["qualifies"]  # 1.5 points worse
    assert not quantization.int8_verdict(1.5, 80.0, 80.0, 94.0)["qualifies"]  # agreement too low
    assert decode.draft_verdict({"original": 100.0, "12mp": 99.0})["qualifies"]
    assert not decode.draft_verdict({"original": 100.0, "12mp": 98.0})["qualifies"]


def test_targets_and_engine_comparison_from_results():
    def lat(model, engine, precision, threads, p50, speedup):
        v = Variant(model, engine, precision, threads)
        return v.key, {"variant": v.to_dict(), "stages": {"total": {"p50": p50}}, "speedup_p50": speedup}

    results = {
        "default": {"model": "efficientnet_lite0", "engine": "onnxruntime", "precision": "fp32", "threads": 2},
        "models": [{"model": "resnet18", "random_weights": True}],
        "latency": {
            "results": dict(
                [
                    lat("efficientnet_lite0", "onnxruntime", "fp32", 2, 6.0, 4.0),
                    lat("efficientnet_lite0", "openvino", "fp32", 2, 3.0, 8.0),
                    lat("resnet18", "onnxruntime", "int8", 2, 10.0, 4.0),
                ]
            )
        },
    }
    rows = {t["target"].split(" — ")[0]: t for t in targets.evaluate_targets(results)}
    assert rows["default model end-to-end p50 speedup vs torch eager 1t"]["status"] == "FAIL"
    assert rows["default model end-to-end p50"]["status"] == "pass"
    assert rows["ResNet-18 single-image end-to-end p50 vs baseline"]["status"] == "pass"
    assert "random weights" in rows["ResNet-18 single-image end-to-end p50 vs baseline"]["note"]
    assert rows["ResNet-18 best throughput vs baseline img/s"]["status"] == "not measured"
    comparison = targets.engine_comparison(results)
    assert comparison == [
        {
            "model": "efficientnet_lite0",
            "precision": "fp32",
            "threads": 2,
            "measure": "single image end-to-end p50 (ms)",
            "openvino": 3.0,
            "onnxruntime": 6.0,
            "ratio": 2.0,
        }
    ]


def test_linear_macs_of_a_tiny_gemm_model():
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.zeros((8, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        [w],
    )
    assert quantization.linear_macs(helper.make_model(graph).SerializeToString()) == 24


def test_memory_probe_reports_first_answer_and_rss(photo_dir):
    from wanwu.bench.memory import run_probe
    from wanwu.bench.variants import ModelWeights

    r = run_probe(
        Variant("efficientnet_lite0", "onnxruntime", "fp32", 1),
        ModelWeights("efficientnet_lite0", None, False),
        sorted(photo_dir.iterdir()),
        images=2,
    )
    assert 0 < r["import_s"] <= r["load_s"] <= r["first_answer_s"]
    assert r["peak_rss_mb"] > 10


def test_upscale_and_draft_comparison(photo_dir, tmp_path):
    from wanwu.pipeline import Classifier

    big = decode.upscale_photos(sorted(photo_dir.iterdir())[:1], tmp_path, megapixels=1.0, progress=False)
    clf = Classifier(threads=1)
    r = decode.compare_draft(clf, big, progress=False)
    assert r["n"] == 1 and r["draft_applied"] == 1 and 0.9 < r["megapixels_mean"] < 1.1
    assert r["agreement"] in (0.0, 100.0) and r["exact_ms_mean"] > 0 and r["draft_ms_mean"] > 0


def test_openvino_engine_agrees_with_onnxruntime():
    pytest.importorskip("openvino")
    from wanwu.pipeline import Classifier

    photo = Path(str(resources.files("wanwu").joinpath("data/calibration/chelsea.jpg")))
    ov = Classifier(engine="openvino", threads=1).classify(photo, top_k=3)
    ort = Classifier(engine="onnxruntime", threads=1).classify(photo, top_k=3)
    assert [p.index for p in ov] == [p.index for p in ort]
    assert ov[0].score == pytest.approx(ort[0].score, abs=1e-3)


def test_bench_tags_prints_the_table_and_reuses_its_logits(photo_dir, tmp_path, capsys, monkeypatch):
    """`wanwu bench tags`: the precision / coverage table on a labelled folder; with --cache a
    second run needs no model (the classifier fails if built)."""
    cache = tmp_path / "logits"
    args = ["bench", "tags", "--data", str(photo_dir), "--cache", str(cache), "-q"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "| flat >= 0.1 of the top 5 (before) |" in first and "the shipped policy" in first
    assert "back-off + temperature, fitted on the other half" in first

    def no_model(*a, **kw):
        raise AssertionError("the cached logits were not used")

    monkeypatch.setattr("wanwu.pipeline.Classifier", no_model)
    assert main(args) == 0
    assert capsys.readouterr().out == first


def test_bench_tags_needs_data(capsys, monkeypatch):
    monkeypatch.delenv("WANWU_BENCH_DATA", raising=False)
    assert main(["bench", "tags"]) == 2
    assert "--data" in capsys.readouterr().err


def test_tag_scores_count_right_tags_coverage_and_specificity():
    from wanwu.bench.tags import flat, score

    tops = [[("n02123045", 0.6), ("n02123159", 0.3)], [("n07920052", 0.2)]]
    r = score(tops, ["n02123159", "n07920052"], flat(0.25))
    assert (r["tags"], r["precision"], r["coverage"], r["specific"]) == (2, 50.0, 50.0, 100.0)
