"""Datasets of encoded pieces, and what a `Trainer` needs to learn from them (SPEC §4).

* `encode_sources` - encode works (`corpus.Source`) into a `datasets.Dataset`, in parallel and cached;
  works that fail are skipped and reported with their reason.
* `split_dataset` - stratified train/validation split (97/3 by category, seed 42).
* `build_dataset` - both, saved with ``save_to_disk`` next to ``build_report.json`` and ``skipped.json``.
* `G2MDataCollator` - random bar-aligned windows, transposition, padding and labels, per batch.
* `composer_balanced_weights` - sampling weights that draw every composer equally often.

A dataset row is one whole piece:

    input_ids    list[int]  ids of the piece's REMI events (Composer, Tempo, BOS, bars..., EOS)
    composer     str        composer label, "None" for general material
    category     str        stratification group (corpus collection, sub-folder)
    bar_offsets  list[int]  index in input_ids of every Bar_None (where windows may start)
    source       str        the file (``path#number`` for one work of a multi-work file,
                            ``the.zip:member/path.pkl`` for an event file inside a zip)
    num_events   int        len(input_ids)

Windows are cut by the collator at training time, so that each epoch sees other windows and
transpositions of the same pieces (as in the original data loader).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import zlib
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch

from . import control_tokens, corpus, fileio, infill, midi_reader, remi, validation, vocab
from .corpus import CONVERSION_VERSION, MUSIC21_VERSION, Source, source_events, source_midi
from .errors import DataError, OutputExistsError, VocabularyError
from .extras import require
from .vocab import BAR_TOKEN, NO_COMPOSER, PAD_TOKEN, PITCH_MAX, PITCH_MIN, split_event

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict, Features

logger = logging.getLogger(__name__)

DATA_FORMAT_VERSION = 1
"""Part of the encoding cache's fingerprint: raise it when the rows `encode_sources` writes change."""

PREFIX_LENGTH = 2
"""A window that starts inside a piece gets the piece's Composer and Tempo events in front."""

COLUMNS = {
    "input_ids": "int32[]",
    "composer": "string",
    "category": "string",
    "bar_offsets": "int32[]",
    "source": "string",
    "num_events": "int32",
}
"""Columns of an encoded dataset and their types (``[]``: a list); `FEATURES` as `datasets.Features`."""

_WORK_COLUMNS = {"path": "string", "composer": "string", "category": "string", "number": "int64", "member": "string"}
_ENCODED_COLUMNS = {**COLUMNS, "error": "string"}  # "" when the work was encoded


def _datasets() -> ModuleType:
    """The datasets library. Only building and splitting datasets need it (the ``train`` extra); the
    collator and the windows do not, and long-form generation uses those: ``import g2m_hf`` must not
    import it."""
    return require("datasets", "train", "building a dataset")


def _features(columns: Mapping[str, str]) -> Features:
    """``columns`` as `datasets.Features`."""
    ds = _datasets()
    return ds.Features(
        {name: ds.List(ds.Value(kind[:-2])) if kind.endswith("[]") else ds.Value(kind) for name, kind in columns.items()}
    )


def __getattr__(name: str) -> Any:
    # PEP 562: `FEATURES` is built on first use, so that importing this module does not need datasets.
    if name == "FEATURES":
        return _features(COLUMNS)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

BUILD_REPORT, SKIPPED_REPORT = "build_report.json", "skipped.json"


def default_cache_dir() -> Path:
    """Where conversions and encodings are cached by default: ``g2m_hf`` in the datasets cache."""
    return Path(_datasets().config.HF_DATASETS_CACHE) / "g2m_hf"


