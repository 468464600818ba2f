"""Thresholds of the per-bar texture classes (`controls.BAR_CLASS_EDGES`), measured on real pieces.

Per composer of the music21 corpus it prints the terciles of every bar's density (notes per quarter
note), polyphony (notes per onset) and register (mean pitch), the pooled terciles with each composer
weighted equally (what `BAR_CLASS_EDGES` rounds), and how the composers' bars fall into the levels of
`BAR_CLASS_EDGES`: a control is only useful when every composer uses more than one level.

    python benchmarks/bar_classes.py --corpus-limit Bach=80 Beethoven=11
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from g2m_hf.controls import BAR_CLASS_EDGES, BAR_CLASS_LEVELS, bar_attributes, bar_classes
from g2m_hf.corpus import corpus_sources, source_midi
from g2m_hf.data import default_cache_dir
from g2m_hf.errors import G2MError
from g2m_hf.metrics import PieceNotes
from g2m_hf.remi import midi_to_events
from g2m_hf.vocab import TICKS_PER_BEAT


def bar_values(events: list[str]) -> dict[str, np.ndarray]:
    """Density, polyphony and register of the bars that hold notes."""
    notes = PieceNotes.from_events(events)
    attributes = bar_attributes(notes)
    sounding = attributes.notes > 0
    return {
        "density": (attributes.notes / (notes.bar_ticks / TICKS_PER_BEAT))[sounding],
        "polyphony": attributes.polyphony[sounding],
        "register": attributes.mean_pitch[sounding],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--composer", nargs="+", default=["Bach", "Beethoven", "Mozart"])
    parser.add_argument("--corpus-limit", nargs="+", default=[], metavar="[COMPOSER=]N",
                        help="at most N real works per composer (COMPOSER=N: for that composer; default: all)")
    args = parser.parse_args()
    cache = default_cache_dir() / "midi"
    values: dict[str, dict[str, np.ndarray]] = {}
    levels: dict[str, dict[str, np.ndarray]] = {}
    limits = dict(item.rpartition("=")[::2] for item in args.corpus_limit)  # {"": N, "Bach": N, ...}
    for composer in args.composer:
        pieces = []
        for source in corpus_sources([composer], limit=int(limits.get(composer, limits.get("", 0))) or None):
            try:
                pieces.append(midi_to_events(source_midi(source, cache), composer=composer))
            except G2MError:
                continue
        measured = [bar_values(piece) for piece in pieces]
        values[composer] = {name: np.concatenate([m[name] for m in measured]) for name in BAR_CLASS_EDGES}
        classes = [bar_classes(piece) for piece in pieces]
        levels[composer] = {name: np.concatenate([c[name] for c in classes]) for name in BAR_CLASS_EDGES}
        print(f"{composer}: {len(pieces)} works, {len(values[composer]['density'])} bars with notes")
    print("\nclass       composer    tercile 1  tercile 2   share of bars per level of BAR_CLASS_EDGES "
          f"({'/'.join(BAR_CLASS_LEVELS)})")
    for name, edges in BAR_CLASS_EDGES.items():
        pooled = []
        for composer in args.composer:
            column = values[composer][name]
            level = levels[composer][name]
            shares = [np.mean(level[level >= 0] == index) for index in range(len(BAR_CLASS_LEVELS))]
            print(f"{name:10}  {composer:10}  {np.percentile(column, 100 / 3):9.2f}  {np.percentile(column, 200 / 3):9.2f}   "
                  + " / ".join(f"{share:.2f}" for share in shares))
            # each composer weighted equally: resample every composer to the same number of bars
            pooled.append(np.quantile(column, np.linspace(0, 1, 1000)))
        both = np.concatenate(pooled)
        print(f"{name:10}  {'pooled':10}  {np.percentile(both, 100 / 3):9.2f}  {np.percentile(both, 200 / 3):9.2f}   "
              f"edges used: {edges[0]:g}, {edges[1]:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
