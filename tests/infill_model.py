"""A tiny model that knows the infill tokens (random weights), for the tests of infilling and of the app's
Infill tab: a model this small infills (at random) in seconds, where the bundled one takes longer."""

from __future__ import annotations

from pathlib import Path

from g2m_hf import G2MTokenizer
from g2m_hf import infill as layout
from g2m_hf.vocab import INFILL_TOKENS, complete_vocabulary
from tests.test_generation import tiny_model

INFILL_VOCAB = complete_vocabulary() + list(INFILL_TOKENS)
"""The event vocabulary of `infill_tokenizer`: plain REMI, then the infill tokens."""


def infill_tokenizer() -> G2MTokenizer:
    """The default tokenizer with the infill tokens added."""
    tokenizer = G2MTokenizer()
    layout.add_infill_tokens(tokenizer)
    return tokenizer


def save_infill_model(folder: Path, seed: int = 5, training_window: int = 300) -> Path:
    """A tiny random model with the infill tokens and its tokenizer, saved as a model folder (``folder``).

    A short ``training_window`` keeps it quick: a random model writes long spans until the window ends them."""
    model = tiny_model(seed, vocabulary=INFILL_VOCAB)
    model.config.training_window = training_window
    model.save_pretrained(folder)
    infill_tokenizer().save_pretrained(folder)
    return folder
