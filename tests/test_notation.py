"""Scores (g2m_hf.notation): MusicXML read back by music21 holds the notes of the MIDI a piece decodes to;
Verovio engraves it; the tools write scores (g2m-generate --score, g2m-render --score)."""

from __future__ import annotations

import zipfile
from collections import Counter
from fractions import Fraction

import pretty_midi
import pytest

from g2m_hf import default_model_path
from g2m_hf.cli import generate as generate_cli
from g2m_hf.cli import render as render_cli
from g2m_hf.errors import InvalidArgumentError, ModelNotFoundError, NotationError
from g2m_hf.notation import (
    BASS,
    TREBLE,
    engrave_svg,
    read_score_notes,
    score_notes_of_events,
    write_score,
)
from g2m_hf.remi import events_to_midi, midi_to_events
from g2m_hf.vocab import bar_geometry
from tests.cli import exit_code

music21 = pytest.importorskip("music21", reason='scores need the notation extra: pip install "g2m_hf[notation]"')

try:
    default_model_path()
    HAS_MODEL = True
except ModelNotFoundError:
    HAS_MODEL = False


def midi_notes(events: list[str]) -> Counter:
    """(onset, duration, pitch) in quarter notes of the MIDI that ``events`` decode to, each note cut at
    the last bar line (where a score ends), as pretty_midi reads them: the reference a score must match."""
    midi = events_to_midi(events)
    signatures = [events[i + 1].removeprefix("Time_Signature_") for i, e in enumerate(events[:-1]) if e == "Bar_None"]
    end = Fraction(sum(bar_geometry(s)[0] for s in signatures), 480)
    notes = Counter()
    for note in midi.instruments[0].notes:
        onset = Fraction(midi.time_to_tick(note.start), 480)
        if onset < end:
            notes[onset, min(Fraction(midi.time_to_tick(note.end), 480), end) - onset, note.pitch] += 1
    return notes


def read_back(path) -> tuple[Counter, set[int]]:
    """The score's notes as (onset, duration, pitch), and the staves that hold notes."""
    notes = read_score_notes(path)
    return Counter((n.onset, n.duration, n.pitch) for n in notes), {n.staff for n in notes}


def score_signatures(path) -> list[str]:
    """The time signature of every measure of the score's upper staff, as music21 reads the file."""
    part = music21.converter.parse(path).parts[0]
    return [m.timeSignature.ratioString if m.timeSignature else None for m in part.getElementsByClass("Measure")]


# --- real pieces: music21 corpus works through MIDI and the REMI converter -------------------------------

CORPUS_CASES = {
    "ryansMammoth/AfterTheHareReel": "2/4",
    "bach/bwv11.6": "3/4",  # a chorale: chords, four voices on two staves
    "ryansMammoth/AcrobatsHornpipe": "4/4 with triplets",
    "ryansMammoth/OffSheGoesJig": "6/8",
    "bach/bwv248.23-2": "12/8, which REMI writes as two 6/8 bars",
    "trecento/Fava_Dicant_nunc_iudei": "a change from 4/4 to 6/8",
}


@pytest.fixture(scope="module")
def corpus_scores(tmp_path_factory) -> dict[str, tuple[list[str], object]]:
    """{work: (its REMI events, its score file)}: each work written to MIDI by music21, converted, scored."""
    folder = tmp_path_factory.mktemp("corpus_scores")
    scores = {}
    for work in CORPUS_CASES:
        name = work.replace("/", "_")
        music21.corpus.parse(work).write("midi", fp=str(folder / f"{name}.mid"))
        events = midi_to_events(folder / f"{name}.mid")
        scores[work] = events, write_score(events, folder / f"{name}.musicxml")
    return scores


@pytest.mark.parametrize("work", list(CORPUS_CASES))
def test_a_corpus_piece_reads_back_with_the_notes_and_bars_of_its_midi(corpus_scores, work):
    events, path = corpus_scores[work]
    notes, staves = read_back(path)
    assert notes == midi_notes(events) and staves == {TREBLE, BASS}
    bar_signatures = [events[i + 1].removeprefix("Time_Signature_") for i, e in enumerate(events) if e == "Bar_None"]
    written = score_signatures(path)
    assert len(written) == len(bar_signatures)
    # a signature is written where it changes, and only there
    assert written == [s if i == 0 or s != bar_signatures[i - 1] else None for i, s in enumerate(bar_signatures)]


