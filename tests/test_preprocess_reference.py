"""``wanwu.imaging.preprocess`` against torchvision's eval transform, two ways.

1. Exactly: torchvision's ``Resize`` + ``CenterCrop`` + ``ToTensor`` + ``Normalize`` on a PIL
   image, written out step by step as torchvision does them (Pillow resizes the whole image,
   the crop is padded with zeros when the image is smaller, torch divides and normalizes in
   float32). Max |difference| must be 0 for every registered model, on real photos and on
   many sizes and aspect ratios, including images smaller than the crop.
2. Within a bound: ``interpolate(bilinear, antialias=True, align_corners=False)`` of the whole
   image in float (torchvision's tensor path), which pins the geometry independently of Pillow.

Measured for 2. (Pillow 13, torch 2.13): max |difference| = 1.00002 uint8 levels on every photo and
size below, i.e. 0.00784 for EfficientNet-Lite (std 0.5) and 0.0175 for ResNet/VGG (std 0.224);
mean |difference| 0.25-0.30 levels. The reason is exact: Pillow resamples in two separable
passes and rounds to uint8 after each (<= 0.5 level each, the second pass averages the first's
error with positive weights), while the reference stays in float. Bound: 1.02 levels / (255 std).
When no resampling happens (the image already has the resize size) the two agree to float
precision, which pins the crop offset exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from wanwu.imaging import Preprocessing, center_crop_origin, load_image, preprocess, resize_geometry
from wanwu.models import get_spec, list_specs

MAX_LEVELS = 1.02  # uint8 levels, see the module docstring
MEAN_LEVELS = 0.4
MODELS = ["efficientnet_lite0", "efficientnet_lite2", "resnet18"]  # std 0.5 / crop 224 and 260 / std 0.224


def torchvision_on_pil(image: Image.Image, prep) -> np.ndarray:
    """torchvision.transforms Resize(resize_size) + CenterCrop(crop_size) + ToTensor() +
    Normalize(mean, std) on a PIL image, step by step as torchvision 0.2x does them."""
    w, h = image.size  # Resize: shorter side -> resize_size, longer int(size * long / short)
    short, long_ = min(w, h), max(w, h)
    new_short, new_long = prep.resize_size, int(prep.resize_size * long_ / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    image = image.resize((new_w, new_h), Image.Resampling.BILINEAR)
    c = prep.crop_size  # CenterCrop: pad with 0 where the image is smaller, then crop at round()
    if c > new_w or c > new_h:
        pad_l, pad_t = (c - new_w) // 2 if c > new_w else 0, (c - new_h) // 2 if c > new_h else 0
        pad_r, pad_b = (c - new_w + 1) // 2 if c > new_w else 0, (c - new_h + 1) // 2 if c > new_h else 0
        padded = Image.new("RGB", (new_w + pad_l + pad_r, new_h + pad_t + pad_b), (0, 0, 0))
        padded.paste(image, (pad_l, pad_t))
        image, new_w, new_h = padded, padded.width, padded.height
    top, left = int(round((new_h - c) / 2.0)), int(round((new_w - c) / 2.0))
    image = image.crop((left, top, left + c, top + c))
    x = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1).contiguous().to(torch.float32).div(255)
    mean = torch.as_tensor(prep.mean, dtype=torch.float32).view(-1, 1, 1)
    std = torch.as_tensor(prep.std, dtype=torch.float32).view(-1, 1, 1)
    return x.sub_(mean).div_(std).numpy()


SIZES = [  # (w, h): photo-like, extreme aspect ratios, odd sizes, at/below the crop and resize sizes
    (500, 375),
    (375, 500),
    (640, 427),
    (1008, 756),
    (333, 1000),
    (1000, 257),
    (257, 1000),
    (999, 255),
    (256, 256),
    (257, 256),
    (255, 300),
    (260, 260),
    (261, 400),
    (292, 292),
    (224, 224),
    (223, 225),
    (240, 239),
    (200, 150),
    (100, 150),
    (37, 23),
    (23, 37),
    (2, 3),
    (1, 1),
    (1, 400),
    (300, 1),
]


@pytest.fixture(scope="module")
def sized_images(photos) -> list[Image.Image]:
    cat = load_image(photos["chelsea.png"]).image
    coffee = load_image(photos["coffee.png"]).image
    return [(cat if i % 2 else coffee).resize(size, Image.Resampling.BICUBIC) for i, size in enumerate(SIZES)]


def _one_per_transform() -> list:
    """The first registered model of each distinct preprocessing (VGG-16's is ResNet-18's): a model
    added with a transform of its own is covered without editing this file."""
    first: dict = {}
    for spec in list_specs():
        first.setdefault(spec.preprocessing, spec)
    return list(first.values())


@pytest.mark.parametrize("spec", _one_per_transform(), ids=lambda s: s.name)
def test_preprocess_is_torchvision_on_pil_exactly(spec, photos, sized_images):
    prep = spec.preprocessing
    images = [load_image(path).image for path in photos.values()] + sized_images
    for image in images:
        ours, ref = preprocess(image, prep), torchvision_on_pil(image, prep)
        assert ours.shape == ref.shape == (3, prep.crop_size, prep.crop_size)
        assert ours.dtype == np.float32 and ours.flags.c_contiguous
        assert np.array_equal(ours, ref), f"{spec.name}, {image.size}: max |diff| {np.abs(ours - ref).max()}"


@pytest.mark.parametrize("size", [(100, 60), (30, 300), (150, 150), (180, 220), (1, 1)])
def test_crop_larger_than_resize_pads_with_zeros_as_torchvision(size, sized_images):
    """No registered model resizes below its crop, but the padding path must match too."""
    prep = Preprocessing(crop_size=224, resize_size=180, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    image = sized_images[0].resize(size)
    ours = preprocess(image, prep)
    assert np.array_equal(ours, torchvision_on_pil(image, prep))
    black = (0 - np.asarray(prep.mean, np.float32)) / np.asarray(prep.std, np.float32)
    assert np.allclose(ours[:, 0, 0], black)  # a padded corner


@pytest.mark.parametrize(
    "size,crop,expected",
    [
        ((341, 256), 224, (58, 16)),
        ((256, 256), 224, (16, 16)),
        ((225, 226), 224, (0, 1)),
        ((180, 300), 224, (-22, 38)),
        ((181, 224), 224, (-21, 0)),
    ],
)
def test_center_crop_origin_is_torchvisions(size, crop, expected):
    assert center_crop_origin(*size, crop) == expected


def reference(image: Image.Image, prep) -> np.ndarray:
    """torchvision-style eval transform in torch, in float from the decoded uint8 pixels."""
    new_w, new_h, left, top = resize_geometry(*image.size, prep)
    x = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float()
    x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)
    c = prep.crop_size
    x = x[0, :, top : top + c, left : left + c] / 255.0
    mean = torch.tensor(prep.mean).view(3, 1, 1)
    std = torch.tensor(prep.std).view(3, 1, 1)
    return ((x - mean) / std).numpy()


def diff_in_levels(image: Image.Image, prep) -> np.ndarray:
    ours = preprocess(image, prep)
    ref = reference(image, prep)
    assert ours.shape == ref.shape == (3, prep.crop_size, prep.crop_size)
    assert ours.dtype == np.float32 and ours.flags.c_contiguous
    return np.abs(ours - ref) * np.asarray(prep.std, np.float32).reshape(3, 1, 1) * 255.0


@pytest.fixture(scope="module")
def test_images(photos) -> dict[str, Image.Image]:
    images = {name: load_image(path).image for name, path in photos.items() if name != "grace_hopper.jpg"}
    cat = images["chelsea.png"]  # 451x300 landscape
    images["portrait 300x451"] = cat.transpose(Image.Transpose.ROTATE_90)
    images["odd 257x1001"] = cat.resize((257, 1001))
    images["odd 999x255"] = cat.resize((999, 255))
    images["tiny 37x23 (upscaled)"] = cat.resize((37, 23))
    images["tiny 2x3"] = cat.resize((2, 3))
    images["small 100x150"] = cat.resize((100, 150))
    images["exact crop 224x224"] = cat.resize((224, 224))
    images["exact resize 256x256"] = cat.resize((256, 256))
    images["square 512"] = images.pop("astronaut.png")
    return images


@pytest.mark.parametrize("model", MODELS)
def test_preprocess_matches_torch_reference(test_images, model):
    prep = get_spec(model).preprocessing
    worst = {name: diff_in_levels(img, prep) for name, img in test_images.items()}
    max_levels = max(float(d.max()) for d in worst.values())
    mean_levels = max(float(d.mean()) for d in worst.values())
    max_abs = max_levels / (255.0 * min(prep.std))
    report = ", ".join(f"{n}: {float(d.max()):.3f}" for n, d in worst.items())
    print(f"{model}: max |diff| {max_abs:.5f} ({max_levels:.4f} levels), worst mean {mean_levels:.3f} levels")
    assert max_levels <= MAX_LEVELS, f"{model}: max |diff| {max_abs:.5f} = {max_levels:.4f} levels; per image: {report}"
    assert mean_levels <= MEAN_LEVELS, f"{model}: mean |diff| {mean_levels:.3f} levels (a systematic shift?)"


def test_no_resampling_needed_agrees_to_float_precision(test_images):
    """256x256 with resize 256 / crop 224: only the crop remains, so the offset must be exact."""
    prep = get_spec("resnet18").preprocessing
    assert resize_geometry(256, 256, prep) == (256, 256, 16, 16)
    assert diff_in_levels(test_images["exact resize 256x256"], prep).max() < 1e-3


@pytest.mark.parametrize(
    "size,model,expected",
    [
        # torchvision: long side int(256 * long / short); crop offset int(round((new - crop) / 2))
        ((500, 375), "resnet18", (341, 256, 58, 16)),
        ((375, 500), "resnet18", (256, 341, 16, 58)),
        ((451, 300), "efficientnet_lite0", (384, 256, 80, 16)),
        ((640, 427), "efficientnet_lite2", (437, 292, 88, 16)),
        ((37, 23), "resnet18", (411, 256, 94, 16)),
        ((224, 224), "efficientnet_lite1", (272, 272, 16, 16)),
    ],
)
def test_resize_geometry_is_torchvisions(size, model, expected):
    assert resize_geometry(*size, get_spec(model).preprocessing) == expected
