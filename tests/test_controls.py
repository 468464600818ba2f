"""Texture and register measures (g2m_hf.controls) on real pieces: Bach chorales and fiddle tunes."""

from __future__ import annotations

import numpy as np
import pytest

from g2m_hf.controls import (
    MIDDLE_C,
    SECTION_BARS,
    TextureReference,
    bar_attributes,
    piece_texture,
    section_register,
)
from g2m_hf.metrics import PieceNotes
from g2m_hf.vocab import split_event

CHORALES = ("bach/bwv1.6", "bach/bwv10.7", "bach/bwv101.7", "bach/bwv102.7", "bach/bwv103.6", "bach/bwv104.6")


@pytest.fixture(scope="module")
def pieces(corpus_midi):
    from g2m_hf.remi import midi_to_events

    return {work: midi_to_events(path) for work, path in corpus_midi.items()}


def transposed(events: list[str], semitones: int) -> list[str]:
    """The piece moved by ``semitones`` (pitch events only)."""
    moved = []
    for token in events:
        name, value = split_event(token)
        moved.append(f"{name}_{int(value) + semitones}" if name == "Note_Pitch" else token)
    return moved


def test_bar_attributes_add_up_to_the_piece_notes(pieces):
    chorale = pieces["bach/bwv1.6"]
    notes = PieceNotes.from_events(chorale)
    bars = bar_attributes(chorale)
    assert len(bars.notes) == notes.n_bars and bars.notes.sum() == len(notes.pitch)
    sounding = bars.notes > 0
    # a four-voice chorale: one to four notes per onset, and mostly several
    assert np.all((bars.polyphony[sounding] >= 1) & (bars.polyphony[sounding] <= 4)) and np.median(bars.polyphony[sounding]) > 2
    assert np.nansum(bars.mean_pitch * bars.notes) == pytest.approx(notes.pitch.sum())
    assert np.nansum(bars.high_share * bars.notes) == pytest.approx(np.sum(notes.pitch >= MIDDLE_C))
    assert np.all(np.isnan(bars.mean_pitch[~sounding]))


def test_sections_follow_the_notes_and_a_transposition(pieces):
    chorale = pieces["bach/bwv10.7"]
    notes = PieceNotes.from_events(chorale)
    sections = section_register(chorale)
    assert len(sections) == notes.n_bars // SECTION_BARS >= 1
    first = notes.pitch[notes.bar < SECTION_BARS]
    assert sections[0].mean_pitch == pytest.approx(first.mean())
    down = section_register(transposed(chorale, -12))
    assert [s.mean_pitch for s in down] == pytest.approx([s.mean_pitch - 12 for s in sections])
    assert all(low.high_share <= high.high_share for low, high in zip(down, sections))


def test_texture_of_a_piece(pieces):
    chorale = pieces["bach/bwv1.6"]
    notes = PieceNotes.from_events(chorale)
    texture = piece_texture(chorale)
    assert texture["notes_per_bar"] == pytest.approx(len(notes.pitch) / notes.n_bars)
    assert texture["onsets_per_bar"] < texture["notes_per_bar"]  # chords
    seconds = notes.bar_ticks.sum() * 60 / (texture["tempo"] * 480)
    assert texture["notes_per_second"] == pytest.approx(len(notes.pitch) / seconds)
    assert 0 <= texture["short_share"] < 0.2  # chorales move in quarters and eighths
    reel = piece_texture(pieces["ryansMammoth/AcaciaReel"])
    assert reel["short_share"] > texture["short_share"]  # a reel runs in short notes


def test_reference_ranges_keep_real_sections_and_refuse_a_collapse_to_the_bass(pieces):
    chorales = [pieces[work] for work in CHORALES]
    reference = TextureReference.from_pieces(chorales)
    assert reference.pieces == len(CHORALES) and reference.sections >= len(CHORALES)
    low, high = reference.mean_pitch
    assert 50 < low < high < 75 and 0 <= reference.high_share[0] < reference.high_share[1] <= 1
    kept = [reference.sections_kept(piece) for piece in chorales]
    assert sum(k for k, _ in kept) >= 0.6 * sum(n for _, n in kept)  # the 10-90 % ranges of both measures
    assert reference.kept_sections == sum(k for k, _ in kept)  # the real pieces' own rate, as the reference says
    openings = [n for _, n in kept if n >= 8]  # chorales are shorter than 64 bars: no opening to count
    assert reference.kept_openings == (0, len(openings))
    # the failure: the same music an octave and a half lower keeps no section
    sunk = [reference.sections_kept(transposed(piece, -18)) for piece in chorales]
    assert sum(k for k, _ in sunk) == 0 and sum(n for _, n in sunk) == sum(n for _, n in kept)
    assert reference.texture["tempo"] in (40, 80, 120, 160)


def test_reference_needs_a_whole_section():
    with pytest.raises(ValueError, match="no real section"):
        TextureReference.from_pieces([["Composer_Bach", "Tempo_120", "BOS_None", "Bar_None", "EOS_None"]])


def top_voice(events: list[str]) -> list[str]:
    """The piece with only the first note of every onset kept: one note per onset."""
    kept, seen, skipping = [], False, False
    for token in events:
        name = split_event(token)[0]
        if name in ("Beat", "Bar"):
            seen = False
        elif name == "Note_Pitch":
            skipping, seen = seen, True
        if name in ("Note_Pitch", "Note_Duration") and skipping:
            continue
        kept.append(token)
    return kept


def test_bar_classes_order_a_chorale_its_top_voice_and_its_transposition(pieces):
    from g2m_hf.controls import BAR_CLASS_LEVELS, bar_classes

    chorale = pieces["bach/bwv1.6"]
    full, solo, low = bar_classes(chorale), bar_classes(top_voice(chorale)), bar_classes(transposed(chorale, -24))
    sounding = full["density"] >= 0
    for name in ("density", "polyphony", "register"):
        assert set(np.unique(full[name][sounding])) <= set(range(len(BAR_CLASS_LEVELS)))
    assert np.all(solo["polyphony"][sounding] == 0) and np.mean(full["polyphony"][sounding] >= 1) > 0.8
    assert np.all(solo["density"][sounding] <= full["density"][sounding]) and solo["density"].sum() < full["density"].sum()
    assert np.all(low["register"][sounding] == 0) and full["register"][sounding].mean() > 0.5
