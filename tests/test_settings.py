"""The settings table (``wanwu.settings``) and the engine table (``wanwu.engines``): every entry
point reads the same defaults, environment variables, parsers and engine facts."""

from __future__ import annotations

import argparse
import contextlib
import io
import re

import pytest

from wanwu import cli, environment, settings
from wanwu.cli import serve as cli_serve
from wanwu.engines import ENGINE_TABLE, ENGINES, check_engine, get_engine
from wanwu.errors import EXIT_FAILED, ConfigError
from wanwu.server.config import ServerConfig
from wanwu.settings import DEFAULT_MAX_PIXELS, DEFAULT_PRECISION, DEFAULT_TOP_K, ModelSettings


def _classify_args(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(["classify", "photo.jpg", *argv])


# -- classify reads the same table as serve ----------------------------------------------------
def test_classify_takes_max_pixels_with_a_unit():
    assert ModelSettings.from_args(_classify_args("--max-pixels", "40M"), environ={}).max_pixels == 40_000_000
    assert ModelSettings.from_args(_classify_args("--max-pixels", "2.5e6"), environ={}).max_pixels == 2_500_000


def test_classify_honours_wanwu_threads_and_max_pixels():
    env = {"WANWU_THREADS": "3", "WANWU_MAX_PIXELS": "12M", "WANWU_TOP_K": "2"}
    s = ModelSettings.from_args(_classify_args(), environ=env)
    assert (s.threads, s.max_pixels, s.top_k) == (3, 12_000_000, 2)
    # a flag wins over the environment
    assert ModelSettings.from_args(_classify_args("--threads", "1", "-k", "4"), environ=env).threads == 1


def test_classify_command_applies_the_environment(monkeypatch, capsys, chelsea):
    monkeypatch.setenv("WANWU_MAX_PIXELS", "1000")  # far below the photo: refused, not classified
    assert cli.main(["classify", str(chelsea), "--quiet"]) == EXIT_FAILED
    assert "over the limit" in capsys.readouterr().err


def test_classify_passes_every_setting_to_the_classifier(monkeypatch, tmp_path, chelsea):
    seen: dict = {}

    class Recorder:
        def __init__(self, *args, **kwargs):
            seen.update(kwargs)
            raise KeyboardInterrupt  # stop here: the arguments are what this test is about

    monkeypatch.setattr("wanwu.pipeline.Classifier", Recorder)
    monkeypatch.setenv("WANWU_THREADS", "2")
    monkeypatch.setenv("WANWU_CACHE_DIR", str(tmp_path))
    assert cli.main(["classify", str(chelsea), "--max-pixels", "5M", "--precision", "int8"]) == 130
    assert (seen["threads"], seen["max_pixels"], seen["precision"]) == (2, 5_000_000, "int8")


def test_bad_environment_is_a_usage_error(monkeypatch, capsys, chelsea):
    monkeypatch.setenv("WANWU_THREADS", "many")
    assert cli.main(["classify", str(chelsea)]) == cli.EXIT_USAGE
    assert "WANWU_THREADS" in capsys.readouterr().err


def test_cache_dir_setting(tmp_path, monkeypatch):
    monkeypatch.delenv("WANWU_CACHE_DIR", raising=False)
    s = ModelSettings.from_args(_classify_args("--cache-dir", str(tmp_path / "c")), environ={})
    s.export_cache_dir()
    from wanwu.paths import cache_dir

    assert cache_dir() == tmp_path / "c"


# -- engine x precision is checked where the settings are, before any model loads -------------
def test_torch_int8_is_refused_by_serve_config():
    with pytest.raises(ConfigError) as err:
        ServerConfig.from_env(environ={"WANWU_ENGINE": "torch", "WANWU_PRECISION": "int8"})
    assert "--precision" in err.value.message and "onnxruntime" in err.value.message


def test_torch_int8_serve_exits_2(capsys):
    assert cli_serve.main(["--engine", "torch", "--precision", "int8"]) == 2
    assert "torch engine runs fp32 only" in capsys.readouterr().err


def test_torch_int8_classify_exits_2_before_loading(capsys, chelsea):
    assert cli.main(["classify", str(chelsea), "--engine", "torch", "--precision", "int8"]) == cli.EXIT_USAGE
    assert "torch engine runs fp32 only" in capsys.readouterr().err


def test_classifier_refuses_torch_int8():
    from wanwu.pipeline import Classifier

    with pytest.raises(ConfigError):
        Classifier(engine="torch", precision="int8")


# -- the engine table -------------------------------------------------------------------------
def test_engine_table_is_the_list_of_engines():
    assert ENGINES == tuple(e.name for e in ENGINE_TABLE)
    assert get_engine("torch").precisions == ("fp32",)
    assert check_engine("onnxruntime", "int8").name == "onnxruntime"
    with pytest.raises(ConfigError, match="choose one of"):
        get_engine("tensorrt")
    for entry in ENGINE_TABLE:
        assert entry.supports(DEFAULT_PRECISION)
        assert entry.v2_platform and entry.v2_backend
        ok, why = entry.available()
        assert ok or "pip install" in (why or "")


def test_bench_variants_follow_the_table():
    from wanwu.bench.variants import engine_variants

    variants = engine_variants(["efficientnet_lite0"], list(ENGINES), ["fp32", "int8"], [1])
    for v in variants:
        assert get_engine(v.engine).supports(v.precision)
    assert {(v.engine, v.precision) for v in variants} == {(e.name, p) for e in ENGINE_TABLE for p in e.precisions}


def test_defaults_have_one_source():
    import inspect

    from wanwu.pipeline import Classifier

    params = inspect.signature(Classifier).parameters
    assert params["precision"].default == DEFAULT_PRECISION
    assert params["max_pixels"].default == DEFAULT_MAX_PIXELS
    assert inspect.signature(Classifier.classify_one).parameters["top_k"].default == DEFAULT_TOP_K
    c = ServerConfig.from_env(environ={})
    assert (c.precision, c.max_pixels, c.top_k) == (DEFAULT_PRECISION, DEFAULT_MAX_PIXELS, DEFAULT_TOP_K)
    assert isinstance(c, ModelSettings)


# -- help -------------------------------------------------------------------------------------
def _helps() -> dict[str, str]:
    """What ``wanwu --help`` and each command's ``--help`` print, as a user sees them."""

    def shown(*argv: str) -> str:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
            cli.main([*argv, "--help"])
        return out.getvalue()

    top = shown()
    commands = re.findall(r"^    ([a-z][\w-]*)(?: {2,}|$)", top, flags=re.MULTILINE)  # the COMMAND list
    assert {"classify", "serve", "index"} <= set(commands)
    return {"wanwu": top, **{name: shown(name) for name in commands}}


def test_help_has_no_none_and_no_doubled_defaults():
    for name, text in _helps().items():
        assert "default: None" not in text, name
        assert "default: []" not in text, name  # tag --add/--remove (issue 26 item 18)
        # one option's help says its default at most once
        for block in re.split(r"\n  (?=-)", text):
            assert len(re.findall(r"default:", block)) <= 1, (name, block)


def test_precision_help_warns_that_int8_moves_confidences():
    """Issue 26 item 16: int8 keeps the top-1 but not the scores (espresso 95% -> 51%); whoever
    picks --precision reads that in every command's --help, and that tags stay calibrated."""
    helps = _helps()
    for name in ("classify", "index", "serve"):
        block = re.search(r"\n  --precision .*?(?=\n  -)", helps[name], flags=re.DOTALL)
        assert block, name
        text = " ".join(block.group(0).split())
        assert "confidences move a lot" in text and "calibrated for each precision" in text, name


def test_classify_help_shows_the_environment_variables():
    text = _helps()["classify"]
    for var in (
        "WANWU_MODEL",
        "WANWU_ENGINE",
        "WANWU_PRECISION",
        "WANWU_THREADS",
        "WANWU_MAX_PIXELS",
        "WANWU_TOP_K",
        "WANWU_LANG",
        "WANWU_CACHE_DIR",
    ):
        assert var in text


def test_add_arguments_for_a_new_entry_point():
    parser = argparse.ArgumentParser()
    settings.add_arguments(parser, ["model", "top_k"])
    args = parser.parse_args(["--top-k", "3"])
    s = ModelSettings.from_args(args, environ={"WANWU_ENGINE": "torch"})
    assert (s.top_k, s.engine, s.model) == (3, "torch", settings.DEFAULT_MODEL)


# -- every WANWU_* variable in one table, documented --------------------------------------------
def _tables_variables() -> set[str]:
    from dataclasses import fields

    return {f.metadata["env"] for t in (ModelSettings, settings.CommandSettings, ServerConfig) for f in fields(t)}


def test_every_variable_the_source_names_is_a_setting_and_documented():
    """A ``WANWU_*`` name anywhere in the package is a field of the settings tables (read through
    them), and docs/configuration.md lists every one of them, and nothing else."""
    from pathlib import Path

    import wanwu

    root = Path(wanwu.__file__).parent
    named = {
        m
        for p in root.rglob("*.py")
        for m in re.findall(r"\bWANWU_[A-Z0-9_]*[A-Z0-9]\b", p.read_text(encoding="utf-8"))
    }
    known = _tables_variables() | {"WANWU_SERVE_LIBRARY"}  # the deprecated alias
    placeholders = {"WANWU_NAME", "WANWU_OLD", "WANWU_X"}  # settings.py's how-to
    assert named - known - placeholders == set()
    doc = (root.parents[1] / "docs" / "configuration.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`(WANWU_[A-Z0-9_]+)`", doc))
    assert documented == known


