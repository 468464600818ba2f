"""The original's published event data as a source: zips and folders of event pickles, read safely.

The pickles are written here in the original converter's layout (representations/midi2events_score.py:
``pickle.dump((events, bar_indices), ...)`` per piece under ``<category>/``, events as
``{'name', 'value'}`` dicts), from MIDI files written with mido and converted by the reference
re-implementation of that converter.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from datasets import load_from_disk

from g2m_hf import G2MTokenizer
from g2m_hf.corpus import Source, original_event_sources, source_events
from g2m_hf.data import build_dataset, encode_sources
from g2m_hf.errors import DataError, VocabularyError
from g2m_hf.vocab import ORIGINAL_COMPOSERS, load_restricted_pickle, read_original_dictionary, split_event
from tests.reference import original_remi
from tests.test_data import write_midi
from training.build_dataset import main as build_dataset_cli


def event_dicts(events: list[str]) -> list[dict]:
    """Events as the original's ``create_event`` makes them: int values for numbers, None for Bar/BOS/EOS,
    str for the composer (``'None'`` included) and the time signature."""
    dicts = []
    for token in events:
        name, value = split_event(token)
        if name in ("Bar", "BOS", "EOS"):
            value = None
        elif name not in ("Composer", "Time_Signature"):
            value = int(value)
        dicts.append({"name": name, "value": value})
    return dicts


def bar_indices(events: list[str]) -> list[int]:
    return [index for index, token in enumerate(events) if token == "Bar_None"]


class Exploit:
    """Unpickling this runs ``touch <marker>``, unless the unpickler refuses ``os.system``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> dict[str, list[str]]:
    """{member path (without a top-level folder): events} of the good pieces, in their categories."""
    midi = tmp_path_factory.mktemp("published_midi")
    specs = {  # category/file: (composer, pitches, bars); the original labels pretraining data 'None'
        "classical/c1.pkl": ("None", [60, 64, 67, 72], 6),
        "classical/c2.pkl": ("None", [48, 55, 60, 64, 67], 9),
        "folk/f1.pkl": ("None", [62, 66, 69], 4),
        "bach/b1.pkl": ("Bach", [60, 62, 64, 65, 67], 8),
        "bach/b2.pkl": ("Bach", [55, 59, 62, 67], 5),
        "chopin/n1.pkl": ("Chopin", [70, 73, 77, 82], 7),
    }
    pieces = {}
    for name, (composer, pitches, bars) in specs.items():
        path = write_midi(midi / name.replace(".pkl", ".mid"), pitches, bars)
        pieces[name] = original_remi.midi_to_events(path, composer=composer)
    return pieces


def pickled(content: object) -> bytes:
    return pickle.dumps(content, protocol=5)  # the original writes with the pickle5 backport


BAD = ("truncated.pkl", "velocity.pkl", "exploit.pkl", "array.pkl", "object_dtype.pkl", "bars.pkl", "headless.pkl")


