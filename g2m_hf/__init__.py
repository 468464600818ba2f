"""g2m_hf: Generality-to-Mastery composer-style piano music generation, Hugging Face native."""

from transformers import AutoTokenizer

from .configuration_g2m import G2MConfig
from .data import G2MDataCollator, build_dataset, composer_balanced_weights
from .errors import G2MError, RemiError, VocabularyError
from .evaluation import default_classifier_path
from .generation import GeneratedPiece, default_base_model_path, default_model_path, generate_midi, infill_midi
from .grammar import RemiGrammarLogitsProcessor
from .metrics import compute_metrics
from .modeling_g2m import (
    G2MForCausalLM,
    G2MForSequenceClassification,
    G2MModel,
    G2MPreTrainedModel,
    register_auto_classes,
)
from .remi import events_to_midi, midi_to_events
from .tokenization_g2m import G2MTokenizer

AutoTokenizer.register(G2MConfig, tokenizer_class=G2MTokenizer)
register_auto_classes()

__version__ = "0.1.0"

__all__ = [
    "G2MConfig",
    "G2MModel",
    "G2MForCausalLM",
    "G2MForSequenceClassification",
    "G2MPreTrainedModel",
    "G2MTokenizer",
    "G2MDataCollator",
    "build_dataset",
    "composer_balanced_weights",
    "GeneratedPiece",
    "RemiGrammarLogitsProcessor",
    "default_base_model_path",
    "default_classifier_path",
    "default_model_path",
    "generate_midi",
    "infill_midi",
    "compute_metrics",
    "midi_to_events",
    "events_to_midi",
    "G2MError",
    "RemiError",
    "VocabularyError",
    "__version__",
]
