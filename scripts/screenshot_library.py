"""Regenerate docs/screenshot-library.png: the Library view of `wanwu serve --library`.

    python scripts/screenshot_library.py

Copies the real sample photos (scikit-image, matplotlib, scikit-learn) into a temporary album,
runs a real `wanwu index` on it, starts `wanwu serve --library` on a free loopback port and
takes the page at /#library in Debian's chromium (headless, Playwright, nothing downloaded).
Never edit the PNG by hand: rerun this script.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshots import CHROMIUM_ARGS, HOST, ROOT, find_chromium, free_port, stop_server

OUT = ROOT / "docs" / "screenshot-library.png"


def album(root: Path) -> None:
    import matplotlib
    import skimage
    import sklearn

    sk = Path(skimage.__file__).parent / "data"
    sl = Path(sklearn.__file__).parent / "datasets" / "images"
    layout = {
        "2024/home/chelsea.png": sk / "chelsea.png",
        "2024/home/coffee.png": sk / "coffee.png",
        "2023/trip/rocket.jpg": sk / "rocket.jpg",
        "2023/trip/scooter.png": sk / "motorcycle_left.png",
        "2023/trip/summer-palace.jpg": sl / "china.jpg",
        "2023/trip/dahlia.jpg": sl / "flower.jpg",
        "2022/grace_hopper.jpg": Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg",
        "2022/astronaut.png": sk / "astronaut.png",
        "2022/cat-again.png": sk / "chelsea.png",
    }
    for rel, src in layout.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, root / rel)


def main() -> int:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="wanwu-shot-library-") as tmp:
        root, db = Path(tmp) / "Pictures", Path(tmp) / "library.db"
        album(root)
        subprocess.run(
            [sys.executable, "-m", "wanwu.cli", "index", str(root), "--db", str(db), "-q"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        port = free_port()
        url = f"http://{HOST}:{port}"
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
                "--library",
                str(db),
                "--log-level",
                "warning",
            ]
        )
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    with urllib.request.urlopen(url + "/v2/health/ready", timeout=1.0) as r:
                        if r.status == 200:
                            break
                except (urllib.error.URLError, OSError):
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    sys.exit("wanwu serve did not start")
                time.sleep(0.2)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=find_chromium(), headless=True, args=CHROMIUM_ARGS)
                ctx = browser.new_context(
                    viewport={"width": 1280, "height": 800},
                    device_scale_factor=1,
                    color_scheme="light",
                    reduced_motion="reduce",
                    locale="en-US",
                )
                page = ctx.new_page()
                page.goto(url + "/#library")
                page.wait_for_selector("#lib-grid > li")
                page.wait_for_function(
                    "() => [...document.querySelectorAll('#lib-grid img')].every(i => i.complete && i.naturalWidth > 0)"
                )
                page.evaluate("async () => { await document.fonts.ready; }")
                page.screenshot(path=str(OUT), full_page=True, animations="disabled", caret="hide")
                browser.close()
        finally:
            stop_server(proc)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
