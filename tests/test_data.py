"""Datasets: corpus listing, encoding with caches and a skipped report, stratified split, collator, sampler.

Real data only: 12 Bach chorales and 4 Ryan's Mammoth tunes of the music21 corpus, plus a folder of
MIDI files written here with mido (one corrupt, one with a pitch below the piano).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import mido
import numpy as np
import pytest
import torch
from datasets import Dataset, load_from_disk

from g2m_hf import G2MTokenizer
from g2m_hf.corpus import Source, corpus_collections, corpus_sources, midi_sources, source_midi
from g2m_hf.data import (
    FEATURES,
    PREFIX_LENGTH,
    G2MDataCollator,
    build_dataset,
    composer_balanced_weights,
    encode_sources,
    split_dataset,
    window_starts,
    window_stop,
)
from g2m_hf.errors import DataError, OutputExistsError, VocabularyError
from g2m_hf.vocab import BAR_TOKEN, EOS_TOKEN, PITCH_MAX, PITCH_MIN
from tests.cli import exit_code
from training.build_dataset import main as build_dataset_cli


def write_midi(path: Path, pitches: list[int], bars: int) -> Path:
    """A 4/4 piece at 120 BPM: quarter notes cycling through ``pitches``, with a fifth below every downbeat."""
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    track.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))
    for beat in range(bars * 4):
        pitch = pitches[beat % len(pitches)]
        chord = [pitch, pitch - 7] if beat % 4 == 0 else [pitch]
        for note in chord:
            track.append(mido.Message("note_on", note=note, velocity=64, time=0))
        for index, note in enumerate(chord):
            track.append(mido.Message("note_off", note=note, velocity=0, time=480 if index == 0 else 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.save(path)
    return path


@pytest.fixture(scope="module")
def tok() -> G2MTokenizer:
    return G2MTokenizer()


@pytest.fixture(scope="module")
def user_midi(tmp_path_factory) -> Path:
    """A user's MIDI folder: sub-folders name composers; one corrupt file, one pitch out of range."""
    root = tmp_path_factory.mktemp("user_midi")
    write_midi(root / "chopin" / "nocturne.mid", [60, 64, 67, 72, 71, 67, 64, 62], bars=12)
    write_midi(root / "chopin" / "low.mid", [60, 10, 62], bars=2)  # 10 < 21: the original rejects the piece
    write_midi(root / "mozart" / "sonata.mid", list(range(48, 85, 2)), bars=16)
    write_midi(root / "mozart" / "edges.mid", [29, 107, 60, 80], bars=6)  # lowest note 22 (29 - 7): shifts -1..+1
    (root / "mozart" / "corrupt.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01garbage")
    write_midi(root / "loose.mid", [55, 57, 59, 60], bars=4)  # top level: general material
    return root


@pytest.fixture(scope="module")
def broken_score(tmp_path_factory) -> Source:
    """A MusicXML file music21 cannot read (a conversion that fails)."""
    path = tmp_path_factory.mktemp("broken") / "broken.musicxml"
    path.write_text("<score-partwise><part id='P1'><measure number='1'><note><pitch>", encoding="utf-8")
    return Source(path=str(path), category="general")


@pytest.fixture(scope="module")
def sources(user_midi, broken_score) -> list[Source]:
    corpus = corpus_sources(composers=["bach"], limit=12) + corpus_sources(general=["ryansMammoth"], limit=4)
    return corpus + midi_sources(user_midi) + [broken_score]


@pytest.fixture(scope="module")
def built(sources, tok, tmp_path_factory):
    """The dataset built once, in two processes, with a fresh cache."""
    folder = tmp_path_factory.mktemp("built")
    splits, report = build_dataset(sources, tok, folder / "dataset", num_proc=2, cache_dir=folder / "cache")
    return splits, report, folder


# --- listing works -------------------------------------------------------------------------


