"""A faithful re-implementation of the ORIGINAL sampling loop (SPEC §5; `generate_events` of the
original inference code), used as the speed baseline in benchmarks/generation_speed.py.

Reference only. What makes it the original:
- one piece at a time, and the whole sequence is run through the network at every step (no cache);
- logits go to NumPy; softmax with temperature; nucleus sampling with the original's cut-off, which
  keeps the sorted tokens up to and including the first one whose cumulative probability exceeds
  ``top_p`` (``sorted_index[:np.where(cumsum > p)[0][1]]``), renormalised, drawn with NumPy;
- a Beat below the current position is rejected and the step is recomputed and redrawn (give up after
  256 rejections in a row); a drawn PAD is dropped and redrawn the same way;
- BOS is inserted after the second token (the tempo); the loop ends at EOS, after ``max_bars`` Bar
  tokens, or when the piece grows past ``max_events``; the last token is dropped on return.

The network is any callable taking sequence-first ids ``[T, 1]`` and returning logits ``[T, 1, V]``
(tests/reference/original_model.OriginalDecoderModel, or a wrapper around it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class OriginalGeneration:
    """What the original loop returns, plus counts for the benchmark."""

    ids: list[int] | None  # None: the model got stuck (256 rejections in a row)
    seconds: float
    forward_passes: int = 0
    rejected_beats: int = 0
    step_seconds: list[float] = field(default_factory=list)  # wall time of every forward + draw


def temperature_softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    """``exp(l / t) / sum(exp(l / t))`` as the original computes it (a stable softmax if that overflows)."""
    with np.errstate(over="ignore", invalid="ignore"):
        probs = np.exp(logits / temperature) / np.sum(np.exp(logits / temperature))
    if np.isnan(probs).any():  # the original retries in float128 here; a shifted softmax is the same value
        shifted = (logits / temperature).astype(np.float64)
        probs = np.exp(shifted - shifted.max())
        probs /= probs.sum()
    return probs


def nucleus(probs: np.ndarray, top_p: float, rng: np.random.RandomState) -> int:
    """The original nucleus draw (including its off-by-one cut-off, see the module docstring)."""
    probs = probs / probs.sum()
    sorted_probs = np.sort(probs)[::-1]
    sorted_index = np.argsort(probs)[::-1]
    above = np.cumsum(sorted_probs) > top_p
    if above.sum() > 0:
        candidates = sorted_index[: np.where(above)[0][1]]
    else:
        candidates = sorted_index[:3]
    candidate_probs = np.array([probs[i] for i in candidates], dtype=np.float64)
    candidate_probs /= candidate_probs.sum()
    return int(rng.choice(candidates, size=1, p=candidate_probs)[0])


def generate_events(
    model: Callable[[torch.Tensor], torch.Tensor],
    vocabulary: Sequence[str],
    composer: str = "Bach",
    max_bars: int = 128,
    max_events: int = 1200,
    temperature: float = 1.1,
    top_p: float = 0.99,
    seed: int = 0,
    max_steps: int | None = None,
) -> OriginalGeneration:
    """Generate one piece the original way. ``max_steps`` stops after that many forward passes
    (to time a prefix of the quadratic loop); ``None`` runs to the original's own end."""
    event_ids = {token: index for index, token in enumerate(vocabulary)}
    rng = np.random.RandomState(seed)
    device = next(model.parameters()).device if hasattr(model, "parameters") else torch.device("cpu")
    generated = [event_ids[f"Composer_{composer}"]]
    bars, position, failures = 0, 0, 0
    result = OriginalGeneration(ids=None, seconds=0.0)
    start = time.perf_counter()
    with torch.no_grad():
        while bars < max_bars:
            if max_steps is not None and result.forward_passes >= max_steps:
                break
            step_start = time.perf_counter()
            logits = model(torch.tensor(generated, dtype=torch.long, device=device).unsqueeze(1))[-1, 0]
            word = nucleus(temperature_softmax(logits.float().cpu().numpy(), temperature), top_p, rng)
            result.forward_passes += 1
            result.step_seconds.append(time.perf_counter() - step_start)
            token = vocabulary[word]

            if token.startswith("Beat_"):
                if int(token.split("_")[-1]) < position:
                    failures += 1
                    result.rejected_beats += 1
                    if failures >= 256:
                        result.seconds = time.perf_counter() - start
                        return result
                    continue
                position, failures = int(token.split("_")[-1]), 0
            if "Bar" in token:
                bars += 1
                position = 0
            if token == "PAD_None":
                continue
            generated.append(word)
            if len(generated) == 2:
                generated.append(event_ids["BOS_None"])
            if len(generated) > max_events or token == "EOS_None":
                break
    result.seconds = time.perf_counter() - start
    result.ids = generated[:-1]
    return result