@dataclass
class BuildReport:
    """What a build did. Saved as ``build_report.json``; ``skipped`` also as ``skipped.json``.

    Attributes:
        works: works listed.
        encoded: works encoded (the rows of the dataset).
        tokens: tokens in all encoded works.
        skipped: one ``{"source", "composer", "category", "reason"}`` entry per work that failed.
        conversions: music21 conversions this build ran (successful or not); 0 when all were cached.
        encoding_cached: the encoded rows came from the cache (no file was read or converted).
        composers, categories: encoded works per composer label / category.
        splits: rows per split (`build_dataset` only).
        seconds: wall time.
    """

    works: int = 0
    encoded: int = 0
    tokens: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    conversions: int = 0
    encoding_cached: bool = False
    composers: dict[str, int] = field(default_factory=dict)
    categories: dict[str, int] = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def save(self, folder: str | os.PathLike) -> None:
        """Write ``build_report.json`` and ``skipped.json`` into ``folder``."""
        folder = Path(folder)
        fileio.write_text(folder / BUILD_REPORT, json.dumps(asdict(self), indent=1) + "\n")
        fileio.write_text(folder / SKIPPED_REPORT, json.dumps(self.skipped, indent=1) + "\n")


# --- encoding --------------------------------------------------------------------------------


def encode_sources(
    sources: Sequence[Source],
    tokenizer: Any,
    *,
    num_proc: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    remi_options: Mapping[str, Any] | None = None,
) -> tuple[Dataset, BuildReport]:
    """Encode works into a dataset of whole pieces (columns: `FEATURES`), in source order.

    Each work is made MIDI (`corpus.source_midi`: music21 scores are converted once and cached),
    turned into events by `remi.midi_to_events` and into ids by ``tokenizer.events_to_ids``; an
    original event file (`Source.is_events`) gives its events as published (`corpus.source_events`),
    its composer from its Composer event. A work that fails at any step (an event outside the
    tokenizer's vocabulary included) is skipped; the report lists it with the reason.

    The rows are cached in ``cache_dir/encoded`` under a fingerprint of everything they depend
    on (the works and their files' size and time, the vocabulary, the codec and the options), so
    building the same selection again reads them back without touching a file.

    Args:
        sources: the works (`corpus.midi_sources`, `corpus.corpus_sources`, `corpus.original_event_sources`).
        tokenizer: a `G2MTokenizer`; composer labels are matched case-insensitively to its composers.
        num_proc: worker processes (None: this process).
        cache_dir: cache folder (default: `default_cache_dir()`).
        remi_options: keyword options for `remi.midi_to_events`.

    Raises:
        VocabularyError: a composer label the tokenizer does not know (before any work is done).
        DataError: no works, or a work listed twice.
    """
    started = time.perf_counter()
    sources = _canonical_labels(sources, tokenizer)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    midi_cache = cache / "midi"
    remi_options = dict(remi_options or {})
    workers = num_proc if num_proc and num_proc > 1 else 1
    fingerprint = _encoding_fingerprint(sources, tokenizer, remi_options, workers)
    encoded_cache = cache / "encoded" / f"encoded-{fingerprint}.arrow"
    encoded_cache.parent.mkdir(parents=True, exist_ok=True)
    # with num_proc, datasets writes one file per shard: encoded-<fingerprint>_00000_of_00002.arrow ...
    encoded_before = set(encoded_cache.parent.glob(f"{encoded_cache.stem}*.arrow"))
    converted_before = _cache_entries(midi_cache)

    # datasets gives each worker a contiguous shard, and a collection's works are alike (a run of
    # string quartets, then of folk songs): dealing the works out round-robin evens the workers' load.
    # [0, 2, 4, ..., 1, 3, 5, ...] for 2 workers
    dealt = sorted(range(len(sources)), key=lambda index: (index % workers, index))
    works = _datasets().Dataset.from_list([asdict(sources[index]) for index in dealt], features=_features(_WORK_COLUMNS))
    encoded = works.map(
        _encode_work,
        fn_kwargs={"tokenizer": tokenizer, "midi_cache": str(midi_cache), "remi_options": remi_options},
        remove_columns=works.column_names,
        features=_features(_ENCODED_COLUMNS),
        num_proc=workers if workers > 1 else None,
        cache_file_name=str(encoded_cache),
        new_fingerprint=fingerprint,
        desc="Encoding pieces",
    )
    encoded = encoded.select(np.argsort(dealt))  # back to source order

    report = BuildReport(works=len(sources))
    # cached only if every file the rows come from was there before (a crashed run leaves some shards)
    used = {Path(f["filename"]) for f in encoded.cache_files}
    report.encoding_cached = bool(encoded_before) and used <= encoded_before
    errors = list(encoded["error"])
    kept = [index for index, error in enumerate(errors) if not error]
    report.skipped = [
        {"source": s.name, "composer": composer, "category": s.category, "reason": error}
        for s, composer, error in zip(sources, encoded["composer"], errors, strict=True)
        if error
    ]
    dataset = encoded.select(kept).remove_columns("error")
    report.conversions = len(_cache_entries(midi_cache) - converted_before)
    report.encoded = len(dataset)
    report.tokens = int(sum(dataset["num_events"]))
    report.composers = dict(sorted(Counter(dataset["composer"]).items()))
    report.categories = dict(sorted(Counter(dataset["category"]).items()))
    report.seconds = round(time.perf_counter() - started, 2)
    if report.skipped:
        logger.warning("skipped %d of %d works (reasons in the build report)", len(report.skipped), len(sources))
    return dataset, report


