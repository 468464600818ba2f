"""Whether a training run had converged: how much its validation loss still moved at the end."""

from __future__ import annotations

from typing import Any

FLAT_FRACTION = 0.25
"""The part of a run (by steps) over which "flattened" is judged."""


def convergence(record: dict[str, Any]) -> dict[str, Any]:
    """How much the validation loss still moved at the end of a run (a ``training_record.json``).

    ``relative_change``: (loss where the last quarter of steps begins - best loss from there on) /
    the former. ``share_of_improvement``: that drop as a share of the whole run's (first evaluation to
    best). ``last_interval_change``: the relative drop between the last two evaluations. Positive
    numbers are improvements; negative ones mean the loss rose again. With fewer than three
    evaluations only ``evaluations`` is known (``relative_change`` is None).
    """
    history = record["log_history"]
    # the periodic evaluations: those logged before the run's summary (after it, the final evaluation
    # re-measures the kept weights, which are the best checkpoint's when fine-tuning)
    end = next((i for i, entry in enumerate(history) if "train_loss" in entry), len(history))
    losses = {entry["step"]: entry["eval_loss"] for entry in history[:end] if "eval_loss" in entry}
    if len(losses) < 3:
        return {"evaluations": len(losses), "relative_change": None}
    steps = sorted(losses)
    last_step = steps[-1]
    start_step = min(step for step in steps if step >= (1 - FLAT_FRACTION) * last_step)
    start_loss, best = losses[start_step], min(losses.values())
    best_after = min(losses[step] for step in steps if step >= start_step)  # never empty
    return {
        "evaluations": len(steps),
        "from_step": start_step,
        "to_step": last_step,
        "first_loss": losses[steps[0]],
        "loss_from": start_loss,
        "best_loss_after": best_after,
        "relative_change": (start_loss - best_after) / start_loss,
        "share_of_improvement": (start_loss - best_after) / (losses[steps[0]] - best),
        "last_interval_change": (losses[steps[-2]] - losses[last_step]) / losses[steps[-2]],
    }


__all__ = ["FLAT_FRACTION", "convergence"]
