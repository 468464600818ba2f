"""The Generality-to-Mastery decoder (SPEC §3) and composer classifier (SPEC §6) as transformers models.

Numerically the same function as the original: token embedding scaled by sqrt(d) and dropped out twice,
concatenated (not interleaved) sinusoidal positions, pre-LN layers (post-LN with `pre_layer_norm=False`)
without a final LayerNorm, gated style adapters after some layers conditioned on the embedded composer
token, and an untied output layer with bias.

Beyond the original: batched inputs with left padding (positions and the composer condition are taken per
row from the attention mask), a key/value cache for generation, eager or SDPA attention, gradient
checkpointing.

How the composer condition survives the key/value cache: a cached decoding step only sees the new token,
so the condition cannot be read from the inputs. Every forward therefore accepts `style_token_ids` (one id
per row), and `G2MForCausalLM.prepare_inputs_for_generation` recomputes it at every step from the full
sequence that `generate()` keeps (the first attended token of each row). Nothing about it is stored on the
cache, so beam search, cache reordering and cache cropping need no special care. A hand-written decoding
loop passes `style_token_ids=prompt_ids[:, 0]` (its composer tokens) with every cached step.

Attention masks are made by transformers' mask helpers (`masking_utils`). The one thing kept on the cache
is whether its sequences hold padding that matters (`padding_free`), found by the call that fills it
first: decoding steps then never read mask values (no host synchronisation per step), and reordering or
cropping the cache cannot make it untrue.

Remote-code file: imports only torch, transformers and its sibling files (relative imports).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    GenerationMixin,
    LogitsProcessorList,
    PreTrainedModel,
)
from transformers import initialization as init
from transformers.cache_utils import Cache, DynamicCache
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, bidirectional_mask_function, causal_mask_function
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast, SequenceClassifierOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import can_return_tuple
from transformers.utils.deprecation import deprecate_kwarg

from .configuration_g2m import G2MConfig
from .errors import ModelInputError
from .grammar import remi_generate_arguments
from .style_guidance import STYLE_GUIDANCE_OPTIONS, StyleGuidanceLogitsProcessor, guidance_processor
from .texture_plan import parse_knobs, prompt_plan
from .vocab import event

AttentionFunction = Callable[..., tuple[torch.Tensor, torch.Tensor | None]]


# --- small tensor helpers -------------------------------------------------------------------------------


def first_attended(values: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Each row's entry of ``values`` (``[B, T, ...]``) at its first attended position (after any left padding;
    position 0 for every row without a mask): ``[B, ...]``. A row's style token is its first attended token."""
    if attention_mask is None:
        return values[:, 0]
    rows = torch.arange(values.shape[0], device=values.device)
    return values[rows, attention_mask.long().argmax(dim=-1)]  # argmax returns the first maximum


def positions_from_mask(
    attention_mask: torch.Tensor | None, batch_size: int, query_length: int, past_length: int, device: torch.device
) -> torch.Tensor:
    """Position of every query token, counting only attended tokens, so a left-padded row starts at 0. [B, T]"""
    if attention_mask is None:
        return torch.arange(past_length, past_length + query_length, device=device).expand(batch_size, -1)
    positions = attention_mask.long().cumsum(dim=-1) - 1  # [B, past + T]
    return positions.masked_fill(attention_mask == 0, 0)[:, -query_length:]


