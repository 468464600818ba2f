"""Where pieces come from: folders of MIDI files, the music21 corpus (SPEC §8), and the event files
the original authors published.

A `Source` is one work to encode: a MIDI file, or a score music21 reads (MusicXML, Humdrum,
ABC...), possibly one of several works in one "opus" file (the folk-song collections keep up to
a few hundred ABC tunes per file, told apart by their reference number ``X:``), or one piece of the
original's event pickles, in a folder or inside a zip (`original_event_sources`, `source_events`).

`source_midi` turns a music21 score into MIDI once (``score.write("midi")``) and keeps the result
in a cache keyed by the file's content, the work number and the music21 version, so that a rebuild
converts nothing. Failed conversions are cached too: a Beethoven quartet movement can spend 18 s
failing (SPEC §8), and a rebuild should not spend them again.

music21 is imported inside the two functions that use it: the import takes half a second, and
training (which imports this module through `g2m_hf.data`) never needs it.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import importlib.metadata
import json
import os
import re
import warnings
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Iterable, Mapping, Sequence

from . import fileio
from .errors import DataError
from .extras import require
from .vocab import BAR_TOKEN, NO_COMPOSER, event, load_restricted_pickle, split_event

MIDI_SUFFIXES = (".mid", ".midi")

EVENT_SUFFIX = ".pkl"
"""The original's event files: one pickle per piece."""


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:  # an extra not installed: nothing to convert with
        return "not installed"


MUSIC21_VERSION = _version("music21")
"""Part of every conversion-cache key (another music21 may write other MIDI)."""

CONVERSION_VERSION = 1
"""Part of every conversion-cache key: raise it when `source_midi` changes what it writes."""

CORPUS_SKIPPED_SUFFIXES = {".rntxt": "Roman-numeral analyses (harmony labels), not scores"}
"""music21 corpus files that are not music to learn from, by file suffix (with the reason)."""

PART_OPUS_COLLECTIONS = frozenset({"josquin"})
"""Collections whose multi-tune ABC files hold the voices of a single piece, one tune per voice:
such a file is one work, its tunes merged as parts (`music21.stream.Opus.mergeScores`)."""

COLLECTION_COMPOSERS = {
    "schumann_robert": "Schumann",
    "schumann_clara": "ClaraSchumann",
    "cpebach": "CPEBach",
    "johnson_j_r": "Johnson",
}
"""Composer labels of corpus collections whose folder name is not the label; any other collection
is labelled by its folder name with a capital first letter (``bach`` -> ``Bach``)."""

_ABC_REFERENCE = re.compile(rb"^X:\s*(\d+)", re.MULTILINE)


@dataclass(frozen=True)
class Source:
    """One work to encode.

    Attributes:
        path: the file: MIDI, any score format music21 reads, an original event pickle, or the
            zip file that holds one (`member`).
        composer: composer label, matched case-insensitively against the tokenizer's composers
            when encoding; ``"None"`` marks general (pretraining) material. None for an event
            file: its own ``Composer_*`` event names the composer.
        category: the group the stratified train/validation split keeps in proportion
            (corpus collection, sub-folder...).
        number: the work's reference number inside a multi-work file (ABC ``X:``); None when the
            file is one work.
        member: the event pickle's path inside the zip file ``path``; None for a file on disk.
    """

    path: str
    composer: str | None = NO_COMPOSER
    category: str = "general"
    number: int | None = None
    member: str | None = None

    @property
    def name(self) -> str:
        """How the work is named in datasets and reports: the path, plus ``#number`` for a work of an
        opus, or ``:member`` for a file inside a zip."""
        if self.member is not None:
            return f"{self.path}:{self.member}"
        return self.path if self.number is None else f"{self.path}#{self.number}"

    @property
    def is_midi(self) -> bool:
        return self.member is None and Path(self.path).suffix.lower() in MIDI_SUFFIXES

    @property
    def is_events(self) -> bool:
        """An original event pickle (on disk or in a zip), read by `source_events` instead of converted."""
        return self.member is not None or Path(self.path).suffix.lower() == EVENT_SUFFIX


