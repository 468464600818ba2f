"""How often a classifier recognises the composer a piece was prompted with, with confidence intervals.

The paper's style figure (SPEC §7) is the diagonal of a confusion matrix: for each composer, the share
of the pieces prompted with that composer that a classifier assigns to it. With a few dozen pieces per
composer that share is uncertain by ±0.1 or more, so every rate here comes with its 95 % Wilson score
interval (scipy's ``binomtest``), and the mean over composers with an interval of its own: the pooled
count's when every composer has the same number of pieces (as generated sets do: the mean is then the
pooled rate), else the mean of the per-composer intervals' bounds (real pieces: one composer's many excerpts
must not narrow the others'; averaging bounds lets no composer's error cancel another's, so it is wider
than needed, never narrower).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..extras import require

CONFIDENCE = 0.95


def wilson_interval(successes: int, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion; (0, 1) when there are no trials."""
    if trials == 0:
        return 0.0, 1.0
    binomtest = require("scipy.stats", "eval", "a recognition interval").binomtest
    interval = binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)


@dataclass
class Recognition:
    """A confusion matrix of prompted (rows) against predicted (columns) composers, in ``labels`` order,
    and per prompted composer the pieces judged as none of them (another composer, or no answer)."""

    labels: list[str]
    confusion: np.ndarray  # [C, C] piece counts
    elsewhere: np.ndarray  # [C] pieces of each row judged as none of the labels: not recognised, still counted

    @classmethod
    def count(cls, prompted: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str]) -> Recognition:
        """Count the pieces whose prompted composer is among ``labels`` (case-insensitive); a piece judged
        as another composer, or not at all (None), counts as not recognised."""
        index = {label.casefold(): position for position, label in enumerate(labels)}
        confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
        elsewhere = np.zeros(len(labels), dtype=np.int64)
        for truth, guess in zip(prompted, predicted, strict=True):
            row, column = index.get((truth or "").casefold()), index.get((guess or "").casefold())
            if row is None:
                continue
            if column is None:
                elsewhere[row] += 1
            else:
                confusion[row, column] += 1
        return cls(list(labels), confusion, elsewhere)

    @property
    def totals(self) -> np.ndarray:
        """Pieces prompted with each composer. [C]"""
        return self.confusion.sum(axis=1) + self.elsewhere

    @property
    def rates(self) -> dict[str, float | None]:
        """Per composer: the share of its pieces recognised as it (the confusion matrix's diagonal)."""
        totals = self.totals
        return {
            label: float(self.confusion[i, i] / totals[i]) if totals[i] else None for i, label in enumerate(self.labels)
        }

    @property
    def mean(self) -> float | None:
        """The mean of the per-composer rates over the composers that have pieces (the paper's summary)."""
        present = [rate for rate in self.rates.values() if rate is not None]
        return float(np.mean(present)) if present else None

    def mean_interval(self) -> tuple[float, float]:
        """The 95 % interval of `mean` (see the module's docstring for the two cases)."""
        totals, correct = self.totals, np.diag(self.confusion)
        present = totals > 0
        if len(set(totals[present].tolist())) <= 1:
            return wilson_interval(int(correct.sum()), int(totals.sum()))
        bounds = np.array([wilson_interval(int(c), int(t)) for c, t in zip(correct[present], totals[present])])  # [C, 2]
        low, high = bounds.mean(axis=0)
        return float(low), float(high)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready record: matrix, per-composer rate with its interval, mean with its interval, and the
        pooled count's interval."""
        totals = self.totals
        correct = np.diag(self.confusion)
        rates = self.rates
        per_composer = {
            label: {
                "recognised": int(correct[i]),
                "pieces": int(totals[i]),
                "judged_elsewhere": int(self.elsewhere[i]),
                "rate": rates[label],
                "ci95": list(wilson_interval(int(correct[i]), int(totals[i]))),
            }
            for i, label in enumerate(self.labels)
        }
        return {
            "labels": self.labels,
            "confusion_matrix": self.confusion.tolist(),
            "per_composer": per_composer,
            "mean": self.mean,
            "mean_ci95": list(self.mean_interval()),
            "pooled_ci95": list(wilson_interval(int(correct.sum()), int(totals.sum()))),
            "chance": 1 / len(self.labels) if self.labels else None,
        }


__all__ = ["CONFIDENCE", "Recognition", "wilson_interval"]