def bad_members(events: list[str], marker: Path) -> dict[str, bytes]:
    """Pieces that must be skipped, each for its own reason."""
    velocity = [*events[:5], "Note_Velocity_64", *events[5:]]  # no such event in G2M
    wrong_bars = bar_indices(events)[:-1]
    return {
        "bad/truncated.pkl": pickled((event_dicts(events), bar_indices(events)))[:-7],
        "bad/velocity.pkl": pickled((event_dicts(velocity), bar_indices(velocity))),
        "bad/exploit.pkl": pickled((event_dicts(events), Exploit(marker))),
        "bad/array.pkl": pickled((event_dicts(events), np.asarray(bar_indices(events)))),
        "bad/object_dtype.pkl": pickled([*event_dicts(events)[:-1], {"name": "EOS", "value": np.dtype(object)}]),
        "bad/bars.pkl": pickled((event_dicts(events), wrong_bars)),
        "bad/headless.pkl": pickled(event_dicts(events)[2:]),
    }


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.fixture(scope="module")
def zips(published, tmp_path_factory) -> dict[str, Path]:
    """The same pieces in two zips: ``wrapped`` (a top-level folder, ``(events, bar_indices)`` of dicts,
    numpy int64 values in one piece, the bad pieces, a dictionary.pkl and macOS metadata) and ``flat``
    (no top-level folder; ``(bar_pos, events)`` of dicts, and lists of ``Name_Value`` strings)."""
    folder = tmp_path_factory.mktemp("zips")
    wrapped = {}
    for name, events in published.items():
        dicts = event_dicts(events)
        if name == "bach/b2.pkl":  # a converter that kept numpy integers
            dicts = [{**d, "value": np.int64(d["value"])} if isinstance(d["value"], int) else d for d in dicts]
        wrapped[f"pretrain_score/{name}"] = pickled((dicts, bar_indices(events)))
    for name, data in bad_members(published["folk/f1.pkl"], folder / "pwned").items():
        wrapped[f"pretrain_score/{name}"] = data
    wrapped["pretrain_score/dictionary.pkl"] = pickled(({"Bar_None": 0}, {0: "Bar_None"}))
    wrapped["__MACOSX/pretrain_score/bach/._b1.pkl"] = b"\x00\x05\x16\x07 macOS resource fork"
    wrapped["pretrain_score/readme.txt"] = b"not a piece"
    layouts = (  # the readers' other order (its bar positions may end with the piece's end), Name_Value strings
        lambda events: (bar_indices(events), event_dicts(events)),
        lambda events: list(events),
        lambda events: (list(events), bar_indices(events)),
        lambda events: ([*bar_indices(events), len(events)], event_dicts(events)),
    )
    flat = {name: pickled(layouts[index % 4](events)) for index, (name, events) in enumerate(published.items())}
    return {"wrapped": write_zip(folder / "pretrain_score.zip", wrapped), "flat": write_zip(folder / "flat.zip", flat)}


@pytest.fixture(scope="module")
def tok() -> G2MTokenizer:
    return G2MTokenizer()


@pytest.fixture(scope="module")
def built(zips, tok, tmp_path_factory):
    """The wrapped zip built once, in two processes, with a fresh cache."""
    folder = tmp_path_factory.mktemp("built_events")
    sources = original_event_sources(zips["wrapped"])
    splits, report = build_dataset(sources, tok, folder / "dataset", num_proc=2, cache_dir=folder / "cache")
    return sources, splits, report, folder


def rows_by_member(splits) -> dict[str, dict]:
    """Rows of all splits by the member path after the zip name and any top-level folder."""
    rows = {}
    for split in splits.values():
        for row in split:
            member = row["source"].split(".zip:", 1)[1].removeprefix("pretrain_score/")
            rows[member] = row
    return rows


# --- listing ---------------------------------------------------------------------------------


def test_listing_finds_pieces_and_their_categories(zips, published):
    wrapped = original_event_sources(zips["wrapped"])
    flat = original_event_sources(zips["flat"])
    members = {s.member.removeprefix("pretrain_score/") for s in wrapped}
    assert members == set(published) | {f"bad/{name}" for name in BAD}  # no dictionary, macOS metadata, text
    assert [(s.category, s.composer) for s in flat] == [(name.split("/")[0], None) for name in sorted(published)]
    assert {s.category for s in wrapped} == {"classical", "folk", "bach", "chopin", "bad"}
    first = wrapped[0]
    assert first.name == f"{zips['wrapped']}:{first.member}" and first.is_events and not first.is_midi
    assert Counter(s.category for s in original_event_sources(zips["flat"], limit=1)) == {
        "bach": 1, "chopin": 1, "classical": 1, "folk": 1,
    }  # fmt: skip


def test_categories_select_folders_as_the_original_used_categories(zips):
    chosen = original_event_sources(zips["wrapped"], categories=["bach", "chopin"])
    assert sorted(s.member for s in chosen) == ["pretrain_score/bach/b1.pkl", "pretrain_score/bach/b2.pkl",
                                                "pretrain_score/chopin/n1.pkl"]  # fmt: skip
    with pytest.raises(DataError, match="no category mozart; its categories: bach, bad, chopin, classical, folk"):
        original_event_sources(zips["wrapped"], categories=["bach", "mozart"])


