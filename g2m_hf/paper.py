"""The paper's published figures (SPEC §7), written down once.

Reports, model cards and anything else that shows them beside our own measures read them from here.
"""

from __future__ import annotations

PAPER = "Generality-to-Mastery (AIMC 2025, arXiv:2506.17497)"
"""How the published system is cited."""

SYSTEM = "Generality-to-Mastery"
"""The paper's own system among `PUBLISHED_METRICS`."""

PUBLISHED_METRICS: dict[str, dict[str, float]] = {
    SYSTEM: {"H": 3.17, "GS": 0.96, "SI_short": 0.31, "SI_mid": 0.23, "SI_long": 0.20},
    "NotaGen": {"H": 2.92, "GS": 0.97, "SI_short": 0.35, "SI_mid": 0.31, "SI_long": 0.29},
    "without pretraining": {"H": 3.01, "GS": 0.96, "SI_short": 0.41, "SI_mid": 0.35, "SI_long": 0.33},
}
"""Objective metrics per system (H1 is not published), as `metrics.METRIC_NAMES` keys."""

PUBLISHED_RECOGNITION: dict[str, float] = {"Bach": 0.90, "Chopin": 0.62, "Mozart": 0.36, "Beethoven": 0.40}
"""The classifier's recognition of the prompted composer (the confusion matrix's diagonal)."""

__all__ = ["PAPER", "PUBLISHED_METRICS", "PUBLISHED_RECOGNITION", "SYSTEM"]
