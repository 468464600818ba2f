"""A composer classifier on hand-made score features: a second, independent judge of style.

The paper measures style with a Transformer classifier on events (SPEC §6, `ComposerClassifier`).
A judge that a generator was tuned against is no longer a fair measure of it, so the project keeps a
second one that shares nothing with the first but the training pieces: a multinomial logistic
regression (scikit-learn) on 38 interpretable features of 8-bar windows — how dense the texture is,
which note values and beat positions the rhythm uses, how wide and how tonal the pitch content is,
how the top voice moves. A piece's label is the class with the highest mean log-probability over its
windows. The fitted classifier is a few kB: a safetensors file of standardisation and weights, with
the labels and feature names in its metadata.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
from safetensors.numpy import load_file, save_file

from .. import fileio
from ..errors import EvaluationError
from ..extras import require
from ..metrics import PieceLike, PieceNotes, _as_notes
from ..vocab import TICKS_PER_BEAT, TICKS_PER_GRID

WINDOW_BARS, HOP_BARS = 8, 4
"""Features are taken over 8-bar windows every 4 bars (a piece shorter than 8 bars is one window)."""

_GRIDS_PER_BEAT = TICKS_PER_BEAT // TICKS_PER_GRID  # 12 Beat positions per quarter note
_DURATION_EDGES = np.array([TICKS_PER_BEAT // 4, TICKS_PER_BEAT // 2, TICKS_PER_BEAT, 2 * TICKS_PER_BEAT])
_INTERVAL_EDGES = np.array([0, 2, 4, 7])  # repeated, step, third, fourth-fifth, leap

FEATURE_NAMES: tuple[str, ...] = (
    "notes_per_bar", "onsets_per_bar", "notes_per_onset", "empty_bar_share", "beats_per_bar",
    "dur_16th_or_less", "dur_8th", "dur_quarter", "dur_half", "dur_longer",
    "pos_beat", "pos_8th", "pos_16th", "pos_triplet", "pos_other",
    "pitch_mean", "pitch_std", "pitch_range", "pitch_class_entropy",
    *(f"pitch_class_rank_{rank}" for rank in range(12)),
    "top_repeat", "top_step", "top_third", "top_fourth_fifth", "top_leap",
    "top_ascending", "bass_mean",
)  # fmt: skip


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else np.zeros(len(counts))


def window_features(notes: PieceNotes, first_bar: int, n_bars: int) -> np.ndarray | None:
    """The `FEATURE_NAMES` of bars ``first_bar .. first_bar + n_bars - 1``; None when they hold no note. [F]"""
    window = notes.bars(first_bar, n_bars)
    if len(window.pitch) == 0:
        return None
    bar, grid, pitch, duration, start = window.bar, window.grid, window.pitch, window.duration, window.start
    onsets = np.unique(start)
    bars = window.n_bars
    beat_grid = grid % _GRIDS_PER_BEAT
    position = np.array([
        np.sum(beat_grid == 0), np.sum(beat_grid == 6), np.sum((beat_grid == 3) | (beat_grid == 9)),
        np.sum((beat_grid == 4) | (beat_grid == 8)),
    ])  # fmt: skip
    classes = np.bincount(pitch % 12, minlength=12).astype(float)
    class_shares = _shares(classes)
    entropy = -np.sum(class_shares[class_shares > 0] * np.log2(class_shares[class_shares > 0]))
    # the top and bottom voices: the highest and lowest pitch at each onset
    order = np.lexsort((pitch, start))
    last_of_onset = np.append(start[order][1:] != start[order][:-1], True)
    first_of_onset = np.insert(start[order][1:] != start[order][:-1], 0, True)
    top, bass = pitch[order][last_of_onset], pitch[order][first_of_onset]
    moves = np.diff(top)
    intervals = np.bincount(np.searchsorted(_INTERVAL_EDGES, np.abs(moves)), minlength=5)
    return np.concatenate([
        [len(pitch) / bars, len(onsets) / bars, len(pitch) / len(onsets),
         1 - len(np.unique(bar)) / bars, np.mean(window.bar_ticks) / TICKS_PER_BEAT],
        _shares(np.bincount(np.searchsorted(_DURATION_EDGES, duration), minlength=5)),
        _shares(np.append(position, len(grid) - position.sum())),
        [pitch.mean() / 12, pitch.std() / 12, (pitch.max() - pitch.min()) / 12, entropy],
        np.sort(class_shares)[::-1],
        _shares(intervals), [np.mean(moves > 0) if len(moves) else 0.5, bass.mean() / 12],
    ])  # fmt: skip


def piece_features(piece: PieceLike) -> np.ndarray:
    """Features of every `WINDOW_BARS`-bar window of a piece, every `HOP_BARS` bars. [W, F] (W may be 0)"""
    notes = _as_notes(piece)
    firsts = range(0, max(notes.n_bars - WINDOW_BARS, 0) + 1, HOP_BARS)
    rows = [row for first in firsts if (row := window_features(notes, first, WINDOW_BARS)) is not None]
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FEATURE_NAMES))


class FeatureComposerClassifier:
    """Logistic regression on `piece_features`: ``fit`` on labelled pieces, then ``predict`` pieces.

    Args:
        labels: the class names, in output order.
        mean, scale: feature standardisation [F].
        coef: class weights [C, F]; intercept: [C].
    """

    def __init__(self, labels: Sequence[str], mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: np.ndarray):
        self.labels = list(labels)
        self.mean, self.scale, self.coef, self.intercept = mean, scale, coef, intercept

    @classmethod
    def fit(cls, pieces: Sequence[PieceLike], composers: Sequence[str], c: float = 1.0) -> FeatureComposerClassifier:
        """Fit on every window of ``pieces`` labelled ``composers``; classes weighted to count equally."""
        LogisticRegression = require("sklearn.linear_model", "eval", "fitting the feature classifier").LogisticRegression
        StandardScaler = require("sklearn.preprocessing", "eval", "fitting the feature classifier").StandardScaler

        windows = [piece_features(piece) for piece in pieces]
        features = np.concatenate(windows)
        targets = np.concatenate([[composer] * len(w) for composer, w in zip(composers, windows, strict=True)])
        scaler = StandardScaler().fit(features)
        model = LogisticRegression(C=c, max_iter=5000, class_weight="balanced")
        model.fit(scaler.transform(features), targets)
        scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
        coef, intercept = model.coef_, model.intercept_
        if len(model.classes_) == 2:  # scikit-learn keeps one row for two classes: the second's logit against 0
            coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
        return cls(list(model.classes_), scaler.mean_, scale, coef, intercept)

    def window_log_probs(self, piece: PieceLike) -> np.ndarray:
        """Log-probability of every class for every window of a piece. [W, C]"""
        logits = ((piece_features(piece) - self.mean) / self.scale) @ self.coef.T + self.intercept  # [W, C]
        return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)

    def predict(self, pieces: Sequence[PieceLike]) -> list[str | None]:
        """The composer of each piece (highest mean window log-probability); None for a piece without notes."""
        predicted: list[str | None] = []
        for piece in pieces:
            log_probs = self.window_log_probs(piece)
            predicted.append(self.labels[int(log_probs.mean(axis=0).argmax())] if len(log_probs) else None)
        return predicted

    def save(self, path: str | os.PathLike) -> None:
        """Write the classifier as one safetensors file (labels and feature names in its metadata), atomically."""
        tensors = {"mean": self.mean, "scale": self.scale, "coef": self.coef, "intercept": self.intercept}
        metadata = {"labels": json.dumps(self.labels), "features": json.dumps(FEATURE_NAMES)}
        with fileio.atomic_path(path) as temporary:
            save_file({k: np.ascontiguousarray(v, dtype=np.float64) for k, v in tensors.items()}, str(temporary), metadata)

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureComposerClassifier:
        """Read a file written by `save`; `EvaluationError` when it is missing or of other features."""
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="numpy") as handle:
                metadata = handle.metadata() or {}
            tensors = load_file(str(path))
        except (OSError, ValueError) as error:  # missing file, not safetensors
            raise EvaluationError(f"{path}: cannot read a feature classifier ({error})") from None
        if json.loads(metadata.get("features", "[]")) != list(FEATURE_NAMES):
            raise EvaluationError(f"{path}: a feature classifier of other features than this g2m_hf computes")
        return cls(json.loads(metadata["labels"]), tensors["mean"], tensors["scale"], tensors["coef"], tensors["intercept"])


__all__ = ["FEATURE_NAMES", "FeatureComposerClassifier", "piece_features", "window_features"]
