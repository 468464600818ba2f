"""Evaluating folders of MIDI files with the paper's measures: the library behind ``g2m-evaluate``.

`evaluate_folders` encodes every ``.mid`` file under a folder of generated pieces (and
optionally a folder of reference pieces) with `remi.midi_to_events`, computes the objective
metrics of `metrics.py` for each (SPEC §7), and, given a composer classifier (SPEC §6,
`classifier.py`), counts how often each piece is recognised as the composer it was prompted
with. `report.write_report` saves the result.

Files that cannot be read are listed under ``skipped`` with the reason; they never stop a run.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm.auto import tqdm

from .. import validation
from ..errors import EvaluationError, G2MError, VocabularyError
from ..metrics import METRIC_NAMES, PieceNotes, compute_metrics
from ..remi import midi_to_events
from ..vocab import NO_COMPOSER, ORIGINAL_COMPOSERS, split_event
from .classifier import ComposerClassifier, recognition

SETS: tuple[str, ...] = ("generated", "reference")
MIDI_SUFFIXES: tuple[str, ...] = (".mid", ".midi")

DEFAULT_SI_MAX_SECONDS = 180.0
"""SI looks at most at a piece's first 3 minutes: its scape plot costs N**4 in the piece's length
(15-30 s for 3 minutes on two CPU cores, hours for a 10-minute movement). Pieces generated with
the default 1200 events are shorter unless very slow."""


# --- inputs ---------------------------------------------------------------------------------


def find_midi_files(folder: str | os.PathLike) -> list[Path]:
    """Every ``.mid`` / ``.midi`` file under ``folder`` (recursively), in path order.

    Raises `EvaluationError` when the folder does not exist or holds no MIDI file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise EvaluationError(f"{folder}: no such folder")
    files = sorted(path for path in folder.rglob("*") if path.suffix.lower() in MIDI_SUFFIXES and path.is_file())
    if not files:
        raise EvaluationError(f"{folder}: no .mid files in this folder or below")
    return files


def prompted_composer(path: Path, root: Path, known: Sequence[str]) -> str | None:
    """The composer a piece was prompted with (or belongs to), or None when nothing says.

    Looked for, in order: the ``Composer_<name>`` event opening the event list that
    ``g2m-generate`` writes beside the MIDI file (``<stem>.txt``); the leading word of the
    file name (``bach_3.mid``, ``Bach-0.mid``); the folders between ``root`` and the file
    (``reference/chopin/op10.mid``). Names from the file path count only when they match
    ``known`` (case-insensitively) and are returned in its spelling.
    """
    written = _composer_in_event_list(path.with_suffix(".txt"))
    spelling = {name.casefold(): name for name in known}
    if written is not None:
        return spelling.get(written.casefold(), written)
    leading = re.match(r"[A-Za-z]+", path.stem)
    words = ([leading.group(0)] if leading else []) + list(reversed(path.relative_to(root).parent.parts))
    return next((spelling[word.casefold()] for word in words if word.casefold() in spelling), None)


def _composer_in_event_list(path: Path) -> str | None:
    """The composer of an event-list file whose first line is ``Composer_<name>`` (not None)."""
    try:
        with open(path, encoding="utf-8") as handle:
            first = handle.readline().strip()
    except (OSError, UnicodeDecodeError):
        return None
    name, value = split_event(first)
    return value if name == "Composer" and value and value != NO_COMPOSER else None


# --- evaluation -----------------------------------------------------------------------------


@dataclass
class _Evaluated:
    """One piece on its way into the report."""

    entry: dict[str, Any]  # the report's piece entry
    classifier_ids: list[int] | None = None
    classifier_error: str | None = None


def evaluate_folders(
    generated: str | os.PathLike,
    reference: str | os.PathLike | None = None,
    classifier: ComposerClassifier | str | os.PathLike | None = None,
    *,
    si_max_seconds: float | None = DEFAULT_SI_MAX_SECONDS,
    batch_size: int = 8,
    progress: bool = True,
) -> dict[str, Any]:
    """Metrics (and composer recognition) of every MIDI file under the folders, as a report.

    Args:
        generated: folder of generated pieces (searched recursively).
        reference: optional folder of real pieces to compare with.
        classifier: a `ComposerClassifier` or a folder to load one from.
        si_max_seconds: SI looks at most at this many seconds of a piece (None: all of it).
        batch_size: pieces per classifier forward pass.
        progress: show a tqdm progress bar.

    Returns:
        ``{"pieces": [...], "skipped": [...], "summary": {...}}`` (see docs/evaluation.md / `write_report`).
        Metric values that are undefined for a piece (H of a piece without notes, GS of a
        one-bar piece) are None.

    Raises:
        EvaluationError: a folder is missing or holds no MIDI file, or the classifier cannot be loaded.
        InvalidArgumentError: ``si_max_seconds`` <= 0 or ``batch_size`` < 1.
    """
    if si_max_seconds is not None:
        validation.positive_float("si_max_seconds", si_max_seconds)
    validation.positive_int("batch_size", batch_size)
    folders = {"generated": Path(generated)}
    if reference is not None:
        folders["reference"] = Path(reference)
    files = {set_name: find_midi_files(folder) for set_name, folder in folders.items()}
    if classifier is not None and not isinstance(classifier, ComposerClassifier):
        classifier = ComposerClassifier.from_pretrained(classifier)
    known = list(ORIGINAL_COMPOSERS) + (classifier.labels if classifier else [])

    evaluated: list[_Evaluated] = []
    skipped: list[dict[str, str]] = []
    todo = [(set_name, path) for set_name, paths in files.items() for path in paths]
    for set_name, path in tqdm(todo, desc="g2m-evaluate", unit="piece", disable=not progress):
        root = folders[set_name]
        relative = path.relative_to(root).as_posix()
        composer = prompted_composer(path, root, known)
        try:
            events = midi_to_events(path, composer=composer or NO_COMPOSER)
        except (G2MError, OSError) as error:
            skipped.append({"file": relative, "set": set_name, "reason": _one_line(error)})
            continue
        evaluated.append(_evaluate_piece(events, relative, set_name, composer, classifier, si_max_seconds))

    if classifier is not None:
        ready = [piece for piece in evaluated if piece.classifier_ids is not None]
        labels = classifier.predict([piece.classifier_ids for piece in ready], batch_size=batch_size)
        for piece, label in zip(ready, labels, strict=True):
            piece.entry["predicted"] = label

    settings = {
        "generated": str(generated),
        "reference": None if reference is None else str(reference),
        "classifier": _classifier_name(classifier),
        "si_max_seconds": si_max_seconds,
        "classifier_max_events": classifier.max_events if classifier else None,
    }
    return {
        "pieces": [piece.entry for piece in evaluated],
        "skipped": skipped,
        "summary": _summarise(_by_set(evaluated), classifier.labels if classifier else None, settings),
    }


