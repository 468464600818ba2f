"""Model cards (README.md) of g2m model folders: the one builder every card goes through.

A card is YAML metadata, a title, a summary and a list of `CardSection`s. Each kind of card
composes its own list - a converted original checkpoint (`convert_original`), a trained folder
pushed to the Hub (``hub_upload.model_card``), the bundled default model
(``training/package_default_model.py``) - so adding a section to a card is appending one to
its list. The paper's figures come from `g2m_hf.paper`; the sections every Hub card shares
(usage, limitations, citation) are here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from .paper import PUBLISHED_METRICS, SYSTEM

TAGS = ["symbolic-music", "midi", "remi", "music-generation", "piano", "g2m"]
"""Hub tags of every g2m model card."""

DEFAULT_LICENSE = "mit"


@dataclass(frozen=True)
class CardSection:
    """One section of a model card: a heading (``level`` 2 is ``##``) and its Markdown body."""

    heading: str
    body: str
    level: int = 2


def build_card(
    metadata: ModelCardData, title: str, summary: str, sections: Sequence[CardSection] = ()
) -> ModelCard:
    """The card: ``metadata`` as YAML front matter, ``# title``, ``summary``, then ``sections`` in order.

    Nothing in it changes between two builds from the same inputs, so a re-push of an unchanged
    folder uploads an identical README.md.
    """
    text = f"---\n{metadata.to_yaml()}\n---\n\n# {title}\n\n{summary.strip()}\n"
    for section in sections:
        text += f"\n{'#' * section.level} {section.heading}\n\n{section.body.strip()}\n"
    return ModelCard(text)


def markdown_table(header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table; cells are written with ``str`` (format numbers before)."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows])


def paper_comparison() -> str:
    """One sentence with the paper's objective metrics for its own system (SPEC §7)."""
    paper = PUBLISHED_METRICS[SYSTEM]
    si = " / ".join(f"{paper[name]:.2f}" for name in ("SI_short", "SI_mid", "SI_long"))
    return (
        f"For comparison, the paper reports pitch-class entropy {paper['H']:.2f}, groove similarity "
        f"{paper['GS']:.2f} and\nstructureness {si} (short / mid / long) for the original system."
    )


def decoder_usage(repo_id: str, example_composer: str) -> str:
    """How to generate with a decoder repository: remote code, then the g2m_hf command line."""
    return f"""The model and tokenizer code is in the repository (`trust_remote_code=True`); only `transformers`
and `torch` are needed to generate token ids:

```python
from transformers import AutoModelForCausalLM, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{repo_id}", trust_remote_code=True)
model = AutoModelForCausalLM.from_pretrained("{repo_id}", trust_remote_code=True)
prompt = tokenizer.composer_prompt(["{example_composer}"], return_tensors="pt")
ids = model.generate(**prompt)  # samples like the original: temperature 1.1, top-p 0.99
print(tokenizer.ids_to_events(ids[0])[:12])
tokenizer.decode_midi(ids[0]).write("{example_composer.lower()}.mid")  # MIDI needs `pip install g2m_hf`
```

`generate()` follows the REMI grammar (a beat never goes backwards within a bar, PAD is never
sampled, a piece ends with EOS within 128 bars and 1200 events). With the `g2m_hf` package
installed, the command line does the same and writes MIDI files, event lists and piano rolls:

```bash
g2m-generate --model {repo_id} --composer {example_composer}
```"""


def classifier_usage(repo_id: str) -> str:
    """How to classify a MIDI file with a composer-classifier repository."""
    return f"""```python
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{repo_id}", trust_remote_code=True)
model = AutoModelForSequenceClassification.from_pretrained("{repo_id}", trust_remote_code=True)
ids = tokenizer.encode_midi("piece.mid")[1:1201]  # without the composer token, at most 1200 events
label = model.config.id2label[model(input_ids=torch.tensor([ids])).logits.argmax(-1).item()]
```"""


def adapter_usage(repo_id: str, base_model_id: str, tokenizer_id: str) -> str:
    """How to load a PEFT adapter repository on top of its base model."""
    return f"""The repository holds a PEFT adapter; load it on top of its base model:

```python
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

base = AutoModelForCausalLM.from_pretrained("{base_model_id}", trust_remote_code=True)
tokenizer = AutoTokenizer.from_pretrained("{tokenizer_id}", trust_remote_code=True)
model = PeftModel.from_pretrained(base, "{repo_id}")
```"""


LIMITATIONS = CardSection(
    "Limitations",
    """- Solo piano only: every instrument of a MIDI file is merged into one piano part, velocities are
  constant (64) and there is one global tempo class (40, 80, 120 or 160 BPM).
- Bars are 2/4, 3/4, 4/4, 3/8 or 6/8 on a 12-per-beat grid; notes are 21..108, durations are
  quantised to 1/12 of a beat (1/6 in /8 bars).
- Style is learned only for the composers of the vocabulary, from small corpora; prompts for the
  other composers produce generic music, and outputs can echo passages of the training pieces.
- Pieces are at most 1200 events and 128 bars by default (the original's inference limits).""",
)
"""What every g2m model shares by construction (the REMI representation, the original's limits)."""

CITATION = CardSection(
    "Citation",
    """"Generality-to-Mastery" (AIMC 2025, arXiv:2506.17497). This checkpoint was made with `g2m_hf`,
a Hugging Face-native reimplementation of the published system.""",
)

__all__ = [
    "CITATION",
    "DEFAULT_LICENSE",
    "LIMITATIONS",
    "TAGS",
    "CardSection",
    "adapter_usage",
    "build_card",
    "classifier_usage",
    "decoder_usage",
    "markdown_table",
    "paper_comparison",
]