def add_composers(tokenizer: Any, sources: Sequence[Source]) -> list[str]:
    """Add the composer labels of ``sources`` that ``tokenizer`` does not know, in name order; return them.

    ``add_composer`` appends, so existing ids (and a trained model) stay valid; resize the model's
    embeddings to ``len(tokenizer)`` before it learns the new styles.
    """
    added = []
    for label in sorted({s.composer for s in sources if s.composer is not None}):
        try:
            tokenizer.composer_token(label)
        except VocabularyError:
            tokenizer.add_composer(label)
            added.append(label)
    return added


def _canonical_labels(sources: Sequence[Source], tokenizer: Any) -> list[Source]:
    """The sources with each composer label spelled as the tokenizer's composer (``bach`` -> ``Bach``);
    an event file's label (None: its own Composer event) is left as it is."""
    if not sources:
        raise DataError("no works to encode")
    repeated = [name for name, count in Counter(s.name for s in sources).items() if count > 1]
    if repeated:
        raise DataError(f"works listed more than once: {repeated[:10]}")
    canonical: dict[str | None, str | None] = {None: None}
    for label in dict.fromkeys(s.composer for s in sources if s.composer is not None):
        try:
            canonical[label] = split_event(tokenizer.composer_token(label))[1]
        except VocabularyError as error:
            example = next(s.name for s in sources if s.composer == label)
            raise VocabularyError(
                f"{error} (label of {example}); add it (add_composers / --add-composers) or label the works as general"
            ) from None
    return [replace(s, composer=canonical[s.composer]) for s in sources]


def _encoding_fingerprint(
    sources: Sequence[Source], tokenizer: Any, remi_options: Mapping[str, Any], workers: int
) -> str:
    """A hash of everything the encoded rows depend on (datasets cannot see most of it); the cached
    rows are in the order the ``workers`` were dealt the works."""
    digest = hashlib.sha256()
    settings = {
        "format": DATA_FORMAT_VERSION,
        "workers": workers,
        # the codec's and the readers' own text: a fix in the converter or in the event-file reader
        # must re-encode, not reuse stale events
        "codec": [
            hashlib.sha256(Path(m.__file__).read_bytes()).hexdigest() for m in (corpus, midi_reader, remi, vocab)
        ],
        "conversion": [CONVERSION_VERSION, MUSIC21_VERSION],
        "vocabulary": tokenizer.event_vocabulary,
        "options": remi_options,
    }
    digest.update(json.dumps(settings, sort_keys=True, default=repr).encode())
    for s in sources:
        try:
            stat = os.stat(s.path)
            state = [stat.st_size, stat.st_mtime_ns]
        except OSError:  # a missing file is skipped by the encoder, with its reason
            state = None
        identity = [s.path, s.number, s.composer, s.category, state]
        digest.update(json.dumps(identity if s.member is None else [*identity, s.member]).encode())
    return digest.hexdigest()[:16]


