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
    import wanwu.server.errors  # noqa: F401  (registers the HTTP-only errors)

    out, todo = [], [WanwuError]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo.extend(cls.__subclasses__())
    return [c for c in out if c.__module__.startswith("wanwu.")]


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


def test_unused_image_too_large_error_is_gone():
    assert not hasattr(errors, "ImageTooLargeError")


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
