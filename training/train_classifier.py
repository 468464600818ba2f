"""Train the composer classifier that judges generated pieces (SPEC §6).

    python training/train_classifier.py --config configs/classifier.yaml
    python training/train_classifier.py --config configs/smoke_classifier.yaml --set output_dir=/tmp/clf

A bidirectional G2M encoder (`G2MForSequenceClassification`, 6 layers in the paper) learns to name the
composer of a piece from at most ``classifier.max_events`` (1200) of its events, with the composer
token removed. Training windows are random bar-aligned stretches, transposed (as for the decoder);
evaluation reads every held-out piece from its start, untransposed - the view the evaluation CLI
(`g2m_hf.evaluation.ComposerClassifier`) has of a generated piece. Batches are balanced over
composers. The output folder loads with ``AutoModelForSequenceClassification`` + ``AutoTokenizer``
and holds ``confusion_matrix.png`` (validation pieces) besides ``training_record.json``.

Recipe section ``classifier``::

    classifier:
      labels: [Bach, Beethoven, Chopin, Mozart]   # default: every composer of the training data
      max_events: 1200
      balanced: true
      init_from: g2m_hf/default_base_model        # optional: start the encoder from a pretrained G2M model
      validation_excerpt_bars: 16                  # optional: validate on excerpts of this many bars

With ``init_from`` the encoder's shape is the pretrained model's (the recipe's ``model`` section may only set
dropouts) and its layers start from that model's, which has read the whole general corpus: the classifier then
learns the composers on top of what music in general looks like instead of from its pieces alone. The causal
model's layers serve a bidirectional encoder here; fine-tuning adapts them. (On the bundled data it did worse on
real held-out Mozart than training from random weights: docs/models.md#judges.)

With ``validation_excerpt_bars`` the validation pieces are cut into consecutive excerpts of that many bars
(`g2m_hf.evaluation.excerpts`), which is what the judge is asked about generated pieces of that length: a
piece's opening alone gives one answer per piece, and the corpus has one or two validation pieces of some
composers.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import datasets
import numpy as np
import torch
from transformers import EvalPrediction, set_seed

from g2m_hf import G2MConfig, G2MForSequenceClassification
from g2m_hf.data import G2MDataCollator, composer_balanced_weights
from g2m_hf.errors import DataError
from g2m_hf.evaluation import CLASSIFIER_MAX_EVENTS, excerpts
from g2m_hf.plotting import plot_confusion_matrix
from g2m_hf.vocab import NO_COMPOSER
from training.common import (
    build_training_arguments,
    load_tokenizer,
    main_guard,
    model_config,
    parse_command_line,
    resolve_resume,
    run_training,
    setup_logging,
)
from training.config import section
from training.datasource import TrainingData, load_training_data
from training.errors import ConfigError
from training.trainer import StreamSeededCollator

CONFUSION_MATRIX_PNG = "confusion_matrix.png"


class ComposerClassificationCollator:
    """Batches for the classifier: the decoder's windows without their first (composer) token.

    Every window starts with the piece's composer token (at the piece start, or as the prefix of a
    window inside the piece), so dropping column 0 removes it; the window length is ``max_events + 1``.

    Returns ``input_ids`` / ``attention_mask`` ``[B, T]`` (right-padded) and ``labels`` ``[B]``.
    """

    def __init__(self, windows: G2MDataCollator, label2id: Mapping[str, int]):
        self.windows = windows
        self.label2id = dict(label2id)

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        batch = self.windows(features)
        return {
            "input_ids": batch["input_ids"][:, 1:],
            "attention_mask": batch["attention_mask"][:, 1:],
            "labels": torch.tensor([self.label2id[f["composer"]] for f in features], dtype=torch.long),
        }


def select_labels(data: TrainingData, labels: Sequence[str] | None) -> list[str]:
    """Keep the pieces of the classifier's composers (default: all labelled composers); return the labels."""
    train = data.splits["train"]
    found = sorted(set(train["composer"]) - {NO_COMPOSER})
    labels = list(labels) if labels else found
    missing = sorted(set(labels) - set(found))
    if missing:
        raise DataError(f"{data.source}: no training pieces of {missing} (composers found: {found})")
    if len(labels) < 2:
        raise DataError(f"{data.source}: a classifier needs at least two composers, found {found}")
    keep = set(labels)
    for name, split in data.splits.items():
        data.splits[name] = split.filter(lambda composer: composer in keep, input_columns="composer")
    return labels


def validation_excerpts(validation: datasets.Dataset, tokenizer: Any, bars: int) -> datasets.Dataset:
    """The validation pieces as their consecutive ``bars``-bar excerpts (rows ``input_ids``, ``composer``)."""
    rows: dict[str, list[Any]] = {"input_ids": [], "composer": []}
    for ids, composer in zip(validation["input_ids"], validation["composer"]):
        for excerpt in excerpts(tokenizer.ids_to_events(ids), bars):
            rows["input_ids"].append(tokenizer.events_to_ids(excerpt))
            rows["composer"].append(composer)
    if not rows["input_ids"]:
        raise DataError(f"classifier.validation_excerpt_bars: no validation piece has {bars} bars")
    return datasets.Dataset.from_dict(rows)


