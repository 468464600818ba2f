"""The REMI event space (SPEC §1-2) and the vocabulary built from it.

Standard library only: this file is copied flat next to the remote-code files of a Hub
repository (the tokenizer and the grammar import it), so it must run where g2m_hf is not
installed.
"""

from __future__ import annotations

from typing import Iterable

# --- event grammar constants (SPEC §1) ---------------------------------------------------

TICKS_PER_BEAT = 480
"""Resolution every piece is rescaled to before conversion."""

TEMPO_CLASSES: tuple[int, ...] = (40, 80, 120, 160)
"""The four global tempo classes; the mean BPM snaps to the nearest (ties go lower)."""

TIME_SIGNATURES: tuple[str, ...] = ("2/4", "3/4", "4/4", "3/8", "6/8")
"""Signatures that a bar may carry; others are split or mapped (SPEC §1)."""

MAX_GRIDS = 48
"""Grid positions of the longest bar (4/4: 4 * 12); Beat values are 0..47."""

PITCH_MIN, PITCH_MAX = 21, 108
"""Piano range; a note outside rejects the piece in the original converter."""

DURATION_STEP, DURATION_MAX = 20, 1920
"""`Note_Duration_20..1920` step 20 is in the original dictionary (SPEC §2)."""

ORIGINAL_COMPOSERS: tuple[str, ...] = ("Schumann", "Chopin", "Bach", "Beethoven", "Mozart")
"""Composer tokens the original dictionary always contains."""

NO_COMPOSER = "None"
"""Composer value of the general (pretraining) corpus."""

PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, BAR_TOKEN = "PAD_None", "BOS_None", "EOS_None", "Bar_None"


def event(name: str, value: object) -> str:
    """Format one event the way the original does: ``Name_Value``."""
    return f"{name}_{value}"


def split_event(token: str) -> tuple[str, str]:
    """Split ``Name_Value`` into its name and value (the value is after the last ``_``).

    ``Note_Pitch_60`` -> ``("Note_Pitch", "60")``; ``Time_Signature_3/4`` -> ``("Time_Signature", "3/4")``.
    """
    name, _, value = token.rpartition("_")
    return name, value


def complete_event_space(composers: Iterable[str] = ORIGINAL_COMPOSERS) -> set[str]:
    """Every event the converter can emit, plus the original dictionary's fixed ranges."""
    events = {BOS_TOKEN, EOS_TOKEN, BAR_TOKEN, event("Composer", NO_COMPOSER)}
    events.update(event("Composer", c) for c in composers)
    events.update(event("Tempo", t) for t in TEMPO_CLASSES)
    events.update(event("Time_Signature", s) for s in TIME_SIGNATURES)
    events.update(event("Beat", g) for g in range(MAX_GRIDS))
    events.update(event("Note_Pitch", p) for p in range(PITCH_MIN, PITCH_MAX + 1))
    events.update(event("Note_Duration", d) for d in range(DURATION_STEP, DURATION_MAX + 1, DURATION_STEP))
    return events


def build_vocabulary(events: Iterable[str]) -> list[str]:
    """The original dictionary rule: plain string sort of the events, then ``PAD_None`` last."""
    return sorted(set(events) - {PAD_TOKEN}) + [PAD_TOKEN]


def complete_vocabulary(composers: Iterable[str] = ORIGINAL_COMPOSERS) -> list[str]:
    """The deterministic default vocabulary (SPEC §2): index = token id."""
    return build_vocabulary(complete_event_space(composers))
