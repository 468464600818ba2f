"""The web app: seconds from pressing Generate to the first sound and to the whole 16-bar piece, bundled model.

``g2m-app`` runs as a real server on 127.0.0.1 and headless Chromium (Debian ``chromium``) drives the page
as a user would (tests/app_server.py): choose a composer, set the bars, press Generate; one clock stops when
the live player (the piece streamed while it is written) starts playing, the other when the finished
piece's player, piano roll and files are in the page. The baseline, measured in this run with the same settings and seeds,
is the same work in Python without the web: `generate_midi` then `write_piece` (MIDI, events, piano roll,
MusicXML score and WAV), the two sides taking turns per composer. Each side first makes one untimed 1-bar piece. The ratio is what the page adds (upload of the files, the player decoding the WAV).

    python benchmarks/app_speed.py [--bars 16] [--screenshot docs/app.png]   # docs/benchmarks.md's figures and docs/app.png
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

import torch

from g2m_hf.app import DEFAULT_DTYPE
from g2m_hf.generation import generate_midi, load_model_as, load_tokenizer, trained_composers, write_piece
from tests.app_server import AppServer, generate_in_page, open_browser


def save_screenshot(page, path: Path) -> None:
    """The whole page as a 128-colour PNG: the page is flat colours, and the docs want the file small."""
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
    torch.set_num_threads(1)  # as the server (tests/app_server.py: OMP_NUM_THREADS=1), so both sides do the same work
    tokenizer, model = load_tokenizer(), load_model_as(None, DEFAULT_DTYPE)  # the weights the page uses
    composers = trained_composers(tokenizer)
    python, web, first = {}, {}, {}
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
                times = generate_in_page(page, server.url, composer, args.bars)
                web[composer], first[composer] = times.done, times.first_sound
                label = page.get_by_text(f"{composer} 1: ").first.inner_text().split(": ")[-1]
                print(f"  {composer:10s} python: {piece.events.count('Bar_None')} bars in {python[composer]:5.1f} s; "
                      f"page: first sound after {times.first_sound or float('nan'):4.1f} s, "
                      f"whole piece after {times.done:5.1f} s ({label})")
            if args.screenshot is not None:
                save_screenshot(page, args.screenshot)
        finally:
            browser.close()
            server.stop()
    python_median, page_median = statistics.median(python.values()), statistics.median(web.values())
    print(f"{args.bars} bars, seed 0, one piece per composer ({', '.join(composers)}), load average "
          f"{os.getloadavg()[0]:.1f}:")
    print(f"  in Python (generate_midi + write_piece with WAV): median {python_median:.1f} s")
    print(f"  in the page (Generate pressed -> the whole piece in the page): median {page_median:.1f} s "
          f"= {page_median / python_median:.2f}x the Python time")
    heard = [seconds for seconds in first.values() if seconds is not None]
    print("  first sound in the page (the live player starts playing): "
          + ", ".join(f"{c} {s:.1f} s" if s is not None else f"{c} never" for c, s in first.items())
          + (f"; worst {max(heard):.1f} s = {max(heard) / page_median:.2f}x the whole piece's wait" if heard else ""))

if __name__ == "__main__":
    main()