# --- folders of MIDI files -------------------------------------------------------------------


def midi_sources(
    midi_dir: str | os.PathLike,
    *,
    composer_map: str | os.PathLike | Mapping[str, str] | None = None,
    general: bool = False,
    limit: int | None = None,
) -> list[Source]:
    """The MIDI files under ``midi_dir`` (recursively, sorted by path), with their composer labels.

    Labels:
        * by default the first-level sub-folder names the composer (``bach/wtc1/x.mid`` ->
          ``bach``, resolved case-insensitively against the tokenizer when encoding) and is the
          category; files directly in ``midi_dir`` are general material (``None``, category
          ``general``);
        * ``general=True``: every file is general material; categories are still the first-level
          sub-folders (sub-collections, kept in proportion by the split);
        * ``composer_map``: a CSV file with columns ``path,composer[,category]``, a JSON file
          ``{"path": "composer"}`` or a mapping; paths relative to ``midi_dir``. Listed files take
          its composer and category (default: the composer); files it does not list are general.

    ``limit`` keeps at most that many files per category (the first ones).

    Raises:
        DataError: ``midi_dir`` is not a folder or holds no MIDI file; the map is malformed, or
            lists a file that is not in ``midi_dir``; both ``general`` and ``composer_map`` given.
    """
    root = Path(midi_dir)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder of MIDI files")
    if general and composer_map is not None:
        raise DataError("give either general=True or a composer map, not both")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in MIDI_SUFFIXES)
    if not files:
        raise DataError(f"{root}: no MIDI files ({', '.join(MIDI_SUFFIXES)}) found")

    labels = _read_composer_map(composer_map, root) if composer_map is not None else None
    if labels is not None:
        unknown = sorted(set(labels) - {p.relative_to(root).as_posix() for p in files})
        if unknown:
            raise DataError(f"{composer_map}: lists files that are not MIDI files in {root}: {unknown[:10]}")
    sources = []
    for path in files:
        relative = path.relative_to(root)
        folder = relative.parts[0] if len(relative.parts) > 1 else None
        if labels is not None:
            composer, category = labels.get(relative.as_posix(), (NO_COMPOSER, "general"))
        elif general or folder is None:
            composer, category = NO_COMPOSER, folder or "general"
        else:
            composer, category = folder, folder
        sources.append(Source(path=str(path), composer=composer, category=category))
    return _first_per_category(sources, limit)


def _read_composer_map(
    composer_map: str | os.PathLike | Mapping[str, str], root: Path
) -> dict[str, tuple[str, str]]:
    """``relative posix path -> (composer, category)`` from a CSV / JSON file or a mapping."""
    if isinstance(composer_map, Mapping):
        rows: Iterable[Mapping[str, str]] = ({"path": k, "composer": v} for k, v in composer_map.items())
    else:
        path = Path(composer_map)
        try:
            text = path.read_text(encoding="utf-8")
            if path.suffix.lower() == ".json":
                content = json.loads(text)
                if not isinstance(content, dict):
                    raise DataError(f"{path}: expected a JSON object {{\"file.mid\": \"composer\"}}")
                rows = ({"path": k, "composer": v} for k, v in content.items())
            else:
                rows = list(csv.DictReader(text.splitlines()))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error) as error:
            raise DataError(f"{path}: cannot read the composer map ({error})") from None
    labels = {}
    for row in rows:
        file, composer = row.get("path"), row.get("composer")
        if not isinstance(file, str) or not isinstance(composer, str) or not file or not composer:
            raise DataError(f"{composer_map}: every entry needs a path and a composer (got {dict(row)})")
        relative = Path(file)
        if relative.is_absolute():
            relative = relative.relative_to(root) if relative.is_relative_to(root) else relative
        labels[relative.as_posix()] = (composer, row.get("category") or composer)
    return labels


