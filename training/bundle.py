"""What the packaging scripts share: which files of a training output ship, and how a run is described.

``training/package_base_model.py`` packages the pretraining run (``g2m_hf/default_base_model``),
``training/package_default_model.py`` the fine-tuning run (``g2m_hf/default_model``); both ship the
same files of an output folder and describe their stages with the same table and convergence figures.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCardData

from g2m_hf.model_card import TAGS, markdown_table
from g2m_hf.remote_code import declare_code
from training.common import RECIPE_COPY_NAME
from training.errors import ConfigError
from training.record import RECORD_NAME

SHIPPED_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    RECORD_NAME,
    RECIPE_COPY_NAME,
)
"""What the package ships of a training output folder (safetensors and JSON/YAML only): never
``checkpoint-*/``, ``runs/``, pickles or code copies."""

GENERAL_MATERIAL = """the music21 corpus's general material, read as `Composer_None`: every music21
collection except Bach, Beethoven and Mozart (Palestrina, Monteverdi, Trecento, Josquin, Ryan's Mammoth,
Essen, O'Neill and other folk collections, Haydn, Handel, Corelli, Chopin, Schumann, Schubert, ...)"""
"""What the bundled models' first stage learned from (``GENERAL`` in training/build_default_model.sh)."""

REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer_config.json", RECORD_NAME)
LOSS_CURVES = "loss_curves.png"
EVALUATION_JSON = "evaluation.json"


def refuse_to_replace(folder: Path, what: str, overwrite: bool) -> None:
    """Before any work: a folder that holds files is replaced only with ``--overwrite``."""
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise ConfigError(f"{folder} already holds files; pass --overwrite to replace {what}")


def check_training_output(folder: Path, script: str) -> None:
    """Before any work: ``folder`` is a finished output folder of ``script``."""
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise ConfigError(f"{folder}: not a finished output folder of {script} (missing {', '.join(missing)})")


def copy_model_files(source: Path, output: Path) -> None:
    """Copy the shipped files of the training output ``source`` into the empty folder ``output``."""
    for name in SHIPPED_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, output / name)
    # shipped inside g2m_hf without the remote-code files: the Auto classes must use the package's classes
    declare_code(output, remote_code=False)


def card_metadata(pipeline_tag: str = "text-generation") -> ModelCardData:
    """The YAML front matter of the bundled models' cards."""
    return ModelCardData(library_name="transformers", pipeline_tag=pipeline_tag, license="mit", tags=TAGS)


def read_record(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def format_number(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def number_table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table with floats to three decimals and ``-`` for a missing value."""
    return markdown_table(header, [[format_number(cell) for cell in row] for row in rows])


def recognition_row(label: str, summary: dict[str, Any]) -> list[str]:
    """A card table row of a `Recognition` summary: ``label``, each composer's rate with its count, and the mean
    of the composers' rates with its 95 % interval (``-`` where nothing was judged)."""
    low, high = summary["mean_ci95"]
    cells = [("-" if e["rate"] is None else f"{e['rate']:.2f}") + f" ({e['recognised']}/{e['pieces']})"
             for e in summary["per_composer"].values()]
    return [label, *cells, "-" if summary["mean"] is None else f"{summary['mean']:.2f} [{low:.2f}, {high:.2f}]"]


def dataset_names(source: str) -> str:
    """The dataset folders a record's data source names, by their last part ("data/mastery + general pieces of
    data/general" -> "mastery + general"); a source that names no folder (a build spec) as it is."""
    folders = re.findall(r"\S+/\S+", source)
    return " + ".join(Path(folder).name for folder in folders) if folders else source


def stages_table(records: dict[str, dict[str, Any]]) -> str:
    """One row per training stage (name -> its training record): data, steps, time, losses."""

    def row(record: dict[str, Any]) -> list[Any]:
        run, data, ev = record["run"], record["data"], record.get("eval") or {}
        last_train = [e["loss"] for e in record["log_history"] if "loss" in e]
        return [
            dataset_names(data["source"]), data["train_examples"], data["validation_examples"], data["train_events"],
            run["global_step"], run["effective_batch_size"], round(run["epochs"], 2), run["tokens_seen"],
            f"{run['train_runtime_s'] / 60:.0f} min" + (f" ({run['legs']} legs, resumed)" if run.get("legs", 1) > 1 else ""),
            last_train[-1] if last_train else None, ev.get("eval_loss"),
        ]

    header = ["stage", "data", "train pieces", "validation pieces", "train events", "steps", "batch", "epochs",
              "tokens seen", "time", "last train loss", "validation loss"]
    return number_table(header, [[name, *row(record)] for name, record in records.items()])


def flatness(convergences: dict[str, dict[str, Any]]) -> str:
    """How far each stage's validation loss still fell over its last quarter (`g2m_hf.evaluation.convergence`)."""
    return "; ".join(
        f"{name}: {c['loss_from']:.3f} -> {c['best_loss_after']:.3f} ({100 * c['relative_change']:.1f} %, "
        f"{100 * c['share_of_improvement']:.0f} % of the run's whole improvement; "
        f"{100 * c['last_interval_change']:.2f} % between its last two evaluations)"
        for name, c in convergences.items()
        if c["relative_change"] is not None
    )
