"""The web app: seconds from pressing Generate to a playable 16-bar piece, with the bundled model.

``g2m-app`` runs as a real server on 127.0.0.1 and headless Chromium (Debian ``chromium``) drives the page
as a user would (tests/app_server.py): choose a composer, set the bars, press Generate, and stop the clock
when the audio player has its source. The baseline, measured in this run with the same settings and seeds,
is the same work in Python without the web: `generate_midi` then `write_piece` (MIDI, events, piano roll
and WAV). Each side first makes one untimed 1-bar piece. The ratio is what the page adds (upload of the files, the player decoding the WAV).

    python benchmarks/app_speed.py [--bars 16] [--screenshot docs/app.png]   # README's figures and screenshot
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.app_server

from g2m_hf.generation import generate_midi, load_model, load_tokenizer, trained_composers, write_piece
from tests.app_server import AppServer, generate_in_page, open_browser


def in_python(composers: list[str], bars: int, folder: Path) -> dict[str, float]:
    tokenizer, model = load_tokenizer(), load_model()
    write_piece(generate_midi(model, tokenizer, composers=composers[:1], bars=1)[0], folder / "warm-up", audio=True)
    seconds = {}
    for composer in composers:
        start = time.perf_counter()
        (piece,) = generate_midi(model, tokenizer, composers=[composer], seed=0, bars=bars)  # as the page asks
        write_piece(piece, folder / composer, audio=True)
        seconds[composer] = time.perf_counter() - start
        print(f"  python  {composer:10s} {piece.events.count('Bar_None'):3d} bars in {seconds[composer]:5.1f} s")
    return seconds


def in_the_page(composers: list[str], bars: int, folder: Path, screenshot: Path | None) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    server = AppServer.start(folder)
    seconds = {}
    try:
        with sync_playwright() as playwright:
            browser = open_browser(playwright, folder / "profile")
            page = browser.new_page()
            generate_in_page(page, server.url, composers[0], 1)  # warm-up, as in_python's
            for composer in composers:
                seconds[composer] = generate_in_page(page, server.url, composer, bars)
                label = page.get_by_text(f"{composer} 1: ").first.inner_text()
                print(f"  page    {composer:10s} {label.split(': ')[-1]:>8s} in {seconds[composer]:5.1f} s")
            if screenshot is not None:  # a 128-colour PNG: the page is flat colours, README wants it small
                from PIL import Image

                image = Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("RGB")
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                image.quantize(colors=128, dither=Image.Dither.NONE).save(screenshot, optimize=True)
            browser.close()
    finally:
        server.stop()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=16)
    parser.add_argument("--screenshot", type=Path, default=None, help="save the page after the last piece (PNG)")
    args = parser.parse_args()
    composers = trained_composers(load_tokenizer())
    with tempfile.TemporaryDirectory() as folder:
        baseline = in_python(composers, args.bars, Path(folder))
        page = in_the_page(composers, args.bars, Path(folder), args.screenshot)
    python_median, page_median = statistics.median(baseline.values()), statistics.median(page.values())
    print(f"{args.bars} bars, seed 0, one piece per composer ({', '.join(composers)}):")
    print(f"  in Python (generate_midi + write_piece with WAV): median {python_median:.1f} s")
    print(f"  in the page (Generate pressed -> audio player has its source): median {page_median:.1f} s "
          f"= {page_median / python_median:.2f}x the Python time")


if __name__ == "__main__":
    main()