def test_one_variable_names_the_catalogue_for_the_library_commands_and_serve(tmp_path, monkeypatch):
    from wanwu.library.catalogue import default_db_path

    db = tmp_path / "mine.db"
    monkeypatch.setenv("WANWU_LIBRARY", str(db))
    assert default_db_path() == db
    assert ServerConfig.from_env({"WANWU_LIBRARY": str(db)}).library == str(db)
    assert ServerConfig.from_env({}).library is None


def test_the_former_serve_library_variable_still_works_with_a_warning(capsys, monkeypatch):
    monkeypatch.setattr(environment, "_warned", set())
    assert ServerConfig.from_env({"WANWU_SERVE_LIBRARY": "/srv/a.db"}).library == "/srv/a.db"
    err = capsys.readouterr().err
    assert "WANWU_SERVE_LIBRARY is deprecated" in err and "WANWU_LIBRARY" in err
    both = {"WANWU_SERVE_LIBRARY": "/srv/a.db", "WANWU_LIBRARY": "/srv/b.db"}
    monkeypatch.setattr(environment, "_warned", set())
    assert ServerConfig.from_env(both).library == "/srv/b.db"
    assert "ignored" in capsys.readouterr().err


def test_one_language_resolver_flag_then_variable_then_locale():
    resolve = settings.resolve_lang
    assert resolve("zh", {"WANWU_LANG": "en"}) == "zh"
    assert resolve(None, {"WANWU_LANG": "zh-CN", "LANG": "en_US.UTF-8"}) == "zh"
    assert resolve(None, {"LANG": "zh_CN.UTF-8"}) == "zh"
    assert resolve(None, {}) == "en"
    with pytest.raises(ConfigError, match="WANWU_LANG"):
        resolve(None, {"WANWU_LANG": "fr"})
    assert resolve(None, {"WANWU_LANG": "fr", "LANG": "zh_CN.UTF-8"}, strict=False) == "zh"  # an error's language
    assert ModelSettings.from_env({"LANG": "zh_CN.UTF-8"}).label_lang({"LANG": "zh_CN.UTF-8"}) == "zh"


def test_command_variables_are_parsed_and_a_bad_one_names_itself():
    env = {"WANWU_MAX_FILE_MB": "50", "WANWU_FACES": "off", "WANWU_PROGRESS": "1", "WANWU_WEIGHTS_DIR": "/a:/b"}
    assert settings.env_value("max_file_mb", env) == 50
    assert settings.env_value("faces", env) is False and settings.env_value("faces", {}) is True
    assert settings.env_value("progress", env) is True and settings.env_value("progress", {}) is False
    assert settings.env_value("weights_dir", env) == "/a:/b"
    assert settings.env_value("face_detector", {}) == "blazeface"
    assert settings.env_value("face_detector", {"WANWU_FACE_DETECTOR": " HOG "}) == "hog"
    for name, text in (("max_file_mb", "0"), ("faces", "maybe"), ("face_detector", "cnn")):
        var = settings.CommandSettings.__dataclass_fields__[name].metadata["env"]
        with pytest.raises(ConfigError, match=var):
            settings.env_value(name, {var: text})
