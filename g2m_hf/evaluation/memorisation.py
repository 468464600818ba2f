"""How much generated music copies its training data: the share of spans found verbatim in training pieces.

A span is ``span_bars`` consecutive bars of a piece: their time signatures, Beat positions, pitches and
durations. Pitches are taken relative to the span's lowest note, so a copy in another key counts too
(fine-tuning transposes its training windows by up to three semitones). Spans without a note are left
out: silence is nobody's property. A small fine-tuning set (13 Mozart works in the bundled model's)
makes copying the likely failure of a style model; this measures it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..vocab import BAR_TOKEN, EOS_TOKEN, split_event

SPAN_BARS = 4


def _bars(events: Sequence[str]) -> list[list[tuple[str, str]]]:
    """A piece's bars, each as its (name, value) events after ``Bar_None``; what precedes the first bar is dropped."""
    bars: list[list[tuple[str, str]]] = []
    for token in events:
        if token == EOS_TOKEN:
            break
        if token == BAR_TOKEN:
            bars.append([])
        elif bars:
            bars[-1].append(split_event(token))
    return bars


def span_keys(events: Sequence[str], span_bars: int = SPAN_BARS) -> list[int]:
    """A transposition-invariant hash of every ``span_bars``-bar span that holds a note, in piece order."""
    bars = _bars(events)
    keys = []
    for first in range(len(bars) - span_bars + 1):
        span = [event for bar in bars[first : first + span_bars] for event in [("Bar", "")] + bar]
        pitches = [int(value) for name, value in span if name == "Note_Pitch" and value.isdigit()]
        if not pitches:
            continue
        lowest = min(pitches)
        relative = tuple(
            (name, str(int(value) - lowest)) if name == "Note_Pitch" and value.isdigit() else (name, value)
            for name, value in span
        )
        keys.append(hash(relative))
    return keys


class SpanIndex:
    """Every span of a set of (training) pieces, to look generated spans up in."""

    def __init__(self, pieces: Iterable[Sequence[str]], span_bars: int = SPAN_BARS):
        self.span_bars = span_bars
        self.keys: set[int] = set()
        for events in pieces:
            self.keys.update(span_keys(events, span_bars))

    @classmethod
    def from_ids(cls, rows: Iterable[Sequence[int]], tokenizer: Any, span_bars: int = SPAN_BARS) -> SpanIndex:
        """The spans of pieces given as token ids, e.g. a dataset split's ``input_ids``, read with ``tokenizer``."""
        return cls((tokenizer.ids_to_events(ids) for ids in rows), span_bars)

    def copied_share(self, pieces: Iterable[Sequence[str]]) -> tuple[int, int]:
        """How many of the pieces' spans are in the index, and how many spans they have: ``(copied, spans)``."""
        copied = total = 0
        for events in pieces:
            keys = span_keys(events, self.span_bars)
            copied += sum(key in self.keys for key in keys)
            total += len(keys)
        return copied, total


__all__ = ["SPAN_BARS", "SpanIndex", "span_keys"]
