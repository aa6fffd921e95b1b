"""A cold CLI: the `wanwu` command imports what the command in hand needs. Building the parser,
`wanwu --help`, `wanwu index --help`, `wanwu serve --help` and `wanwu classify` import neither
FastAPI, uvicorn nor starlette (only running `wanwu serve` needs them), and the help pages load no
engine (torch, ONNX Runtime, OpenVINO), no NumPy, no Pillow and no OpenSSL (each costs every run
tens of milliseconds: the pipeline and the hashes are imported where they are used). Each is checked in a fresh interpreter: a module one
test imported stays in this process's sys.modules. Not a timing test."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WEB = ("fastapi", "uvicorn", "starlette")

PROBE = textwrap.dedent(
    """
    import contextlib, io, json, sys

    WATCHED = {"fastapi", "uvicorn", "starlette", "torch", "onnxruntime", "openvino", "numpy", "PIL", "_hashlib"}

    def loaded():
        return sorted({m.split(".")[0] for m in sys.modules} & WATCHED)

    def run(argv):
        from wanwu.cli import main
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code
        return code, out.getvalue()

    seen = {}
    import wanwu.cli
    wanwu.cli.build_parser()
    seen["build_parser"] = loaded()
    for argv in json.loads(sys.argv[1]):
        code, out = run(argv)
        seen[" ".join(argv)] = {"code": code, "out": out, "loaded": loaded()}
    print(json.dumps(seen))
    """
)


def _probe(*commands: list[str]) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(commands)], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_parser_and_help_import_no_web_server_and_no_engine():
    seen = _probe(["--help"], ["index", "--help"], ["serve", "--help"])
    assert seen["build_parser"] == []
    for argv in ("--help", "index --help", "serve --help"):
        assert seen[argv]["code"] == 0
        assert seen[argv]["loaded"] == [], f"`wanwu {argv}` imported {seen[argv]['loaded']}"
    assert "--cache-entries" in seen["serve --help"]["out"]  # the serve flags are all there, help and all


def test_classify_imports_no_web_server():
    sample = ROOT / "docs" / "samples" / "cat.jpg"
    seen = _probe(["classify", str(sample), "--format", "json", "--top-k", "1"])
    result = seen[f"classify {sample} --format json --top-k 1"]
    assert result["code"] == 0
    assert "cat" in result["out"]
    assert not set(result["loaded"]) & set(WEB), f"`wanwu classify` imported {result['loaded']}"


def test_top_level_help_builds_no_command():
    """`wanwu --help` and a mistyped command name every command with its help line, and import
    none of the commands' modules (each one's options are built only when it runs)."""
    probe = textwrap.dedent(
        """
        import contextlib, io, json, sys
        from wanwu.cli import main
        seen = {}
        for argv in (["--help"], ["clasify", "x.jpg"]):
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    main(argv)
                except SystemExit:
                    pass
            seen[argv[0]] = out.getvalue() + err.getvalue()
        seen["modules"] = sorted(m for m in sys.modules if m.startswith("wanwu"))
        print(json.dumps(seen))
        """
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.splitlines()[-1])
    from wanwu.cli import COMMANDS

    for name, command in COMMANDS.items():
        assert name in seen["--help"] and command.help.split()[0] in seen["--help"]
        assert repr(name) in seen["clasify"]  # argparse's "invalid choice ... (choose from ...)"
    heavy = {
        "wanwu.cli.classify",
        "wanwu.settings",
        "wanwu.library",
        "wanwu.server",
        "wanwu.cli.bench",
        "wanwu.cli.library",
        "wanwu.cli.serve",
    }
    assert not heavy & set(seen["modules"]), seen["modules"]


def test_a_command_built_alone_is_the_command_built_with_all():
    """Each command's help (its options) is the same whether the parser holds every command
    (`build_parser()`) or that one only (what `wanwu COMMAND` builds), and `wanwu --help` shows
    the help line COMMANDS gives, from either parser."""
    import contextlib
    import io

    from wanwu.cli import COMMANDS, build_parser

    def help_of(parser, *argv: str) -> str:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
            parser.parse_args([*argv, "--help"])
        return out.getvalue()

    full = build_parser()
    overview = " ".join(help_of(full).split())
    for name, command in COMMANDS.items():
        alone = build_parser([name])
        text = help_of(alone, name)
        assert text == help_of(full, name)
        assert "--" in text.split("options:", 1)[-1].replace("--help", "")  # built: more than its --help
        assert f"{name} {' '.join(command.help.split())}" in " ".join(help_of(alone).split())
        assert " ".join(command.help.split()) in overview