def _first_per_category(sources: list[Source], limit: int | None) -> list[Source]:
    """The first ``limit`` sources of each category (all of them when ``limit`` is None), in order."""
    if limit is None:
        return sources
    seen: Counter[str] = Counter()
    kept = []
    for source in sources:
        seen[source.category] += 1
        if seen[source.category] <= limit:
            kept.append(source)
    return kept


# --- the music21 corpus ----------------------------------------------------------------------


def corpus_collections() -> dict[str, list[Path]]:
    """The music21 corpus by collection (top-level folder): its score files, sorted by path.

    Files of `CORPUS_SKIPPED_SUFFIXES` are left out.
    """
    music21 = require("music21", "train", "the music21 corpus")
    common, corpus = music21.common, music21.corpus

    root = Path(common.getCorpusFilePath())  # the folder getCorePaths searches
    collections: dict[str, list[Path]] = {}
    for path in sorted(Path(p) for p in corpus.getCorePaths()):
        if path.suffix.lower() in CORPUS_SKIPPED_SUFFIXES:
            continue
        collections.setdefault(path.relative_to(root).parts[0], []).append(path)
    return collections


def collection_composer(collection: str) -> str:
    """The composer label of a corpus collection (``bach`` -> ``Bach``, ``schumann_robert`` -> ``Schumann``)."""
    return COLLECTION_COMPOSERS.get(collection, collection[:1].upper() + collection[1:])


def corpus_sources(
    composers: Sequence[str] = (),
    general: bool | Sequence[str] = False,
    limit: int | None = None,
) -> list[Source]:
    """Works of the music21 corpus, in collection and path order.

    Args:
        composers: collections whose works are labelled with their composer, named by folder or
            composer label, case-insensitively (``"bach"``, ``"Schumann"``).
        general: True adds every other collection as general material (composer ``None``); a list
            of collection names adds only those.
        limit: at most this many works per collection (the first ones).

    Each work's category is its collection. A multi-tune ABC file gives one work per tune
    (`Source.number`), except in `PART_OPUS_COLLECTIONS`, where the tunes are the voices of one work.

    Raises:
        DataError: an unknown collection name (the message lists the collections).
    """
    collections = corpus_collections()
    chosen = [_find_collection(name, collections) for name in composers]
    if general is True:
        general_names = [c for c in collections if c not in chosen]
    else:
        general_names = [_find_collection(name, collections) for name in (general or ())]
    sources = []
    for collection in dict.fromkeys(chosen + general_names):  # keeps order, drops repeats
        composer = collection_composer(collection) if collection in chosen else NO_COMPOSER
        sources.extend(
            Source(path=str(path), composer=composer, category=collection, number=number)
            for path in collections[collection]
            for number in _work_numbers(path, collection)
        )
    return _first_per_category(sources, limit)


def _find_collection(name: str, collections: Mapping[str, object]) -> str:
    """The collection named ``name`` by folder or composer label, case-insensitively."""
    for collection in collections:
        if name.casefold() in (collection.casefold(), collection_composer(collection).casefold()):
            return collection
    raise DataError(f"no music21 corpus collection {name!r}; collections: {', '.join(collections)}")


def _work_numbers(path: Path, collection: str) -> list[int | None]:
    """The works of a corpus file: ``[None]`` for a one-work file, else the ABC reference numbers.

    The numbers are read from the ``X:`` lines (music21 splits ABC files the same way), which is
    far cheaper than parsing the file or loading music21's metadata bundle.
    """
    if path.suffix.lower() != ".abc" or collection in PART_OPUS_COLLECTIONS:
        return [None]
    numbers = list(dict.fromkeys(int(n) for n in _ABC_REFERENCE.findall(path.read_bytes())))
    return numbers if len(numbers) > 1 else [None]


