"""The model card (README.md) of a g2m model, classifier or PEFT adapter folder.

`build_model_card(model_dir, repo_id)` reads everything from the folder:

- ``config.json`` (architecture, ``event_vocabulary``) or ``tokenizer.json``: the composers the
  model knows; the ``*.safetensors`` headers: the parameter count;
- ``adapter_config.json`` (a PEFT adapter folder): the base model and the adapter method;
- ``training_record.json``: training data, recipe and final figures;
- ``evaluation/report.json``: the ``"summary"`` written by ``g2m-evaluate``, as a table.

Training record
---------------
``training_record.json`` is written by the training scripts into their output folder; its schema
(``"schema": "g2m_hf/training_record/1"``) is documented in ``training/record.py``. The card
reads these keys and shows only what is present and not null:

- ``task`` ("pretrain" | "finetune" | "classifier"), ``mode`` ("full" | "peft"), ``base_model``;
- ``data``: ``source`` (a Hub dataset id there becomes card metadata), ``train_examples``,
  ``validation_examples``, ``train_events``, ``composers`` ({name: pieces}), ``new_composers``;
- ``recipe``: the resolved recipe; its scalar settings are listed (nested ones as ``a.b``),
  except local paths (keys naming a ``dir`` or ``path``), which mean nothing to a reader;
- ``run``: ``global_step``, ``epochs``, ``train_loss``, ``train_runtime_s``, ``tokens_seen``,
  ``effective_batch_size``, ``device``, ``bf16``;
- ``eval``: every scalar metric (``eval_loss``, ``eval_perplexity``, ``eval_accuracy``, ...);
- ``versions``: package versions.

The card is put together from sections by the library's one card builder
(`g2m_hf.model_card.build_card`); its metadata is a ``ModelCardData`` and it holds nothing that
changes between runs on the same folder, so a re-push of an unchanged folder uploads an identical
README.md.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData, parse_local_safetensors_file_metadata
from huggingface_hub.errors import SafetensorsParsingError

from g2m_hf.model_card import (
    CITATION,
    DEFAULT_LICENSE,
    LIMITATIONS,
    TAGS,
    CardSection,
    adapter_usage,
    build_card,
    classifier_usage,
    decoder_usage,
    markdown_table,
    paper_comparison,
)
from g2m_hf.vocab import NO_COMPOSER, event

from .errors import HubPushError

TRAINING_RECORD = "training_record.json"
EVALUATION_REPORT = "evaluation/report.json"
ADAPTER_CONFIG = "adapter_config.json"

PEFT_NAMES = {"LORA": "LoRA", "IA3": "IA³", "LOHA": "LoHa", "LOKR": "LoKr"}

RUN_FIGURES = ("global_step", "epochs", "train_loss", "train_runtime_s", "tokens_seen",
               "effective_batch_size", "device", "bf16")
"""The ``run`` entries of a training record that the card shows."""

_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
"""A ``namespace/name`` id (a local path of that shape is excluded by checking the disk)."""

def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``, ``{}`` when the file is absent; HubPushError when it is malformed."""
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HubPushError(f"{path}: not a readable JSON file ({error})") from None
    if not isinstance(value, dict):
        raise HubPushError(f"{path}: expected a JSON object, found {type(value).__name__}")
    return value


def _event_vocabulary(model_dir: Path) -> list[str]:
    """The events in id order: from config.json's ``event_vocabulary``, else tokenizer.json."""
    vocabulary = read_json_object(model_dir / "config.json").get("event_vocabulary")
    if vocabulary:
        return list(vocabulary)
    word_level = read_json_object(model_dir / "tokenizer.json").get("model", {}).get("vocab", {})
    return sorted(word_level, key=word_level.get)


def known_composers(vocabulary: list[str]) -> list[str]:
    """Composer names of a vocabulary, in id order (without ``None``, the unconditioned prompt)."""
    prefix, general = event("Composer", ""), event("Composer", NO_COMPOSER)
    return [e[len(prefix):] for e in vocabulary if e.startswith(prefix) and e != general]


def _parameter_count(weight_files: list[Path]) -> int:
    """Parameters stored in the safetensors files (read from their headers only)."""
    try:
        return sum(sum(parse_local_safetensors_file_metadata(p).parameter_count.values()) for p in weight_files)
    except SafetensorsParsingError as error:
        raise HubPushError(f"not a valid safetensors file: {error}") from None


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_format(v) for v in value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def _hub_id(value: Any) -> str | None:
    """``value`` if it names a Hub repository rather than a local folder."""
    if isinstance(value, str) and _HUB_ID.match(value) and not Path(value).exists():
        return value
    return None