def test_listing_refuses_what_is_not_event_data(tmp_path):
    with pytest.raises(DataError, match="not a folder or a zip file"):
        original_event_sources(tmp_path / "missing.zip")
    (tmp_path / "notes.zip").write_text("not a zip", encoding="utf-8")
    with pytest.raises(DataError, match="notes.zip: not a folder or a zip file"):
        original_event_sources(tmp_path / "notes.zip")
    empty = write_zip(tmp_path / "empty.zip", {"a/readme.txt": b"x"})
    with pytest.raises(DataError, match=r"empty.zip: no event pickles \(\*.pkl\)"):
        original_event_sources(empty)


# --- rows ------------------------------------------------------------------------------------


def test_rows_are_the_published_events_with_composer_and_category(built, published, tok, zips):
    sources, splits, report, _ = built
    rows = rows_by_member(splits)
    assert set(rows) == set(published)
    for name, events in published.items():
        row = rows[name]
        assert tok.ids_to_events(row["input_ids"]) == events  # exactly as published, numpy ints included
        assert row["bar_offsets"] == bar_indices(events)
        assert row["num_events"] == len(events)
        assert row["category"] == name.split("/")[0]
        assert row["composer"] == split_event(events[0])[1]  # Composer_None -> "None": general material
        assert row["source"] == f"{zips['wrapped']}:pretrain_score/{name}"
    assert report.composers == {"Bach": 2, "Chopin": 1, "None": 3}
    assert report.categories == {"bach": 2, "chopin": 1, "classical": 2, "folk": 1}
    assert report.works == len(sources) == len(published) + len(report.skipped)
    assert report.splits == {"train": 4, "validation": 2}  # one of each category with two pieces


def test_bad_pieces_are_skipped_with_their_reasons_and_nothing_runs(built, zips, tmp_path_factory):
    _, _, report, folder = built
    reasons = {entry["source"].rsplit("/", 1)[1]: entry["reason"] for entry in report.skipped}
    assert set(reasons) == set(BAD)
    assert reasons["truncated.pkl"].startswith("DataError: not a readable event pickle")
    assert reasons["velocity.pkl"] == "VocabularyError: events not in the vocabulary: ['Note_Velocity_64']"
    assert re.search(r"forbidden global (posix|os)\.system\)$", reasons["exploit.pkl"])
    assert "forbidden global numpy._core.numeric._frombuffer" in reasons["array.pkl"]  # protocol 5's array
    assert "numpy dtype object is not numeric" in reasons["object_dtype.pkl"]
    assert "bar positions are not those of its Bar events" in reasons["bars.pkl"]
    assert "does not start with Composer and Tempo" in reasons["headless.pkl"]
    assert all("\n" not in reason for reason in reasons.values())
    assert not (zips["wrapped"].parent / "pwned").exists()
    skipped = (folder / "dataset" / "skipped.json").read_text(encoding="utf-8")
    assert f"{zips['wrapped']}:pretrain_score/bad/velocity.pkl" in skipped
    by_source = {entry["source"]: entry for entry in report.skipped}
    velocity = by_source[f"{zips['wrapped']}:pretrain_score/bad/velocity.pkl"]
    assert (velocity["composer"], velocity["category"]) == ("None", "bad")  # its Composer event was read


