"""g2m_hf: Generality-to-Mastery composer-style piano music generation, Hugging Face native."""

from .errors import G2MError, RemiError, VocabularyError

__version__ = "0.1.0"

__all__ = ["G2MError", "RemiError", "VocabularyError", "__version__"]
