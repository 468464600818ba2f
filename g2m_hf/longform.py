"""Pieces longer than the model's training window: bar-aligned sliding-window sampling.

A G2M model only ever saw windows of ``config.training_window`` events (`data.G2MDataCollator`): a
piece's start, or the piece's Composer and Tempo events followed by a stretch that starts at a bar
line. Past that length its predictions are outside what it learnt (the bundled model, trained on
512-event windows, thinned out to a quarter of its notes per bar after ~500 events). So generation never
lets a context grow beyond the window: when a row's sequence reaches it, the row is re-primed with the
piece head plus the most recent whole bars that fit in `CONTEXT_FRACTION` of the window - the window the
collator would have cut there (`data.context_start`, `data.prefixed_window`) - and sampling goes on.

The REMI grammar follows the whole piece, not the window: one `RemiGrammarLogitsProcessor` serves every
window (`update` / `continue_from`), so bar counts, sounding notes, the Beat order and the length targets
(``bars``, ``duration``, ``max_events``) carry across. Each window is a fresh `generate` call with its own
key/value cache, so the cost of an event and the memory held depend on the window, not on the piece.

Every step of every window passes through one `_StepWatcher`: it hands each finished bar to ``on_bar`` as it
is made (streaming: a listener hears the piece while the rest is sampled) and stops the sampling when
``should_stop`` says so (a cancelled request, a time limit), between two steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from transformers.generation.streamers import BaseStreamer

from .data import PREFIX_LENGTH, context_start, prefixed_window
from .errors import GenerationCancelled, InvalidArgumentError
from .grammar import RemiGrammarLogitsProcessor

DEFAULT_TRAINING_WINDOW = 1200
"""The window assumed for a model whose config does not record ``training_window``: the original's
generation length (SPEC §5), which every published model was trained beyond (2400-event windows)."""

CONTEXT_FRACTION = 0.5
"""Share of the window a re-primed context may fill. Training windows that start inside a piece hold at
least half a window (`data.window_starts`), so the model knows contexts of that length; the other half
is sampled before the next re-priming (whose prefill costs about as much as a few decoding steps)."""


def training_window(config: Any) -> int:
    """The longest context a model was trained on: ``config.training_window``, else `DEFAULT_TRAINING_WINDOW`."""
    return getattr(config, "training_window", None) or DEFAULT_TRAINING_WINDOW


def context(ids: np.ndarray, bar_id: int, window: int, fraction: float = CONTEXT_FRACTION) -> np.ndarray:
    """What the model reads to continue ``ids`` (a whole piece so far): all of it while it is shorter
    than ``window``; else the collator's window ending here that fits ``fraction`` of the window. A bar
    longer than that still starts the context when it fits the window; one longer than the window is cut
    inside (the collator cuts such bars too)."""
    if len(ids) < window:
        return ids
    budget = int(window * fraction)
    kept = prefixed_window(ids, context_start(len(ids), np.flatnonzero(ids == bar_id), budget))
    if len(kept) >= window:  # the current bar alone fills the window
        kept = prefixed_window(ids, len(ids) - budget + PREFIX_LENGTH)
    return kept


class StopWhenAsked(BaseStreamer):
    """A `generate` streamer that asks ``should_stop`` at every step and stops the sampling with
    `GenerationCancelled` (``message``) when it says so; every step also goes on to ``streamer``."""

    def __init__(self, should_stop: Callable[[], bool] | None, streamer: BaseStreamer | None = None,
                 message: str = "generation stopped before the end of the piece"):
        self.should_stop, self.streamer, self.message = should_stop, streamer, message

    def put(self, value: torch.Tensor) -> None:
        if self.streamer is not None:
            self.streamer.put(value)
        if self.should_stop is not None and self.should_stop():
            raise GenerationCancelled(self.message)

    def end(self) -> None:
        if self.streamer is not None:
            self.streamer.end()


class _StepWatcher(StopWhenAsked):
    """Sees every sampled token: cuts each piece into finished bars for ``on_bar`` and asks ``should_stop``.

    A bar is finished when the next one starts (a Bar token) or the piece ends (EOS). Every piece's chunks,
    concatenated, are its whole sequence: the first holds the prompt, the last ends with EOS.
    """

    def __init__(self, prompts: Sequence[np.ndarray], bar_token_id: int, eos_token_id: int,
                 on_bar: Callable[[int, list[int]], None] | None, should_stop: Callable[[], bool] | None,
                 streamer: BaseStreamer | None):
        super().__init__(should_stop, streamer)
        self.pending = [list(map(int, prompt)) for prompt in prompts]  # per piece: tokens not handed over yet
        self.bar_token_id, self.eos_token_id = bar_token_id, eos_token_id
        self.on_bar = on_bar
        self.rows: list[int] = []  # the piece of each row of the current window

    def put(self, value: torch.Tensor) -> None:
        super().put(value)
        if value.dim() > 1 or self.on_bar is None:  # the first call of every window carries its prompt
            return
        for piece, token in zip(self.rows, value.tolist()):
            pending = self.pending[piece]
            if pending is None:  # ended (EOS) earlier in this window: the row is padded
                continue
            if token == self.eos_token_id:
                self.pending[piece] = None
                self.on_bar(piece, pending + [token])
            elif token == self.bar_token_id and self.bar_token_id in pending:
                self.pending[piece] = [token]
                self.on_bar(piece, pending)
            else:
                pending.append(token)


def sample_long(
    model: Any,
    prompts: Sequence[Sequence[int]],
    grammar: RemiGrammarLogitsProcessor,
    *,
    pad_token_id: int,
    eos_token_id: int,
    bar_token_id: int,
    window: int | None = None,
    fraction: float = CONTEXT_FRACTION,
    streamer: BaseStreamer | None = None,
    on_window: Callable[[int, int], None] | None = None,
    on_bar: Callable[[int, list[int]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    **generate_kwargs: Any,
) -> list[list[int]]:
    """Sample every prompt to its end (EOS), however long, re-priming at the training window.

    Args:
        model: a `G2MForCausalLM`.
        prompts: token ids per piece (a whole prompt: its head, bars to continue).
        grammar: the processor that constrains every step; it must not have a ``max_length`` (a
            window's end is not the piece's end). Targets and ``max_events`` count whole pieces.
        pad_token_id, eos_token_id, bar_token_id: the tokenizer's.
        window: the longest context (default: `training_window` of ``model.config``).
        fraction: share of the window a re-primed context fills (`CONTEXT_FRACTION`).
        streamer: passed to every `generate` call.
        on_window: called after each window with (rows still sampling, events of the longest piece).
        on_bar: called as each bar is finished with (the piece's index in ``prompts``, its new token ids):
            the first call of a piece holds its prompt too, the last ends with EOS, and a piece's calls
            concatenate to exactly the sequence returned for it. It runs between two sampling steps.
        should_stop: asked before every sampling step; when it returns True, sampling stops and
            `GenerationCancelled` is raised (a cancelled request or a time limit; nothing is returned).
        generate_kwargs: more `G2MForCausalLM.generate` arguments (temperature, top_p, style_guidance...).

    Returns the whole sequences (prompt included), each ending with EOS.

    Raises:
        GenerationCancelled: ``should_stop`` returned True, or ``on_bar`` raised it.
    """
    window = window or training_window(model.config)
    if grammar.max_length is not None:
        raise InvalidArgumentError("grammar", f"max_length={grammar.max_length}", "a window's end is not the piece's end")
    pieces = [np.asarray(prompt, dtype=np.int64) for prompt in prompts]
    grammar.update(_left_pad(pieces, pad_token_id)[0])  # the state of the whole prompts
    active = list(range(len(pieces)))
    watcher = _StepWatcher(pieces, bar_token_id, eos_token_id, on_bar, should_stop, streamer)
    kept = None  # rows of the previous window that go on
    while active:
        contexts = [context(pieces[row], bar_token_id, window, fraction) for row in active]
        input_ids, attention_mask = _left_pad(contexts, pad_token_id)
        grammar.continue_from(input_ids, kept)
        watcher.rows = active
        output = model.generate(
            input_ids=input_ids.to(model.device),
            attention_mask=attention_mask.to(model.device),
            max_length=window,  # the longest context (unpadded) reaches the window
            remi_grammar=False,
            logits_processor=[grammar],
            pad_token_id=pad_token_id,
            eos_token_id=eos_token_id,
            streamer=watcher,
            **generate_kwargs,
        )
        grammar.update(output)
        new = output[:, input_ids.shape[1] :].cpu().numpy()
        going_on = []
        for index, (row, tokens) in enumerate(zip(active, new)):
            tokens = tokens[tokens != pad_token_id]
            ended = np.flatnonzero(tokens == eos_token_id)
            pieces[row] = np.concatenate([pieces[row], tokens[: ended[0] + 1] if ended.size else tokens])
            if not ended.size:
                going_on.append(index)
        kept = torch.tensor(going_on, dtype=torch.long)
        active = [active[index] for index in going_on]
        if on_window is not None:
            on_window(len(active), max(len(piece) for piece in pieces))
    return [piece.tolist() for piece in pieces]


def _left_pad(rows: Sequence[np.ndarray], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``input_ids`` and ``attention_mask`` ``[B, T]`` with every row padded on the left."""
    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        if len(row):
            input_ids[index, width - len(row) :] = torch.as_tensor(row)
            attention_mask[index, width - len(row) :] = 1
    return input_ids, attention_mask


__all__ = ["CONTEXT_FRACTION", "DEFAULT_TRAINING_WINDOW", "StopWhenAsked", "context", "sample_long", "training_window"]
