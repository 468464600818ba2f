"""Evaluating folders of MIDI files with the paper's measures: the library behind ``g2m-evaluate``.

`evaluate_folders` encodes every ``.mid`` file under a folder of generated pieces (and
optionally a folder of reference pieces) with `remi.midi_to_events`, computes the objective
metrics of `metrics.py` for each (SPEC §7), and, given a composer classifier (SPEC §6), counts
how often each piece is recognised as the composer it was prompted with. `write_report`
saves the result as ``report.json``, ``report.md`` and PNG plots.

Files that cannot be read are listed under ``skipped`` with the reason; they never stop a run.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .errors import EvaluationError, G2MError, OutputExistsError, VocabularyError
from .metrics import METRIC_NAMES, PieceNotes, compute_metrics
from .plotting import plot_confusion_matrix, plot_metric_distributions
from .remi import midi_to_events
from .vocab import NO_COMPOSER, ORIGINAL_COMPOSERS, split_event

SETS: tuple[str, ...] = ("generated", "reference")
MIDI_SUFFIXES: tuple[str, ...] = (".mid", ".midi")

CLASSIFIER_MAX_EVENTS = 1200
"""The classifier sees at most this many events of a piece (SPEC §6)."""

DEFAULT_SI_MAX_SECONDS = 180.0
"""SI looks at most at a piece's first 3 minutes: its scape plot costs N**4 in the piece's length
(15-30 s for 3 minutes on two CPU cores, hours for a 10-minute movement). Pieces generated with
the default 1200 events are shorter unless very slow."""

REPORT_JSON, REPORT_MD, DISTRIBUTIONS_PNG = "report.json", "report.md", "metric_distributions.png"


def confusion_png(set_name: str) -> str:
    """File name of a set's confusion-matrix plot."""
    return f"confusion_matrix_{set_name}.png"


REPORT_FILES: tuple[str, ...] = (REPORT_JSON, REPORT_MD, DISTRIBUTIONS_PNG, *map(confusion_png, SETS))
"""Every file `write_report` may write; an existing one is only replaced with ``overwrite``."""

PUBLISHED_METRICS: dict[str, dict[str, float]] = {
    "Generality-to-Mastery": {"H": 3.17, "GS": 0.96, "SI_short": 0.31, "SI_mid": 0.23, "SI_long": 0.20},
    "NotaGen": {"H": 2.92, "GS": 0.97, "SI_short": 0.35, "SI_mid": 0.31, "SI_long": 0.29},
    "without pretraining": {"H": 3.01, "GS": 0.96, "SI_short": 0.41, "SI_mid": 0.35, "SI_long": 0.33},
}
"""The paper's objective metrics (SPEC §7), printed beside ours in the report."""

PUBLISHED_RECOGNITION: dict[str, float] = {"Bach": 0.90, "Chopin": 0.62, "Mozart": 0.36, "Beethoven": 0.40}
"""The paper's classifier recognition of the prompted composer (SPEC §7)."""

_METRIC_MEANINGS = {
    "H": "pitch-class entropy in bits over 4-bar windows (0 = one pitch class, 3.58 = all twelve equally)",
    "H1": "the same over single bars",
    "GS": "grooving similarity: how alike the bars' onset patterns are (1 = identical rhythm in every bar)",
    "SI_short": "structureness: strongest repetition of a 3-8 s segment (0 = none, higher = more repeated)",
    "SI_mid": "the same for 8-15 s segments",
    "SI_long": "the same for segments of 15 s or more",
}


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


# --- the composer classifier ----------------------------------------------------------------


def classifier_input_events(events: Sequence[str], max_events: int = CLASSIFIER_MAX_EVENTS) -> list[str]:
    """What the composer classifier reads of a piece (SPEC §6): its events without the
    ``Composer_*`` token, at most ``max_events`` of them (the first ones)."""
    return [token for token in events if split_event(token)[0] != "Composer"][:max_events]