def test_both_tuple_orders_string_lists_and_the_unpacked_folder_give_the_same_rows(built, zips, tok, tmp_path):
    _, splits, report, folder = built

    def content(rows, name_of) -> dict[str, tuple]:
        return {name_of(row["source"]): (row["input_ids"], row["composer"], row["category"]) for row in rows}

    expected = content(rows_by_member(splits).values(), lambda source: source.split(".zip:pretrain_score/")[1])
    flat, _ = encode_sources(original_event_sources(zips["flat"]), tok, cache_dir=folder / "cache")
    assert content(flat, lambda source: source.split("flat.zip:")[1]) == expected

    unpacked = tmp_path / "pretrain_score_unzipped"
    with zipfile.ZipFile(zips["wrapped"]) as archive:
        archive.extractall(unpacked)
    sources = original_event_sources(unpacked)
    from_folder, folder_report = encode_sources(sources, tok, cache_dir=folder / "cache", num_proc=2)
    assert content(from_folder, lambda source: source.removeprefix(f"{unpacked}/pretrain_score/")) == expected
    assert [entry["reason"] for entry in folder_report.skipped] == [entry["reason"] for entry in report.skipped]
    # the folder holding a file names its category, here also for files at the top of the folder
    assert {s.category for s in original_event_sources(unpacked / "pretrain_score" / "bach")} == {"bach"}


def test_rebuild_reads_the_encoding_cache(built, tok):
    sources, splits, report, folder = built
    assert not report.encoding_cached
    again, second = build_dataset(sources, tok, folder / "again", num_proc=2, cache_dir=folder / "cache")
    assert second.encoding_cached and second.skipped == report.skipped
    assert again["train"]["input_ids"] == splits["train"]["input_ids"]
    assert again["validation"]["source"] == splits["validation"]["source"]


def test_an_original_dictionary_skips_pieces_with_events_outside_it(published, tmp_path):
    pieces = dict(published)
    # the dictionary is built from these pieces by the original rule (events2words.py); a piece with
    # a tempo no other piece has is then outside it, though G2M's complete vocabulary holds the event
    other_tempo = [token if not token.startswith("Tempo_") else "Tempo_80" for token in published["bach/b1.pkl"]]
    vocabulary = sorted({token for piece in pieces.values() for token in piece}
                    | {f"Note_Pitch_{p}" for p in range(21, 109)}
                    | {f"Note_Duration_{d}" for d in range(20, 1921, 20)}
                    | {f"Composer_{c}" for c in ORIGINAL_COMPOSERS})  # fmt: skip
    dictionary = tmp_path / "dictionary.pkl"
    dictionary.write_bytes(pickled(({e: i for i, e in enumerate(vocabulary)}, dict(enumerate(vocabulary)))))
    pieces["bach/b3.pkl"] = other_tempo
    members = {name: pickled((event_dicts(events), bar_indices(events))) for name, events in pieces.items()}
    archive = write_zip(tmp_path / "finetune.zip", members)

    output = tmp_path / "out"
    arguments = ["--original-events", str(archive), "--tokenizer", str(dictionary), "--output", str(output)]
    assert build_dataset_cli([*arguments, "--cache-dir", str(tmp_path / "cache"), "--num-proc", "1"]) == 0
    splits = load_from_disk(str(output))
    vocabulary = read_original_dictionary(dictionary)  # PAD_None appended, as the original loader does
    rows = {row["source"].split(".zip:")[1]: row for split in splits.values() for row in split}
    assert set(rows) == set(published)
    for name, row in rows.items():  # the dictionary's ids
        assert row["input_ids"] == [vocabulary.index(token) for token in published[name]]
    skipped = json.loads((output / "skipped.json").read_text(encoding="utf-8"))
    assert skipped == [{
        "source": f"{archive}:bach/b3.pkl", "composer": "Bach", "category": "bach",
        "reason": "VocabularyError: events not in the vocabulary: ['Tempo_80']",
    }]  # fmt: skip
    assert json.loads((output / "build_report.json").read_text(encoding="utf-8"))["skipped"] == skipped


