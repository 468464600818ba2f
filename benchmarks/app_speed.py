"""The web app: seconds from pressing Generate to a playable 16-bar piece, with the bundled model.

``g2m-app`` runs as a real server on 127.0.0.1 and headless Chromium (Debian ``chromium``) drives the page
as a user would (tests/app_server.py): choose a composer, set the bars, press Generate, and stop the clock
when the audio player has its source. The baseline, measured in this run with the same settings and seeds,
is the same work in Python without the web: `generate_midi` then `write_piece` (MIDI, events, piano roll, MusicXML
score and WAV), the two sides taking turns per composer. Each side first makes one untimed 1-bar piece. The ratio is what the page adds (upload of the files, the player decoding the WAV).

    python benchmarks/app_speed.py [--bars 16] [--screenshot docs/app.png]   # README's figures and screenshot
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.app_server

from g2m_hf.generation import generate_midi, load_model, load_tokenizer, trained_composers, write_piece
from tests.app_server import AppServer, generate_in_page, open_browser


def save_screenshot(page, path: Path) -> None:
    """The whole page as a 128-colour PNG: the page is flat colours, and README wants the file small."""
    from PIL import Image

    image = Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("RGB")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.quantize(colors=128, dither=Image.Dither.NONE).save(path, optimize=True)


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=16)
    parser.add_argument("--screenshot", type=Path, default=None, help="save the page after the last piece (PNG)")
    args = parser.parse_args()
    tokenizer, model = load_tokenizer(), load_model()
    composers = trained_composers(tokenizer)
    python, web = {}, {}
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        folder = Path(folder)
        server = AppServer.start(folder)
        browser = open_browser(playwright, folder / "profile")
        try:
            page = browser.new_page()
            write_piece(generate_midi(model, tokenizer, composers=composers[:1], bars=1)[0], folder / "warm", audio=True, score=True)
            generate_in_page(page, server.url, composers[0], 1)  # one untimed 1-bar piece on each side
            for composer in composers:  # the two sides take turns, so a busy moment of the machine hits both
                start = time.perf_counter()
                (piece,) = generate_midi(model, tokenizer, composers=[composer], seed=0, bars=args.bars)  # as the page
                write_piece(piece, folder / composer, audio=True, score=True)
                python[composer] = time.perf_counter() - start
                web[composer] = generate_in_page(page, server.url, composer, args.bars)
                label = page.get_by_text(f"{composer} 1: ").first.inner_text().split(": ")[-1]
                print(f"  {composer:10s} python: {piece.events.count('Bar_None')} bars in {python[composer]:5.1f} s; "
                      f"page: {label} in {web[composer]:5.1f} s")
            if args.screenshot is not None:
                save_screenshot(page, args.screenshot)
        finally:
            browser.close()
            server.stop()
    python_median, page_median = statistics.median(python.values()), statistics.median(web.values())
    print(f"{args.bars} bars, seed 0, one piece per composer ({', '.join(composers)}), load average "
          f"{os.getloadavg()[0]:.1f}:")
    print(f"  in Python (generate_midi + write_piece with WAV): median {python_median:.1f} s")
    print(f"  in the page (Generate pressed -> audio player has its source): median {page_median:.1f} s "
          f"= {page_median / python_median:.2f}x the Python time")

if __name__ == "__main__":
    main()