def test_corpus_sources_labels_and_collections():
    chorales = corpus_sources(composers=["bach"])
    assert len(chorales) > 350 and {s.composer for s in chorales} == {"Bach"}
    assert not any(s.path.endswith(".rntxt") for s in chorales)  # harmonic analyses are not scores
    schumann = corpus_sources(composers=["Schumann"], limit=2)
    assert [(s.composer, s.category) for s in schumann] == [("Schumann", "schumann_robert")] * 2
    everything = corpus_sources(composers=["mozart"], general=True, limit=1)
    assert {s.category for s in everything} == set(corpus_collections())
    assert {s.category for s in everything if s.composer != "None"} == {"mozart"}
    with pytest.raises(DataError, match="collections: .*ryansMammoth"):
        corpus_sources(composers=["nobody"])


def test_opus_files_split_into_works_and_parts_merge(tmp_path, tok):
    songs = corpus_sources(general=["essenFolksong"], limit=3)
    assert len({s.path for s in songs}) == 1 and len({s.number for s in songs}) == 3
    assert len({s.name for s in songs}) == 3  # path#number names the work
    first, second = (tok.encode_midi(source_midi(s, tmp_path), composer=None) for s in songs[:2])
    assert first != second  # two different songs of one file
    # a Josquin ABC file holds one voice per tune: one work, the voices merged as parts
    (josquin,) = corpus_sources(general=["josquin"], limit=1)
    assert josquin.number is None
    midi = mido.MidiFile(source_midi(josquin, tmp_path))
    assert sum(any(m.type == "note_on" for m in track) for track in midi.tracks) == 2  # "4v." has two voices


def test_midi_sources_labels(user_midi, tmp_path):
    by_name = {Path(s.path).name: s for s in midi_sources(user_midi)}
    assert (by_name["nocturne.mid"].composer, by_name["nocturne.mid"].category) == ("chopin", "chopin")
    assert (by_name["loose.mid"].composer, by_name["loose.mid"].category) == ("None", "general")
    assert {s.composer for s in midi_sources(user_midi, general=True)} == {"None"}
    assert len(midi_sources(user_midi, limit=1)) == 3  # one per category: chopin, general, mozart

    csv_map = tmp_path / "labels.csv"
    csv_map.write_text("path,composer,category\nmozart/sonata.mid,Bach,sonatas\n", encoding="utf-8")
    labelled = {Path(s.path).name: s for s in midi_sources(user_midi, composer_map=csv_map)}
    assert (labelled["sonata.mid"].composer, labelled["sonata.mid"].category) == ("Bach", "sonatas")
    assert labelled["nocturne.mid"].composer == "None"  # not in the map: general
    json_map = tmp_path / "labels.json"
    json_map.write_text(json.dumps({"chopin/nocturne.mid": "Chopin", "missing.mid": "Bach"}), encoding="utf-8")
    with pytest.raises(DataError, match="missing.mid"):
        midi_sources(user_midi, composer_map=json_map)


def test_unknown_composer_is_refused_before_encoding(tmp_path, tok):
    write_midi(tmp_path / "midi" / "haydn" / "quartet.mid", [60, 62], bars=2)
    with pytest.raises(VocabularyError, match="known composers: .*Bach"):
        encode_sources(midi_sources(tmp_path / "midi"), tok, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "midi").exists()


# --- building --------------------------------------------------------------------------------


