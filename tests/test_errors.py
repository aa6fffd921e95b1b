"""The error catalogue: one class per error code, an exit status on the class, and the API's
documented error statuses generated from the classes."""

from __future__ import annotations

import pytest

import wanwu.errors as errors
from wanwu import cli
from wanwu.errors import (
    EXIT_DISK_FULL,
    EXIT_FAILED,
    EXIT_RETRY,
    EXIT_USAGE,
    ConfigError,
    UnknownModelError,
    WanwuError,
    WeightsError,
)


def _all_errors() -> list[type[WanwuError]]:
    import wanwu.server.errors  # noqa: F401  (the errors only a request can cause)

    out, todo = [], [WanwuError]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo.extend(cls.__subclasses__())
    return [c for c in out if c.__module__.startswith("wanwu.")]


def test_every_error_class_is_in_the_catalogue_with_its_own_code_and_summary():
    """``wanwu.errors`` holds every error wanwu raises on purpose (``wanwu.server.errors`` those
    only a request can cause): each class with its own code and summary, so that the API tables,
    the CLI's exit status and a Ray worker's error all come from one place."""
    import importlib
    import pkgutil

    import wanwu

    for info in pkgutil.walk_packages(wanwu.__path__, "wanwu."):
        if info.name.endswith(".__main__"):  # runs a command when imported
            continue
        try:
            importlib.import_module(info.name)  # every module that could define one
        except ImportError:  # an optional package (the faces extra, Ray ...) is not installed
            continue
    for cls in _all_errors():
        assert cls.__module__ in ("wanwu.errors", "wanwu.server.errors"), f"{cls.__name__} is in {cls.__module__}"
        assert "code" in cls.__dict__ and "summary" in cls.__dict__, cls.__name__


def test_every_error_kind_speaks_english_and_chinese():
    """Issue 26 item 12: every message a user reads exists in both languages. Whichever class
    says what a kind is (``summary``) says it in Chinese too (``summary_zh``)."""
    import re

    found = _all_errors()
    assert len(found) > 40  # every module with errors was imported
    for cls in found:
        owner = next(c for c in cls.__mro__ if "summary" in c.__dict__)
        assert "summary_zh" in owner.__dict__, f"{owner.__name__} has a summary but no summary_zh"
        assert re.search(r"[\u4e00-\u9fff]", cls.summary_zh), cls


def test_a_message_in_chinese_is_its_own_or_the_kind_then_the_details():
    own = errors.TruncatedImageError("a.jpg is truncated", zh="a.jpg 不完整")
    assert (own.text("en"), own.text("zh")) == ("a.jpg is truncated", "a.jpg 不完整")
    assert own.to_dict("zh") == {"code": "truncated_image", "message": "a.jpg 不完整"}
    other = UnknownModelError("unknown model 'resnet50'")
    assert other.text("zh") == "未知的模型：unknown model 'resnet50'"


def test_the_cli_prints_errors_in_the_users_language(tmp_path, capsys, monkeypatch):
    notes = tmp_path / "notes.jpg"
    notes.write_text("hello")
    monkeypatch.delenv("WANWU_LANG", raising=False)
    assert cli.main(["classify", str(notes), "--lang", "zh"]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "不是 wanwu 能读取的图像" in err
    assert len(err.splitlines()) == 1  # one photo: no "1 of 1 images could not be classified" after it
    monkeypatch.setenv("WANWU_LANG", "zh")
    assert cli.main(["download", "alexnet"]) == EXIT_USAGE
    assert capsys.readouterr().err.startswith("wanwu: error: 未知的模型：")
    assert cli.main(["classify", str(notes), "--lang", "en"]) == EXIT_FAILED  # the flag wins
    assert "is not an image wanwu can read" in capsys.readouterr().err


def test_every_code_names_one_class():
    seen: dict[str, str] = {}
    for cls in _all_errors():
        assert cls.code not in seen, f"{cls.__name__} and {seen[cls.code]} share the code {cls.code!r}"
        seen[cls.code] = cls.__name__
        assert cls.summary and 400 <= cls.http_status < 600
        assert cls.exit_status in (EXIT_FAILED, EXIT_USAGE, EXIT_RETRY, EXIT_DISK_FULL), cls


def test_try_again_later_is_its_own_status():
    """75, not 1 ("some files failed"): a script may retry on it (a busy catalogue)."""
    from wanwu.library.catalogue import LibraryBusyError

    assert EXIT_RETRY == 75 and LibraryBusyError.exit_status == EXIT_RETRY


def test_exit_status_comes_from_the_class():
    assert (UnknownModelError.exit_status, ConfigError.exit_status) == (EXIT_USAGE, EXIT_USAGE)
    assert WeightsError.exit_status == EXIT_FAILED


@pytest.mark.parametrize(
    "argv, status",
    [
        (["classify", "x.jpg", "--threads", "0"], EXIT_USAGE),  # ConfigError
        (["download", "alexnet"], EXIT_USAGE),  # UnknownModelError
    ],
)
def test_cli_exit_status_follows_the_error(argv, status, capsys):
    assert cli.main(argv) == status
    assert capsys.readouterr().err.startswith("wanwu: error: ")


def test_cli_weights_error_is_a_failure(tmp_path, capsys, chelsea):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a state dict")
    assert cli.main(["classify", str(chelsea), "--model", "resnet18", "--weights", str(bad)]) == EXIT_FAILED
    assert "Traceback" not in capsys.readouterr().err


def test_openapi_error_tables_come_from_the_classes():
    from wanwu.server import ServerConfig, create_app
    from wanwu.server.errors import IMAGE_ERRORS, MODEL_ERRORS, SERVICE_ERRORS, UPLOAD_ERRORS, InvalidTensorError

    spec = create_app(ServerConfig.from_env(environ={})).openapi()
    routes = {
        ("/api/v1/classify", "post"): (*UPLOAD_ERRORS, *MODEL_ERRORS, *IMAGE_ERRORS, *SERVICE_ERRORS),
        ("/predictions/{model}", "put"): (*UPLOAD_ERRORS, *MODEL_ERRORS, *IMAGE_ERRORS, *SERVICE_ERRORS),
        ("/v2/models/{name}/infer", "post"): (InvalidTensorError, *MODEL_ERRORS, *IMAGE_ERRORS, *SERVICE_ERRORS),
    }
    for (path, method), classes in routes.items():
        responses = spec["paths"][path][method]["responses"]
        for cls in classes:
            assert f"`{cls.code}`" in responses[str(cls.http_status)]["description"], (path, cls.__name__)
