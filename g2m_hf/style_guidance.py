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
styled one in its first token only). The unstyled sequence keeps its own key/value cache, so guidance
costs one more forward of the batch per step.

Remote-code file: imports only torch and transformers.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import LogitsProcessor

from .kv_cache import PreallocatedCache


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
        self._cache: Any = None
        self._attention_mask: torch.Tensor | None = None  # [B, T] of what the unstyled cache holds

    def _unstyled_logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The model's next-token logits for ``input_ids`` with each row's first token made unstyled. [B, V]"""
        batch_size = input_ids.shape[0]
        style = torch.full((batch_size,), self.unstyled_token_id, dtype=torch.long, device=input_ids.device)
        if self._attention_mask is None:  # first step: the whole prompt
            mask = (input_ids != self.pad_token_id).long()  # [B, T]; prompts are left-padded
            first = mask.argmax(dim=-1)  # [B]
            new_tokens = input_ids.clone()
            new_tokens[torch.arange(batch_size, device=input_ids.device), first] = self.unstyled_token_id
            self._cache = PreallocatedCache() if self.model.dtype == torch.float32 else None
        else:  # later steps: the token sampled last (finished rows keep attending, as generate does)
            new_tokens = input_ids[:, self._attention_mask.shape[1] :]  # [B, 1]
            mask = torch.cat([self._attention_mask, torch.ones_like(new_tokens)], dim=1)
        output = self.model(
            new_tokens, attention_mask=mask, cache=self._cache, style_token_ids=style, use_cache=True, logits_to_keep=1
        )
        self._cache, self._attention_mask = output.cache, mask
        return output.logits[:, -1]  # [B, V]

    @torch.no_grad()
    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.guidance == 1.0:
            return scores
        styled = torch.log_softmax(scores.float(), dim=-1)  # [B, V]
        unstyled = torch.log_softmax(self._unstyled_logits(input_ids).float(), dim=-1)  # [B, V]
        return (unstyled + self.guidance * (styled - unstyled)).to(scores.dtype)


__all__ = ["StyleGuidanceLogitsProcessor"]