def test_build_columns_labels_and_skipped_report(built, sources, tok, user_midi, broken_score):
    splits, report, folder = built
    train = splits["train"]
    assert train.features == FEATURES and splits["validation"].features == FEATURES
    rows = {row["source"]: row for split in splits.values() for row in split}

    skipped = {entry["source"]: entry["reason"] for entry in report.skipped}
    low, corrupt = str(user_midi / "chopin" / "low.mid"), str(user_midi / "mozart" / "corrupt.mid")
    user_failures = {low, corrupt, broken_score.path}
    assert user_failures <= set(skipped)
    for name in set(skipped) - user_failures:  # real corpus works music21 cannot write (bad repeats)
        assert "music21 cannot convert" in skipped[name] and "/music21/corpus/" in name
    assert "outside 21..108" in skipped[low]
    assert "corrupt" in skipped[corrupt]
    assert "music21 cannot convert" in skipped[broken_score.path]
    assert json.loads((folder / "dataset" / "skipped.json").read_text()) == report.skipped
    assert len(rows) + len(skipped) == len(sources) == report.works  # nothing dropped silently

    composers = {Path(name).parent.name + "/" + Path(name).name: row["composer"] for name, row in rows.items()}
    assert composers["chopin/nocturne.mid"] == "Chopin" and composers["mozart/sonata.mid"] == "Mozart"
    assert composers[user_midi.name + "/loose.mid"] == "None"
    assert Counter(row["composer"] for row in rows.values() if row["category"] == "bach") == {"Bach": 12}
    assert {row["composer"] for row in rows.values() if row["category"] == "ryansMammoth"} == {"None"}

    bar_id = tok.convert_tokens_to_ids(BAR_TOKEN)
    for row in rows.values():
        events = tok.ids_to_events(row["input_ids"])
        assert events[0] == f"Composer_{row['composer']}" and events[2] == "BOS_None" and events[-1] == EOS_TOKEN
        assert row["num_events"] == len(events)
        assert row["bar_offsets"] == [i for i, token in enumerate(row["input_ids"]) if token == bar_id]
    assert report.tokens == sum(row["num_events"] for row in rows.values())

    reloaded = load_from_disk(str(folder / "dataset"))
    assert reloaded["validation"]["source"] == splits["validation"]["source"]


def test_split_is_stratified_and_seeded(built):
    splits, report, _ = built
    validation = Counter(splits["validation"]["category"])
    # round(3% of n), at least one piece when a category has two or more, never its only piece
    assert validation == {"bach": 1, "ryansMammoth": 1, "mozart": 1}
    assert report.splits == {"train": report.encoded - 3, "validation": 3}

    many = Dataset.from_dict({"row": list(range(1100)), "category": ["big"] * 1000 + ["small"] * 100})
    first = split_dataset(many, seed=42)
    assert Counter(first["validation"]["category"]) == {"big": 30, "small": 3}
    assert sorted([*first["train"]["row"], *first["validation"]["row"]]) == list(range(1100))
    assert split_dataset(many, seed=42)["validation"]["row"] == first["validation"]["row"]
    assert split_dataset(many, seed=7)["validation"]["row"] != first["validation"]["row"]


def test_rebuild_reads_caches_and_converts_nothing(built, sources, tok):
    splits, report, folder = built
    assert report.conversions == 12 + 4 + 1  # chorales, tunes and the broken score (user MIDI needs none)
    assert not report.encoding_cached
    again, second = build_dataset(sources, tok, folder / "again", num_proc=2, cache_dir=folder / "cache")
    assert second.encoding_cached and second.conversions == 0
    assert second.seconds < report.seconds / 3
    assert again["validation"]["source"] == splits["validation"]["source"]
    assert again["train"]["input_ids"] == splits["train"]["input_ids"]

    # another selection must be encoded again, but every music21 work (and failure) comes from the cache
    subset = [s for s in sources if not s.is_midi][2:]
    dataset, third = encode_sources(subset, tok, cache_dir=folder / "cache")
    assert not third.encoding_cached and third.conversions == 0
    assert third.skipped == [entry for entry in report.skipped if entry["source"] in {s.name for s in subset}]
    assert len(dataset) == len(subset) - len(third.skipped)

    # two workers are dealt the works round-robin; the rows come back in source order, as from one process
    two, _ = encode_sources(sources, tok, cache_dir=folder / "cache", num_proc=2)
    one, _ = encode_sources(sources, tok, cache_dir=folder / "cache")
    assert two["source"] == one["source"] and two["input_ids"] == one["input_ids"]
    assert two["source"] == [s.name for s in sources if s.name in set(two["source"])]


def test_existing_output_is_not_replaced_silently(built, sources, tok, tmp_path):
    _, _, folder = built
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    for overwrite in (False, True):  # overwrite replaces dataset folders only
        with pytest.raises(OutputExistsError):
            build_dataset(sources, tok, tmp_path, cache_dir=folder / "cache", overwrite=overwrite)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    with pytest.raises(OutputExistsError):
        build_dataset(sources, tok, folder / "dataset", cache_dir=folder / "cache")
    _, report = build_dataset(sources, tok, folder / "dataset", cache_dir=folder / "cache", overwrite=True)
    assert report.encoding_cached


