"""Configuration of the Generality-to-Mastery models (SPEC §3 decoder, SPEC §6 composer classifier).

Remote-code file: copied flat into Hub repositories, so it imports only the standard library,
transformers and its sibling files (relative imports).
"""

from __future__ import annotations

from dataclasses import field

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from .errors import ModelConfigError
from .validation import fraction, positive_int
from .vocab import BOS_TOKEN, EOS_TOKEN, PAD_TOKEN, complete_vocabulary

_DEFAULT_VOCABULARY = complete_vocabulary()

_SIZES = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
          "max_position_embeddings")

PAPER_STYLE_ADAPTER_LAYERS = (1, 3, 5, 7, 9)
"""The paper adds a gated style adapter after every other layer of the first ten (0-based indices)."""


@strict
class G2MConfig(PreTrainedConfig):
    r"""Configuration of [`G2MModel`], [`G2MForCausalLM`] and [`G2MForSequenceClassification`].

    The defaults are the paper's decoder (about 46M parameters with adapters, 38M without), and the
    vocabulary ids default to the deterministic complete vocabulary (`vocab.complete_vocabulary()`).

    Args:
        vocab_size: number of REMI events (token ids).
        hidden_size: model width; also the word-embedding size (the original has no projection).
        num_hidden_layers: Transformer layers (12 for the decoder, 6 for the composer classifier).
        num_attention_heads: attention heads per layer.
        intermediate_size: width of the feed-forward block.
        max_position_embeddings: longest sequence the model is meant for (the sinusoidal positions themselves
            have no limit; the original trains on 2400-token windows and generates up to 1200 events).
        hidden_dropout_prob: dropout on the embeddings, inside and after the feed-forward block and before the
            output layer.
        attention_dropout: dropout on the attention probabilities.
        style_adapter_layers: 0-based indices of the layers followed by a gated style adapter; empty for a
            pretraining (general) model or the classifier.
        initializer_range: standard deviation of the normal initialisation (weights and LayerNorm gains).
        layer_norm_eps: LayerNorm epsilon.
        pre_layer_norm: where each layer normalises. True (pre-LN): ``x + Attention(LN1(x))``, then
            ``x + FFN(LN2(x))``, as every published configuration of the original (``pre_lnorm: True``).
            False (post-LN): ``LN1(x + Attention(x))``, then ``LN2(x + FFN(x))``, the original code's
            default (``pre_lnorm=False``). Both have the same parameters, so a checkpoint does not tell them
            apart: whoever trained it knows (see ``g2m-convert-original --layer-norm``).
        use_cache: whether generation keeps a key/value cache.
        event_vocabulary: the event string of every id (id order); lets `generate()` build the REMI grammar
            without a tokenizer. Set by whoever builds a model from a tokenizer.
        trained_composers: the composers (names without ``Composer_``) the model was fine-tuned on, set by
            fine-tuning; `None` when unknown. The vocabulary may name more composers than were trained
            (the complete vocabulary has Chopin and Schumann), so "every composer" means these.
        training_window: events per training window (the recipe's ``data.max_length``, written by
            pretraining and fine-tuning; 2400 for converted original checkpoints). Generation keeps every
            context within it, sliding over longer pieces (`longform`); `None`: unknown (generation
            assumes `longform.DEFAULT_TRAINING_WINDOW`).
        composer_textures: each trained composer's real bar-by-bar texture (`texture_plan.ComposerTextures`:
            per composer, one line of texture-control levels per training piece), measured by packaging; a
            model with texture-control tokens follows it when no texture is asked for. `None`: none.
        composer_registers: each trained composer's register, measured by packaging on the same pieces: the
            10-90 % ranges of its 8-bar sections' mean pitch and share of notes at or above middle C
            (``[pitch low, pitch high, share low, share high]``), which texture steering keeps a piece's
            sections inside when no register is asked for. `None`: none.
    """

    model_type = "g2m"
    keys_to_ignore_at_inference = ["cache"]

    vocab_size: int = len(_DEFAULT_VOCABULARY)
    hidden_size: int = 512
    num_hidden_layers: int = 12
    num_attention_heads: int = 8
    intermediate_size: int = 2048
    max_position_embeddings: int = 4096
    hidden_dropout_prob: float = 0.1
    attention_dropout: float = 0.1
    style_adapter_layers: list[int] = field(default_factory=lambda: list(PAPER_STYLE_ADAPTER_LAYERS))
    initializer_range: float = 0.01
    layer_norm_eps: float = 1e-5
    pre_layer_norm: bool = True
    use_cache: bool = True
    pad_token_id: int | None = _DEFAULT_VOCABULARY.index(PAD_TOKEN)
    bos_token_id: int | None = _DEFAULT_VOCABULARY.index(BOS_TOKEN)
    eos_token_id: int | None = _DEFAULT_VOCABULARY.index(EOS_TOKEN)
    tie_word_embeddings: bool = False
    event_vocabulary: list[str] | None = None
    trained_composers: list[str] | None = None
    training_window: int | None = None
    composer_textures: dict[str, list[str]] | None = None
    composer_registers: dict[str, list[float]] | None = None

    def __post_init__(self, **kwargs):
        self.style_adapter_layers = sorted(set(self.style_adapter_layers))
        super().__post_init__(**kwargs)
        self._check()

    def _check(self) -> None:
        """Refuse shapes the model cannot be built with, naming the offending field."""
        for name in _SIZES:
            positive_int(name, getattr(self, name))
        for name in ("hidden_dropout_prob", "attention_dropout"):
            fraction(name, getattr(self, name))
        if self.hidden_size % self.num_attention_heads:
            raise ModelConfigError(
                f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads {self.num_attention_heads}"
            )
        outside = [i for i in self.style_adapter_layers if not 0 <= i < self.num_hidden_layers]
        if outside:
            raise ModelConfigError(
                f"style_adapter_layers {outside} name layers that do not exist "
                f"(num_hidden_layers={self.num_hidden_layers}, valid indices 0..{self.num_hidden_layers - 1})"
            )
        if self.event_vocabulary is not None and len(self.event_vocabulary) != self.vocab_size:
            raise ModelConfigError(
                f"event_vocabulary has {len(self.event_vocabulary)} events but vocab_size is {self.vocab_size}"
            )
        if self.training_window is not None and self.training_window < 8:
            raise ModelConfigError(f"training_window must be at least 8 events, got {self.training_window}")
        for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
            token_id = getattr(self, name)
            if token_id is not None and not 0 <= token_id < self.vocab_size:
                raise ModelConfigError(f"{name}={token_id} is outside the vocabulary (vocab_size={self.vocab_size})")


__all__ = ["G2MConfig", "PAPER_STYLE_ADAPTER_LAYERS"]
