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
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from .fileio import atomic_path

_DPI = 150


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
    figure = Figure(figsize=(size + 1.5, size), layout="constrained")
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
    figure = Figure(figsize=(3.6 * n_columns, 3.0 * n_rows), layout="constrained")
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


def plot_piano_roll(
    midi, path: str | os.PathLike, title: str = "", marked: tuple[float, float] | None = None
) -> Path:
    """A piano roll of a ``pretty_midi.PrettyMIDI``: one bar per note (time in seconds, MIDI pitch),
    bar lines at the time-signature events (the REMI decoder writes one per bar), C's labelled;
    ``marked``: a (start, end) stretch in seconds shaded (the bars `infill_midi` wrote)."""
    notes = [note for instrument in midi.instruments for note in instrument.notes]
    end = max([note.end for note in notes] + [midi.get_end_time(), 1.0])
    figure = Figure(figsize=(min(30.0, 4.0 + end / 4.0), 4.0), layout="constrained")
    axes = figure.add_subplot()
    for change in midi.time_signature_changes:
        axes.axvline(change.time, color="0.85", linewidth=0.6, zorder=0)
    if marked is not None:
        axes.axvspan(*marked, color="tab:orange", alpha=0.15, linewidth=0, zorder=0)
    by_pitch: dict[int, list[tuple[float, float]]] = {}
    for note in notes:
        by_pitch.setdefault(note.pitch, []).append((note.start, note.end - note.start))
    for pitch, spans in by_pitch.items():
        axes.broken_barh(spans, (pitch - 0.4, 0.8), facecolors="tab:blue", edgecolors="none")
    low = min(by_pitch, default=48) - 2
    high = max(by_pitch, default=72) + 2
    c_pitches = [p for p in range(low, high + 1) if p % 12 == 0]
    axes.set_yticks(c_pitches, [f"C{p // 12 - 1}" for p in c_pitches])
    axes.set_ylim(low, high)
    axes.set_xlim(0, end)
    axes.set_xlabel("time (s)")
    axes.set_ylabel("pitch")
    axes.set_title(title or f"{len(notes)} notes")
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
    figure = Figure(figsize=(4.5 * max(1, len(runs)), 3.4), layout="constrained")
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
