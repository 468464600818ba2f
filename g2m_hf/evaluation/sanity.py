"""Listening-free sanity measures of generated pieces: do they look like music at all?

The paper's H, GS and SI (`metrics.py`) say how a piece's pitch and rhythm statistics compare;
these catch plainly broken output first: bars without notes, one pitch hammered over and over,
a piece whose MIDI file does not encode back to the events it was written from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..remi import midi_to_events
from ..vocab import BAR_TOKEN, split_event

AVERAGED = ("bars", "notes_per_bar", "empty_bar_fraction")
"""Measures averaged over a composer's pieces; ``longest_same_pitch_run`` takes the maximum."""


def sanity_measures(events: Sequence[str]) -> dict[str, float]:
    """Measures that catch unmusical output without listening: bars, notes per bar, the share of
    bars without a note, and the longest run of consecutive notes on one pitch."""
    bars: list[int] = []  # notes per bar
    longest = run = 0
    last_pitch = None
    for token in events:
        if token == BAR_TOKEN:
            bars.append(0)
            continue
        name, value = split_event(token)
        if name == "Note_Pitch" and bars:
            bars[-1] += 1
            run = run + 1 if value == last_pitch else 1
            last_pitch, longest = value, max(longest, run)
    counts = np.array(bars or [0], dtype=float)
    return {
        "bars": len(bars),
        "notes_per_bar": float(counts.mean()),
        "empty_bar_fraction": float((counts == 0).mean()),
        "longest_same_pitch_run": longest,
    }


def round_trips(tokenizer: Any, events: list[str], midi_path: str | os.PathLike, composer: str) -> bool:
    """Whether the written MIDI file encodes back to exactly the generated events (with ``tokenizer``)."""
    return tokenizer.ids_to_events(tokenizer.encode_midi(midi_path, composer=composer)) == events


def summarise_sanity(by_composer: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per composer (sorted): the number of pieces, the mean of the `AVERAGED` measures, the longest
    same-pitch run of any piece and, when the pieces carry a ``round_trip`` flag, how many round-trip."""
    summary = {}
    for composer, rows in sorted(by_composer.items()):
        entry: dict[str, Any] = {"pieces": len(rows)}
        if all("round_trip" in row for row in rows):
            entry["round_trip"] = sum(row["round_trip"] for row in rows)
        entry.update({key: float(np.mean([row[key] for row in rows])) for key in AVERAGED})
        entry["longest_same_pitch_run"] = max(row["longest_same_pitch_run"] for row in rows)
        summary[composer] = entry
    return summary


def folder_sanity(folder: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """`summarise_sanity` of the ``<composer>_<n>.mid`` files in ``folder`` (e.g. real reference pieces)."""
    by_composer: dict[str, list[dict[str, float]]] = {}
    for path in sorted(Path(folder).glob("*.mid")):
        composer = path.stem.rsplit("_", 1)[0]
        by_composer.setdefault(composer, []).append(sanity_measures(midi_to_events(path, composer=composer)))
    return summarise_sanity(by_composer)


__all__ = ["folder_sanity", "round_trips", "sanity_measures", "summarise_sanity"]
