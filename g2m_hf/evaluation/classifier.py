"""The composer classifier of the evaluation (SPEC §6): what it reads of a piece, and how it labels a set.

`ComposerClassifier` wraps any sequence-classification folder that the Auto classes load;
`recognition` turns its predictions for a set of pieces into a confusion matrix and per-composer
recognition, the figures the paper reports (`paper.PUBLISHED_RECOGNITION`).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import EvaluationError, ModelNotFoundError, VocabularyError
from ..vocab import split_event
from .recognition import Recognition

CLASSIFIER_MAX_EVENTS = 1200
"""The classifier sees at most this many events of a piece (SPEC §6)."""


def classifier_input_events(events: Sequence[str], max_events: int = CLASSIFIER_MAX_EVENTS) -> list[str]:
    """What the composer classifier reads of a piece (SPEC §6): its events without the
    ``Composer_*`` token, at most ``max_events`` of them (the first ones)."""
    return [token for token in events if split_event(token)[0] != "Composer"][:max_events]


DEFAULT_CLASSIFIER_DIR = Path(__file__).resolve().parent.parent / "default_classifier"
"""The bundled composer classifier of the default model's composers (training/build_default_model.sh)."""

FEATURE_CLASSIFIER_FILE = "feature_classifier.safetensors"
"""The independent feature classifier (`FeatureComposerClassifier`) bundled beside it."""


def default_classifier_path() -> Path:
    """The bundled classifier folder; raises `ModelNotFoundError` when it holds no weights.

    It holds the paper's Transformer classifier (SPEC §6, loadable with
    ``AutoModelForSequenceClassification``) for the bundled model's composers and, as
    `FEATURE_CLASSIFIER_FILE`, the independent feature classifier; its README states their held-out accuracy.
    """
    if not (DEFAULT_CLASSIFIER_DIR / "model.safetensors").is_file():
        raise ModelNotFoundError(f"{DEFAULT_CLASSIFIER_DIR}: no bundled classifier weights in this installation")
    return DEFAULT_CLASSIFIER_DIR


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
        kwargs.setdefault("max_events", getattr(model.config, "classifier_max_events", CLASSIFIER_MAX_EVENTS))
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


def recognition(
    entries: Sequence[dict[str, Any]], labels: list[str], unclassified: list[dict[str, str]]
) -> dict[str, Any]:
    """How the classifier labels a set of report entries (``composer``, ``predicted``): the
    `Recognition` summary over the pieces whose composer is one of its labels (confusion matrix with
    rows the prompted composer and columns the prediction, per-composer rates with 95 % intervals),
    the accuracy, the predicted labels of every classified piece, and the ``unclassified`` pieces
    (``{"file", "reason"}``) as given."""
    classified = [entry for entry in entries if entry.get("predicted") is not None]
    counted = Recognition.count([e["composer"] for e in classified], [e["predicted"] for e in classified], labels)
    predicted_counts = Counter(entry["predicted"] for entry in classified)
    total = int(counted.confusion.sum())
    return {
        **counted.summary(),
        "evaluated": total,
        "accuracy": float(np.trace(counted.confusion) / total) if total else None,
        "recognition": counted.rates,
        "predicted_counts": {label: predicted_counts[label] for label in labels},
        "unclassified": unclassified,
    }


__all__ = [
    "CLASSIFIER_MAX_EVENTS",
    "FEATURE_CLASSIFIER_FILE",
    "ComposerClassifier",
    "classifier_input_events",
    "default_classifier_path",
    "recognition",
]
