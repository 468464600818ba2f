"""Classifier-free guidance on the style: ``generate(..., style_guidance=s)``.

The composer token conditions the model twice: as the first token of the sequence and through the
style adapters. Guidance makes that condition count for more at sampling time. At every step the
model also scores the same sequence under ``Composer_None`` (the general, unstyled material of
pretraining, kept meaningful by mixing general windows into fine-tuning), and the next-token
log-probabilities are pushed away from that unstyled prediction:

    log p_guided = log p_none + s * (log p_composer - log p_none)

``s = 1`` is plain sampling; ``s > 1`` exaggerates what distinguishes the composer from general music
(Ho & Salimans 2022; as transformers' `UnbatchedClassifierFreeGuidanceLogitsProcessor`, which cannot
be used as it is: a cached G2M step needs its style token, and the unstyled sequence differs from the
styled one in its first token only).

One forward per step: `G2MForCausalLM.generate` hands the processor to the model's forward
(``style_guidance_processor``), which runs every row twice in ONE batch, ``[styled rows; unstyled
rows]``, through one key/value cache of 2B rows (`pair_inputs`), returns the styled logits to
`generate` and leaves the unstyled ones here (`keep_styled`) for `__call__`. A decoding step of a small
model on a CPU is bound by reading the weights, which the two halves share: the batch of 2B costs
about 1.2 to 1.3 forwards of B instead of 2 (benchmarks/realtime.py, docs/speed.md). The distribution
is the same as with two separate forwards, up to float rounding (tests/test_style.py).

Remote-code file: imports only torch and transformers.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import LogitsProcessor

from .errors import ModelInputError


class StyleGuidanceLogitsProcessor(LogitsProcessor):
    """Pushes each row's next-token log-probabilities away from its ``Composer_None`` counterpart.

    Put it before every other processor (the grammar, temperature, top-p): it needs the model's raw
    scores. `G2MForCausalLM.generate(style_guidance=s)` does that. A processor serves one `generate`
    call (it keeps the unstyled sequence's cache).

    Args:
        model: the `G2MForCausalLM` that is generating.
        guidance: the scale ``s`` (1: no guidance).
        unstyled_token_id: id of ``Composer_None``.
        pad_token_id: the padding id, to find each row's first token in a left-padded prompt.
    """

    def __init__(self, model: Any, guidance: float, unstyled_token_id: int, pad_token_id: int):
        self.model = model
        self.guidance = float(guidance)
        self.unstyled_token_id = unstyled_token_id
        self.pad_token_id = pad_token_id
        self._unstyled: torch.Tensor | None = None  # [B, V] logits the last forward left for the next call

    def pair_inputs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        position_ids: torch.Tensor | None,
        style_token_ids: torch.Tensor | None,
        past_length: int,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
        """The forward's inputs for ``[styled rows; unstyled rows]``: every tensor's rows twice, the second
        copy under ``Composer_None`` (its style token, and its first token when the call starts the
        sequence: ``past_length == 0``). Returns input ids [2B, T], attention mask [2B, past + T],
        position ids [2B, T] and style token ids [2B]."""
        unstyled = input_ids
        if past_length == 0:  # the call that starts the sequences: each row's first attended token is its composer
            batch_size = input_ids.shape[0]
            rows = torch.arange(batch_size, device=input_ids.device)
            if attention_mask is None:
                first = torch.zeros(batch_size, dtype=torch.long, device=input_ids.device)
            else:
                first = attention_mask.long().argmax(dim=-1)  # [B] (left padding)
            if style_token_ids is None:
                style_token_ids = input_ids[rows, first]
            unstyled = input_ids.clone()
            unstyled[rows, first] = self.unstyled_token_id
        elif style_token_ids is None:
            raise ModelInputError("a cached step under style guidance needs style_token_ids (the composer tokens)")
        none = torch.full_like(style_token_ids, self.unstyled_token_id)

        def twice(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return None if tensor is None else torch.cat([tensor, tensor])

        return (
            torch.cat([input_ids, unstyled]),
            twice(attention_mask),
            twice(position_ids),
            torch.cat([style_token_ids, none]),
        )

    def keep_styled(self, logits: torch.Tensor) -> torch.Tensor:
        """The styled half of a paired forward's logits ``[2B, T, V]``, keeping the unstyled half's last
        position for the next `__call__`. [B, T, V]"""
        styled, unstyled = logits.chunk(2)
        self._unstyled = unstyled[:, -1]
        return styled

    def _unstyled_logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The model's next-token logits for ``input_ids`` with each row's first token made unstyled. [B, V]"""
        unstyled, self._unstyled = self._unstyled, None
        if unstyled is None or unstyled.shape[0] != input_ids.shape[0]:
            raise ModelInputError(
                "StyleGuidanceLogitsProcessor: the model's forward made no unstyled logits for this step; "
                "generate with style_guidance=s (G2MForCausalLM.generate passes the processor to the forward)"
            )
        return unstyled

    @torch.no_grad()
    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.guidance == 1.0:
            return scores
        styled = torch.log_softmax(scores.float(), dim=-1)  # [B, V]
        unstyled = torch.log_softmax(self._unstyled_logits(input_ids).float(), dim=-1)  # [B, V]
        return (unstyled + self.guidance * (styled - unstyled)).to(scores.dtype)


__all__ = ["StyleGuidanceLogitsProcessor"]