# --- the original's published event files ------------------------------------------------------
#
# The original converter (AndyWeasley2004/Generality-to-Mastery, representations/midi2events_score.py,
# read for this reader) writes one pickle per piece, `pickle.dump((events, bar_indices), ...)`, into
# `<event_root>/<category>/<file>.pkl`, where `events` is a list of `{'name': ..., 'value': ...}` dicts
# (`create_event`; value an int, a str such as '3/4', or None for Bar/BOS/EOS), the first three
# Composer (the category capitalised, or 'None' for pretraining data), Tempo and BOS, and
# `bar_indices` the positions of the Bar events. Its loader (dataloader.py, MusicSegmentDataset)
# lists `<data_dir>/<category>/*.pkl`, formats each event as '{}_{}'.format(name, value) and takes
# events_str[0] / [1] as the composer and tempo tokens; choice_analysis.py reads `evs, bar_pos` too,
# but inference_score.py (get_leadsheet_prompt) reads `bar_pos, evs`, the order of the
# MuseMorphose-style event files it descends from, whose bar positions may end with len(events).
# representations/events2words.py writes `dictionary.pkl` next to the event folders: not a piece.

ORIGINAL_DICTIONARY_NAME = "dictionary.pkl"
"""The original's vocabulary file, which may sit beside the event folders (not a piece)."""


def original_event_sources(
    path: str | os.PathLike, *, categories: Sequence[str] | None = None, limit: int | None = None
) -> list[Source]:
    """The pieces of the original's event data: a zip file (read in place) or the folder it unpacks to.

    Every ``*.pkl`` file is a piece (sorted by path), except ``dictionary.pkl`` and the
    ``__MACOSX/`` / ``._*`` entries a macOS zip carries. A piece's category is the name of the
    folder that holds its file (so a zip that wraps everything in one top-level folder gives the
    same categories as one that does not); a file directly in the folder or zip takes the name of
    the folder or the zip's stem. Its composer is read from its own ``Composer_*`` event when it is
    encoded (`Source.composer` is None).

    ``categories`` keeps only those categories (as the original loader's ``used_categories``: its
    classifier read ``bach``, ``chopin``, ``mozart`` and ``beethoven`` of its data); ``limit`` keeps
    at most that many pieces per category.

    Raises:
        DataError: ``path`` is neither a folder nor a zip file, cannot be read, or holds no ``*.pkl``
            file; a category it does not hold (the message lists those it does).
    """
    root = Path(path)
    if root.is_dir():
        files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        sources = [
            Source(path=str(root / name), composer=None, category=_event_category(name, root.name))
            for name in files
            if _is_piece(name)
        ]
    elif root.is_file() and zipfile.is_zipfile(root):
        try:
            with zipfile.ZipFile(root) as archive:
                members = sorted(info.filename for info in archive.infolist() if not info.is_dir())
        except (OSError, zipfile.BadZipFile) as error:
            raise DataError(f"{root}: cannot read the zip file ({error})") from None
        sources = [
            Source(path=str(root), composer=None, category=_event_category(name, root.stem), member=name)
            for name in members
            if _is_piece(name)
        ]
    else:
        raise DataError(f"{root}: not a folder or a zip file of event pickles")
    if not sources:
        raise DataError(f"{root}: no event pickles (*{EVENT_SUFFIX}) found")
    if categories is not None:
        found = sorted({s.category for s in sources})
        missing = sorted(set(categories) - set(found))
        if missing:
            raise DataError(f"{root}: no category {', '.join(missing)}; its categories: {', '.join(found)}")
        sources = [s for s in sources if s.category in set(categories)]
    return _first_per_category(sources, limit)


def _is_piece(relative: str) -> bool:
    """Whether a path (relative to the folder or zip) is a piece: a ``*.pkl`` file that is not the
    dictionary or macOS metadata."""
    parts = PurePosixPath(relative).parts
    return (
        parts[-1].lower().endswith(EVENT_SUFFIX)
        and parts[-1] != ORIGINAL_DICTIONARY_NAME
        and parts[0] != "__MACOSX"
        and not parts[-1].startswith("._")
    )


