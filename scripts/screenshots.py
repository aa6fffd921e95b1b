"""Regenerate the README screenshots of the web UI from a real `wanwu serve`.

    python scripts/screenshots.py            # writes docs/screenshot-{desktop,phone,desktop-zh}.png

Starts the server on a free loopback port, opens the UI in Debian's chromium (headless, via
Playwright, nothing downloaded), uploads three real photos that ship with matplotlib and
scikit-image, waits for every result and takes a full-page screenshot at desktop width
(1280 px) and phone width (360 px), and the desktop page once more in 中文 (a zh-CN browser).
Chinese text needs a CJK font (Debian: ``apt-get install fonts-wqy-microhei``); the script
refuses to draw tofu boxes. Never edit the PNGs by hand: rerun this script.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from chromium import CHROMIUM_ARGS, chromium_path

HOST = "127.0.0.1"
MODEL = "efficientnet_lite0"
ROOT = Path(__file__).resolve().parent.parent
SHOTS = {
    # name: (viewport width, viewport height, browser context options)
    "desktop": (1280, 800, {}),
    "phone": (360, 740, {"is_mobile": True, "has_touch": True}),
    "desktop-zh": (1280, 800, {"locale": "zh-CN"}),  # the page starts in the browser's language
}


def photos() -> list[Path]:
    import matplotlib
    import skimage

    skimage_data = Path(skimage.__file__).parent / "data"
    paths = [
        Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg",
        skimage_data / "chelsea.png",
        skimage_data / "coffee.png",
    ]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        sys.exit(f"sample photos missing (install matplotlib and scikit-image): {missing}")
    return paths


def find_chromium() -> str:
    path = chromium_path()
    if not path:
        sys.exit("chromium not found: install Debian's `chromium` package or set WANWU_CHROMIUM")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def check_cjk_font() -> None:
    """Chromium draws Chinese with a system font; without one the 中文 shot would show boxes."""
    fc_list = shutil.which("fc-list")
    if fc_list and not subprocess.run([fc_list, ":lang=zh"], capture_output=True, text=True).stdout.strip():
        sys.exit("no Chinese font installed (the 中文 screenshot would show boxes): apt-get install fonts-wqy-microhei")


def start_server(timeout: float = 300.0) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    url = f"http://{HOST}:{port}"
    log_path = Path(tempfile.gettempdir()) / f"wanwu-screenshots-{port}.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wanwu.cli",
            "serve",
            "--host",
            HOST,
            "--port",
            str(port),
            "--model",
            MODEL,
            "--log-level",
            "warning",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()  # the child has its own descriptor
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"wanwu serve exited with status {proc.returncode}; log: {log_path}")
        try:
            with urllib.request.urlopen(url + "/v2/health/ready", timeout=1.0) as r:
                if r.status == 200:
                    return proc, url, log_path
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    proc.kill()
    sys.exit(f"wanwu serve not ready after {timeout:.0f} s; log: {log_path}")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def shoot(
    browser, url: str, files: list[Path], out: Path, width: int, height: int, scale: float, options: dict
) -> None:
    options = {"locale": "en-US", **options}
    ctx = browser.new_context(
        viewport={"width": width, "height": height},
        device_scale_factor=scale,
        color_scheme="light",
        reduced_motion="reduce",
        **options,
    )
    try:
        page = ctx.new_page()
        page.set_default_timeout(60_000)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url + "/")
        page.wait_for_selector(f'#model-select option[value="{MODEL}"]', state="attached")
        page.set_input_files("#file-input", [str(p) for p in files])
        for p in files:
            page.wait_for_selector(f'.result-card[data-filename="{p.name}"][data-state="done"]')
        # Thumbnails decoded, prediction bars at their final width, fonts ready.
        page.wait_for_selector(".result-card .thumb img", state="visible")
        page.evaluate("""async () => {
            await document.fonts.ready;
            await Promise.all([...document.images].map((img) => img.decode().catch(() => {})));
        }""")
        page.wait_for_timeout(800)  # the bars' width transition (0.6 s)
        if errors:
            sys.exit(f"the page reported errors while taking {out.name}: {errors}")
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=True, animations="disabled", caret="hide")
    finally:
        ctx.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", type=Path, default=ROOT / "docs", help="where the PNGs go (default: docs/)")
    ap.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="device pixel ratio; 1 gives images exactly 1280 and 360 px wide (default: 1)",
    )
    args = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright

    files = photos()
    chromium = find_chromium()
    check_cjk_font()
    proc, url, _log = start_server()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            try:
                for name, (width, height, options) in SHOTS.items():
                    out = args.out_dir / f"screenshot-{name}.png"
                    shoot(browser, url, files, out, width, height, args.scale, options)
                    print(f"wrote {out}")
            finally:
                browser.close()
    finally:
        stop_server(proc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