def _encode_work(
    work: dict[str, Any], tokenizer: Any, midi_cache: str, remi_options: Mapping[str, Any]
) -> dict[str, Any]:
    """One dataset row (`_ENCODED_COLUMNS`) for one work; ``error`` says why a work was not encoded."""
    source = Source(**work)
    row = {"source": source.name, "composer": source.composer or "", "category": source.category}
    try:
        if source.is_events:
            events = source_events(source)  # exactly as published: checked, never re-quantised
            row["composer"] = split_event(events[0])[1]  # Composer_None -> "None", general material
        else:
            events = remi.midi_to_events(source_midi(source, midi_cache), composer=source.composer, **remi_options)
        input_ids = tokenizer.events_to_ids(events)
    except Exception as error:  # a batch job skips what it cannot encode, and reports why
        reason = str(error)
        for prefix in (source.name, source.path, repr(source.path)):  # the report names the work already
            reason = reason.removeprefix(f"{prefix}: ")
        row.update(input_ids=[], bar_offsets=[], num_events=0, error=f"{type(error).__name__}: {reason}")
        return row
    bar_offsets = [index for index, token in enumerate(events) if token == BAR_TOKEN]
    row.update(input_ids=input_ids, bar_offsets=bar_offsets, num_events=len(events), error="")
    return row


def _cache_entries(folder: Path) -> set[str]:
    """Names of the finished conversions (MIDI files and cached failures) in a conversion cache."""
    if not folder.is_dir():
        return set()
    return {name for name in os.listdir(folder) if name.endswith((".mid", ".error")) and ".partial" not in name}


# --- splitting and building ------------------------------------------------------------------


def split_dataset(
    dataset: Dataset,
    validation_fraction: float = 0.03,
    seed: int = 42,
    column: str = "category",
    test_fraction: float = 0.0,
) -> DatasetDict:
    """Stratified train/validation(/test) split: each category is split on its own (SPEC §4: 97/3, seed 42).

    A category of ``n`` pieces gives ``round(n * validation_fraction)`` of them to validation,
    but at least one when ``n >= 2`` (every category that can spare a piece is measured) and
    never all of them (a single-piece category stays in training). Each category is shuffled by
    its own generator seeded from ``seed`` and the category name, so a category's split does not
    change when other categories grow. Rows keep their dataset order within a split.

    ``test_fraction > 0`` also holds out a ``test`` split, taken the same way (at least one piece of
    every category of three or more): reference pieces that neither training nor checkpoint selection
    sees, for measuring a model against music it never met. Test pieces are drawn after the
    validation pieces of the same shuffle, so adding a test split leaves the validation split as it was.

    Raises:
        InvalidArgumentError: ``validation_fraction`` or ``test_fraction`` outside [0, 1), or together 1 or more.
    """
    validation.fraction("validation_fraction", validation_fraction)
    validation.fraction("test_fraction", test_fraction)
    validation.fraction("validation_fraction + test_fraction", validation_fraction + test_fraction)
    rows_of: dict[str, list[int]] = defaultdict(list)
    for index, category in enumerate(dataset[column]):
        rows_of[category].append(index)
    held_out: dict[str, list[int]] = {"validation": [], "test": []}
    for category, rows in rows_of.items():
        size = round(len(rows) * validation_fraction)
        if validation_fraction > 0 and len(rows) >= 2:
            size = min(max(size, 1), len(rows) - 1)
        test_size = round(len(rows) * test_fraction)
        if test_fraction > 0 and len(rows) >= 3:
            test_size = max(test_size, 1)
        test_size = max(0, min(test_size, len(rows) - size - 1))  # training keeps a piece
        order = np.random.default_rng([seed, zlib.crc32(category.encode("utf-8"))]).permutation(rows).tolist()
        held_out["validation"].extend(order[:size])
        held_out["test"].extend(order[size : size + test_size])
    chosen = set(held_out["validation"]) | set(held_out["test"])
    splits = {"train": dataset.select([index for index in range(len(dataset)) if index not in chosen])}
    splits["validation"] = dataset.select(sorted(held_out["validation"]))
    if test_fraction > 0:
        splits["test"] = dataset.select(sorted(held_out["test"]))
    return _datasets().DatasetDict(splits)


