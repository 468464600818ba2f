"""``g2m-app`` as a real server on 127.0.0.1, and headless Chromium to drive it (tests and benchmarks).

Chromium is the Debian package (``chromium`` on PATH), launched by Playwright through
``executable_path``: Playwright's own browser downloads are not used.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class AppServer:
    process: subprocess.Popen
    url: str
    log: Path

    @classmethod
    def start(cls, folder: Path, timeout: float = 240, options: tuple[str, ...] = ()) -> AppServer:
        """``python -m g2m_hf.cli.app`` (bundled model, more ``options``) on a free port; returns once the page
        answers (a login page, with ``--auth``).

        Gradio's cache and the app's files go under ``folder``; the server's output to ``folder/server.log``.
        """
        port = free_port()
        env = {**os.environ, "GRADIO_TEMP_DIR": str(folder / "gradio"), "TMPDIR": str(folder), "OMP_NUM_THREADS": "1"}
        log = folder / "server.log"
        with open(log, "w") as output:
            process = subprocess.Popen([sys.executable, "-m", "g2m_hf.cli.app", "--port", str(port), *options],
                                       stdout=output, stderr=subprocess.STDOUT, env=env)
        server = cls(process, f"http://127.0.0.1:{port}/", log)
        deadline = time.monotonic() + timeout
        while not server.answers():
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"g2m-app did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        return server

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url, timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def app_folders(self) -> list[Path]:
        """The app's own folders (``g2m-app-*``, in the server's TMPDIR: this server's ``folder``)."""
        return sorted(self.log.parent.glob("g2m-app-*"))

    def memory_mb(self) -> float:
        """The server process's resident memory (Linux /proc), in MB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS in /proc status")

    def stop(self) -> None:
        """Stop the server by its process id."""
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def chromium_path() -> str | None:
    """The Debian Chromium on PATH, when it and Playwright are both installed."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return None
    return shutil.which("chromium")


def open_browser(playwright, profile: Path):
    """A fresh headless Chromium (a new profile folder) that accepts downloads; close it when done."""
    return playwright.chromium.launch_persistent_context(
        profile, executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True, accept_downloads=True,
        viewport={"width": 1200, "height": 900},
    )


FIRST_SOUND = """() => { window.firstSound = null; document.addEventListener('playing', event => {
    if (window.firstSound === null && event.target.closest('#live')) window.firstSound = performance.now(); }, true); }"""
"""Records when the live player (the piece streamed while it is written) starts playing."""


@dataclass
class PageTimes:
    """Seconds from pressing Generate to the first sound (the live player playing; None if it never did) and
    to the finished piece (its player, piano roll and files in the page)."""

    first_sound: float | None
    done: float


def generate_in_page(page, url: str, composer: str, bars: int, timeout: float = 600) -> PageTimes:
    """Open the app, choose ``composer`` and ``bars``, press Generate; when the piece starts playing and when
    it is all in the page."""
    page.goto(url)
    page.get_by_label("Composer").click()
    page.get_by_role("option", name=composer).click()
    page.get_by_label("number input for Bars").fill(str(bars))
    page.get_by_label("number input for Bars").press("Enter")
    page.evaluate(FIRST_SOUND)
    start = page.evaluate("performance.now()")
    page.get_by_role("button", name="Generate").click()
    page.get_by_text(f"{composer} 1: ").first.wait_for(timeout=timeout * 1000)
    done = page.evaluate("performance.now()")
    first = page.evaluate("window.firstSound")
    return PageTimes(None if first is None else (first - start) / 1000, (done - start) / 1000)
