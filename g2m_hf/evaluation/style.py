"""Does the composer token steer? Generate under each composer prompt and ask judges who wrote it.

`measure_style` samples the same seeds under every composer prompt (so the prompt is the only
difference between the sets), lets each judge — the bundled Transformer classifier (SPEC §6), the
independent feature classifier, or any callable from event lists to composer names — label every
piece, and returns per judge the recognition rates with their 95 % intervals and the confusion matrix
(`recognition.Recognition`). It also describes each composer's pieces with the simple measures that
show *where* a style is missed (texture density, short notes, triplets, pitch-class entropy), and,
given the training pieces, how much of the output copies them (`memorisation.SpanIndex`). `excerpts` cuts
real pieces to the generated pieces' length, so that the same judges can be asked about real music too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..vocab import BAR_TOKEN
from .feature_classifier import FEATURE_NAMES, FeatureComposerClassifier, piece_features
from .memorisation import SpanIndex
from .recognition import Recognition

Judge = Callable[[Sequence[Sequence[str]]], list[str | None]]
"""Labels pieces (event lists) with composer names (None: cannot tell)."""

DESCRIBED = ("notes_per_bar", "onsets_per_bar", "dur_16th_or_less", "pos_triplet", "pitch_class_entropy")
"""The window features `describe` averages: where generated styles have been seen to go wrong."""


def network_judge(classifier: Any) -> Judge:
    """A `evaluation.ComposerClassifier` as a `Judge`."""

    def judge(pieces: Sequence[Sequence[str]]) -> list[str | None]:
        return list(classifier.predict([classifier.encode(events) for events in pieces]))

    return judge


def feature_judge(classifier: FeatureComposerClassifier | str | os.PathLike) -> Judge:
    """A `FeatureComposerClassifier` (or the path of its file) as a `Judge`."""
    if not isinstance(classifier, FeatureComposerClassifier):
        classifier = FeatureComposerClassifier.load(Path(classifier))
    return classifier.predict


def describe(pieces: Sequence[Sequence[str]]) -> dict[str, float | None]:
    """Means over all 8-bar windows of ``pieces`` of the `DESCRIBED` features."""
    windows = [piece_features(events) for events in pieces]
    table = np.concatenate(windows) if windows else np.zeros((0, len(FEATURE_NAMES)))
    return {
        name: float(table[:, FEATURE_NAMES.index(name)].mean()) if len(table) else None for name in DESCRIBED
    }


EXCERPT_BARS = 16
"""The length of the real excerpts the judges are asked about beside generated pieces: the 16-bar pieces of
benchmarks/texture_guidance.py, and about what the Transformer classifier reads (`CLASSIFIER_MAX_EVENTS`)."""


def excerpts(events: Sequence[str], bars: int) -> list[list[str]]:
    """``events`` cut into consecutive excerpts of ``bars`` whole bars (a shorter rest left out), each after the
    piece's opening events (composer, tempo, ``BOS``): real music at the length of generated pieces, to ask the
    judges how often they recognise the real thing."""
    starts = [index for index, event in enumerate(events) if event == BAR_TOKEN]
    opening = list(events[: starts[0]]) if starts else []
    return [opening + list(events[starts[first] : starts[first + bars]]) for first in range(0, len(starts) - bars, bars)]


def judge_excerpts(
    pieces: Sequence[tuple[str, Sequence[str]]], judges: Mapping[str, Judge], labels: Sequence[str],
    bars: int = EXCERPT_BARS,
) -> dict[str, Any]:
    """How often ``judges`` recognise real music: ``pieces`` (composer, events) of ``labels``' composers cut into
    their ``bars``-bar `excerpts`. Returns ``{"bars", "excerpts": {composer: count}, "recognition": {judge:
    summary}}`` (`judge_pieces`)."""
    real = [(name, excerpt) for name, events in pieces if name in labels for excerpt in excerpts(events, bars)]
    return {"bars": bars, "excerpts": {c: sum(1 for name, _ in real if name == c) for c in labels},
            "recognition": judge_pieces([name for name, _ in real], [e for _, e in real], judges, labels)}


def judge_pieces(
    prompted: Sequence[str], pieces: Sequence[Sequence[str]], judges: Mapping[str, Judge], labels: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Each judge's `Recognition.summary` of ``pieces`` prompted with ``prompted``."""
    return {name: Recognition.count(prompted, judge(pieces), labels).summary() for name, judge in judges.items()}


def measure_style(
    model: Any,
    tokenizer: Any,
    composers: Sequence[str],
    judges: Mapping[str, Judge],
    pieces_per_composer: int = 24,
    seed: int = 0,
    training_pieces: SpanIndex | None = None,
    **generate_options: Any,
) -> dict[str, Any]:
    """Generate ``pieces_per_composer`` pieces per composer with `generate_midi` (same seeds for every
    composer, ``generate_options`` as for it) and measure how recognisable each composer's are.

    Returns ``{"recognition": {judge: summary}, "described": {composer: measures}, "copied_spans": ...,
    "settings": ...}``; ``copied_spans`` (with ``training_pieces``) is ``{"copied", "spans", "share"}``.
    """
    from ..generation import generate_midi

    pieces = []
    for composer in composers:  # one call per composer: the same seeds, the prompt the only difference
        pieces += generate_midi(model, tokenizer, [composer], num_pieces=pieces_per_composer, seed=seed, **generate_options)
    prompted = [piece.composer for piece in pieces]
    events = [piece.events for piece in pieces]
    result: dict[str, Any] = {
        "settings": {"pieces_per_composer": pieces_per_composer, "seed": seed, **generate_options},
        "recognition": judge_pieces(prompted, events, judges, composers),
        "described": {c: describe([e for p, e in zip(prompted, events) if p == c]) for c in composers},
        "bars": float(np.mean([e.count("Bar_None") for e in events])),
    }
    if training_pieces is not None:
        copied, spans = training_pieces.copied_share(events)
        result["copied_spans"] = {"copied": copied, "spans": spans, "share": copied / spans if spans else None}
    return result


__all__ = ["DESCRIBED", "EXCERPT_BARS", "Judge", "describe", "excerpts", "feature_judge", "judge_excerpts", "judge_pieces", "measure_style", "network_judge"]
