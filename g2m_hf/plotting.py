"""Figures written by the command-line tools (PNG files).

Figures are built with matplotlib's object-oriented API (``matplotlib.figure.Figure``, which
renders with the Agg backend) and never through ``pyplot``: no global state, no GUI backend
and no open-figure leaks, so plotting works the same in a headless batch job, a test or a
notebook. Every helper takes its data and an output path and returns the path written.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from .extras import require
from .fileio import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_DPI = 150


def _figure(extra: str, feature: str, **options) -> Figure:
    """A new ``Figure(**options)``; matplotlib is optional, so a missing one names the extra that brings it."""
    return require("matplotlib.figure", extra, feature).Figure(layout="constrained", **options)


def _save(figure: Figure, path: str | os.PathLike) -> Path:
    """Write ``figure`` as PNG (Agg renderer, atomically) and return the path."""
    path = Path(path)
    with atomic_path(path) as partial:
        figure.savefig(partial, format="png", dpi=_DPI)
    return path


def plot_confusion_matrix(
    counts: Sequence[Sequence[int]] | np.ndarray,
    labels: Sequence[str],
    path: str | os.PathLike,
    title: str = "Composer recognition",
    row_title: str = "prompted composer",
    column_title: str = "predicted composer",
) -> Path:
    """A confusion matrix as row fractions (each row sums to 1), annotated with fraction and count.

    ``counts[i][j]``: pieces of class ``labels[i]`` predicted as ``labels[j]``. An empty row stays 0.
    """
    counts = np.asarray(counts, dtype=float)  # [n_labels, n_labels]
    totals = counts.sum(axis=1, keepdims=True)
    fractions = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    size = 1.2 + 0.9 * len(labels)
    figure = _figure("eval", "a confusion-matrix plot", figsize=(size + 1.5, size))
    axes = figure.add_subplot()
    image = axes.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, label="fraction of the row")
    ticks = np.arange(len(labels))
    axes.set_xticks(ticks, labels, rotation=45, ha="right")
    axes.set_yticks(ticks, labels)
    axes.set_xlabel(column_title)
    axes.set_ylabel(row_title)
    axes.set_title(title)
    for (row, column), fraction in np.ndenumerate(fractions):
        colour = "white" if fraction > 0.5 else "black"
        text = f"{fraction:.2f}\n({int(counts[row, column])})"
        axes.text(column, row, text, ha="center", va="center", color=colour, fontsize=8)
    return _save(figure, path)


def plot_metric_distributions(
    values: Mapping[str, Mapping[str, Sequence[float]]],
    path: str | os.PathLike,
    title: str = "Objective metrics per piece",
) -> Path:
    """Box plots of each metric, one box per group, in a grid of panels.

    ``values[group][metric]``: the per-piece values of that group (e.g. ``"generated"``,
    ``"reference"``); NaN values are left out. Metrics appear in the order of the first group.
    """
    groups = list(values)
    metrics = list(next(iter(values.values()), {}))
    n_columns = min(3, max(1, len(metrics)))
    n_rows = max(1, math.ceil(len(metrics) / n_columns))
    figure = _figure("eval", "the metric plots", figsize=(3.6 * n_columns, 3.0 * n_rows))
    figure.suptitle(title)
    for index, metric in enumerate(metrics):
        axes = figure.add_subplot(n_rows, n_columns, index + 1)
        data = [_finite(values[group].get(metric, ())) for group in groups]
        axes.boxplot(data)
        ticks = [f"{group}\n(n={len(group_values)})" for group, group_values in zip(groups, data, strict=True)]
        axes.set_xticks(np.arange(1, len(groups) + 1), ticks)
        axes.set_title(metric)
        axes.grid(axis="y", alpha=0.3)
    return _save(figure, path)


_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_BLACK_KEYS = {1, 3, 6, 8, 10}


def plot_piano_roll(
    midi, path: str | os.PathLike, title: str = "", bars_per_row: int | None = None,
    marked: tuple[float, float] | None = None,
) -> Path:
    """A piano roll of a ``pretty_midi.PrettyMIDI`` laid out like a score: rows of ``bars_per_row`` bars
    (default 4, or 8 for pieces longer than 16 bars), bar lines numbered, faint beat lines, the black keys
    shaded and the C's and G's named on the pitch axis. Bars come from the file's time signatures.
    ``marked``: a (start, end) stretch in seconds shaded (the bars `infill_midi` wrote)."""
    notes = [note for instrument in midi.instruments for note in instrument.notes]
    end = max([note.end for note in notes] + [midi.get_end_time(), 1e-3])
    starts = [float(t) for t in midi.get_downbeats()] or [0.0]
    length = starts[-1] - starts[-2] if len(starts) > 1 else 2.0  # the last bar is as long as the one before
    while starts[-1] + length < end - 1e-6:  # notes that ring past the last bar line get bars of their own
        starts.append(starts[-1] + length)
    bars = list(zip(starts, starts[1:] + [starts[-1] + length]))
    per_row = bars_per_row or (4 if len(bars) <= 16 else 8)
    rows = [bars[i : i + per_row] for i in range(0, len(bars), per_row)]
    width = max(row[-1][1] - row[0][0] for row in rows)  # every row at the same scale

    pitches = [note.pitch for note in notes] or [60]
    low, high = min(pitches) - 2, max(pitches) + 2
    row_height = max(1.3, 0.055 * (high - low))
    figure = _figure("notation", "a piano roll", figsize=(11.0, 0.5 + row_height * len(rows)))
    figure.suptitle(title or f"{len(notes)} notes", fontsize=11)
    beats = [float(t) for t in midi.get_beats()]
    by_pitch: dict[int, list[tuple[float, float]]] = {}
    for note in notes:
        by_pitch.setdefault(note.pitch, []).append((note.start, note.end - note.start))
    named = [p for p in range(low, high + 1) if p % 12 in (0, 7)]
    for index, row in enumerate(rows):
        axes = figure.add_subplot(len(rows), 1, index + 1)
        first, last = row[0][0], row[-1][1]
        for pitch in range(low, high + 1):
            if pitch % 12 in _BLACK_KEYS:
                axes.axhspan(pitch - 0.5, pitch + 0.5, color="0.94", zorder=0, linewidth=0)
        for beat in beats:
            if first <= beat < last:
                axes.axvline(beat, color="0.88", linewidth=0.5, zorder=1)
        for number, (start, _) in enumerate(row, index * per_row + 1):
            axes.axvline(start, color="0.35", linewidth=0.9, zorder=1)
            axes.text(start, high + 0.4, f" {number}", fontsize=7, va="bottom", ha="left", color="0.3")
        axes.axvline(last, color="0.35", linewidth=0.9, zorder=1)
        if marked is not None and marked[0] < last and marked[1] > first:
            axes.axvspan(max(marked[0], first), min(marked[1], last), color="tab:orange", alpha=0.15, linewidth=0,
                         zorder=0)
        for pitch, spans in by_pitch.items():
            axes.broken_barh(spans, (pitch - 0.42, 0.84), facecolors="tab:blue", edgecolors="navy",
                             linewidth=0.3, zorder=2)
        axes.set_xlim(first, first + width)
        axes.set_ylim(low - 0.5, high + 0.5)
        axes.set_yticks(named, [f"{_NAMES[p % 12]}{p // 12 - 1}" for p in named], fontsize=7)
        axes.set_xticks([])
        for side in ("top", "right", "bottom"):
            axes.spines[side].set_visible(False)
    return _save(figure, path)


def plot_loss_curves(
    histories: Mapping[str, Sequence[Mapping[str, float]]],
    path: str | os.PathLike,
    title: str = "Training and validation loss",
) -> Path:
    """Loss curves of training runs, one panel per run, from `Trainer` log histories.

    ``histories[run]``: the ``log_history`` of that run (``training_record.json`` keeps it): entries
    with ``loss`` give the training curve, entries with ``eval_loss`` the validation curve, both
    against ``step``. Runs are drawn in the order given (e.g. pretraining, then fine-tuning).
    """
    runs = list(histories)
    figure = _figure("train", "the loss curves", figsize=(4.5 * max(1, len(runs)), 3.4))
    figure.suptitle(title)
    for index, run in enumerate(runs):
        axes = figure.add_subplot(1, max(1, len(runs)), index + 1)
        for key, label, style in (("loss", "training", "-"), ("eval_loss", "validation", "o-")):
            points = [(entry["step"], entry[key]) for entry in histories[run] if key in entry and "step" in entry]
            if points:
                steps, losses = zip(*points)
                axes.plot(steps, losses, style, label=label, markersize=3)
        axes.set_title(run)
        axes.set_xlabel("step")
        axes.set_ylabel("cross-entropy (nats / event)")
        axes.grid(alpha=0.3)
        axes.legend()
    return _save(figure, path)


def _finite(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array)]


__all__ = ["plot_confusion_matrix", "plot_loss_curves", "plot_metric_distributions", "plot_piano_roll"]