def sinusoidal_positions(position_ids: torch.Tensor, dim: int) -> torch.Tensor:
    """Concatenated sinusoids [sin(p * f), cos(p * f)] with f = 1 / 10000^(2i / dim), in float32. [B, T, dim]

    Computed on the fly (a few hundred multiplies): nothing to save, and nothing that `from_pretrained`
    could leave uninitialised.
    """
    inv_freq = 1.0 / (10000 ** (torch.arange(0.0, dim, 2.0, device=position_ids.device) / dim))  # [dim / 2]
    angles = position_ids.float()[..., None] * inv_freq  # [B, T, dim / 2]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def padding_is_invisible(visible: torch.Tensor, causal: bool) -> bool:
    """Whether a padding mask would change nothing for the real tokens.

    True without any padding, and for causal attention with right padding only: a real token never
    looks at a later position.
    """
    if not causal:
        return bool(visible.all())
    return not bool((visible[:, 1:] & ~visible[:, :-1]).any())  # no padding before a real token


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain softmax attention; also the one that can return the attention weights."""
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling  # [B, H, T, K]
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = nn.functional.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = nn.functional.dropout(weights, p=dropout, training=module.training)
    output = torch.matmul(weights, value).transpose(1, 2).contiguous()  # [B, T, H, head_dim]
    return output, weights


# --- layers ---------------------------------------------------------------------------------------------


class G2MAttention(nn.Module):
    """Multi-head self-attention without biases (the original's `nn.MultiheadAttention(bias=False)`)."""

    def __init__(self, config: G2MConfig, layer_idx: int, is_causal: bool):
        super().__init__()
        self.layer_idx = layer_idx
        self.is_causal = is_causal  # read by the SDPA interface when no mask is passed
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = config.attention_dropout
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.o_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None,
        attention_function: AttentionFunction,
        cache: Cache | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch_size, length, _ = hidden_states.shape
        heads_shape = (batch_size, length, self.num_heads, self.head_dim)
        query = self.q_proj(hidden_states).view(heads_shape).transpose(1, 2)  # [B, H, T, head_dim]
        key = self.k_proj(hidden_states).view(heads_shape).transpose(1, 2)
        value = self.v_proj(hidden_states).view(heads_shape).transpose(1, 2)
        if cache is not None:
            key, value = cache.update(key, value, self.layer_idx)  # [B, H, past + T, head_dim]

        output, weights = attention_function(
            self,
            query,
            key,
            value,
            attention_mask,
            dropout=self.attention_dropout if self.training else 0.0,
            scaling=self.scaling,
        )
        output = output.reshape(batch_size, length, -1)  # [B, T, d]
        return self.o_proj(output), weights


class G2MFeedForward(nn.Module):
    """Linear -> ReLU -> Dropout -> Linear -> Dropout (the original's `ffn` Sequential)."""

    def __init__(self, config: G2MConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.activation = nn.ReLU()
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.dropout(self.activation(self.fc1(hidden_states)))  # [B, T, d_ff]
        return self.dropout(self.fc2(hidden_states))


class G2MDecoderLayer(GradientCheckpointingLayer):
    """Transformer layer, pre-LN: x + Attention(LN1(x)), then x + FFN(LN2(x)); or with
    ``config.pre_layer_norm=False`` post-LN: LN1(x + Attention(x)), then LN2(x + FFN(x))."""

    def __init__(self, config: G2MConfig, layer_idx: int, is_causal: bool):
        super().__init__()
        self.pre_layer_norm = config.pre_layer_norm
        self.input_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attn = G2MAttention(config, layer_idx, is_causal)
        self.post_attention_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = G2MFeedForward(config)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        attention_function: AttentionFunction = eager_attention_forward,
        cache: Cache | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not self.pre_layer_norm:
            attention_output, weights = self.self_attn(hidden_states, attention_mask, attention_function, cache=cache)
            hidden_states = self.input_layernorm(hidden_states + attention_output)
            return self.post_attention_layernorm(hidden_states + self.mlp(hidden_states)), weights
        attention_output, weights = self.self_attn(
            self.input_layernorm(hidden_states), attention_mask, attention_function, cache=cache
        )
        hidden_states = hidden_states + attention_output
        hidden_states = hidden_states + self.mlp(self.post_attention_layernorm(hidden_states))
        return hidden_states, weights


class G2MStyleAdapter(nn.Module):
    """Gated style adapter: x + W2(GELU(W1([x ; style]))), W1: 2d -> 2d, W2: 2d -> d, both with bias."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.linear1 = nn.Linear(2 * hidden_size, 2 * hidden_size)
        self.activation = nn.GELU()
        self.linear2 = nn.Linear(2 * hidden_size, hidden_size)

    def forward(self, hidden_states: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        joint = torch.cat([hidden_states, style.expand_as(hidden_states)], dim=-1)  # [B, T, 2d]
        return hidden_states + self.linear2(self.activation(self.linear1(joint)))


class G2MStyleAdapters(nn.Module):
    """The style adapters, each named by the index of the layer it follows (`style_adapters.<layer>`).

    A plain module rather than an `nn.ModuleDict`, called as a whole (`style_adapters(layer_idx, x, style)`)
    instead of indexed, so that PEFT's `modules_to_save=["style_adapters"]` can wrap it.
    """

    def __init__(self, config: G2MConfig):
        super().__init__()
        for i in config.style_adapter_layers:
            self.add_module(str(i), G2MStyleAdapter(config.hidden_size))

    def __getitem__(self, layer: str | int) -> G2MStyleAdapter:
        return self._modules[str(layer)]

    def __len__(self) -> int:
        return len(self._modules)

    def forward(self, layer_idx: int, hidden_states: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        adapter = self._modules.get(str(layer_idx))
        return hidden_states if adapter is None else adapter(hidden_states, style)


# --- models ---------------------------------------------------------------------------------------------


class G2MPreTrainedModel(PreTrainedModel):
    """Weight initialisation and the transformers class attributes shared by the G2M models."""

    config_class = G2MConfig
    config: G2MConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _no_split_modules = ["G2MDecoderLayer"]
    _supports_sdpa = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """The original init: Linear / Embedding weights N(0, std), biases 0, LayerNorm gains N(1, std)."""
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Embedding)):
            init.normal_(module.weight, mean=0.0, std=std)  # the padding row too, as in the original
        elif isinstance(module, nn.LayerNorm):
            init.normal_(module.weight, mean=1.0, std=std)
        if getattr(module, "bias", None) is not None:
            init.zeros_(module.bias)


class G2MModel(G2MPreTrainedModel):
    """The Transformer stack without an output head: embeddings, positions, layers and style adapters.

    `is_causal=False` makes it the bidirectional encoder of the composer classifier.
    """

    def __init__(self, config: G2MConfig, is_causal: bool = True):
        super().__init__(config)
        self.is_causal = is_causal
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.embed_scale = math.sqrt(config.hidden_size)
        self.embed_dropout = nn.Dropout(config.hidden_dropout_prob)
        # The original drops out a second time, after taking the style condition and before adding positions.
        self.input_dropout = nn.Dropout(config.hidden_dropout_prob)
        self.layers = nn.ModuleList([G2MDecoderLayer(config, i, is_causal) for i in range(config.num_hidden_layers)])
        self.style_adapters = G2MStyleAdapters(config)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embed_tokens = value

    def _scale(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Embeddings times sqrt(d), then the embedding dropout: what the style condition sees. [..., d]"""
        return self.embed_dropout(embeddings * self.embed_scale)

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        style_token_ids: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
    ) -> BaseModelOutputWithPast:
        r"""
        Args:
            input_ids: token ids [B, T] (new tokens only when a cache holds the earlier ones).
            attention_mask: 1 for real tokens, 0 for padding, over the cached and the new tokens [B, past + T].
                Left padding is supported: positions and the style token are taken per row from it.
            position_ids: positions of the new tokens [B, T]; derived from `attention_mask` when omitted.
            cache: key/value cache (`DynamicCache`) from an earlier call; `past_key_values` is accepted too.
            inputs_embeds: unscaled token embeddings [B, T, d] instead of `input_ids`.
            style_token_ids: the token conditioning the style adapters, one per row [B] (the composer token).
                Defaults to each row's first attended token; required for a step after a filled cache.
            use_cache: return a cache (default: when one is passed in, or `config.use_cache` outside training).
            output_attentions: return the attention weights of every layer (computed with eager attention).
            output_hidden_states: return the input of the first layer and the output of every layer.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ModelInputError("pass exactly one of input_ids and inputs_embeds")
        output_attentions = self.config.output_attentions if output_attentions is None else output_attentions
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        if use_cache is None:  # a cache passed in is used; training makes none by default
            use_cache = cache is not None or (self.config.use_cache and self.is_causal and not self.training)
        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)
        if not use_cache:
            cache = None

        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        hidden_states = self._scale(inputs_embeds)  # [B, T, d]
        batch_size, length, _ = hidden_states.shape
        past_length = cache.get_seq_length() if cache is not None else 0
        if attention_mask is not None and attention_mask.shape[-1] != past_length + length:
            raise ModelInputError(
                f"attention_mask covers {attention_mask.shape[-1]} tokens but there are {past_length} cached "
                f"and {length} new ones; pass the mask of the whole sequence"
            )

        style = self._style_condition(hidden_states, attention_mask, style_token_ids, past_length)  # [B, 1, d]
        if position_ids is None:
            position_ids = positions_from_mask(attention_mask, batch_size, length, past_length, hidden_states.device)
        positions = sinusoidal_positions(position_ids, self.config.hidden_size).to(hidden_states.dtype)
        hidden_states = self.input_dropout(hidden_states) + positions

        implementation = "eager" if output_attentions else self.config._attn_implementation
        attention_function = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
        mask = self._attention_mask(attention_mask, hidden_states, cache, past_length, implementation)

        all_hidden_states = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for i, layer in enumerate(self.layers):
            hidden_states, weights = layer(
                hidden_states, attention_mask=mask, attention_function=attention_function, cache=cache
            )
            hidden_states = self.style_adapters(i, hidden_states, style)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            if output_attentions:
                all_attentions += (weights,)

        return BaseModelOutputWithPast(
            last_hidden_state=hidden_states,
            cache=cache,
            hidden_states=all_hidden_states,
            attentions=all_attentions,
        )

    def _style_condition(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None,
        style_token_ids: torch.Tensor | None,
        past_length: int,
    ) -> torch.Tensor | None:
        """The embedded style (composer) token of each row, after scaling and embedding dropout. [B, 1, d]"""
        if not self.config.style_adapter_layers:
            return None
        if style_token_ids is not None:
            return self._scale(self.embed_tokens(style_token_ids))[:, None, :]
        if past_length:
            raise ModelInputError(
                "the style adapters need each row's composer token, which a cached step does not see: "
                "pass style_token_ids (e.g. prompt_ids[:, 0]) with every call after the first"
            )
        return first_attended(hidden_states, attention_mask)[:, None, :]

    def _attention_mask(
        self,
        attention_mask: torch.Tensor | None,
        hidden_states: torch.Tensor,
        cache: Cache | None,
        past_length: int,
        implementation: str,
    ) -> torch.Tensor | None:
        """The mask for this call, made by transformers' mask helpers for ``implementation`` (SDPA: boolean,
        eager: additive), or None when the attention needs none (its fast path).

        Whether padding can matter is read from the values of ``attention_mask``, which costs a host
        synchronisation: it is done for calls that start a sequence (training, a prompt), and the answer
        is kept on the cache (``padding_free``), so that the decoding steps after them never wait for it.
        Padding that real tokens never see (causal attention, right padding only) needs no mask either.
        """
        length = hidden_states.shape[1]
        if attention_mask is not None:
            if cache is not None and past_length == 0:
                cache.padding_free = bool(attention_mask.all())  # read once; the decoding steps trust it
            if length == 1 and past_length > 0:  # a decoding step: no padding anywhere, else the mask as given
                invisible = getattr(cache, "padding_free", False)
            else:
                invisible = padding_is_invisible(attention_mask.bool(), self.is_causal)
            if invisible:
                attention_mask = None
        if attention_mask is None and (length == 1 or not self.is_causal):
            return None  # every key is visible
        make_mask = ALL_MASK_ATTENTION_FUNCTIONS.get(implementation, ALL_MASK_ATTENTION_FUNCTIONS["eager"])
        return make_mask(
            batch_size=hidden_states.shape[0],
            q_length=length,
            kv_length=past_length + length,
            q_offset=past_length,
            mask_function=causal_mask_function if self.is_causal else bidirectional_mask_function,
            attention_mask=None if attention_mask is None else attention_mask.bool(),
            # SDPA's own causal flag stands in for the mask where it is right (no padding, no cache):
            # decided from the shapes alone when there is no padding mask to read
            allow_is_causal_skip=attention_mask is None,
            dtype=hidden_states.dtype,
            device=hidden_states.device,
        )


class G2MForCausalLM(G2MPreTrainedModel, GenerationMixin):
    """The Generality-to-Mastery decoder with its (untied, biased) output layer; generates with `generate()`."""

    def __init__(self, config: G2MConfig):
        super().__init__(config)
        self.model = G2MModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        style_token_ids: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        logits_to_keep: int = 0,
        style_guidance_processor: StyleGuidanceLogitsProcessor | None = None,
        **loss_kwargs,
    ) -> CausalLMOutputWithPast:
        r"""
        Args:
            labels: target ids [B, T], unshifted (the loss predicts `labels[:, 1:]` from the positions before);
                -100 and the padding id are ignored.
            logits_to_keep: compute logits for the last this many positions only (0: all), as in generation.
            style_guidance_processor: set by `generate` under style guidance: every row also runs under
                its contrast composers in the same batch (``Composer_None``: the cache holds 2B rows); the
                styled outputs are returned and the contrast rows' next-token logits left with the processor.
            loss_kwargs: passed to the loss (e.g. `num_items_in_batch` from `Trainer`).

        The other arguments are those of [`G2MModel.forward`].
        """
        guidance = style_guidance_processor
        if guidance is not None:
            if input_ids is None or labels is not None:
                raise ModelInputError("style_guidance_processor needs input_ids and no labels (it serves generation)")
            past_length = cache.get_seq_length() if cache is not None else 0
            input_ids, attention_mask, position_ids, style_token_ids = guidance.pair_inputs(
                input_ids, attention_mask, position_ids, style_token_ids, past_length
            )  # [copies*B, ...]: the styled rows, then the same rows under each contrast composer
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            style_token_ids=style_token_ids,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        hidden_states = outputs.last_hidden_state[:, -logits_to_keep:]  # -0 keeps every position
        logits = self.lm_head(self.dropout(hidden_states))  # [B, T, V]
        if guidance is not None:
            logits = guidance.keep_styled(logits)  # [copies*B, T, V] -> the styled [B, T, V]

        loss = None
        if labels is not None:
            if self.config.pad_token_id is not None:
                labels = labels.masked_fill(labels == self.config.pad_token_id, -100)
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **loss_kwargs)

        hidden, attentions = outputs.hidden_states, outputs.attentions
        if guidance is not None:  # the styled rows' only
            hidden = None if hidden is None else tuple(h.chunk(guidance.copies)[0] for h in hidden)
            attentions = None if attentions is None else tuple(a.chunk(guidance.copies)[0] for a in attentions)
        return CausalLMOutputWithPast(
            loss=loss, logits=logits, cache=outputs.cache, hidden_states=hidden, attentions=attentions
        )

    def prepare_inputs_for_generation(self, input_ids: torch.LongTensor, attention_mask=None, **kwargs) -> dict:
        """The generic preparation, plus each row's style token read from the full sequence generated so far."""
        model_inputs = super().prepare_inputs_for_generation(input_ids, attention_mask=attention_mask, **kwargs)
        if model_inputs.get("style_token_ids") is None:
            model_inputs["style_token_ids"] = first_attended(input_ids, attention_mask)
        return model_inputs

    def generate(
        self,
        inputs: torch.Tensor | None = None,
        generation_config=None,
        logits_processor=None,
        *,
        remi_grammar: bool = True,
        max_bars: int = 128,
        max_events: int | None = None,
        style_guidance: float | None = None,
        style_guidance_warmup: int | None = None,
        style_guidance_rescale: float | None = None,
        style_guidance_kinds: Sequence[str] | None = None,
        style_guidance_contrast: str | None = None,
        composer_texture: bool = True,
        density: str | float | None = None,
        polyphony: str | float | None = None,
        register: str | float | None = None,
        texture_steering: float | None = None,
        **kwargs,
    ):
        """`GenerationMixin.generate` with the original's sampling defaults and REMI-grammar decoding.

        Settings that neither the call nor a generation config gives take the SPEC §5 values
        (`grammar.SPEC_GENERATION_DEFAULTS`: sampling, temperature 1.1, top-p 0.99; at most 1200 tokens).
        With `remi_grammar` (and `config.event_vocabulary` set) a `RemiGrammarLogitsProcessor` is
        appended to `logits_processor`, so every row is a valid piece of at most `max_bars` bars
        (and `max_events` events, padding not counted) that ends with EOS before the length limit.
        `style_guidance` (default: the generation config's ``style_guidance``, else 1) is the scale of
        classifier-free guidance on the composer (`StyleGuidanceLogitsProcessor`): 1 samples plainly,
        larger values push every step away from what the model predicts under ``Composer_None``.
        `style_guidance_warmup`, `style_guidance_rescale`, `style_guidance_kinds` and `style_guidance_contrast`
        (defaults likewise from the generation config, else none) shape that push: its ``warmup``,
        ``rescale``, ``guided_kinds`` and what it pushes away from (``"none"``: ``Composer_None``;
        ``"composers"``: the model's other trained composers).
        Texture (a model trained with texture-control tokens, with the grammar): as in `generate_midi`, every
        bar is written under a density, polyphony and register level (`texture_plan`). By default each row
        follows real pieces of the composer its prompt names (``config.composer_textures``), and a prompt of
        the composer token alone gets the tempo class of the first of them; ``density`` / ``polyphony`` /
        ``register`` fix a level for every bar (``"low"``, ``"mid"``, ``"high"`` or a number,
        `texture_plan.parse_level`); ``composer_texture=False`` leaves the bars without a knob to the model.
        The plan is drawn from the torch random state (``torch.manual_seed`` repeats it).
        ``texture_steering`` (default: the generation config's, else 0) holds each bar to its levels. The
        output holds the control tokens where the grammar wrote them; `G2MTokenizer.decode_midi` skips them.
        Every other argument is `GenerationMixin.generate`'s.
        """
        options = {"warmup": style_guidance_warmup, "rescale": style_guidance_rescale, "guided_kinds": style_guidance_kinds,
                   "contrast": style_guidance_contrast}
        logits_processor = self._style_guidance_processors(
            style_guidance, options, generation_config, logits_processor, kwargs
        )
        texture = None
        if remi_grammar and self.config.event_vocabulary:
            knobs = parse_knobs(density, polyphony, register)
            inputs, kwargs, texture = self._texture(inputs, kwargs, knobs, composer_texture, max_bars,
                                                    texture_steering, generation_config)
        generation_config, logits_processor, kwargs = remi_generate_arguments(
            self, inputs, generation_config, logits_processor, kwargs, remi_grammar, max_bars, max_events, texture
        )
        guidance = [p for p in logits_processor if isinstance(p, StyleGuidanceLogitsProcessor) and p.guidance != 1]
        if guidance:  # its unstyled rows go through the model with the styled ones (one forward per step)
            beams = next((b for b in (kwargs.get("num_beams"), getattr(generation_config, "num_beams", None),
                                      self.generation_config.num_beams) if b is not None), 1)
            if beams > 1:  # beam search reorders the cache by beam, which knows nothing of the unstyled rows
                raise ModelInputError("style_guidance works with sampling or greedy search, not with num_beams > 1")
            kwargs["style_guidance_processor"] = guidance[0]
        return super().generate(
            inputs, generation_config=generation_config, logits_processor=logits_processor, **kwargs
        )

    def _configured(self, name: str, value, default, generation_config):
        """A generation setting: the call's ``value``, else the first of ``generation_config`` and the model's
        generation config that sets ``name`` (0 is a setting too), else ``default``."""
        if value is not None:
            return value
        found = (getattr(c, name, None) for c in (generation_config, self.generation_config) if c is not None)
        return next((v for v in found if v is not None), default)

    def _texture(
        self, inputs, kwargs: dict, knobs: dict, composer_texture: bool, bars: int, texture_steering: float | None,
        generation_config,
    ) -> tuple[torch.Tensor | None, dict, dict | None]:
        """The texture plan of a `generate` call (`texture_plan.prompt_plan`) as grammar arguments (``None``:
        nothing planned), with ``inputs`` / ``kwargs`` extended by each row's planned Tempo token where every
        prompt is its composer token alone (as `generate_midi` primes its prompts)."""
        prompts = kwargs.get("input_ids") if inputs is None else inputs
        if prompts is None:
            return inputs, kwargs, None
        seed = int(torch.randint(2**31 - 1, ()))
        style_ids = first_attended(prompts, kwargs.get("attention_mask"))  # [B], as the style adapters read them
        plan = prompt_plan(self.config, style_ids.tolist(), bars, seed, knobs, composer_texture)
        if plan is None:
            return inputs, kwargs, None
        texture_steering = self._configured("texture_steering", texture_steering, 0.0, generation_config)
        vocabulary = self.config.event_vocabulary
        alone = prompts.shape[1] == 1 and all(vocabulary[i].startswith("Composer_") for i in prompts[:, 0].tolist())
        if alone and None not in plan.tempi:
            tempi = torch.tensor([[vocabulary.index(event("Tempo", tempo))] for tempo in plan.tempi], device=prompts.device)
            prompts = torch.cat([prompts, tempi], 1)  # [B, 2]: Composer, Tempo
            if kwargs.get("attention_mask") is not None:
                kwargs = {**kwargs, "attention_mask": torch.ones_like(prompts)}
            if inputs is None:
                kwargs = {**kwargs, "input_ids": prompts}
            else:
                inputs = prompts
        return inputs, kwargs, plan.grammar_arguments(texture_steering, knobs)

    def _style_guidance_processors(
        self, style_guidance: float | None, options: dict, generation_config, logits_processor, kwargs: dict
    ) -> LogitsProcessorList:
        """``logits_processor`` with a `StyleGuidanceLogitsProcessor` in front when guidance is asked for.
        ``options``: its keyword arguments, None where the generation config (``style_guidance_<name>``) decides."""
        processors = LogitsProcessorList(logits_processor or [])
        style_guidance = self._configured("style_guidance", style_guidance, 1.0, generation_config)
        options = {key: self._configured(STYLE_GUIDANCE_OPTIONS[key], value, None, generation_config)
                   for key, value in options.items()}
        if not style_guidance >= 0:
            raise ModelInputError(f"style_guidance must be at least 0 (1: no guidance), got {style_guidance}")
        if style_guidance == 1.0:
            return processors
        pad_token_id = kwargs.get("pad_token_id", self.config.pad_token_id)
        guidance = guidance_processor(
            self, style_guidance, pad_token_id, **{key: value for key, value in options.items() if value is not None}
        )
        return LogitsProcessorList([guidance, *processors])