def test_the_corpus_scores_hold_triplets_ties_across_bar_lines_and_chords(corpus_scores):
    _, hornpipe = corpus_scores["ryansMammoth/AcrobatsHornpipe"]
    assert "<time-modification>" in hornpipe.read_text() and "<tuplet " in hornpipe.read_text()
    events, chorale = corpus_scores["bach/bwv11.6"]
    bar = Fraction(3)  # 3/4 throughout
    across = [n for n in read_score_notes(chorale) if (n.onset // bar) != ((n.onset + n.duration - Fraction(1, 12)) // bar)]
    assert across, "some notes of the chorale cross a bar line"
    assert '<tie type="start"' in chorale.read_text() and "<chord" in chorale.read_text()
    assert set(score_signatures(corpus_scores["bach/bwv248.23-2"][1])) - {None} == {"6/8"}


def test_the_staves_follow_the_hands_not_a_fixed_split():
    # a bass line climbing above middle C under a melody stays in the bass; the melody stays in the treble
    events = ["Composer_Bach", "Tempo_120", "BOS_None", "Bar_None", "Time_Signature_4/4"]
    for beat, (low, high) in enumerate([(48, 72), (55, 76), (62, 79), (64, 84)]):
        events += [f"Beat_{12 * beat}", f"Note_Pitch_{high}", "Note_Duration_480", f"Note_Pitch_{low}", "Note_Duration_480"]
    events.append("EOS_None")
    staves = {n.pitch: n.staff for n in score_notes_of_events(events)}
    assert [staves[p] for p in (48, 55, 62, 64)] == [BASS] * 4 and [staves[p] for p in (72, 76, 79, 84)] == [TREBLE] * 4


def test_what_the_score_must_change_a_note_past_the_end_is_cut_an_off_grid_duration_rounded(tmp_path):
    events = ["Composer_Mozart", "Tempo_80", "BOS_None", "Bar_None", "Time_Signature_2/4",
              "Beat_0", "Note_Pitch_60", "Note_Duration_60",  # a step and a half: rounded to two steps
              "Beat_12", "Note_Pitch_64", "Note_Duration_1920",  # rings three quarters past the last bar line
              "EOS_None"]
    notes, _ = read_back(write_score(events, tmp_path / "cut.musicxml"))
    assert notes == Counter({(0, Fraction(2, 12), 60): 1, (1, 1, 64): 1})
    text = (tmp_path / "cut.musicxml").read_text()
    assert "<creator type=\"composer\">g2m_hf, after Mozart</creator>" in text and "<per-minute>80</per-minute>" in text


def test_an_empty_piece_is_a_score_of_rests_that_engraves(tmp_path):
    events = ["Composer_None", "Tempo_120", "BOS_None", "Bar_None", "Time_Signature_3/4", "Bar_None", "EOS_None"]
    path = write_score(events, tmp_path / "empty.musicxml")
    assert read_score_notes(path) == [] and score_signatures(path) == ["3/4", None]
    assert engrave_svg(path)[0].count('class="mRest"') == 4  # a whole-bar rest per staff and bar


def test_a_piece_without_bars_is_refused_in_one_line(tmp_path):
    with pytest.raises(NotationError, match="no bar"):
        write_score(["Composer_Bach", "Tempo_120", "BOS_None", "EOS_None"], tmp_path / "none.musicxml")
    assert not any(tmp_path.iterdir())


def test_compressed_scores_and_bad_names(tmp_path, corpus_scores):
    events, plain = corpus_scores["ryansMammoth/OffSheGoesJig"]
    compressed = write_score(events, tmp_path / "jig.mxl")
    assert zipfile.is_zipfile(compressed) and read_score_notes(compressed) == read_score_notes(plain)
    with pytest.raises(InvalidArgumentError, match="jig.pdf .*ends with .musicxml or .mxl"):
        write_score(events, tmp_path / "jig.pdf")
    assert not (tmp_path / "jig.pdf").exists()


def test_verovio_engraves_the_first_pages_with_every_note_head(corpus_scores):
    pages = engrave_svg(corpus_scores["trecento/Fava_Dicant_nunc_iudei"][1], pages=2)  # 150 bars: more pages
    assert len(pages) == 2 and all(page.lstrip().startswith("<svg") for page in pages)
    events, path = corpus_scores["bach/bwv11.6"]
    everything = engrave_svg(path, pages=100)
    heads = sum(page.count('class="notehead"') for page in everything)
    assert heads == path.read_text().count("<pitch>")  # one head per written note, on the pages engraved
    assert heads > sum(midi_notes(events).values()) and any('class="tie' in page for page in everything)


def test_a_worker_thread_engraves_as_the_main_thread_does(corpus_scores):
    """A web server engraves in its worker threads, where verovio's import-time fonts folder is not set."""
    import threading

    path = corpus_scores["ryansMammoth/AcrobatsHornpipe"][1]  # triplets: their numbers need the text font
    engraved = {}
    worker = threading.Thread(target=lambda: engraved.setdefault("pages", engrave_svg(path, pages=1)))
    worker.start()
    worker.join()
    assert engraved["pages"] == engrave_svg(path, pages=1)


# --- generated pieces ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated_pieces():
    from g2m_hf.generation import generate_midi, load_model, load_tokenizer

    if not HAS_MODEL:
        pytest.skip("no bundled model in this checkout")
    model, tokenizer = load_model(), load_tokenizer()
    return generate_midi(model, tokenizer, composers=["Bach", "Mozart"], bars=3, seed=1, batch_size=2)


@pytest.mark.slow
def test_generated_pieces_read_back_with_the_notes_of_their_midi(generated_pieces, tmp_path):
    for number, piece in enumerate(generated_pieces):
        path = write_score(piece, tmp_path / f"{piece.composer}_{number}.musicxml")
        notes, _ = read_back(path)
        assert notes == midi_notes(piece.events) and sum(notes.values()) > 0
        assert f"g2m_hf, after {piece.composer}" in path.read_text()
        assert 'class="notehead"' in engrave_svg(path, pages=1)[0]


# --- the tools ------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not HAS_MODEL, reason="no bundled model in this checkout")
def test_g2m_generate_score_writes_musicxml_beside_each_midi(tmp_path):
    assert exit_code(generate_cli.main, ["--composer", "Bach", "--bars", "2", "--score", "--output-dir", tmp_path]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Bach_0.mid", "Bach_0.musicxml", "Bach_0.png", "Bach_0.txt"]
    events = (tmp_path / "Bach_0.txt").read_text().split()
    assert read_back(tmp_path / "Bach_0.musicxml")[0] == midi_notes(events)


def test_g2m_render_score_converts_midi_files_and_skips_what_it_cannot_read(tmp_path, capsys):
    folder = tmp_path / "pieces"
    folder.mkdir()
    midi = pretty_midi.PrettyMIDI(initial_tempo=120)
    piano = pretty_midi.Instrument(0)
    piano.notes += [pretty_midi.Note(80, pitch, i * 0.5, i * 0.5 + 0.5) for i, pitch in enumerate((60, 64, 67, 72, 48))]
    midi.instruments.append(piano)
    midi.write(str(folder / "a.mid"))
    (folder / "broken.mid").write_bytes(b"MThd not a MIDI file")

    assert exit_code(render_cli.main, [folder, "--score", "--no-audio"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("g2m-render: skipped ") and "broken.mid" in err[0]
    assert sorted(p.name for p in folder.iterdir()) == ["a.mid", "a.musicxml", "broken.mid"]
    assert read_back(folder / "a.musicxml")[0] == midi_notes(midi_to_events(folder / "a.mid"))
    assert "<creator" not in (folder / "a.musicxml").read_text()  # a user's file: no composer is made up
    # compressed, under an output folder; the existing plain score is left alone
    assert exit_code(render_cli.main, [folder / "a.mid", "--score", "--score-format", "mxl", "--no-audio",
                                       "--output-dir", tmp_path / "out"]) == 0
    assert zipfile.is_zipfile(tmp_path / "out" / "a.mxl")
    assert exit_code(render_cli.main, [folder / "a.mid", "--score", "--no-audio"]) == 2
    assert "a.musicxml: exists (pass --overwrite" in capsys.readouterr().err
    assert exit_code(render_cli.main, [folder / "a.mid", "--no-audio"]) == 2
    assert "--no-audio: only with --score" in capsys.readouterr().err