def test_cli_builds_from_a_midi_folder(user_midi, tmp_path, capsys):
    output = tmp_path / "out"
    code = build_dataset_cli(
        ["--midi-dir", str(user_midi), "--output", str(output), "--cache-dir", str(tmp_path / "c"), "--num-proc", "1"]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "encoded 4 of 6 works" in printed and str(output / "skipped.json") in printed
    assert sorted(load_from_disk(str(output))["train"]["composer"]) == ["Chopin", "Mozart", "None"]

    assert exit_code(build_dataset_cli, ["--midi-dir", tmp_path / "nowhere", "--output", tmp_path / "x"]) == 2
    assert "--midi-dir: " + str(tmp_path / "nowhere") + " (no such folder)" in capsys.readouterr().err

    write_midi(tmp_path / "haydn_midi" / "haydn" / "quartet.mid", [60, 62, 64], bars=2)
    arguments = ["--midi-dir", str(tmp_path / "haydn_midi"), "--cache-dir", str(tmp_path / "c"), "--num-proc", "1"]
    assert build_dataset_cli([*arguments, "--output", str(tmp_path / "h1")]) == 2
    assert "unknown composer 'haydn'" in capsys.readouterr().err
    assert build_dataset_cli([*arguments, "--output", str(tmp_path / "h2"), "--add-composers"]) == 0
    assert "new composer tokens: haydn" in capsys.readouterr().out
    haydn = G2MTokenizer.from_pretrained(str(tmp_path / "h2" / "tokenizer"))
    (row,) = load_from_disk(str(tmp_path / "h2"))["train"]
    assert haydn.ids_to_events(row["input_ids"][:1]) == ["Composer_haydn"] and row["composer"] == "haydn"


# --- windows and batches ---------------------------------------------------------------------


def test_window_bounds_follow_bar_lines():
    bars = [3, 20, 40, 60, 80]  # a 100-token piece
    assert window_starts(100, bars, 40) == [0, 20, 40, 60, 80]  # each leaves >= 40 // 2 - 2 tokens
    assert window_starts(100, bars, 80) == [0, 20, 40, 60]
    assert window_stop(100, bars, 0, 40) == 21  # up to and with the Bar_None of the next bar
    assert window_stop(100, bars, 20, 40) == 41  # 2 prefix tokens + 21 fit; bar 60 would not
    assert window_stop(100, bars, 80, 40) == 100  # the rest fits: last bar and EOS
    assert window_stop(50, bars[:3], 0, 60) == 50
    assert window_stop(50, bars[:3], 0, 60, include_piece_end=False) == 41  # the original: never the last bar
    assert window_stop(100, [3, 90], 0, 40) == 40  # a bar longer than the window is cut


@pytest.fixture(scope="module")
def pieces(built) -> list[dict]:
    return list(built[0]["train"])


def _real(batch, row) -> list[int]:
    return batch["input_ids"][row][batch["attention_mask"][row].bool()].tolist()


def test_collator_windows_are_bar_aligned_and_prefixed(pieces, tok):
    collator = G2MDataCollator(tok, max_length=96, augment=False, seed=0)
    bar_id, eos_id = tok.convert_tokens_to_ids([BAR_TOKEN, EOS_TOKEN])
    starts = Counter()
    for _ in range(5):
        batch = collator(pieces)
        for row, piece in enumerate(pieces):
            ids, window = piece["input_ids"], _real(batch, row)
            assert len(window) <= 96
            if window == ids[: len(window)]:
                starts["piece start"] += 1
                body = window
            else:
                assert window[:PREFIX_LENGTH] == ids[:PREFIX_LENGTH]  # Composer, Tempo of the piece
                body = window[PREFIX_LENGTH:]
                assert any(ids[b : b + len(body)] == body for b in piece["bar_offsets"][1:])  # starts at a bar
                starts["inside"] += 1
            longest_bar = max(np.diff(piece["bar_offsets"] + [len(ids)]))
            assert body[-1] in (bar_id, eos_id) or longest_bar + 2 > 96
    assert starts["piece start"] > 0 and starts["inside"] > 0


def test_collator_transposes_inside_the_piano_range(pieces, tok):
    vocabulary = tok.event_vocabulary
    pitch = {i: int(t.rsplit("_", 1)[1]) for i, t in enumerate(vocabulary) if t.startswith("Note_Pitch_")}
    plain = G2MDataCollator(tok, max_length=4096, random_windows=False, augment=False)
    augmented = G2MDataCollator(tok, max_length=4096, random_windows=False, seed=1)
    reference = plain(pieces)
    edges = next(row for row, piece in enumerate(pieces) if piece["source"].endswith("edges.mid"))
    shifts_of = {row: set() for row in range(len(pieces))}
    for _ in range(30):
        batch = augmented(pieces)
        for row in range(len(pieces)):
            before, after = _real(reference, row), _real(batch, row)
            assert len(before) == len(after)
            moved = {pitch[a] - pitch[b] for b, a in zip(before, after, strict=True) if b in pitch}
            assert all(b == a for b, a in zip(before, after, strict=True) if b not in pitch)  # only pitches change
            assert len(moved) <= 1  # one shift for the whole window
            shifts_of[row] |= moved
            assert all(PITCH_MIN <= pitch[a] <= PITCH_MAX for a in after if a in pitch)
    assert shifts_of[edges] == {-1, 0, 1}  # lowest note 22, highest 107
    assert set().union(*shifts_of.values()) == set(range(-3, 4))


def test_collator_pads_and_masks_labels(pieces, tok):
    batch = G2MDataCollator(tok, max_length=4096, random_windows=False, augment=False)(pieces[:4])
    lengths = [len(p["input_ids"]) for p in pieces[:4]]
    assert batch["input_ids"].shape == (4, max(lengths)) and batch["input_ids"].dtype == torch.long
    assert batch["attention_mask"].sum(1).tolist() == lengths  # whole pieces, EOS included
    padding = batch["input_ids"] == tok.pad_token_id
    assert torch.equal(padding, batch["attention_mask"] == 0)
    assert torch.equal(batch["labels"] == -100, padding)
    assert torch.equal(batch["labels"][~padding], batch["input_ids"][~padding])
    original = G2MDataCollator(tok, max_length=4096, random_windows=False, augment=False, include_piece_end=False)
    first = _real(original(pieces[:1]), 0)
    assert first == pieces[0]["input_ids"][: pieces[0]["bar_offsets"][-1] + 1]  # ends at the last Bar_None


def test_collator_is_reproducible_and_needs_no_bar_column(pieces, tok):
    def draw(seed, features):
        collator = G2MDataCollator(tok, max_length=80, seed=seed)
        return [collator(features)["input_ids"] for _ in range(3)]

    first, again = draw(5, pieces), draw(5, [{"input_ids": p["input_ids"]} for p in pieces])
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, draw(6, pieces), strict=True))
    torch.manual_seed(3)
    global_rng = G2MDataCollator(tok, max_length=80)(pieces)["input_ids"]
    torch.manual_seed(3)
    assert torch.equal(global_rng, G2MDataCollator(tok, max_length=80)(pieces)["input_ids"])


def test_composer_balanced_weights_draw_composers_equally(built):
    train = built[0]["train"]
    counts = Counter(train["composer"])
    assert max(counts.values()) >= 5 * min(counts.values())  # unbalanced data: Bach 11, Chopin 1...
    weights = composer_balanced_weights(train)
    sampler = torch.utils.data.WeightedRandomSampler(
        weights, num_samples=8000, generator=torch.Generator().manual_seed(0)
    )
    labels = list(train["composer"])
    drawn = Counter(labels[i] for i in sampler)
    assert set(drawn) == set(counts)
    assert all(abs(n / 8000 - 1 / len(counts)) < 0.03 for n in drawn.values())
