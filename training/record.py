"""``training_record.json``: what a training run did, written into its output folder; and the model card.

The model card (``hub_upload.model_card``) and the figures in docs/ read the record. Schema (version 1);
every key is always present, values may be ``null`` where they do not apply::

    {
      "schema": "g2m_hf/training_record/1",
      "task": "pretrain" | "finetune" | "classifier",
      "mode": "full" | "peft" | null,          # fine-tuning mode
      "created": "2025-01-31T12:00:00+00:00",  # UTC, end of the run
      "versions": {"g2m_hf": str, "transformers": str, "torch": str, "peft": str | null},
      "recipe_file": str | null,               # the YAML given with --config
      "recipe": {...},                         # the resolved recipe (after --set and flag overrides)
      "base_model": str | null,                # folder / Hub id fine-tuning started from
      "data": {
        "source": str,                         # dataset folder, or a description of the build spec
        "train_examples": int, "validation_examples": int,
        "train_events": int,                   # events (tokens) in the training pieces
        "composers": {name: int},              # training pieces per composer ("None" = unlabelled)
        "new_composers": [str]                 # composer tokens added to the vocabulary by this run
      },
      "model": {
        "class": str,                          # e.g. "G2MForCausalLM" (the base class under PEFT)
        "parameters": int, "trainable_parameters": int,
        "vocab_size": int, "hidden_size": int, "num_hidden_layers": int,
        "style_adapter_layers": [int]
      },
      "run": {
        "global_step": int, "epochs": float,
        "train_loss": float | null,            # mean training loss of this (possibly resumed) call
        "train_runtime_s": float,              # wall time of the whole run, every leg of it
        "legs": int,                           # calls that trained it: 1, or more when resumed
        "tokens_seen": int,                    # non-padding input tokens, all processes, whole run
        "tokens_per_second": float | null,     # tokens seen in this call / its runtime
        "world_size": int, "device": str, "bf16": bool,
        "per_device_train_batch_size": int, "gradient_accumulation_steps": int,
        "effective_batch_size": int,           # per device x accumulation x world size
        "resumed_from": str | null             # checkpoint folder the run continued from
      },
      "eval": {"eval_loss": float, "eval_perplexity": float, ...},   # final evaluation metrics
                                               # (classifier: eval_accuracy, confusion_matrix, labels)
      "log_history": [{"step": int, "loss": float, ...}, ...]       # Trainer's log entries
    }
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import logging
from pathlib import Path
from typing import Any

from g2m_hf import fileio

logger = logging.getLogger(__name__)

RECORD_NAME = "training_record.json"
SCHEMA = "g2m_hf/training_record/1"


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def software_versions() -> dict[str, str | None]:
    """Versions of the packages a run depends on."""
    return {name: _version(name) for name in ("g2m_hf", "transformers", "torch", "peft")}


def model_summary(model: Any) -> dict[str, Any]:
    """The ``model`` block of the record, for a plain or a PEFT-wrapped G2M model."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = base.config
    return {
        "class": type(base).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "vocab_size": config.vocab_size,
        "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_hidden_layers,
        "style_adapter_layers": list(getattr(config, "style_adapter_layers", []) or []),
    }


def earlier_legs(log_history: list[dict[str, Any]]) -> tuple[float, int]:
    """Wall time and number of the legs before the last one, read from the step logs.

    Each step log carries the running ``train_runtime`` of its call, which starts again from 0 when a run
    is resumed; a checkpoint keeps the logs up to its step, so each earlier leg counts until its last
    log before the checkpoint it was resumed from (work after that checkpoint was lost and is not counted).
    """
    times = [entry["train_runtime"] for entry in log_history if "loss" in entry and "train_runtime" in entry]
    restarts = [previous for previous, current in zip(times, times[1:]) if current < previous]
    return float(sum(restarts)), len(restarts)


def run_summary(trainer: Any, train_metrics: dict[str, float], resumed_from: str | None) -> dict[str, Any]:
    """The ``run`` block: steps, loss, throughput and the parallel layout of a finished `Trainer.train()`."""
    args, state = trainer.args, trainer.state
    runtime = float(train_metrics.get("train_runtime", 0.0))
    before, legs = earlier_legs(state.log_history) if resumed_from else (0.0, 0)
    tokens_this_call = state.num_input_tokens_seen - getattr(trainer, "_initial_num_input_tokens_seen", 0)
    return {
        "global_step": state.global_step,
        "epochs": state.epoch,
        "train_loss": train_metrics.get("train_loss"),
        "train_runtime_s": before + runtime,
        "legs": legs + 1,
        "tokens_seen": state.num_input_tokens_seen,
        "tokens_per_second": round(tokens_this_call / runtime, 1) if runtime > 0 and tokens_this_call else None,
        "world_size": args.world_size,
        "device": str(args.device),
        "bf16": bool(args.bf16),
        "per_device_train_batch_size": args.per_device_train_batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "effective_batch_size": args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size,
        "resumed_from": resumed_from,
    }


def write_training_record(
    output_dir: str | Path,
    *,
    task: str,
    recipe: dict[str, Any],
    recipe_file: str | None,
    data: dict[str, Any],
    model: dict[str, Any],
    run: dict[str, Any],
    eval_metrics: dict[str, Any],
    log_history: list[dict[str, Any]],
    mode: str | None = None,
    base_model: str | None = None,
) -> Path:
    """Write ``training_record.json`` (schema in the module docstring) and return its path."""
    record = {
        "schema": SCHEMA,
        "task": task,
        "mode": mode,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": software_versions(),
        "recipe_file": recipe_file,
        "recipe": recipe,
        "base_model": base_model,
        "data": data,
        "model": model,
        "run": run,
        "eval": eval_metrics,
        "log_history": log_history,
    }
    path = Path(output_dir) / RECORD_NAME
    fileio.write_text(path, json.dumps(record, indent=2, default=str) + "\n")
    return path


def read_training_record(model_dir: str | Path) -> dict[str, Any] | None:
    """The record of a model folder, or ``None`` when it has none."""
    path = Path(model_dir) / RECORD_NAME
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def write_model_card(model_dir: str | Path, repo_id: str | None = None) -> None:
    """README.md by ``hub_upload.model_card.build_model_card`` (skipped, with a warning, when absent).

    ``repo_id`` is the Hub repository the card's snippets name (default: the hub helper's placeholder).
    """
    try:
        from hub_upload.model_card import build_model_card
    except ImportError as error:
        logger.warning("no model card written (hub_upload.model_card unavailable: %s)", error)
        return
    card = build_model_card(model_dir, repo_id=repo_id) if repo_id else build_model_card(model_dir)
    readme = Path(model_dir) / "README.md"
    if card is not None:
        fileio.write_text(readme, str(card))