def build_dataset(
    sources: Sequence[Source],
    tokenizer: Any,
    output_dir: str | os.PathLike,
    *,
    num_proc: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    validation_fraction: float = 0.03,
    test_fraction: float = 0.0,
    seed: int = 42,
    overwrite: bool = False,
    remi_options: Mapping[str, Any] | None = None,
    save_tokenizer: bool = False,
) -> tuple[DatasetDict, BuildReport]:
    """Encode ``sources`` (`encode_sources`), split them (`split_dataset`) and save the result.

    ``output_dir`` receives the `DatasetDict` (``datasets.load_from_disk(output_dir)`` reads it
    back), ``build_report.json``, ``skipped.json`` and, with ``save_tokenizer``, the tokenizer in
    ``tokenizer/`` (one whose composers `add_composers` extended). The folder appears complete or not
    at all: a build killed before the end leaves no half-saved dataset, and the encodings it finished
    stay in the cache for the next run.

    Raises:
        OutputExistsError: ``output_dir`` holds files and ``overwrite`` is False, or it is not a
            dataset folder (``overwrite`` only ever replaces a dataset folder).
        DataError: no work could be encoded (the message gives the first reasons), or as
            `encode_sources` / `split_dataset`.
        VocabularyError: as `encode_sources`.
    """
    output = validation.output_dir("output_dir", output_dir)
    validation.fraction("validation_fraction", validation_fraction)  # before the encoding, not after it
    if num_proc is not None:
        validation.positive_int("num_proc", num_proc)
    if output.exists() and any(output.iterdir()):
        if not overwrite:
            raise OutputExistsError(f"{output}: already holds files; pass overwrite=True (--overwrite) to replace it")
        if not (output / "dataset_dict.json").exists():
            raise OutputExistsError(f"{output}: not a dataset folder written by build_dataset; refusing to replace it")
    dataset, report = encode_sources(
        sources, tokenizer, num_proc=num_proc, cache_dir=cache_dir, remi_options=remi_options
    )
    if len(dataset) == 0:
        reasons = "; ".join(f"{s['source']}: {s['reason']}" for s in report.skipped[:5])
        raise DataError(f"none of the {report.works} works could be encoded, e.g. {reasons}")
    splits = split_dataset(dataset, validation_fraction, seed, test_fraction=test_fraction)
    report.splits = {name: len(split) for name, split in splits.items()}
    with fileio.atomic_directory(output, replace=True) as staging:
        # an empty split (a tiny build has no validation) needs an explicit shard, or it cannot be loaded
        splits.save_to_disk(str(staging), num_shards={name: 1 for name, split in splits.items() if len(split) == 0})
        report.save(staging)
        if save_tokenizer:
            tokenizer.save_pretrained(str(staging / "tokenizer"))
    return splits, report


# --- training-time batches ------------------------------------------------------------------


