"""What a new user sees from ``wanwu classify`` and the Python API: the JSON names its precision
like the server's, an error line names the file once, a missing file is a not-found error, and
an image too small to mean anything is classified with a warning."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from wanwu.cli import main
from wanwu.errors import EXIT_FAILED, ImageInputError, ImageNotFoundError
from wanwu.imaging import MIN_USEFUL_SIDE, load_image


@pytest.fixture
def tiny(tmp_path, chelsea):
    path = tmp_path / "tiny.png"
    Image.open(chelsea).resize((10, 10)).save(path)
    return path


def test_json_carries_precision_like_the_server(chelsea, capsys):
    assert main(["classify", str(chelsea), "--format", "json", "-k", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["model"], out["engine"], out["precision"]) == ("efficientnet_lite0", "onnxruntime", "fp32")


def test_error_line_names_the_file_once(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.jpg").write_text("hello")
    assert main(["classify", "nodir/", "notes.jpg"]) == EXIT_FAILED
    err = capsys.readouterr().err.splitlines()
    assert "wanwu: error: nodir/: no such file" in err
    assert any(line.startswith("wanwu: error: notes.jpg is not an image") for line in err)
    assert all(line.count("nodir/") <= 1 and line.count("notes.jpg") <= 1 for line in err)


def test_missing_file_is_not_found(tmp_path, classifier):
    with pytest.raises(ImageNotFoundError) as err:
        load_image(tmp_path / "gone.jpg")
    assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, ImageInputError)
    assert (err.value.code, err.value.http_status, err.value.exit_status) == ("not_found", 404, 1)
    with pytest.raises(FileNotFoundError):
        classifier.classify(tmp_path / "gone.jpg")
    assert classifier.classify([tmp_path / "gone.jpg"])[0].error.code == "not_found"


def test_tiny_image_is_classified_with_a_warning(tiny, chelsea, capsys):
    assert main(["classify", str(tiny), str(chelsea), "--format", "jsonl", "-k", "1"]) == 0
    captured = capsys.readouterr()
    small, big = (json.loads(line) for line in captured.out.splitlines())
    assert small["predictions"] and f"under {MIN_USEFUL_SIDE} px" in small["warnings"][0]
    assert "warnings" not in big
    assert f"wanwu: warning: {tiny} is only 10x10 pixels" in captured.err
    assert main(["classify", str(tiny), "-q"]) == 0
    assert capsys.readouterr().err == ""


def test_warning_threshold_is_the_shorter_side():
    wide = io.BytesIO()
    Image.new("RGB", (400, MIN_USEFUL_SIDE - 1)).save(wide, "PNG")
    assert load_image(wide.getvalue()).warnings
    ok = io.BytesIO()
    Image.new("RGB", (MIN_USEFUL_SIDE, MIN_USEFUL_SIDE)).save(ok, "PNG")
    assert load_image(ok.getvalue()).warnings == []


def test_classify_shows_the_policy_verdict_and_keeps_the_raw_top_k(chelsea, capsys):
    """The table's first line under the photo is the verdict (Chelsea: the cat group, since the
    model hesitates between cat breeds); --format json keeps the raw top-k and adds "verdict"."""
    assert main(["classify", str(chelsea), "--top-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("  = probably a cat (") and len(lines) == 4  # name, verdict, 2 predictions
    assert main(["classify", str(chelsea), "--top-k", "2", "--format", "json", "--lang", "zh"]) == 0
    [result] = json.loads(capsys.readouterr().out)["results"]
    assert len(result["predictions"]) == 2
    assert (result["verdict"]["kind"], result["verdict"]["label"]) == ("group", "猫")
    assert main(["classify", str(chelsea), "--format", "json", "--tag-confidence", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["verdict"]["kind"] == "none"
