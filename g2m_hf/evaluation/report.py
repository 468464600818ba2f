"""Writing an evaluation report: ``report.json``, ``report.md`` and PNG plots.

The report itself (``{"pieces", "skipped", "summary"}``) comes from `folders.evaluate_folders`;
the paper's figures printed beside ours come from `g2m_hf.paper`.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from .. import fileio, validation
from ..errors import OutputExistsError
from ..metrics import METRIC_NAMES
from ..paper import PUBLISHED_METRICS, PUBLISHED_RECOGNITION
from ..plotting import plot_confusion_matrix, plot_metric_distributions
from .folders import SETS

REPORT_JSON, REPORT_MD, DISTRIBUTIONS_PNG = "report.json", "report.md", "metric_distributions.png"


def confusion_png(set_name: str) -> str:
    """File name of a set's confusion-matrix plot."""
    return f"confusion_matrix_{set_name}.png"


REPORT_FILES: tuple[str, ...] = (REPORT_JSON, REPORT_MD, DISTRIBUTIONS_PNG, *map(confusion_png, SETS))
"""Every file `write_report` may write; an existing one is only replaced with ``overwrite``."""

_METRIC_MEANINGS = {
    "H": "pitch-class entropy in bits over 4-bar windows (0 = one pitch class, 3.58 = all twelve equally)",
    "H1": "the same over single bars",
    "GS": "grooving similarity: how alike the bars' onset patterns are (1 = identical rhythm in every bar)",
    "SI_short": "structureness: strongest repetition of a 3-8 s segment (0 = none, higher = more repeated)",
    "SI_mid": "the same for 8-15 s segments",
    "SI_long": "the same for segments of 15 s or more",
}


def check_output_dir(output_dir: str | os.PathLike, overwrite: bool = False) -> None:
    """Raise `OutputExistsError` if ``output_dir`` already holds a report file and not ``overwrite``.

    Called before the (long) evaluation so that a run never ends in a refusal; other files in
    the folder are never touched. Raises `InvalidArgumentError` if ``output_dir`` is a file or cannot be written.
    """
    validation.output_dir("output_dir", output_dir)
    existing = [name for name in REPORT_FILES if (Path(output_dir) / name).exists()]
    if existing and not overwrite:
        raise OutputExistsError(
            f"{output_dir}: already holds {', '.join(existing)}; choose another folder or pass --overwrite"
        )


def write_report(report: dict[str, Any], output_dir: str | os.PathLike, overwrite: bool = False) -> list[Path]:
    """Write ``report.json``, the PNG plots and ``report.md`` into ``output_dir``, each atomically; return the paths.

    Raises `OutputExistsError` if a report file exists there already and not ``overwrite``.
    """
    check_output_dir(output_dir, overwrite)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if overwrite:  # a stale confusion matrix of an earlier run must not sit beside the new report
        for name in REPORT_FILES:
            (output_dir / name).unlink(missing_ok=True)

    written = [output_dir / REPORT_JSON]
    fileio.write_text(written[0], json.dumps(report, indent=2, allow_nan=False) + "\n")
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
    fileio.write_text(markdown, render_markdown(report, {path.name for path in written}))
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


__all__ = ["REPORT_FILES", "check_output_dir", "confusion_png", "render_markdown", "write_report"]
