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

Plain guidance extrapolates every difference from the general corpus, the texture's too (issue 25: slow
tempo classes, short note values, the bass). Four options change how far, where and from what it pushes:

- ``warmup``: the scale ramps linearly from 1 to ``s`` over the first ``warmup`` events of the context
  (Aria ramps its scale over the first 250 tokens): a piece opens as the conditional model would.
- ``rescale`` (phi, 0..1): the guided log-probabilities are scaled so that their spread matches the
  conditional distribution's (the standard deviation of the log-probabilities, weighted by the
  conditional probabilities), mixed with the plain guided ones by phi: diffusers' ``rescale_noise_cfg``
  (Lin et al. 2024) on log-probabilities, where it acts as a temperature that undoes guidance's sharpening.
- ``guided_kinds``: guidance chooses only among the values of these event kinds (``"Note_Pitch"``,
  ``"Beat"``, ...), each kind keeping the probability the conditional model gives it; every other
  kind, and the choice of the next event's kind (another note, a new onset, a new bar: the density),
  is the conditional model's. None (default): guidance on the whole distribution.
- ``contrast``: what the composer is pushed away from. ``"none"`` (default): ``Composer_None``, the
  general corpus. ``"composers"``: the mixture of the model's other trained composers (each scored as its
  own row of the same forward; ``log p_none`` is then the log of their mean probability). Guidance then
  exaggerates what tells the composer from the others, not what tells piano music from the general
  corpus's folk melodies (the density, the bass: issue 25, docs/texture.md#contrast).

Remote-code file: imports only torch and transformers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from transformers import LogitsProcessor

from .errors import ModelInputError
from .vocab import NO_COMPOSER, event, split_event

COMPOSER_NONE = event("Composer", NO_COMPOSER)

CONTRASTS = ("none", "composers")
"""What guidance pushes away from: ``Composer_None`` or the model's other trained composers."""

STYLE_GUIDANCE_OPTIONS = {"warmup": "style_guidance_warmup", "rescale": "style_guidance_rescale",
                          "guided_kinds": "style_guidance_kinds", "contrast": "style_guidance_contrast"}
