"""Scores: seconds to write a 32-bar piece's MusicXML and engrave it, against generating the piece (same run).

The baseline is `generate_midi` making the piece with the bundled model (one piece, ``--bars`` bars, the
app's settings). Then, on that piece, `write_score` (events -> music21 -> MusicXML file) and `engrave_svg`
(Verovio: the first two pages, as the app shows them, and every page) are timed, each the median of
``--repeats`` runs. The ratio is what a score adds to making a piece.

    python benchmarks/notation_speed.py [--bars 32] [--composer Bach] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from g2m_hf.generation import generate_midi, load_model, load_tokenizer
from g2m_hf.notation import engrave_svg, read_score_notes, score_notes_of_events, write_score


def median_seconds(work, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=32)
    parser.add_argument("--composer", default="Bach")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tokenizer, model = load_tokenizer(), load_model()
    generate_midi(model, tokenizer, composers=[args.composer], bars=1)  # warm-up, untimed
    start = time.perf_counter()
    (piece,) = generate_midi(model, tokenizer, composers=[args.composer], bars=args.bars, seed=args.seed)
    generating = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "piece.musicxml"
        writing = median_seconds(lambda: write_score(piece, path), args.repeats)
        first_pages = median_seconds(lambda: engrave_svg(path, pages=2), args.repeats)
        every_page = median_seconds(lambda: engrave_svg(path, pages=1000), args.repeats)
        pages = len(engrave_svg(path, pages=1000))
        assert read_score_notes(path) == score_notes_of_events(piece.events)  # the timed file is the right one
    notes = sum(event.startswith("Note_Pitch") for event in piece.events)
    print(f"{args.composer}, {piece.events.count('Bar_None')} bars, {notes} notes, {pages} pages; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"  generating the piece:                 {generating:7.2f} s")
    print(f"  writing its MusicXML (music21):       {writing:7.2f} s = {writing / generating:.4f}x generating")
    print(f"  engraving the first 2 pages (Verovio): {first_pages:6.2f} s = {first_pages / generating:.4f}x generating")
    print(f"  engraving all {pages} pages:               {every_page:6.2f} s = {every_page / generating:.4f}x generating")
    total = writing + first_pages
    print(f"  score as in the app (write + 2 pages): {total:6.2f} s = {total / generating:.4f}x generating")


if __name__ == "__main__":
    main()