def _scalars(mapping: Any, prefix: str = "") -> list[tuple[str, str]]:
    """``(key, text)`` for the scalar values of a (nested) dict; nested keys as ``a.b``, no local paths."""
    rows: list[tuple[str, str]] = []
    for key, value in (mapping or {}).items() if isinstance(mapping, dict) else ():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += _scalars(value, f"{name}.")
        elif value is not None and not isinstance(value, list) and not re.search(r"dir|path", str(key)):
            rows.append((name, _format(value)))
    return rows


def _data_lines(record: dict[str, Any]) -> list[str]:
    """The training-data bullet points of a record's ``data`` block."""
    data = record.get("data") or {}
    lines = [f"Source: `{data['source']}`"] if data.get("source") else []
    counts = [f"{_format(data[key])} {label}" for key, label in (
        ("train_examples", "training pieces"), ("validation_examples", "validation pieces"),
        ("train_events", "events in the training pieces")) if data.get(key) is not None]
    if counts:
        lines.append(", ".join(counts))
    if isinstance(data.get("composers"), dict) and data["composers"]:
        per_composer = ", ".join(
            f"{'unlabelled (general corpus)' if name == NO_COMPOSER else name} {count}"
            for name, count in sorted(data["composers"].items())
        )
        lines.append(f"Pieces per composer: {per_composer}")
    if data.get("new_composers"):
        lines.append(f"Composer tokens added by this training: {_format(data['new_composers'])}")
    return lines


def _recipe_rows(record: dict[str, Any]) -> list[tuple[str, str]]:
    """Task, starting point, recipe settings and run figures of a record, as table rows."""
    rows = [(key, _format(record[key])) for key in ("task", "mode", "base_model") if record.get(key)]
    rows += _scalars(record.get("recipe"))
    run = record.get("run") or {}
    rows += [(f"run.{key}", _format(run[key])) for key in RUN_FIGURES if run.get(key) is not None]
    versions = record.get("versions") or {}
    if versions:
        rows.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items() if v)))
    return rows


def evaluation_table(summary: Any) -> dict[str, list] | None:
    """Columns and rows of a report ``summary``: ``{system: {metric: value}}``, ``{metric: value}``
    or ``[{column: value}]``; None for anything else."""
    if isinstance(summary, dict) and summary and all(isinstance(v, dict) for v in summary.values()):
        columns = list(dict.fromkeys(k for metrics in summary.values() for k in metrics))
        rows = [[name, *(_format(metrics.get(c, "")) for c in columns)] for name, metrics in summary.items()]
        return {"columns": ["", *columns], "rows": rows}
    if isinstance(summary, dict) and summary:
        return {"columns": ["metric", "value"], "rows": [[k, _format(v)] for k, v in summary.items()]}
    if isinstance(summary, list) and summary and all(isinstance(r, dict) for r in summary):
        columns = list(dict.fromkeys(k for row in summary for k in row))
        return {"columns": columns, "rows": [[_format(row.get(c, "")) for c in columns] for row in summary]}
    return None