"""`guidance_processor`'s options and the generation-config names that set them."""


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
        warmup: events of context over which the scale ramps from 1 to ``guidance`` (0: no ramp).
        rescale: phi, the share of the guided log-probabilities rescaled to the conditional spread (0: none).
        guided_kinds: event kinds whose values guidance chooses (None: the whole distribution); needs
            ``model.config.event_vocabulary``.
        contrast_token_ids: None: every row against ``Composer_None``. Else the composer token ids of the
            contrast (two or more): each row against the mixture of the others; a row whose composer is not
            among them is sampled without guidance.

    Every styled row runs with `copies` - 1 contrast rows (``Composer_None``: one; N composers: N - 1).
    """

    def __init__(
        self,
        model: Any,
        guidance: float,
        unstyled_token_id: int,
        pad_token_id: int,
        *,
        warmup: int = 0,
        rescale: float = 0.0,
        guided_kinds: Sequence[str] | None = None,
        contrast_token_ids: Sequence[int] | None = None,
    ):
        if contrast_token_ids is not None and len(set(contrast_token_ids)) < 2:
            raise ModelInputError("style guidance against the other composers needs a model of two or more trained "
                                  f"composers, got {len(set(contrast_token_ids))}")
        if not warmup >= 0:
            raise ModelInputError(f"style_guidance_warmup must be at least 0 events, got {warmup}")
        if not 0.0 <= rescale <= 1.0:
            raise ModelInputError(f"style_guidance_rescale must be between 0 and 1, got {rescale}")
        self.model = model
        self.guidance = float(guidance)
        self.unstyled_token_id = unstyled_token_id
        self.pad_token_id = pad_token_id
        self.warmup, self.rescale = int(warmup), float(rescale)
        self._kinds: torch.Tensor | None = None  # [V] kind index of each token
        self._guided: torch.Tensor | None = None  # [K] whether guidance chooses among a kind's values
        if guided_kinds is not None:
            kinds = [split_event(token)[0] for token in getattr(model.config, "event_vocabulary", None) or []]
            unknown = sorted(set(guided_kinds) - set(kinds))
            if not kinds or unknown:
                raise ModelInputError(f"style_guidance_kinds: {unknown or list(guided_kinds)} not event kinds of the "
                                      f"vocabulary ({', '.join(sorted(set(kinds)))})")
            names = list(dict.fromkeys(kinds))
            self._kinds = torch.tensor([names.index(kind) for kind in kinds])
            self._guided = torch.tensor([name in guided_kinds for name in names])
        # [V, copies - 1] each style token's contrast, looked up at every step: Composer_None; or the other
        # composers of the contrast, and the token itself repeated (no push) for a composer outside it
        if contrast_token_ids is None:
            self._contrast_table = torch.full((model.config.vocab_size, 1), unstyled_token_id)
        else:
            pool = list(dict.fromkeys(contrast_token_ids))
            self._contrast_table = torch.arange(model.config.vocab_size).unsqueeze(1).repeat(1, len(pool) - 1)
            for token in pool:
                self._contrast_table[token] = torch.tensor([other for other in pool if other != token])
        self.copies = 1 + self._contrast_table.shape[1]
        self._unstyled: torch.Tensor | None = None  # [copies - 1, B, V] logits the last forward left for the next call

    def contrast_ids(self, style_token_ids: torch.Tensor) -> torch.Tensor:
        """Each row's contrast: ``Composer_None``, or the other composers of the contrast (the row's own
        composer repeated, so no push, when it is not one of them). [B, copies - 1]"""
        return self._contrast_table.to(style_token_ids.device)[style_token_ids]

    def pair_inputs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        position_ids: torch.Tensor | None,
        style_token_ids: torch.Tensor | None,
        past_length: int,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
        """The forward's inputs for ``[styled rows; contrast rows]``: every tensor's rows `copies` times, each
        further copy under a contrast composer (`contrast_ids`: its style token, and its first token when the
        call starts the sequence: ``past_length == 0``). Returns input ids [copies*B, T], attention mask
        [copies*B, past + T], position ids [copies*B, T] and style token ids [copies*B]."""
        batch_size = input_ids.shape[0]
        rows = torch.arange(batch_size, device=input_ids.device)
        first = None
        if past_length == 0:  # the call that starts the sequences: each row's first attended token is its composer
            if attention_mask is None:
                first = torch.zeros(batch_size, dtype=torch.long, device=input_ids.device)
            else:
                first = attention_mask.long().argmax(dim=-1)  # [B] (left padding)
            if style_token_ids is None:
                style_token_ids = input_ids[rows, first]
        elif style_token_ids is None:
            raise ModelInputError("a cached step under style guidance needs style_token_ids (the composer tokens)")
        contrasts = self.contrast_ids(style_token_ids)  # [B, copies - 1]
        copies = [input_ids]
        for column in contrasts.T:  # [B] each
            copy = input_ids
            if first is not None:
                copy = input_ids.clone()
                copy[rows, first] = column
            copies.append(copy)

        def repeated(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return None if tensor is None else tensor.repeat(self.copies, *[1] * (tensor.dim() - 1))

        return (
            torch.cat(copies),
            repeated(attention_mask),
            repeated(position_ids),
            torch.cat([style_token_ids, *contrasts.T]),
        )

    def split(self, outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A paired forward's outputs [copies*B, ...] as the styled rows [B, ...] and the contrast rows
        [copies - 1, B, ...]."""
        styled, *contrasts = outputs.chunk(self.copies)
        return styled, torch.stack(contrasts)

    def contrast_log_probs(self, contrasts: torch.Tensor) -> torch.Tensor:
        """The contrast's next-event log-probabilities from its rows' logits [copies - 1, ..., V]: the log of
        their mean probability (``Composer_None``'s own, or the other composers' mixture). [..., V]"""
        log_probs = torch.log_softmax(contrasts.float(), dim=-1)
        return torch.logsumexp(log_probs, dim=0) - math.log(contrasts.shape[0])

    def keep_styled(self, logits: torch.Tensor) -> torch.Tensor:
        """The styled rows of a paired forward's logits ``[copies*B, T, V]``, keeping the contrast rows' last
        position for the next `__call__`. [B, T, V]"""
        styled, *contrasts = logits.chunk(self.copies)
        self._unstyled = torch.stack([rows[:, -1] for rows in contrasts])  # [copies - 1, B, V]
        return styled

    def _unstyled_log_probs(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The contrast's next-event log-probabilities for ``input_ids``, from the last paired forward. [B, V]"""
        unstyled, self._unstyled = self._unstyled, None
        if unstyled is None or unstyled.shape[1] != input_ids.shape[0]:
            raise ModelInputError(
                "StyleGuidanceLogitsProcessor: the model's forward made no unstyled logits for this step; "
                "generate with style_guidance=s (G2MForCausalLM.generate passes the processor to the forward)"
            )
        return self.contrast_log_probs(unstyled)

    @torch.no_grad()
    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.guidance == 1.0:
            return scores
        styled = torch.log_softmax(scores.float(), dim=-1)  # [B, V]
        unstyled = self._unstyled_log_probs(input_ids)  # [B, V]
        return self.combine(styled, unstyled, self._scale(input_ids)).to(scores.dtype)

    def _scale(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Each row's guidance scale: ``guidance``, ramped over the first ``warmup`` events of its context. [B, 1]"""
        scale = torch.full((input_ids.shape[0], 1), self.guidance, device=input_ids.device)
        if self.warmup:
            length = (input_ids != self.pad_token_id).sum(dim=-1, keepdim=True).float()  # [B, 1]
            scale = 1.0 + (scale - 1.0) * (length / self.warmup).clamp(max=1.0)
        return scale

    def combine(self, styled: torch.Tensor, unstyled: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """Guided log-probabilities (up to a constant per row) from the styled and unstyled log-probabilities
        [B, V] and the scale [B, 1], with the processor's rescale and guided kinds."""
        guided = unstyled + scale * (styled - unstyled)  # [B, V]
        if self.rescale:
            weights = styled.exp()  # the conditional distribution: where the spread matters
            spread_styled, spread_guided = (_weighted_std(values, weights) for values in (styled, guided))  # [B, 1]
            guided = guided * (self.rescale * spread_styled / spread_guided.clamp(min=1e-6) + 1.0 - self.rescale)
        if self._kinds is None:
            return guided
        kinds = self._kinds.to(styled.device)
        guided = torch.log_softmax(guided, dim=-1)
        within = guided - _kind_logsumexp(guided, kinds, len(self._guided))  # log p(value | kind), guided
        kept = within + _kind_logsumexp(styled, kinds, len(self._guided))  # times the conditional p(kind)
        return torch.where(self._guided.to(styled.device)[kinds], kept, styled)


def guidance_processor(
    model: Any, guidance: float, pad_token_id: int, *, contrast: str = "none", **options: Any
) -> StyleGuidanceLogitsProcessor:
    """The `StyleGuidanceLogitsProcessor` of ``model`` at scale ``guidance``, its ids read from the model's
    config: ``Composer_None``, and for ``contrast="composers"`` the composers it was trained on
    (``config.trained_composers``; every composer of the vocabulary for a model that does not record them).
    ``options``: the processor's ``warmup``, ``rescale`` and ``guided_kinds``."""
    vocabulary = list(getattr(model.config, "event_vocabulary", None) or [])
    if COMPOSER_NONE not in vocabulary:
        raise ModelInputError(f"style_guidance needs {COMPOSER_NONE} in config.event_vocabulary")
    if contrast not in CONTRASTS:
        raise ModelInputError(f"style_guidance_contrast must be one of {', '.join(CONTRASTS)}, got {contrast!r}")
    contrast_ids = None
    if contrast != "none":
        names = getattr(model.config, "trained_composers", None)
        tokens = [event("Composer", name) for name in names] if names is not None else [
            token for token in vocabulary if split_event(token)[0] == "Composer" and token != COMPOSER_NONE]
        contrast_ids = [vocabulary.index(token) for token in tokens if token in vocabulary]
    return StyleGuidanceLogitsProcessor(model, guidance, vocabulary.index(COMPOSER_NONE), pad_token_id,
                                        contrast_token_ids=contrast_ids, **options)


def _weighted_std(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Standard deviation of each row of ``values`` [B, V] under the distribution ``weights`` [B, V]. [B, 1]"""
    mean = (weights * values).sum(dim=-1, keepdim=True)
    return (weights * (values - mean) ** 2).sum(dim=-1, keepdim=True).sqrt()


def _kind_logsumexp(values: torch.Tensor, kinds: torch.Tensor, n_kinds: int) -> torch.Tensor:
    """log of the total probability of each token's kind, per token: ``logsumexp`` over the tokens of the
    same kind. ``values`` [B, V] log-probabilities, ``kinds`` [V]. [B, V]"""
    peak = values.max(dim=-1, keepdim=True).values  # [B, 1], for a stable exp
    totals = torch.zeros(values.shape[0], n_kinds, device=values.device).index_add_(1, kinds, (values - peak).exp())
    return totals.clamp(min=torch.finfo(totals.dtype).tiny).log()[:, kinds] + peak  # an empty kind: a tiny total, not -inf


__all__ = ["CONTRASTS", "STYLE_GUIDANCE_OPTIONS", "StyleGuidanceLogitsProcessor", "guidance_processor"]