def _event_category(relative: str, root_name: str) -> str:
    """The name of the folder holding ``relative``; ``root_name`` for a file at the top."""
    return PurePosixPath(relative).parent.name or root_name


def source_events(source: Source) -> list[str]:
    """The events of an original event pickle (`Source.is_events`), as ``Name_Value`` strings, unchanged.

    The file is read with the restricted unpickler of `vocab` (plain data and numeric numpy scalars
    only: the files come from the internet, and a pickle can otherwise run code). Accepted
    contents: ``(events, bar_indices)`` as the original converter writes, ``(bar_indices,
    events)`` as some of its readers expect, or the events alone; events as ``{'name', 'value'}``
    dicts (``{'name': 'BOS', 'value': None}`` is ``BOS_None``) or ``Name_Value`` strings. The
    first two events must be Composer and Tempo (the header the model reads the style from), and
    the bar positions, when present, must be those of the ``Bar`` events (optionally followed by
    the end of the piece, ``len(events)``).

    Raises:
        DataError: the file cannot be read or is not such a piece (naming the file and the reason).
    """
    try:
        with _open_event_file(source) as handle:
            content = load_restricted_pickle(handle, source.name, "event pickle", DataError)
    except (OSError, KeyError, zipfile.BadZipFile) as error:
        raise DataError(f"{source.name}: cannot read it ({error})") from None
    events, bars = _unpack_piece(content, source.name)
    if len(events) < 2 or split_event(events[0])[0] != "Composer" or split_event(events[1])[0] != "Tempo":
        raise DataError(f"{source.name}: does not start with Composer and Tempo events (starts {events[:2]})")
    if bars is not None:
        positions = [index for index, token in enumerate(events) if token == BAR_TOKEN]
        if list(bars) not in (positions, [*positions, len(events)]):
            raise DataError(f"{source.name}: its bar positions are not those of its Bar events")
    return events


def _open_event_file(source: Source) -> BinaryIO:
    """A binary stream of an event file: the file on disk, or the zip member read in place."""
    if source.member is None:
        return open(source.path, "rb")
    stat = os.stat(source.path)
    return _open_zip(source.path, stat.st_size, stat.st_mtime_ns, os.getpid()).open(source.member)


@functools.lru_cache(maxsize=4)
def _open_zip(path: str, size: int, mtime_ns: int, pid: int) -> zipfile.ZipFile:
    """The zip file, opened once per process (its directory of a hundred thousand entries is read
    once, not per piece); the process id is in the key because a forked worker must not share its
    parent's file position."""
    return zipfile.ZipFile(path)


def _unpack_piece(content: object, name: str) -> tuple[list[str], list[object] | None]:
    """``(events as Name_Value strings, bar positions or None)`` of an unpickled event file."""
    if _is_event_list(content):
        return _event_strings(content, name), None
    if isinstance(content, (tuple, list)) and len(content) == 2:
        first, second = content
        if _is_event_list(first) and _is_position_list(second):
            return _event_strings(first, name), second
        if _is_position_list(first) and _is_event_list(second):
            return _event_strings(second, name), first
    raise DataError(
        f"{name}: not an event file: expected (events, bar_indices), (bar_indices, events) or a list of "
        f"events, got {_describe(content)}"
    )


def _is_event_list(value: object) -> bool:
    """Whether ``value`` looks like the events (its first item tells; `_event_strings` checks every item)."""
    return isinstance(value, list) and bool(value) and isinstance(value[0], (dict, str))


def _is_position_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, int) and not isinstance(item, bool) for item in value)