def build_model_card(model_dir: str | os.PathLike, repo_id: str | None = None) -> ModelCard:
    """The model card of a model / classifier / PEFT adapter folder, ready for ``card.save()`` or a push.

    Args:
        model_dir: the folder (``save_pretrained`` output, or a PEFT adapter folder).
        repo_id: the repository the card will live in (used in the snippets); default
            ``USER/<folder name>``.
    """
    model_dir = Path(model_dir)
    repo_id = repo_id or f"USER/{model_dir.resolve().name}"
    record = read_json_object(model_dir / TRAINING_RECORD)
    config = read_json_object(model_dir / "config.json")
    adapter = read_json_object(model_dir / ADAPTER_CONFIG)
    report = read_json_object(model_dir / EVALUATION_REPORT)

    architectures = config.get("architectures") or []
    if adapter:
        kind = "adapter"
    elif any(a.endswith("ForSequenceClassification") for a in architectures):
        kind = "classifier"
    else:
        kind = "generator"
    base_model = adapter.get("base_model_name_or_path") or record.get("base_model")
    vocabulary = _event_vocabulary(model_dir)
    composers = known_composers(vocabulary)
    summary = {
        "generator": "A composer-conditioned Transformer decoder that writes solo piano music as REMI "
                     "events (bars, beats, pitches, durations), after the Generality-to-Mastery recipe: "
                     "pretraining on a general corpus, then fine-tuning with gated style adapters.",
        "classifier": "A Transformer encoder that recognises the composer of a piano piece written as "
                      "REMI events; used to measure how well generated pieces match the prompted style.",
        "adapter": f"A {PEFT_NAMES.get(adapter.get('peft_type'), 'PEFT')} adapter for the g2m piano-music decoder "
                   f"`{base_model}`: composer-style fine-tuning of a pretrained model.",
    }[kind]
    weights = sorted(model_dir.glob("*.safetensors"))
    facts = [("Model type", "PEFT adapter" if kind == "adapter" else " / ".join(architectures) or "g2m")]
    if weights:
        count = _parameter_count(weights)
        facts.append(("Adapter parameters" if kind == "adapter" else "Parameters",
                      f"{count / 1e6:.1f}M" if count >= 1e6 else f"{count:,}"))
    if kind == "adapter":
        facts.append(("Base model", f"`{base_model}`"))
        targets = adapter.get("target_modules")  # a list of names, or one regular expression
        if targets:
            facts.append(("Adapted modules", _format(sorted(targets) if isinstance(targets, list) else targets)))
        if adapter.get("modules_to_save"):
            facts.append(("Trained in full", _format(adapter["modules_to_save"])))
    if vocabulary:
        facts.append(("Vocabulary", f"{len(vocabulary)} REMI events"))
    facts.append(("Composers it knows", ", ".join(composers) if composers else "see the base model"))

    base_id = _hub_id(base_model)
    dataset_id = _hub_id((record.get("data") or {}).get("source"))
    has_tokenizer = (model_dir / "tokenizer_config.json").is_file()
    has_code = bool(config) or has_tokenizer
    card_data = ModelCardData(
        library_name="peft" if kind == "adapter" else "transformers",
        pipeline_tag="text-classification" if kind == "classifier" else "text-generation",
        license=DEFAULT_LICENSE,
        # "custom_code": the push adds the model/tokenizer code when the folder has their configs
        tags=TAGS + (["custom_code"] if has_code else []) + (["lora"] if adapter.get("peft_type") == "LORA" else []),
        base_model=base_id,
        datasets=[dataset_id] if dataset_id else None,
    )
    if kind == "adapter":
        base = base_id or base_model or "BASE_MODEL"
        usage = adapter_usage(repo_id, base, repo_id if has_tokenizer else base)
    elif kind == "classifier":
        usage = classifier_usage(repo_id)
    else:
        usage = decoder_usage(repo_id, composers[0] if composers else "Bach")
    recipe = _recipe_rows(record)
    sections = [
        CardSection("How to use", usage),
        CardSection("Training data", _bullets(_data_lines(record)) or NO_RECORD),
        CardSection("Training recipe", markdown_table(["setting", "value"], recipe) if recipe else "Not recorded."),
        CardSection("Evaluation", _evaluation_text(_scalars(record.get("eval")), evaluation_table(report.get("summary")))),
        LIMITATIONS,
        CITATION,
    ]
    facts_table = "| | |\n|---|---|\n" + "\n".join(f"| {key} | {value} |" for key, value in facts)
    return build_card(card_data, repo_id.split("/")[-1], f"{summary}\n\n{facts_table}", sections)


NO_RECORD = "Not recorded (the folder has no `training_record.json`)."


def _bullets(lines: list[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)


def _evaluation_text(final_metrics: list[tuple[str, str]], evaluation: dict[str, list] | None) -> str:
    """The final validation figures, the ``g2m-evaluate`` table and the paper's figures."""
    parts = []
    if final_metrics:
        table = markdown_table(["metric", "value"], final_metrics)
        parts.append(f"At the end of training (validation split):\n\n{table}")
    if evaluation:
        table = markdown_table(evaluation["columns"], evaluation["rows"])
        parts.append(f"From `g2m-evaluate` (`evaluation/report.json`):\n\n{table}")
    else:
        parts.append("No `g2m-evaluate` report in the folder (keep its `evaluation/report.json` there to show it).")
    return "\n\n".join([*parts, paper_comparison()])


__all__ = [
    "EVALUATION_REPORT",
    "TRAINING_RECORD",
    "build_model_card",
    "evaluation_table",
    "known_composers",
    "read_json_object",
]