class ComposerClassifier:
    """A composer classifier (SPEC §6) used through transformers' Auto classes.

    Any folder that ``AutoModelForSequenceClassification`` and ``AutoTokenizer`` load works
    (a `G2MForSequenceClassification` with its tokenizer, from training/train_classifier.py);
    class names come from ``config.id2label``.

    Args:
        model: the sequence-classification model (put in eval mode here).
        tokenizer: its tokenizer; its vocabulary maps events to ids and gives the padding.
        max_events: events of a piece the model reads.
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Any, max_events: int = CLASSIFIER_MAX_EVENTS):
        if tokenizer.pad_token_id is None:
            raise EvaluationError("the classifier's tokenizer has no padding token")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_events = max_events
        self._vocab: dict[str, int] = tokenizer.get_vocab()
        config = model.config
        self.labels: list[str] = [str(config.id2label[index]) for index in range(config.num_labels)]

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **kwargs: Any) -> ComposerClassifier:
        """Load a classifier folder (or Hub id); raises `EvaluationError` naming it and the reason."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForSequenceClassification.from_pretrained(path)
        except (OSError, ValueError, KeyError) as error:
            reason = " ".join(str(error).split())[:300] or type(error).__name__
            raise EvaluationError(f"{path}: cannot load a sequence classifier ({reason})") from None
        return cls(model, tokenizer, **kwargs)

    def encode(self, events: Sequence[str]) -> list[int]:
        """Token ids of the classifier's view of a piece; `VocabularyError` for unknown events."""
        tokens = classifier_input_events(events, self.max_events)
        unknown = sorted({token for token in tokens if token not in self._vocab})
        if unknown:
            raise VocabularyError(f"events not in the classifier's vocabulary: {unknown[:10]}")
        return [self._vocab[token] for token in tokens]

    @torch.inference_mode()
    def predict(self, encoded: Sequence[Sequence[int]], batch_size: int = 8) -> list[str]:
        """The predicted label of each encoded piece (see `encode`), in input order."""
        predicted: list[str] = [""] * len(encoded)
        order = sorted(range(len(encoded)), key=lambda index: len(encoded[index]))  # less padding per batch
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            input_ids, attention_mask = self._pad([encoded[index] for index in chunk])
            logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits  # [B, num_labels]
            for index, label in zip(chunk, logits.argmax(dim=-1).tolist(), strict=True):
                predicted[index] = self.labels[label]
        return predicted

    def _pad(self, rows: list[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """``input_ids`` and ``attention_mask`` [B, T], padded on the tokenizer's padding side."""
        width = max(len(row) for row in rows)
        input_ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        left = self.tokenizer.padding_side == "left"
        for row, ids in enumerate(rows):
            columns = slice(width - len(ids), width) if left else slice(0, len(ids))
            input_ids[row, columns] = torch.tensor(list(ids), dtype=torch.long)
            attention_mask[row, columns] = 1
        return input_ids, attention_mask


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
        ``{"pieces": [...], "skipped": [...], "summary": {...}}`` (see README / `write_report`).
        Metric values that are undefined for a piece (H of a piece without notes, GS of a
        one-bar piece) are None.

    Raises:
        EvaluationError: a folder is missing or holds no MIDI file, or the classifier cannot be loaded.
    """
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
            summary[set_name]["classifier"] = _recognition(pieces, labels)
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


def _recognition(pieces: list[_Evaluated], labels: list[str]) -> dict[str, Any]:
    """How the classifier labels a set: a confusion matrix over the pieces whose composer is one
    of its labels (rows: the prompted composer, columns: the prediction, both in ``labels``
    order), the accuracy and per-composer recognition (the diagonal as row fractions), and
    the predicted labels of every classified piece."""
    index = {label.casefold(): position for position, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    predicted_counts = Counter()
    for piece in pieces:
        predicted = piece.entry.get("predicted")
        if predicted is None:
            continue
        predicted_counts[predicted] += 1
        row = index.get((piece.entry["composer"] or "").casefold())
        if row is not None:
            matrix[row, index[predicted.casefold()]] += 1
    totals = matrix.sum(axis=1)
    return {
        "labels": labels,
        "confusion_matrix": matrix.tolist(),
        "evaluated": int(totals.sum()),
        "accuracy": float(np.trace(matrix) / totals.sum()) if totals.sum() else None,
        "recognition": {
            label: float(matrix[row, row] / totals[row]) if totals[row] else None for row, label in enumerate(labels)
        },
        "predicted_counts": {label: predicted_counts[label] for label in labels},
        "unclassified": [
            {"file": piece.entry["file"], "reason": piece.classifier_error}
            for piece in pieces
            if piece.classifier_error is not None
        ],
    }


def _classifier_name(classifier: ComposerClassifier | None) -> str | None:
    if classifier is None:
        return None
    return getattr(classifier.model.config, "_name_or_path", None) or type(classifier.model).__name__


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


# --- writing the report ---------------------------------------------------------------------


def check_output_dir(output_dir: str | os.PathLike, overwrite: bool = False) -> None:
    """Raise `OutputExistsError` if ``output_dir`` already holds a report file and not ``overwrite``.

    Called before the (long) evaluation so that a run never ends in a refusal; other files in
    the folder are never touched.
    """
    existing = [name for name in REPORT_FILES if (Path(output_dir) / name).exists()]
    if existing and not overwrite:
        raise OutputExistsError(
            f"{output_dir}: already holds {', '.join(existing)}; choose another folder or pass --overwrite"
        )


def write_report(report: dict[str, Any], output_dir: str | os.PathLike, overwrite: bool = False) -> list[Path]:
    """Write ``report.json``, the PNG plots and ``report.md`` into ``output_dir``; return the paths.

    Raises `OutputExistsError` if a report file exists there already and not ``overwrite``.
    """
    check_output_dir(output_dir, overwrite)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if overwrite:  # a stale confusion matrix of an earlier run must not sit beside the new report
        for name in REPORT_FILES:
            (output_dir / name).unlink(missing_ok=True)

    written = [output_dir / REPORT_JSON]
    written[0].write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    values: dict[str, dict[str, list[float]]] = {}
    for entry in report["pieces"]:
        per_metric = values.setdefault(entry["set"], {name: [] for name in METRIC_NAMES})
        for name in METRIC_NAMES:
            per_metric[name].append(math.nan if entry[name] is None else entry[name])
    written.append(plot_metric_distributions(values, output_dir / DISTRIBUTIONS_PNG))
    for set_name in SETS:
        result = report["summary"].get(set_name, {}).get("classifier")
        if result is not None:
            path = output_dir / confusion_png(set_name)
            title = f"Composer recognition ({set_name} pieces)"
            written.append(plot_confusion_matrix(result["confusion_matrix"], result["labels"], path, title=title))
    markdown = output_dir / REPORT_MD
    markdown.write_text(render_markdown(report, {path.name for path in written}), encoding="utf-8")
    written.append(markdown)
    return written


def render_markdown(report: dict[str, Any], images: set[str] = frozenset()) -> str:
    """The human-readable report: metric tables beside the paper's, recognition, skipped files."""
    summary, settings = report["summary"], report["summary"]["settings"]
    sets = [set_name for set_name in SETS if set_name in summary]
    lines = ["# g2m-evaluate report", ""]
    for set_name in SETS:
        if settings.get(set_name):
            count = summary.get(set_name, {}).get("count", 0)
            lines.append(f"- {set_name}: `{settings[set_name]}` ({count} pieces evaluated)")
    lines.append(f"- classifier: `{settings['classifier']}`" if settings["classifier"] else "- classifier: none")
    lines.append(f"- skipped files: {len(report['skipped'])}")
    if settings["si_max_seconds"]:
        lines.append(f"- SI computed on at most the first {settings['si_max_seconds']:g} s of each piece")

    lines += ["", "## Objective metrics", ""]
    lines.append("Mean ± standard deviation over pieces ([n] when only n of them have a value).")
    lines.append("")
    rows = [[name, summary[name]["count"], *_cells(summary[name])] for name in sets]
    lines += _table(["set", "pieces", *METRIC_NAMES], rows)
    lines += ["", "Published in the paper (Generality-to-Mastery, AIMC 2025; H1 not published):", ""]
    rows = [[system, *map(_number, map(values.get, METRIC_NAMES))] for system, values in PUBLISHED_METRICS.items()]
    lines += _table(["system", *METRIC_NAMES], rows)
    if DISTRIBUTIONS_PNG in images:
        lines += ["", f"![metric distributions]({DISTRIBUTIONS_PNG})"]
    lines += ["", "### Per composer", ""]
    rows = [
        [set_name, composer, group["count"], *_cells(group)]
        for set_name in sets
        for composer, group in summary[set_name]["composers"].items()
    ]
    lines += _table(["set", "composer", "pieces", *METRIC_NAMES], rows)

    for set_name in sets:
        result = summary[set_name].get("classifier")
        if result is None:
            continue
        lines += ["", f"## Composer recognition ({set_name} pieces)", ""]
        if result["accuracy"] is None:
            lines.append("No piece has a composer among the classifier's labels; predicted labels are counted below.")
        else:
            lines.append(f"Recognised as their composer: {result['accuracy']:.3f} of {result['evaluated']} pieces.")
        lines.append("")
        paper = set_name == "generated"  # the published figures are about generated pieces
        rows = [
            [
                label,
                sum(result["confusion_matrix"][row]),
                _number(result["recognition"][label]),
                *([_number(PUBLISHED_RECOGNITION.get(label))] if paper else []),
                result["predicted_counts"][label],
            ]
            for row, label in enumerate(result["labels"])
        ]
        header = ["composer", "pieces", "recognised", *(["paper"] if paper else []), "predicted as this"]
        lines += _table(header, rows)
        lines += ["", "Confusion matrix (rows: prompted composer, columns: prediction):", ""]
        rows = [[label, *counts] for label, counts in zip(result["labels"], result["confusion_matrix"], strict=True)]
        lines += _table(["", *result["labels"]], rows)
        if confusion_png(set_name) in images:
            lines += ["", f"![confusion matrix]({confusion_png(set_name)})"]
        if result["unclassified"]:
            lines += ["", "Not classified:", ""]
            lines += [f"- `{item['file']}`: {item['reason']}" for item in result["unclassified"]]

    if report["skipped"]:
        lines += ["", "## Skipped files", ""]
        lines += [f"- `{item['file']}` ({item['set']}): {item['reason']}" for item in report["skipped"]]
    lines += ["", "## What the measures mean", ""]
    lines += [f"- **{name}**: {meaning}" for name, meaning in _METRIC_MEANINGS.items()]
    return "\n".join(lines) + "\n"


def _cells(group: dict[str, Any]) -> list[str]:
    """``mean ± std`` of each metric of a summary group, ``[n]`` added when pieces lack the value."""
    cells = []
    for name in METRIC_NAMES:
        stats = group["metrics"][name]
        if stats["mean"] is None:
            cells.append("–")
            continue
        partial = f" [{stats['count']}]" if stats["count"] < group["count"] else ""
        cells.append(f"{stats['mean']:.3f} ± {stats['std']:.3f}{partial}")
    return cells


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


__all__ = [
    "CLASSIFIER_MAX_EVENTS",
    "DEFAULT_SI_MAX_SECONDS",
    "REPORT_FILES",
    "ComposerClassifier",
    "check_output_dir",
    "classifier_input_events",
    "evaluate_folders",
    "find_midi_files",
    "prompted_composer",
    "render_markdown",
    "write_report",
]