def test_cli_refuses_options_that_do_not_apply(zips, tmp_path, capsys):
    output = tmp_path / "out"
    for extra in (["--composers", "bach"], ["--general"], ["--add-composers"], ["--out-of-range", "drop"]):
        with pytest.raises(SystemExit) as refusal:
            build_dataset_cli(["--original-events", str(zips["flat"]), "--output", str(output), *extra])
        assert refusal.value.code == 2
        assert f"{extra[0]}: not with --original-events" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_dataset_cli(["--original-events", str(tmp_path / "nothing.zip"), "--output", str(output)])
    assert f"argument --original-events: {tmp_path / 'nothing.zip'} (no such file or folder)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_dataset_cli(["--music21", "--general", "--categories", "bach", "--output", str(output)])
    assert "--categories selects category folders of --original-events" in capsys.readouterr().err
    assert not output.exists()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ([{"name": "Composer", "value": "Bach"}, {"name": "Tempo"}], r"event 1 is not a 'Name_Value' string or a"),
        ([{"name": "Composer", "value": "Bach"}, ["Tempo", 120]], r"event 1 is not a .* \(\['Tempo', 120\]\)"),
        ((["Composer_Bach", "Tempo_120"], "bars"), r"not an event file: .* got a tuple of 2 items"),
        ({"events": []}, r"not an event file: .* got a dict of 1 items"),
        (["Tempo_120", "Composer_Bach"], r"does not start with Composer and Tempo events"),
    ],
)
def test_malformed_pieces_are_refused_with_the_reason(tmp_path, content, reason):
    path = tmp_path / "piece.pkl"
    path.write_bytes(pickled(content))
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: {reason}"):
        source_events(Source(path=str(path), composer=None))


def test_values_are_formatted_as_published_and_judged_by_the_vocabulary(tmp_path, tok, published):
    events = event_dicts(published["bach/b1.pkl"])
    events[1]["value"] = 120.0  # a float tempo: 'Tempo_120.0' is read as such, never rounded to Tempo_120
    path = tmp_path / "float.pkl"
    path.write_bytes(pickled(events))
    (source,) = original_event_sources(tmp_path)
    assert source_events(source)[1] == "Tempo_120.0"
    with pytest.raises(VocabularyError, match=r"Tempo_120\.0"):
        tok.events_to_ids(source_events(source))


# --- the restricted unpickler ------------------------------------------------------------------


def load(content: object, protocol: int = 5) -> object:
    data = pickle.dumps(content, protocol=protocol)
    return load_restricted_pickle(io.BytesIO(data), "x.pkl", "event pickle", DataError)


def test_restricted_unpickler_takes_plain_data_and_numeric_numpy_scalars():
    plain = ({"name": "BOS", "value": None}, ["Bar_None", 3, 2.5, True, None], (1, 2))
    assert load(plain) == plain
    numbers = [np.int64(-5), np.float64(1.5), np.int32(7), np.uint8(200), np.float32(0.25), np.bool_(True)]
    loaded = load(numbers, protocol=4)
    assert loaded == [-5, 1.5, 7, 200, 0.25, True]
    assert [type(value) for value in loaded] == [int, float, int, int, float, bool]  # plain Python numbers
    assert load([np.dtype(">i4").type(7)]) == [7]  # byte order kept


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (np.arange(3), r"forbidden global numpy\._core\.numeric\._frombuffer"),
        (np.dtype(object), "numpy dtype object is not numeric"),
        (np.str_("Bar"), "numpy dtype <U3 is not numeric"),
        (complex(1, 2), "forbidden global builtins.complex"),
        (Path("x"), "forbidden global pathlib"),
    ],
)
def test_restricted_unpickler_refuses_anything_else(content, reason):
    with pytest.raises(DataError, match=rf"^x\.pkl: not a readable event pickle \({reason}"):
        load(content)
    if isinstance(content, np.ndarray):  # protocol 4 reconstructs arrays another way, refused as well
        with pytest.raises(DataError, match=r"forbidden global numpy\._core\.multiarray\._reconstruct"):
            load(content, protocol=4)


def test_a_pickle_that_runs_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    for error, read in (
        (DataError, lambda path: source_events(Source(path=str(path), composer=None))),
        (VocabularyError, read_original_dictionary),
    ):
        path = tmp_path / "evil.pkl"
        path.write_bytes(pickled(({"Bar_None": 0}, Exploit(marker))))
        with pytest.raises(error, match=r"evil\.pkl: not a readable .* \(forbidden global (posix|os)\.system\)$"):
            read(path)
    assert not marker.exists()