def window_starts(num_tokens: int, bar_offsets: Sequence[int], max_length: int) -> list[int]:
    """Where a training window may start: the piece start, and each later bar that leaves at least
    half a window (counting the prefix) to the end of the piece, as in the original loader.

    The first bar is covered by the piece start (the original also lists it on its own, which
    only drops ``BOS_None`` from such windows).
    """
    later_bars = np.asarray(bar_offsets, dtype=np.int64)[1:]
    return [0] + later_bars[num_tokens - later_bars >= max_length // 2 - PREFIX_LENGTH].tolist()


def window_stop(
    num_tokens: int, bar_offsets: Sequence[int], start: int, max_length: int, include_piece_end: bool = True
) -> int:
    """End (exclusive) of the window that starts at ``start``, prefix included in ``max_length``.

    The window runs to the end of the piece (its last bar and EOS) when that fits and
    ``include_piece_end``; otherwise to the furthest bar line it can reach, keeping that bar's
    ``Bar_None`` as its last token (so the model learns to close a bar), as the original did.
    When not even the window's first bar fits, the window is cut at ``max_length`` (the original
    would keep only the piece header there).

    ``include_piece_end=False`` reproduces the original loader exactly, whose windows never
    contain the last bar or EOS (unless a bar overflows the window); the default lets the model
    learn to end a piece, which generation relies on (SPEC §5: EOS ends).
    """
    budget = max_length - (PREFIX_LENGTH if start else 0)
    if include_piece_end and num_tokens - start <= budget:
        return num_tokens
    bars = np.asarray(bar_offsets, dtype=np.int64)
    first = int(np.searchsorted(bars, start))  # the window's first bar (start is a bar or the piece start)
    last = int(np.searchsorted(bars, start + budget - 1, side="right")) - 1  # last bar with bar + 1 - start <= budget
    if last > first:
        return int(bars[last]) + 1
    return min(num_tokens, start + budget)


def prefixed_window(ids: np.ndarray, start: int, stop: int | None = None) -> np.ndarray:
    """``ids[start:stop]`` as the model sees a window: one that starts inside the piece gets the piece's
    Composer and Tempo events (`PREFIX_LENGTH`) in front, since the model reads the style from the first
    token. The one rule for training windows (`G2MDataCollator`) and generation contexts (`longform`)."""
    window = ids[start:stop]
    return np.concatenate([ids[:PREFIX_LENGTH], window]) if start else window


def context_start(num_tokens: int, bar_offsets: Sequence[int], budget: int) -> int:
    """Start of the longest window that ends at ``num_tokens`` and holds at most ``budget`` tokens, prefix
    included (`prefixed_window`); it starts where training windows may (`window_starts`): at the piece
    start or at a later bar line. When not even the last bar fits, its start (a window over the budget).

    Generation re-primes a piece that outgrew the training window with this window (`longform`).
    """
    if num_tokens <= budget:
        return 0
    later_bars = np.asarray(bar_offsets, dtype=np.int64)[1:]
    fitting = later_bars[num_tokens - later_bars + PREFIX_LENGTH <= budget]
    if fitting.size:
        return int(fitting[0])
    return int(later_bars[-1]) if later_bars.size else 0


@dataclass
class G2MDataCollator:
    """`Trainer` data collator for causal-LM training on whole pieces (SPEC §4).

    Each feature needs ``input_ids`` (one whole encoded piece); ``bar_offsets`` is used when
    present and found from the ids otherwise (Trainer drops the columns the model's forward does
    not take unless ``remove_unused_columns=False``). Per piece:

    1. window: a start drawn uniformly from `window_starts` (the piece start only when
       ``random_windows`` is False), the longest bar-aligned stretch that fits ``max_length``
       (`window_stop`); a window starting inside the piece gets the piece's Composer and Tempo
       events in front, since the model reads the style from the first token;
    2. transposition (``augment``): every ``Note_Pitch`` moves by one shift drawn uniformly from
       the shifts in ``transpose_range`` that keep all the window's pitches in 21..108;
    3. right-padding with PAD to the batch's longest window.

    With ``infill_rate`` > 0, that share of the windows become bar-infilling examples (`infill.training_example`:
    a span of 1 to ``infill_max_bars`` whole bars moved behind the rest of the window); such a window is cut
    ``infill_max_bars + 2`` tokens shorter, so the example fits ``max_length`` too. The tokenizer needs the
    infill tokens (`infill.add_infill_tokens`).

    With ``control_rate`` > 0, that share of the windows carry texture-control tokens in a random share of their
    bars (`control_tokens.training_controls`: after each such bar's Time_Signature, its density, polyphony and
    register, measured after transposition); the window is cut at an earlier bar line when they would make it
    longer than ``max_length``. The tokenizer needs the control tokens (`control_tokens.add_control_tokens`).

    Returns ``input_ids``, ``attention_mask`` and ``labels`` (``input_ids`` with PAD -> -100, and the
    infill placeholders, span start and control tokens, which mark the example's choices, not the music;
    the model shifts them), each a LongTensor ``[batch, longest window]``.

    Randomness comes from torch's global RNG (seeded by Trainer, ``set_seed`` and the
    dataloader's per-worker seeding), or from a private generator when ``seed`` is given.

    Args:
        tokenizer: the `G2MTokenizer` the dataset was encoded with.
        max_length: longest window in tokens, prefix included (the paper: 2400).
        augment: transpose (training); False for evaluation.
        transpose_range: smallest and largest shift in semitones (must include 0).
        random_windows: random start; False: every window starts at the piece start (evaluation).
        include_piece_end: windows may end with the piece's last bar and EOS (see `window_stop`).
        seed: seed of a private generator (reproducible batches outside Trainer, tests).
        infill_rate: share of the windows made infilling examples (0: none, every draw as before).
        infill_max_bars: longest span an infilling example rewrites.
        control_rate: share of the windows that carry texture-control tokens (0: none, every draw as before).
    """

    tokenizer: Any
    max_length: int = 2400
    augment: bool = True
    transpose_range: tuple[int, int] = (-3, 3)
    random_windows: bool = True
    include_piece_end: bool = True
    seed: int | None = None
    infill_rate: float = 0.0
    infill_max_bars: int = infill.DEFAULT_MAX_SPAN_BARS
    control_rate: float = 0.0

    def __post_init__(self) -> None:
        if self.max_length <= PREFIX_LENGTH + 1:
            raise DataError(f"max_length must exceed {PREFIX_LENGTH + 1} (prefix plus a token), got {self.max_length}")
        if not 0 <= self.infill_rate <= 1:
            raise DataError(f"infill_rate must be in [0, 1], got {self.infill_rate}")
        if self.infill_rate and not 0 < self.infill_max_bars < self.max_length // 4:
            raise DataError(f"infill_max_bars must be in 1..{self.max_length // 4 - 1}, got {self.infill_max_bars}")
        if not 0 <= self.control_rate <= 1:
            raise DataError(f"control_rate must be in [0, 1], got {self.control_rate}")
        self._infill = infill.InfillTokens.of(self.tokenizer) if self.infill_rate else None
        self._controls = control_tokens.ControlTokens.of(self.tokenizer) if self.control_rate else None
        unlearnt = (self._infill.unlearnt if self._infill else ()) + tuple(
            self._controls.ids.ravel().tolist() if self._controls else ())
        self._unlearnt = torch.tensor(unlearnt, dtype=torch.long)
        low, high = self.transpose_range
        if not low <= 0 <= high:
            raise DataError(f"transpose_range must contain 0, got {self.transpose_range}")
        vocabulary = self.tokenizer.event_vocabulary
        self._pad_id = vocabulary.index(PAD_TOKEN)
        self._bar_id = vocabulary.index(BAR_TOKEN)
        # Note_Pitch ids are not in pitch order (the vocabulary is string-sorted), hence two tables.
        self._pitch_of_id = np.full(len(vocabulary), -1, dtype=np.int64)
        self._id_of_pitch = np.full(PITCH_MAX + 1, -1, dtype=np.int64)
        for index, token in enumerate(vocabulary):
            name, value = split_event(token)
            if name == "Note_Pitch":
                self._pitch_of_id[index] = int(value)
                self._id_of_pitch[int(value)] = index
        missing = [p for p in range(PITCH_MIN, PITCH_MAX + 1) if self._id_of_pitch[p] < 0]
        if missing:
            raise VocabularyError(f"the vocabulary lacks Note_Pitch events for pitches {missing[:10]}")
        self._generator = None if self.seed is None else torch.Generator().manual_seed(self.seed)

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        windows = [self._window(feature) for feature in features]
        input_ids = torch.full((len(windows), max(len(w) for w in windows)), self._pad_id, dtype=torch.long)
        for row, window in enumerate(windows):  # input_ids: [B, T], right-padded
            input_ids[row, : len(window)] = torch.from_numpy(window)
        padding = input_ids == self._pad_id
        unlearnt = padding | torch.isin(input_ids, self._unlearnt) if len(self._unlearnt) else padding
        return {
            "input_ids": input_ids,
            "attention_mask": (~padding).long(),
            "labels": input_ids.masked_fill(unlearnt, -100),
        }

    def _window(self, feature: Mapping[str, Any]) -> np.ndarray:
        """The (prefixed, transposed) window of one piece, or its infilling example, as an int64 array."""
        ids = np.asarray(feature["input_ids"], dtype=np.int64)  # [N]
        bars = feature.get("bar_offsets")
        bars = np.flatnonzero(ids == self._bar_id) if bars is None else np.asarray(bars, dtype=np.int64)
        # The draw is skipped at rate 0, so plain training draws exactly the windows it always did.
        infilling = self._infill is not None and self._random() < self.infill_rate
        max_length = self.max_length - (self.infill_max_bars + 2 if infilling else 0)  # room for the layout
        starts = window_starts(len(ids), bars, max_length) if self.random_windows else [0]
        start = starts[self._randint(len(starts))]
        stop = window_stop(len(ids), bars, start, max_length, self.include_piece_end)
        window = prefixed_window(ids, start, stop)
        if self.augment:
            window = self._transpose(window)
        # The draw is skipped at rate 0 too; controls are measured on the transposed notes they describe.
        if self._controls is not None and self._random() < self.control_rate:
            vocabulary = self.tokenizer.event_vocabulary
            window = control_tokens.training_controls(window, vocabulary, self._controls, self._random, max_length)
        if infilling:
            example = infill.training_example(window, self._infill, self._randint, self.infill_max_bars)
            window = window if example is None else example
        return window

    def _transpose(self, window: np.ndarray) -> np.ndarray:
        """``window`` with every Note_Pitch moved by a random shift that keeps all pitches on the piano."""
        pitches = self._pitch_of_id[window]  # [T], -1 where the token is not a Note_Pitch
        notes = pitches >= 0
        if not notes.any():
            return window
        low, high = int(pitches[notes].min()), int(pitches[notes].max())
        first, last = self.transpose_range
        shifts = [s for s in range(first, last + 1) if low + s >= PITCH_MIN and high + s <= PITCH_MAX]
        shift = shifts[self._randint(len(shifts))]
        shifted = window.copy()
        shifted[notes] = self._id_of_pitch[pitches[notes] + shift]
        return shifted

    def _randint(self, high: int) -> int:
        """A uniform draw from ``0..high-1``."""
        return int(torch.randint(high, (1,), generator=self._generator))

    def _random(self) -> float:
        """A uniform draw from [0, 1)."""
        return float(torch.rand(1, generator=self._generator))


def composer_balanced_weights(
    dataset: Dataset | Sequence[str], column: str = "composer", unlabelled_share: float | None = None
) -> list[float]:
    """One sampling weight per example: 1 / (examples of its composer).

    A sampler that draws in proportion to these weights, with replacement, picks every composer
    equally often (SPEC §4: fine-tuning draws batches balanced over composers), e.g.
    ``torch.utils.data.WeightedRandomSampler(weights, num_samples=len(weights))`` or
    ``training.trainer.G2MTrainer(train_sample_weights=weights)``.

    Args:
        dataset: a dataset with a ``column`` column (e.g. the ``train`` split), or the labels.
        column: the column to balance over (``category`` balances collections, as the
            original pretraining loader did).
        unlabelled_share: when given, the general pieces (composer ``"None"``) are drawn this share
            of the time and the composers share the rest equally (fine-tuning that keeps
            ``Composer_None`` meaningful, for style guidance).
    """
    labels = list(dataset[column]) if hasattr(dataset, "column_names") else list(dataset)  # a dataset, or labels
    counts = Counter(labels)
    if unlabelled_share is None:
        return [1.0 / counts[label] for label in labels]
    if not 0 <= unlabelled_share < 1:
        raise DataError(f"unlabelled_share must be in [0, 1), got {unlabelled_share}")
    composers = len(set(counts) - {NO_COMPOSER})
    return [
        unlabelled_share / counts[label] if label == NO_COMPOSER else (1 - unlabelled_share) / composers / counts[label]
        for label in labels
    ]


__all__ = [
    "BUILD_REPORT",
    "BuildReport",
    "COLUMNS",
    "FEATURES",  # noqa: F822 (built on first use by the module's __getattr__)
    "G2MDataCollator",
    "PREFIX_LENGTH",
    "SKIPPED_REPORT",
    "add_composers",
    "build_dataset",
    "composer_balanced_weights",
    "context_start",
    "default_cache_dir",
    "encode_sources",
    "prefixed_window",
    "split_dataset",
    "window_starts",
    "window_stop",
]