def _evaluate_piece(
    events: list[str],
    relative: str,
    set_name: str,
    composer: str | None,
    classifier: ComposerClassifier | None,
    si_max_seconds: float | None,
) -> _Evaluated:
    notes = PieceNotes.from_events(events)
    metrics = compute_metrics(notes, si_max_seconds=si_max_seconds)
    entry: dict[str, Any] = {"file": relative, "set": set_name}
    entry.update({name: _finite_or_none(value) for name, value in metrics.items()})
    entry.update(composer=composer, seconds=round(notes.seconds, 3), bars=notes.n_bars, events=len(events))
    piece = _Evaluated(entry)
    if classifier is not None:
        entry["predicted"] = None
        try:
            piece.classifier_ids = classifier.encode(events)
        except VocabularyError as error:
            piece.classifier_error = _one_line(error)
    return piece


def _by_set(evaluated: list[_Evaluated]) -> dict[str, list[_Evaluated]]:
    """The evaluated pieces grouped by set, in SETS order (only sets that have pieces)."""
    groups = {set_name: [piece for piece in evaluated if piece.entry["set"] == set_name] for set_name in SETS}
    return {set_name: pieces for set_name, pieces in groups.items() if pieces}


def _summarise(sets: dict[str, list[_Evaluated]], labels: list[str] | None, settings: dict[str, Any]) -> dict[str, Any]:
    """The report's summary: settings, then per set the metric statistics overall and per
    composer, and (with a classifier) its recognition of the composers."""
    summary: dict[str, Any] = {"settings": settings}
    for set_name, pieces in sets.items():
        entries = [piece.entry for piece in pieces]
        by_composer: dict[str, list[dict[str, Any]]] = {}
        for entry in entries:
            by_composer.setdefault(entry["composer"] or "unknown", []).append(entry)
        summary[set_name] = {
            "count": len(entries),
            "metrics": _metric_statistics(entries),
            "composers": {
                name: {"count": len(group), "metrics": _metric_statistics(group)}
                for name, group in sorted(by_composer.items())
            },
        }
        if labels is not None:
            unclassified = [{"file": piece.entry["file"], "reason": piece.classifier_error}
                            for piece in pieces if piece.classifier_error is not None]
            summary[set_name]["classifier"] = recognition(entries, labels, unclassified)
    return summary


def _metric_statistics(entries: list[dict[str, Any]]) -> dict[str, dict[str, float | int | None]]:
    """Mean, (population) standard deviation and count of each metric over the pieces that have it."""
    statistics = {}
    for name in METRIC_NAMES:
        values = np.array([entry[name] for entry in entries if entry[name] is not None], dtype=float)
        present = len(values) > 0
        statistics[name] = {
            "mean": float(values.mean()) if present else None,
            "std": float(values.std()) if present else None,
            "count": len(values),
        }
    return statistics


def mean_metrics(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The mean of each metric per set and composer (``"generated Bach"``) and per set (``"generated all"``),
    with the number of pieces, from a report of `evaluate_folders`; sorted by name."""
    summary = report["summary"]
    rows: dict[str, dict[str, Any]] = {}
    for set_name in SETS:
        if set_name not in summary:
            continue
        groups = {**summary[set_name]["composers"], "all": summary[set_name]}
        for composer, group in groups.items():
            means = {name: group["metrics"][name]["mean"] for name in METRIC_NAMES}
            rows[f"{set_name} {composer}"] = {"pieces": group["count"], **means}
    return dict(sorted(rows.items()))


def _classifier_name(classifier: ComposerClassifier | None) -> str | None:
    if classifier is None:
        return None
    return getattr(classifier.model.config, "_name_or_path", None) or type(classifier.model).__name__


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


__all__ = ["DEFAULT_SI_MAX_SECONDS", "SETS", "evaluate_folders", "find_midi_files", "mean_metrics", "prompted_composer"]