class G2MForSequenceClassification(G2MPreTrainedModel):
    """The composer classifier (SPEC §6): a bidirectional G2M encoder classifying from its first position.

    The original feeds a piece without its composer token, masks padding keys, and puts a biased linear
    layer on the first position's output. Labels come from `config.id2label`. (Training-time difference:
    the original adds positions before its second embedding dropout; here both dropouts come first, as in
    the decoder.)
    """

    def __init__(self, config: G2MConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = G2MModel(config, is_causal=False)
        self.score = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
    ) -> SequenceClassifierOutput:
        r"""
        Args:
            attention_mask: 1 for real tokens [B, T]; defaults to `input_ids != pad_token_id` (as the original).
            labels: class ids [B] (see `config.id2label`).

        The other arguments are those of [`G2MModel.forward`].
        """
        if attention_mask is None and input_ids is not None and self.config.pad_token_id is not None:
            attention_mask = (input_ids != self.config.pad_token_id).long()
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            use_cache=False,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        hidden_states = outputs.last_hidden_state  # [B, T, d]
        logits = self.score(first_attended(hidden_states, attention_mask))  # [B, num_labels]

        loss = None
        if labels is not None:
            loss = self.loss_function(labels=labels, pooled_logits=logits, config=self.config)
        return SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


def register_auto_classes() -> None:
    """Register the G2M classes with the Auto classes, in this process and in the `auto_map` of saved folders.

    Called when `g2m_hf` is imported (never at import of this file, which also runs as Hub remote code).
    """
    AutoConfig.register(G2MConfig.model_type, G2MConfig, exist_ok=True)
    G2MConfig.register_for_auto_class()
    for auto_class, model_class in (
        (AutoModel, G2MModel),
        (AutoModelForCausalLM, G2MForCausalLM),
        (AutoModelForSequenceClassification, G2MForSequenceClassification),
    ):
        auto_class.register(G2MConfig, model_class, exist_ok=True)
        model_class.register_for_auto_class(auto_class.__name__)


__all__ = [
    "G2MPreTrainedModel",
    "G2MModel",
    "G2MForCausalLM",
    "G2MForSequenceClassification",
    "G2MStyleAdapter",
    "G2MStyleAdapters",
    "register_auto_classes",
]