def accuracy(prediction: EvalPrediction) -> dict[str, float]:
    """`compute_metrics`: the fraction of pieces whose composer is predicted, pooled and ``balanced`` (the mean of
    the composers' own rates). The checkpoint is chosen on the balanced rate: the validation pieces are mostly
    Bach chorales, so the pooled rate barely sees the other composers."""
    predicted = np.argmax(prediction.predictions, axis=-1)
    truth = prediction.label_ids
    rates = [float(np.mean(predicted[truth == label] == label)) for label in np.unique(truth)]
    return {"accuracy": float(np.mean(predicted == truth)), "balanced_accuracy": float(np.mean(rates))}


def confusion_report(trainer: Any, labels: Sequence[str]) -> dict[str, Any]:
    """Confusion matrix of the validation pieces (counts, rows = true composer), also drawn as a PNG."""
    if trainer.eval_dataset is None:
        return {}
    output = trainer.predict(trainer.eval_dataset, metric_key_prefix="eval")
    predicted = np.argmax(output.predictions, axis=-1)
    counts = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(counts, (output.label_ids, predicted), 1)
    if trainer.is_world_process_zero():
        plot_confusion_matrix(
            counts,
            labels,
            Path(trainer.args.output_dir) / CONFUSION_MATRIX_PNG,
            title="Composer classifier, validation pieces",
            row_title="true composer",
        )
    return {"confusion_matrix": counts.tolist(), "labels": list(labels)}


def main(argv: Sequence[str] | None = None, callbacks: Sequence[Any] = ()) -> dict:
    """Run a classifier recipe; returns the final evaluation metrics (accuracy, confusion matrix)."""
    invocation = parse_command_line(argv, "Train the composer classifier (SPEC §6).")
    recipe = invocation.recipe
    settings = section(recipe, "classifier")
    max_events = int(settings.get("max_events", CLASSIFIER_MAX_EVENTS))
    if max_events < 2:
        raise ConfigError(f"classifier.max_events must be at least 2, got {max_events}")
    excerpt_bars, init_from = settings.get("validation_excerpt_bars"), settings.get("init_from")
    if excerpt_bars is not None and (type(excerpt_bars) is not int or excerpt_bars < 1):
        raise ConfigError(f"classifier.validation_excerpt_bars must be a whole number of bars, at least 1, got {excerpt_bars!r}")
    if init_from is not None and not Path(init_from).is_dir():
        raise ConfigError(f"classifier.init_from: {init_from} is not a folder (a pretrained G2M model's)")
    resume = resolve_resume(recipe["output_dir"], invocation.resume, invocation.overwrite)
    args = build_training_arguments(recipe)
    setup_logging(args)
    set_seed(args.seed)

    tokenizer = load_tokenizer(recipe.get("tokenizer"))
    with args.main_process_first(desc="loading the dataset"):
        data = load_training_data(invocation.data, tokenizer)
    labels = select_labels(data, settings.get("labels"))
    if excerpt_bars is not None and data.splits.get("validation") is not None:
        data.splits["validation"] = validation_excerpts(data.splits["validation"], tokenizer, excerpt_bars)
    label2id = {label: index for index, label in enumerate(labels)}
    heads = {"id2label": dict(enumerate(labels)), "label2id": label2id, "classifier_max_events": max_events}
    model = build_classifier(section(recipe, "model"), tokenizer, init_from, heads)

    window_options = {**invocation.data.collator, "max_length": max_events + 1}
    train_windows = G2MDataCollator(tokenizer, **window_options)
    eval_windows = G2MDataCollator(tokenizer, **{**window_options, "augment": False, "random_windows": False})
    seed = args.data_seed if args.data_seed is not None else args.seed
    train_collator = StreamSeededCollator(
        ComposerClassificationCollator(train_windows, label2id), seed, args.process_index
    )
    weights = composer_balanced_weights(data.splits["train"]) if settings.get("balanced", True) else None
    return run_training(
        invocation,
        args,
        resume,
        model,
        tokenizer,
        data,
        train_collator,
        ComposerClassificationCollator(eval_windows, label2id),
        task="classifier",
        sample_weights=weights,
        compute_metrics=accuracy,
        report_perplexity=False,
        callbacks=callbacks,
        extra_eval=lambda trainer: confusion_report(trainer, labels),
    )


def build_classifier(
    model_section: dict[str, Any], tokenizer: Any, init_from: str | None, heads: dict[str, Any]
) -> G2MForSequenceClassification:
    """The classifier to train: new from the recipe's ``model`` section, or (``init_from``) with the shape and the
    encoder weights of a pretrained G2M model, which must share the tokenizer's vocabulary; ``heads`` are the
    label settings. Only dropouts may be set beside ``init_from``."""
    if init_from is None:
        return G2MForSequenceClassification(model_config(model_section, tokenizer, style_adapter_layers=[], **heads))
    shaped = sorted(set(model_section) - {"hidden_dropout_prob", "attention_dropout"})
    if shaped:
        raise ConfigError(f"classifier.init_from takes the model's shape from {init_from}; remove model keys {shaped}")
    try:
        config = G2MConfig.from_pretrained(init_from)
    except OSError as error:
        raise ConfigError(f"classifier.init_from: no G2M model at {init_from} ({error.__class__.__name__})") from None
    if list(config.event_vocabulary) != list(tokenizer.event_vocabulary):
        raise ConfigError(f"classifier.init_from: {init_from} has another event vocabulary than the tokenizer")
    for key, value in {"style_adapter_layers": [], "trained_composers": [], **model_section, **heads}.items():
        setattr(config, key, value)
    return G2MForSequenceClassification.from_pretrained(init_from, config=config)


def cli() -> int:
    """Console-script entry point (``g2m-train-classifier``)."""
    return main_guard(main)


if __name__ == "__main__":
    sys.exit(cli())