def _event_strings(events: list[object], name: str) -> list[str]:
    """Each event as the original's loader formats it, ``'{}_{}'.format(name, value)``.

    Any value is formatted, even one the vocabulary cannot hold (``Tempo_120.0``): the tokenizer
    then refuses the piece, naming the event, rather than this reader changing it. (The restricted
    unpickler has already made sure that a value is plain data.)
    """
    try:
        return [item if isinstance(item, str) else event(item["name"], item["value"]) for item in events]
    except (KeyError, TypeError):  # an item that is not a str or a {'name', 'value'} dict
        index, item = next((i, e) for i, e in enumerate(events) if not _is_event(e))
        raise DataError(
            f"{name}: event {index} is not a 'Name_Value' string or a {{'name', 'value'}} dict ({item!r:.80})"
        ) from None


def _is_event(item: object) -> bool:
    return isinstance(item, str) or (isinstance(item, dict) and "name" in item and "value" in item)


def _describe(content: object) -> str:
    """A short description of unpickled content for an error: its type and, for a container, its length."""
    if isinstance(content, (list, tuple, dict)):
        return f"a {type(content).__name__} of {len(content)} items"
    return f"a {type(content).__name__}"


# --- conversion to MIDI ----------------------------------------------------------------------


def source_midi(source: Source, cache_dir: str | os.PathLike) -> str:
    """The path of a MIDI file of ``source``.

    A MIDI source is its own file. Any other score is parsed with music21 (an opus file listed as
    one work is merged into one score of parts) and written with ``score.write("midi")`` to
    ``cache_dir/<key>.mid``; later calls find it there.

    Raises:
        DataError: music21 cannot read or convert the work (now or in an earlier call: the reason
            is cached in ``cache_dir/<key>.error``).
    """
    if source.is_midi:
        return source.path
    cache = Path(cache_dir)
    key = _conversion_key(source)
    midi, failure = cache / f"{key}.mid", cache / f"{key}.error"
    if midi.exists():
        return str(midi)
    if failure.exists():
        raise DataError(failure.read_text(encoding="utf-8"))
    music21 = require("music21", "train", "reading a score with music21")
    converter, stream = music21.converter, music21.stream

    try:
        # renamed into place when complete: a killed build leaves no truncated cache entry
        with fileio.atomic_path(midi) as partial, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # music21 warns about every notation quirk of the corpus
            score = converter.parse(source.path, number=source.number, forceSource=True)
            if isinstance(score, stream.Opus):
                score = score.mergeScores()
            score.write("midi", fp=partial)
    except Exception as error:  # music21 raises many unrelated types; every one means "cannot convert"
        reason = f"{source.name}: music21 cannot convert it ({type(error).__name__}: {_first_line(error)})"
        fileio.write_text(failure, reason)
        raise DataError(reason) from None
    return str(midi)


def _conversion_key(source: Source) -> str:
    """Cache key of a conversion: the file's content, the work number, the music21 and conversion versions."""
    stat = os.stat(source.path)
    content = _file_digest(source.path, stat.st_size, stat.st_mtime_ns)
    parts = [content, str(source.number), MUSIC21_VERSION, str(CONVERSION_VERSION)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


@functools.lru_cache(maxsize=64)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime): an opus file is read once for all its works."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _first_line(error: BaseException) -> str:
    """An exception's message, first line only and at most 300 characters (music21's can be pages long)."""
    text = str(error).strip().splitlines()
    return text[0][:300] if text else ""


__all__ = [
    "CONVERSION_VERSION",
    "COLLECTION_COMPOSERS",
    "CORPUS_SKIPPED_SUFFIXES",
    "EVENT_SUFFIX",
    "MIDI_SUFFIXES",
    "MUSIC21_VERSION",
    "ORIGINAL_DICTIONARY_NAME",
    "PART_OPUS_COLLECTIONS",
    "Source",
    "collection_composer",
    "corpus_collections",
    "corpus_sources",
    "midi_sources",
    "original_event_sources",
    "source_events",
    "source_midi",
]
