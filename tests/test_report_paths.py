"""Generated reports carry no machine paths: data folders relative to the repository (the
working directory when a report is regenerated), the home folder as ``~``."""

from __future__ import annotations

import os

from wanwu.bench.variants import plan_weights
from wanwu.paths import display_path, display_text


def test_display_path(tmp_path, monkeypatch):
    repo, home = tmp_path / "work" / "main", tmp_path / "home" / "me"
    (repo / "docs").mkdir(parents=True)
    home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    assert display_path(repo / "docs", base=repo) == "docs"
    assert display_path(tmp_path / "work" / "shared" / "imagenet-100", base=repo) == os.path.join(
        "..", "shared", "imagenet-100"
    )
    assert display_path(home / "imagenet-100", base=repo) == os.path.join("~", "imagenet-100")
    assert display_path("/etc/ssl/certs/x", base="/a/b/c/d") == "/etc/ssl/certs/x"  # far away: as given
    assert display_text(f"put x.pth in {home}/.cache/torch") == "put x.pth in ~/.cache/torch"


def test_missing_weights_reason_shows_home_as_tilde(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("TORCH_HOME", "XDG_CACHE_HOME", "WANWU_WEIGHTS_DIR"):
        monkeypatch.delenv(var, raising=False)
    _, skipped = plan_weights(["vgg16"], random_ok=set())
    assert skipped and "~/.cache/torch/hub/checkpoints" in skipped[0]["reason"]
    assert str(tmp_path) not in skipped[0]["reason"]


def test_the_cache_path_printed_can_be_pasted(tmp_path, monkeypatch, capsys):
    """Issue 26 item 18: a cache outside the home folder was printed relative without ``./``
    (``cache/onnx/...``), which reads like a path somewhere else; the user sees ``~/...`` under
    the home folder and an absolute path otherwise."""
    from wanwu import cli

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANWU_CACHE_DIR", "cache")
    assert cli.main(["models"]) == 0
    legend = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("prepared:"))
    assert f"({tmp_path / 'cache'})" in legend
    monkeypatch.setenv("WANWU_CACHE_DIR", str(tmp_path / "home" / ".cache" / "w"))
    assert cli.main(["models"]) == 0
    assert f"({os.path.join('~', '.cache', 'w')})" in capsys.readouterr().out
