"""A recipe's training data: a built dataset folder or a build spec, and a tokenizer whose ids match it.

Recipe keys (section ``data``, read into `config.DataSection` / `config.BuildSpec`)::

    data:
      dataset: data/finetune          # a folder from training/build_dataset.py (train / validation)
      build:                          # ... or a build spec (exactly one of the two), encoded on first
        source: music21               #     use and cached by g2m_hf.data (a rebuild reads the cache)
        composers: [bach, mozart]     # music21 collections labelled with their composer
        general: [ryansMammoth]       # music21: general collections (true: all others); MIDI: true/false
        # source: path/to/midi        # a MIDI folder instead: sub-folders name the composers
        # composer_map: labels.csv    # MIDI folder only: path,composer[,category]
        limit: 20                     # at most this many works per collection / category
        validation_fraction: 0.03     # stratified split (SPEC §4: 97/3, seed 42)
        seed: 42
        num_proc: null                # encoding processes
        cache_dir: null               # default: the datasets cache
        remi_options: {}              # g2m_hf.remi.midi_to_events options
      max_length: 2400                # window length in tokens (the paper's tgt_len)
      collator: {}                    # more G2MDataCollator arguments (transpose_range, include_piece_end)

Composers the tokenizer does not know (a user's folder of Haydn) are added to it with
``add_composer``: for a build spec before encoding, for a dataset folder in the id order the folder was
encoded with (checked against the first token of its pieces, so ids always agree).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
from datasets import DatasetDict

from g2m_hf.control_tokens import add_control_tokens
from g2m_hf.corpus import corpus_sources, midi_sources
from g2m_hf.data import G2MDataCollator, add_composers, encode_sources, split_dataset
from g2m_hf.errors import DataError, VocabularyError
from g2m_hf.infill import add_infill_tokens
from g2m_hf.vocab import NO_COMPOSER

from .config import BuildSpec, DataSection
from .errors import ConfigError
from .trainer import StreamSeededCollator


@dataclass
class TrainingData:
    """The splits a run trains and evaluates on, and where they came from."""

    splits: DatasetDict
    source: str
    """The dataset folder, or a one-line description of the build spec."""
    new_composers: list[str] = field(default_factory=list)
    """Composers added to the tokenizer for this data."""

    def summary(self) -> dict[str, Any]:
        """The ``data`` block of training_record.json."""
        train = self.splits["train"]
        validation = self.splits.get("validation")
        events = train["num_events"] if "num_events" in train.column_names else map(len, train["input_ids"])
        return {
            "source": self.source,
            "train_examples": len(train),
            "validation_examples": 0 if validation is None else len(validation),
            "train_events": int(sum(events)),
            "composers": dict(sorted(Counter(train["composer"]).items())),
            "new_composers": list(self.new_composers),
        }


def load_training_data(data_config: DataSection, tokenizer: Any) -> TrainingData:
    """Load (or build) the dataset the ``data`` section names; may add composers to ``tokenizer``.

    Raises:
        ConfigError: neither or both of ``dataset`` / ``build``, a missing folder.
        DataError: the dataset lacks a train split, or its ids do not fit the tokenizer.
    """
    folder, spec = data_config.dataset, data_config.build
    if (folder is None) == (spec is None):
        raise ConfigError("recipe section 'data' needs exactly one of 'dataset' (a folder) or 'build' (a spec)")
    if folder is not None:
        splits = _load_folder(Path(folder))
        added = align_tokenizer(tokenizer, splits, str(folder))
        return TrainingData(splits, str(folder), added)
    return _build(spec, tokenizer)


def _load_folder(folder: Path) -> DatasetDict:
    if not (folder / "dataset_dict.json").is_file():
        raise ConfigError(
            f"data.dataset {folder}: not a dataset folder (build one with training/build_dataset.py, "
            "or give a build spec under data.build)"
        )
    splits = datasets.load_from_disk(str(folder))
    if "train" not in splits:
        raise DataError(f"{folder}: the dataset has no 'train' split (splits: {list(splits)})")
    return splits


def _build(spec: BuildSpec, tokenizer: Any) -> TrainingData:
    source, limit = spec.source, spec.limit
    if source == "music21":
        sources = corpus_sources(spec.composers, general=spec.general or False, limit=limit)
        described = f"music21 corpus: composers={spec.composers or []} general={spec.general or False}"
    elif source:
        if spec.composers:
            raise ConfigError("data.build.composers selects music21 collections; a MIDI folder's sub-folders name them")
        sources = midi_sources(source, composer_map=spec.composer_map, general=bool(spec.general), limit=limit)
        described = f"MIDI folder {source}"
    else:
        raise ConfigError("data.build.source must be 'music21' or a folder of MIDI files")
    if limit is not None:
        described += f" limit={limit}"
    added = add_composers(tokenizer, sources)
    dataset, report = encode_sources(
        sources,
        tokenizer,
        num_proc=spec.num_proc,
        cache_dir=spec.cache_dir,
        remi_options=spec.remi_options,
    )
    if len(dataset) == 0:
        raise DataError(f"{described}: none of the {report.works} works could be encoded")
    splits = split_dataset(dataset, spec.validation_fraction, spec.seed)
    return TrainingData(splits, described, added)


def add_collator_tokens(tokenizer: Any, data_config: DataSection) -> list[int]:
    """Append the tokens the recipe's collator writes that ``tokenizer`` lacks (the infill tokens with
    ``data.collator.infill_rate`` > 0, the texture-control tokens with ``control_rate`` > 0); their ids. Call
    it after `load_training_data` (which may add composers, whose ids must stay those of the dataset) and
    before the model is sized."""
    added = add_infill_tokens(tokenizer) if data_config.collator.get("infill_rate") else []
    if data_config.collator.get("control_rate"):  # after the infill tokens: one fixed order of new ids
        added += add_control_tokens(tokenizer)
    return added


def align_tokenizer(tokenizer: Any, splits: DatasetDict, where: str) -> list[str]:
    """Make ``tokenizer``'s composer ids those the dataset was encoded with; return the composers added.

    Every piece starts with its composer token, so one piece per composer shows the id the folder
    uses. Composers the tokenizer lacks are added in id order (``add_composer`` appends), and every id
    must then agree.
    """
    ids: dict[str, int] = {}
    for split in splits.values():
        first_row: dict[str, int] = {}
        for row, composer in enumerate(split["composer"]):
            first_row.setdefault(composer, row)
        for composer, row in first_row.items():
            ids.setdefault(composer, split[row]["input_ids"][0])
    added = []
    for composer in sorted((c for c in ids if c != NO_COMPOSER), key=ids.__getitem__):
        try:
            tokenizer.composer_token(composer)
        except VocabularyError:
            tokenizer.add_composer(composer)
            added.append(composer)
    vocabulary = tokenizer.get_vocab()
    for composer, dataset_id in ids.items():
        token = tokenizer.composer_token(composer)
        if vocabulary[token] != dataset_id:
            raise DataError(
                f"{where}: encoded with another vocabulary ({token} has id {dataset_id} there but "
                f"{vocabulary[token]} in the tokenizer); rebuild it with --tokenizer <the model folder>, "
                "or train with the tokenizer it was built with (recipe key 'tokenizer')"
            )
    return added


def lm_collators(
    tokenizer: Any, data_config: DataSection, seed: int, process_index: int
) -> tuple[StreamSeededCollator, G2MDataCollator]:
    """The training collator (random windows and transpositions, resumable) and the evaluation one
    (every piece from its start, untransposed and never an infilling example, so evaluation losses
    compare across runs)."""
    options = {"max_length": data_config.max_length, **data_config.collator}
    train = G2MDataCollator(tokenizer, **options)
    plain = {"augment": False, "random_windows": False, "infill_rate": 0.0, "control_rate": 0.0}
    evaluation = G2MDataCollator(tokenizer, **{**options, **plain})
    return StreamSeededCollator(train, seed=seed, process_index=process_index), evaluation
