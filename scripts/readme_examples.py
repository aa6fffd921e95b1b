"""Run the README's console examples and check (or rewrite) the output they show.

A block is checked when the line before its fence is a marker::

    <!-- checked -->                 run it as it is
    <!-- checked: pictures -->       after preparing what it needs (see FIXTURES)

Every line of the block starting with ``$ `` is a command, run by bash; the lines after it, up
to the next command, are what it prints (stdout and stderr as a terminal shows them). The
commands of a block share one shell (``export`` carries over), and every block runs in one
sandbox: a temporary HOME, a working folder holding a copy of ``docs/samples`` (and a
``.venv/bin/wanwu``), ``wanwu`` on the PATH running this checkout, no ``WANWU_*`` variables, and
``/tmp/`` in the commands moved into the sandbox (shown as ``/tmp/`` again). Nothing outside the
sandbox is read or written but this checkout's code and the photos the fixtures copy.

What differs from machine to machine or run to run is masked before comparing (MASKS: times,
speeds, timings, file sizes), so the README keeps real numbers from one run; ``--write`` keeps
a README line wherever it matches the fresh one once masked, and takes the fresh line otherwise.

    python scripts/readme_examples.py --check      # exit 1 and a diff when they differ
    python scripts/readme_examples.py --write      # bring the README's blocks up to date

Blocks that need Ray, Triton, the faces data, imagenet-100 or a running server carry no marker.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MARKER = re.compile(r"^<!-- checked(?::\s*(?P<options>[^>]*?))?\s*-->\s*$")
FENCE = "```"
PROMPT = "$ "

# (pattern, replacement): what a fresh run may change; applied to both sides before comparing
MASKS = [
    (re.compile(r'"timing_ms": \{[^}]*\}'), '"timing_ms": {...}'),  # the JSON stage timings
    (re.compile(r"\b\d+(?:\.\d+)? ms\b"), "<t> ms"),  # a photo's time: (451x300, 12.1 ms)
    (re.compile(r"\b\d+(?:\.\d+)? s\b"), "<t> s"),  # a run's time: in 1.1 s, prepared in 13.9 s
    (re.compile(r"\b\d+(?:\.\d+)? photos/s\b"), "<n> photos/s"),  # a rate
    (re.compile(r"\(\d+(?:\.\d+)? (?:B|KB|MB|GB)\)"), "(<size>)"),  # the catalogue file's size (SQLite pages)
]


def mask(line: str) -> str:
    for pattern, replacement in MASKS:
        line = pattern.sub(replacement, line)
    return line.rstrip()


# --- what blocks need, made in the sandbox ---------------------------------------------------
def _skimage(name: str) -> Path:
    import skimage  # a test dependency: its wheel ships the photos

    return Path(skimage.__file__).parent / "data" / name


def _pictures(sandbox: Path) -> None:
    """/tmp/Pictures: photos in year folders and one broken JPEG; ~/vehicles to copy into."""
    samples = ROOT / "docs" / "samples"
    layout = {
        "2024/home/chelsea.png": _skimage("chelsea.png"),
        "2024/home/coffee.png": _skimage("coffee.png"),
        "2023/holiday/scooter.png": _skimage("motorcycle_left.png"),
        "2023/holiday/rocket.jpg": samples / "rocket.jpg",
        "2022/astronaut.png": _skimage("astronaut.png"),
    }
    root = sandbox / "tmp" / "Pictures"
    for rel, src in layout.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, root / rel)
    (root / "2024" / "broken.jpg").write_bytes(b"hello, not a photo\n")
    (sandbox / "home" / "vehicles").mkdir(parents=True, exist_ok=True)


def _phone(sandbox: Path) -> None:
    """Phone/: a JPEG, three HEIC photos and a camera RAW file; the HEIC reader hidden."""
    phone = sandbox / "work" / "Phone"
    phone.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "docs" / "samples" / "cat.jpg", phone / "IMG_0001.jpg")
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    for n in (2, 3, 4):
        (phone / f"IMG_000{n}.HEIC").write_bytes(heic)
    (phone / "IMG_0005.dng").write_bytes(b"II*\x00" + b"\x00" * 64)


FIXTURES: dict[str, Callable[[Path], None]] = {"pictures": _pictures, "phone": _phone}
# options that change the environment rather than make files
WITHOUT_HEIF = "without-heif"  # as if the heif extra were not installed (pillow_heif cannot be imported)


# --- the README's blocks ---------------------------------------------------------------------
@dataclass
class Command:
    line: str  # "$ wanwu ..."
    output: list[str] = field(default_factory=list)

    @property
    def shell(self) -> str:
        return self.line[len(PROMPT) :]


@dataclass
class Block:
    options: list[str]
    start: int  # index of the fence's first line in the README's lines
    end: int  # index of its closing fence
    commands: list[Command]


def parse(lines: list[str]) -> list[Block]:
    blocks = []
    for i, line in enumerate(lines):
        m = MARKER.match(line)
        if not m:
            continue
        if i + 1 >= len(lines) or not lines[i + 1].lstrip().startswith(FENCE):
            raise SystemExit(f"README line {i + 1}: a checked marker must come right before a ``` block")
        end = next(j for j in range(i + 2, len(lines)) if lines[j].strip() == FENCE)
        commands: list[Command] = []
        for body in lines[i + 2 : end]:
            if body.startswith(PROMPT):
                commands.append(Command(body))
            elif commands:
                commands[-1].output.append(body)
            else:
                raise SystemExit(f"README line {i + 3}: a checked block starts with a command ($ ...)")
        options = (m.group("options") or "").split()
        unknown = [o for o in options if o not in FIXTURES and o != WITHOUT_HEIF]
        if unknown:
            raise SystemExit(f"README line {i + 1}: unknown option(s) {unknown}; known: {[*FIXTURES, WITHOUT_HEIF]}")
        blocks.append(Block(options, i + 1, end, commands))
    return blocks


# --- running them ----------------------------------------------------------------------------
class Sandbox:
    def __init__(self, root: Path):
        self.root = root
        self.home, self.work, self.bin = root / "home", root / "work", root / "bin"
        for d in (self.home, self.work / "docs", self.bin, root / "tmp", root / "no-heif" / "pillow_heif"):
            d.mkdir(parents=True, exist_ok=True)
        shutil.copytree(ROOT / "docs" / "samples", self.work / "docs" / "samples")
        wrapper = f'#!/bin/sh\nexec "{sys.executable}" -m wanwu.cli "$@"\n'
        for path in (self.bin / "wanwu", self.work / ".venv" / "bin" / "wanwu"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(wrapper)
            path.chmod(0o755)
        (root / "no-heif" / "pillow_heif" / "__init__.py").write_text(
            'raise ImportError("hidden: the README example runs without the heif extra")\n'
        )

    def env(self, options: list[str]) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("WANWU_", "XDG_", "LC_", "TORCH_"))}
        python_path = [str(ROOT / "src")]
        if WITHOUT_HEIF in options:
            python_path.insert(0, str(self.root / "no-heif"))
        return {
            **keep,
            "HOME": str(self.home),
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": os.pathsep.join(python_path),
            "PYTHONUNBUFFERED": "1",  # stdout and stderr interleaved as on a terminal
            "LANG": "C.UTF-8",  # English unless a command asks for Chinese
        }

    def to_sandbox(self, command: str) -> str:
        return re.sub(r"(?<![\w./])/tmp/", f"{self.root}/tmp/", command)

    def from_sandbox(self, text: str) -> str:
        return text.replace(f"{self.root}/tmp/", "/tmp/").replace(str(self.home), "~")

    def run(self, block: Block) -> list[list[str]]:
        """What each command of ``block`` prints, as lines."""
        for option in block.options:
            if option in FIXTURES:
                FIXTURES[option](self.root)
        mark = "=== wanwu readme example: next command ==="
        # stderr into stdout once, for the whole shell: a command's own "# comment" cannot swallow it
        script = "exec 2>&1\n" + "\n".join(f"echo '{mark}'\n{self.to_sandbox(c.shell)}" for c in block.commands)
        proc = subprocess.run(
            ["bash", "-c", script],
            cwd=self.work,
            env=self.env(block.options),
            capture_output=True,
            text=True,
            timeout=600,
        )
        parts = self.from_sandbox(proc.stdout).split(mark + "\n")[1:]
        if len(parts) != len(block.commands):
            raise SystemExit(f"block at README line {block.start + 1} did not run to its end: {proc.stderr}")
        return [part.splitlines() for part in parts]

    def warm_up(self) -> None:
        """Build the default model's graph into the cache first, so that no example's output
        depends on being the first to use it."""
        subprocess.run(
            ["wanwu", "models", "--prepare"], cwd=self.work, env=self.env([]), capture_output=True, check=True
        )


def merged(shown: list[str], fresh: list[str]) -> list[str]:
    """``fresh``, keeping each shown line that equals its fresh line once masked."""
    if len(shown) != len(fresh):
        return fresh
    return [s if mask(s) == mask(f) else f for s, f in zip(shown, fresh)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 with a diff when an example's output differs")
    mode.add_argument("--write", action="store_true", help="rewrite the README's checked blocks from a fresh run")
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args(argv)

    lines = args.readme.read_text(encoding="utf-8").split("\n")
    blocks = parse(lines)
    differ = 0
    with tempfile.TemporaryDirectory(prefix="wanwu-readme-") as tmp:
        sandbox = Sandbox(Path(tmp).resolve())
        sandbox.warm_up()
        fresh = [sandbox.run(block) for block in blocks]  # in order: a later block may see an earlier one's cache
    for block, outputs in reversed(list(zip(blocks, fresh))):  # from the end: earlier indexes stay valid
        new_body: list[str] = []
        for command, output in zip(block.commands, outputs):
            new_body += [command.line, *merged(command.output, output)]
        old_body = lines[block.start + 1 : block.end]
        if [mask(x) for x in old_body] != [mask(x) for x in new_body]:
            differ += 1
            where = f"{args.readme.name} line {block.start + 2}"
            sys.stdout.writelines(
                difflib.unified_diff(
                    [x + "\n" for x in old_body],
                    [x + "\n" for x in new_body],
                    f"{where} (README)",
                    f"{where} (fresh run)",
                )
            )
        lines[block.start + 1 : block.end] = new_body
    if args.write:
        args.readme.write_text("\n".join(lines), encoding="utf-8")
        print(f"{len(blocks)} checked block(s); {differ} rewritten in {args.readme}", file=sys.stderr)
        return 0
    print(f"{len(blocks)} checked block(s); {differ} differ from a fresh run", file=sys.stderr)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
