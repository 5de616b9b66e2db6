"""The README's screenshots of `speedrun ui`: the user's notebook (tests/data/user-notebook.md) served
by a real server and photographed by Debian's chromium through Playwright.

    python docs/make_screenshots.py        # writes docs/ui-runs.png, docs/ui-run.png, docs/ui-compare.png
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "runs.db"
        subprocess.run([sys.executable, "-m", "speedrun", "--db", str(db), "import-md",
                        str(ROOT / "tests" / "data" / "user-notebook.md")], check=True, capture_output=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen([sys.executable, "-m", "speedrun", "ui", "--db", str(db), "--port", str(port)])
        base = f"http://127.0.0.1:{port}/"
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(base + "static/ui.css", timeout=2).read()
                    break
                except OSError:
                    time.sleep(0.1)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=shutil.which("chromium"),
                                            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
                page = browser.new_page(viewport={"width": 1200, "height": 760})
                for name, path in (("runs", "?cols=lr,batch_size"), ("run", "runs/4"),
                                   ("compare", "compare?runs=2&runs=4&runs=%2324")):
                    page.goto(base + path)
                    page.wait_for_load_state("networkidle")
                    page.screenshot(path=str(ROOT / "docs" / f"ui-{name}.png"))
                browser.close()
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
