"""Scores a musician can open: REMI events -> MusicXML (with music21) and engraved SVG pages (with Verovio).

A REMI piece is already written on a score's grid: bars with time signatures, onsets on 12 steps per
quarter note, durations in whole steps. So the score is built from the events, not from MIDI seconds,
and nothing is quantised twice. What the score holds (`read_score_notes` reads it back):

- two staves, treble and bass, split per onset: the notes struck together are divided between the hands
  at the cut that keeps each hand nearest to where it has been playing (a cheap rule that follows the
  music better than a fixed split at middle C); a lower staff that lies high gets a treble clef;
- the piece's time signatures, a change written where it happens; its tempo as a metronome mark; the key
  signature estimated from the pitches (music21's Krumhansl-Schmuckler analysis) and every pitch spelt
  in that key; the composer in the header;
- each note's exact onset and duration, in at most two voices per staff: the upper one the chords that
  follow one another, the lower one what is held under them (tied where the upper voice moves); a note
  crossing a bar line, or starting off the beat and crossing it, is written as tied notes; 1/3, 1/6 and
  1/12 of a quarter become triplets.

Where the score must differ from the MIDI the events decode to (docs/notation.md): a note that rings past
the last bar line is cut there, and a duration that is not a whole number of grid steps (only hand-written
events have them) is rounded to one.

Needs the ``notation`` extra (music21; Verovio for `engrave_svg`).
"""

from __future__ import annotations

import importlib.resources
import io
import os
import warnings
import zipfile
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import fileio
from .errors import InvalidArgumentError, NotationError
from .extras import require
from .remi import decode_events, midi_to_events
from .vocab import NO_COMPOSER, TICKS_PER_BEAT, TICKS_PER_GRID

if TYPE_CHECKING:
    from music21 import stream

GRIDS_PER_QUARTER = TICKS_PER_BEAT // TICKS_PER_GRID
"""12: a REMI onset step is a 32nd-note triplet."""

SCORE_SUFFIXES = (".musicxml", ".mxl")
"""What `write_score` writes: plain MusicXML, or the compressed archive (``.mxl``) that notation programs also read."""

# --- the notes, placed on the grid ---------------------------------------------------------------

TREBLE, BASS = 0, 1
"""Staff numbers: the right hand's (upper) and the left hand's (lower)."""


@dataclass(frozen=True, order=True)
class ScoreNote:
    """One note of a score, in quarter notes from the start of the piece."""

    onset: Fraction
    duration: Fraction
    pitch: int  # MIDI number
    staff: int  # TREBLE or BASS


@dataclass
class _Bar:
    start: int  # grid steps from the start of the piece
    length: int  # grid steps
    signature: str


def _grid_piece(events: Sequence[str]) -> tuple[int, list[_Bar], list[tuple[int, int, int]]]:
    """(tempo, bars, notes as (onset, end, pitch) in grid steps): the events on the grid, every note
    at least one step long and cut at the last bar line."""
    piece = decode_events(events)
    bars = []
    for index, (start, signature) in enumerate(piece.bars):
        end = piece.bars[index + 1][0] if index + 1 < len(piece.bars) else piece.end
        bars.append(_Bar(start // TICKS_PER_GRID, (end - start) // TICKS_PER_GRID, signature))
    end = piece.end // TICKS_PER_GRID
    notes = []
    for start, stop, pitch in piece.notes:
        onset = start // TICKS_PER_GRID  # bars and Beats fall on grid steps
        if onset < end:
            length = max(1, round((stop - start) / TICKS_PER_GRID))
            notes.append((onset, min(onset + length, end), pitch))
    return piece.tempo, bars, notes


def score_notes_of_events(events: Sequence[str]) -> list[ScoreNote]:
    """The notes a score of ``events`` holds (`events_to_score`), sorted: what `read_score_notes` must read back."""
    _, _, notes = _grid_piece(events)
    staves = _assign_staves(notes)
    return sorted(ScoreNote(Fraction(onset, GRIDS_PER_QUARTER), Fraction(end - onset, GRIDS_PER_QUARTER), pitch, staff)
                  for (onset, end, pitch), staff in zip(notes, staves))


# --- hands: which staff each note goes to -------------------------------------------------------

_REACH = 14
"""Semitones one hand spans comfortably (a ninth); wider chords in one hand are avoided."""


def _assign_staves(notes: Sequence[tuple[int, int, int]]) -> list[int]:
    """TREBLE or BASS per note. The notes struck together are cut between the hands where the two hands
    stay nearest to the centres they have been playing around, within a hand's reach and with few ledger
    lines; the centres then follow what each hand played. Linear in the notes."""
    staves = [TREBLE] * len(notes)
    centres = [50.0, 71.0]  # BASS, TREBLE: around D3 and B4 to begin with
    order = sorted(range(len(notes)), key=lambda i: (notes[i][0], notes[i][2]))
    for _, group in groupby(order, key=lambda i: notes[i][0]):
        group = list(group)  # ascending pitch
        pitches = [notes[i][2] for i in group]

        def cost(cut: int) -> float:
            low, high = pitches[:cut], pitches[cut:]
            total = sum(abs(p - centres[BASS]) for p in low) + sum(abs(p - centres[TREBLE]) for p in high)
            # ledger lines: the bass staff above E4, the treble staff below A3, cost more
            total += 2 * sum(max(0, p - 64) for p in low) + 2 * sum(max(0, 57 - p) for p in high)
            return total + sum(10 * max(0, hand[-1] - hand[0] - _REACH) for hand in (low, high) if hand)

        cut = min(range(len(pitches) + 1), key=cost)
        for position, i in enumerate(group):
            staves[i] = BASS if position < cut else TREBLE
        for staff, hand in ((BASS, pitches[:cut]), (TREBLE, pitches[cut:])):
            if hand:
                centres[staff] = 0.7 * centres[staff] + 0.3 * sum(hand) / len(hand)
        if centres[TREBLE] - centres[BASS] < 12:  # the hands do not swap places
            middle = (centres[TREBLE] + centres[BASS]) / 2
            centres[BASS], centres[TREBLE] = middle - 6, middle + 6
    return staves


# --- voices and note values -----------------------------------------------------------------------


@dataclass
class _Chord:
    onset: int
    end: int
    pitches: list[int]  # ascending
    tied_in: frozenset[int] = frozenset()  # positions in `pitches` held over from the chord before
    tied_out: frozenset[int] = frozenset()  # positions held on into the chord after


def _voices(notes: Sequence[tuple[int, int, int]]) -> list[list[_Chord]]:
    """Notes of one staff as at most two voices, as a pianist reads them.

    Notes with the same onset and end form a chord. The upper voice takes, in time order (higher chords
    first), each chord that starts when its last one has ended; what is left (a held bass under a moving
    line, inner parts) is the lower voice, cut at every onset and end among its notes into chords whose
    notes are tied across the cuts.
    """
    chords: dict[tuple[int, int], list[int]] = {}
    for onset, end, pitch in notes:
        chords.setdefault((onset, end), []).append(pitch)
    upper: list[_Chord] = []
    rest: list[tuple[int, int, int]] = []
    for (onset, end), pitches in sorted(chords.items(), key=lambda item: (item[0][0], -max(item[1]))):
        if not upper or upper[-1].end <= onset:
            upper.append(_Chord(onset, end, sorted(pitches)))
        else:
            rest += [(onset, end, pitch) for pitch in pitches]
    lower: list[_Chord] = []
    cuts = sorted({time for onset, end, _ in rest for time in (onset, end)})
    for start, stop in zip(cuts, cuts[1:]):
        sounding = sorted((pitch, onset, end) for onset, end, pitch in rest if onset <= start < end)
        if sounding:
            lower.append(_Chord(start, stop, [pitch for pitch, _, _ in sounding],
                                frozenset(i for i, (_, onset, _) in enumerate(sounding) if onset < start),
                                frozenset(i for i, (_, _, end) in enumerate(sounding) if end > stop)))
    return [voice for voice in (upper, lower) if voice]


_PLAIN = (48, 36, 24, 18, 12, 9, 6, 3)
"""Note values without a tuplet, in grid steps: whole, dotted half, half, dotted quarter ... 16th."""

_TRIPLET_ALIGN = {8: 4, 4: 4, 2: 2, 1: 1}
"""Triplet values (quarter, eighth, 16th and 32nd triplets) and the step their onset falls on in a beat."""


def _beat(signature: str) -> int:
    """Grid steps of a beat: a quarter in x/4, a dotted quarter in x/8 (compound time)."""
    return GRIDS_PER_QUARTER if signature.endswith("/4") else GRIDS_PER_QUARTER * 3 // 2


def _note_values(start: int, end: int, beat: int) -> list[int]:
    """Lengths (grid steps) of the tied note values that write [start, end) of one bar.

    From a beat, the longest plain value that fits (in compound time a whole number of beats, or less
    than one); off the beat, values up to the next beat, so that every beat's start can be seen.
    """
    lengths = []
    while start < end:
        offset = start % beat
        room = end - start if offset == 0 else min(end, start - offset + beat) - start
        candidates = [v for v in _PLAIN if v <= room and offset % (3 if v < 12 else 6 if v < beat else beat) == 0
                      and (v < beat or v % beat == 0 or beat == GRIDS_PER_QUARTER)]
        candidates += [v for v, align in _TRIPLET_ALIGN.items() if v <= room and offset % align == 0]
        length = max(candidates)
        lengths.append(length)
        start += length
    return lengths


# --- pitch spelling ------------------------------------------------------------------------------

_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLAT_NAMES = ("C", "D-", "D", "E-", "E", "F", "G-", "G", "A-", "A", "B-", "B")


def _spelling(found_key) -> dict[int, str]:
    """Pitch class -> music21 pitch name in ``found_key``: its scale, then a minor key's raised sixth and
    seventh, the dominant's and subdominant's scales, the other mode's, then sharps (or flats in a flat key)."""
    from music21 import key

    names: dict[int, str] = {}

    def add(pitches) -> None:
        for pitch in pitches:
            names.setdefault(pitch.pitchClass, pitch.name)

    tonic = found_key.tonic
    add(found_key.getScale().getPitches()[:-1])
    if found_key.mode == "minor":
        add([tonic.transpose("M7"), tonic.transpose("M6")])
    for sharps in (found_key.sharps + 1, found_key.sharps - 1):
        if -7 <= sharps <= 7:
            add(key.KeySignature(sharps).asKey(found_key.mode).getScale().getPitches()[:-1])
    add(key.Key(tonic.name, "minor" if found_key.mode == "major" else "major").getScale().getPitches()[:-1])
    default = _SHARP_NAMES if found_key.sharps >= 0 else _FLAT_NAMES
    return {pc: names.get(pc, default[pc]) for pc in range(12)}


def _estimate_key(notes: Sequence[tuple[int, int, int]]):
    """The key of the notes (music21's Krumhansl-Schmuckler analysis, weighted by duration); C major if none."""
    from music21 import key, note, stream

    if not notes:
        return key.Key("C")
    sample = stream.Stream()
    for onset, end, pitch in notes:
        sample.insert(Fraction(onset, GRIDS_PER_QUARTER), note.Note(pitch, quarterLength=Fraction(end - onset, GRIDS_PER_QUARTER)))
    return sample.analyze("key")


# --- the score ----------------------------------------------------------------------------------


def events_to_score(events: Sequence[str], title: str | None = None, composer: str | None = None) -> stream.Score:
    """A two-staff piano score (music21 ``Score``) of REMI events; see the module's docstring for what it holds.

    ``title`` and ``composer`` go in the header (default title: "Untitled").

    Raises:
        RemiError: an event that is not in the vocabulary.
        NotationError: the events hold no bar.
        MissingExtraError: music21 is not installed (the ``notation`` extra).
    """
    require("music21", "notation", "writing scores")
    from music21 import clef, layout, metadata, meter, stream, text
    from music21 import tempo as tempo_marks

    tempo, bars, notes = _grid_piece(events)
    if not bars:
        raise NotationError("the piece has no bar (no Bar_None event): there is nothing to write as a score")
    found_key = _estimate_key(notes)
    spelling = _spelling(found_key)
    staves = _assign_staves(notes)

    score = stream.Score()
    score.metadata = metadata.Metadata(title=title or "Untitled")
    # the header as text on the first page too (credits): what engravers such as Verovio print
    credits = [(title or "Untitled", "center", 1600, 20)]
    if composer:
        score.metadata.composer = composer
        credits.append((composer, "right", 1500, 11))
    for words, justify, height, size in credits:
        credit = text.TextBox(words, 1900 if justify == "right" else 1000, height)
        credit.style.justify, credit.style.fontSize = justify, size
        score.insert(0, credit)
    parts = []
    for staff in (TREBLE, BASS):
        staff_notes = [n for n, s in zip(notes, staves) if s == staff]
        part = stream.PartStaff(id=f"P1-Staff{staff + 1}")
        part.partName, part.partAbbreviation = ("Piano", "Pno.") if staff == TREBLE else ("", "")
        measures = _measures(bars, _voices(staff_notes), spelling)
        low_clef = staff == BASS and staff_notes and sorted(p for _, _, p in staff_notes)[len(staff_notes) // 2] >= 60
        measures[0].clef = clef.TrebleClef() if staff == TREBLE or low_clef else clef.BassClef()
        measures[0].keySignature = found_key
        if staff == TREBLE:
            measures[0].insert(0, tempo_marks.MetronomeMark(number=tempo, referent=1.0))
        previous = None
        for measure, bar in zip(measures, bars):
            if bar.signature != previous:
                measure.timeSignature = meter.TimeSignature(bar.signature)
                previous = bar.signature
        measures[-1].rightBarline = "final"
        part.append(measures)
        _engrave_details(part)
        parts.append(part)
        score.insert(0, part)
    score.insert(0, layout.StaffGroup(parts, name="Piano", abbreviation="Pno.", symbol="brace", barTogether=True))
    return score


def _engrave_details(part) -> None:
    """Accidentals (in the key, per bar), beams by the beat, tuplet brackets: what music21's exporter would
    add in the notation pass that `musicxml_bytes` skips."""
    from music21 import stream
    from music21.stream import makeNotation

    for measure in part.getElementsByClass(stream.Measure):
        for container in (measure, *measure.voices):
            makeNotation.makeTupletBrackets(container, inPlace=True)
    part.makeBeams(inPlace=True)
    part.makeAccidentals(inPlace=True)
    for element in part.recurse().notesAndRests:  # a beamed triplet shows its 3 without a bracket
        for tuplet in element.duration.tuplets:
            if tuplet.type == "start" and element.beams.beamsList:
                tuplet.bracket = False


_TIES = {(False, False): None, (False, True): "start", (True, True): "continue", (True, False): "stop"}
"""A note's tie from (held over from the note before, held on into the note after)."""


def _measures(bars: list[_Bar], voices: list[list[_Chord]], spelling: dict[int, str]) -> list:
    """One music21 ``Measure`` per bar holding ``voices``: chords cut at bar lines and spelt as tied note
    values; rests fill each voice's gaps (shown in the upper voice, where it plays in the bar or the bar is
    empty; the lower voice's are hidden, as in a piano reduction)."""
    from music21 import chord, note, pitch, stream, tie

    def spelt(midi: int):
        named = pitch.Pitch(spelling[midi % 12])
        named.octave = 4
        named.octave += (midi - named.midi) // 12
        return named

    # per bar, per voice: (offset in the bar, length, pitches or None for a rest, tie type per pitch)
    content: list[dict[int, list[tuple[int, int, list[int] | None, list[str | None]]]]] = [{} for _ in bars]
    starts = [bar.start for bar in bars]
    for number, voice in enumerate(voices):
        for item in voice:
            pieces = []  # (bar index, offset, length)
            index = max(0, bisect_right(starts, item.onset) - 1)
            position = item.onset
            while position < item.end:
                bar = bars[index]
                stop = min(item.end, bar.start + bar.length)
                offset = position - bar.start
                for length in _note_values(offset, stop - bar.start, _beat(bar.signature)):
                    pieces.append((index, offset, length))
                    offset += length
                position, index = stop, index + 1
            for order, (index, offset, length) in enumerate(pieces):
                kinds = []
                for position in range(len(item.pitches)):
                    held_in = order > 0 or position in item.tied_in
                    held_out = order < len(pieces) - 1 or position in item.tied_out
                    kinds.append(_TIES[held_in, held_out])
                content[index].setdefault(number, []).append((offset, length, item.pitches, kinds))

    measures = []
    for index, bar in enumerate(bars):
        measure = stream.Measure(number=index + 1)
        playing = content[index]
        containers = []
        for number in sorted({0, *playing}):  # the first voice in every bar, the others where they play
            items = sorted(playing.get(number, []))
            filled, position = [], 0
            for offset, length, pitches, ties in items + [(bar.length, 0, None, None)]:
                if offset > position:  # a gap: rests in the bar's beats
                    for rest_length in _note_values(position, offset, _beat(bar.signature)):
                        filled.append((position, rest_length, None, None))
                        position += rest_length
                if length:
                    filled.append((offset, length, pitches, ties))
                    position = offset + length
            show_rests = number == 0 and (bool(items) or not playing)  # the lower voice's rests would crowd the staff
            elements = []
            for offset, length, pitches, ties in filled:
                quarters = Fraction(length, GRIDS_PER_QUARTER)
                if pitches is None:
                    element = note.Rest(quarterLength=quarters)
                    element.style.hideObjectOnPrint = not show_rests
                    if not items and length == bar.length:
                        element.fullMeasure = True
                else:
                    heads = [note.Note(spelt(p), quarterLength=quarters) for p in pitches]
                    for head, head_tie in zip(heads, ties):
                        if head_tie is not None:
                            head.tie = tie.Tie(head_tie)
                    element = heads[0] if len(heads) == 1 else chord.Chord(heads, quarterLength=quarters)
                elements.append((Fraction(offset, GRIDS_PER_QUARTER), element))
            containers.append((number, elements))
        if len(containers) == 1:
            for offset, element in containers[0][1]:
                measure.insert(offset, element)
        else:
            for number, elements in containers:
                voice = stream.Voice(id=str(number + 1))
                for offset, element in elements:
                    voice.insert(offset, element)
                measure.insert(0, voice)
        measures.append(measure)
    return measures


# --- files ----------------------------------------------------------------------------------------

ScoreSource = Any
"""What `write_score` accepts: REMI events, a `GeneratedPiece` (events and composer), or a MIDI file
(path, bytes, file object, ``pretty_midi.PrettyMIDI``; converted with `midi_to_events`)."""


def _events_of(source: ScoreSource) -> tuple[list[str], str | None]:
    """(events, the header's composer line or None) of a `ScoreSource`: a MIDI file's composer is unknown."""
    if hasattr(source, "events") and hasattr(source, "composer"):  # a GeneratedPiece
        return list(source.events), header_composer(source.composer)
    if isinstance(source, (list, tuple)) and all(isinstance(e, str) for e in source):
        composer = source[0].removeprefix("Composer_") if source and source[0].startswith("Composer_") else None
        return list(source), header_composer(composer)
    return midi_to_events(source), None


def header_composer(composer: str | None) -> str:
    """The header's composer line of a generated piece: the model, after the composer it was asked for."""
    return "g2m_hf" if composer in (None, NO_COMPOSER) else f"g2m_hf, after {composer}"


def musicxml_bytes(score: stream.Score) -> bytes:
    """The score as MusicXML (UTF-8), written by music21.

    music21's own notation pass is skipped: the score is already in measures with its ties, and that pass
    would merge tied triplet values it takes for a complete tuplet, changing durations. The exporter still
    adds accidentals, beams and tuplet brackets.
    """
    from music21 import defaults
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    exporter = GeneralObjectExporter(score)
    exporter.makeNotation = False
    author, defaults.author = defaults.author, ""  # music21 names itself the composer of a score without one
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # music21's notes on what it tidied while exporting
            return exporter.parse()
    finally:
        defaults.author = author


_CONTAINER = (b'<?xml version="1.0" encoding="UTF-8"?>\n<container><rootfiles>'
              b'<rootfile full-path="score.musicxml" media-type="application/vnd.recordare.musicxml+xml"/>'
              b"</rootfiles></container>\n")
"""META-INF/container.xml of a compressed MusicXML file: where its score is."""


def write_score(source: ScoreSource, path: str | os.PathLike, title: str | None = None,
                composer: str | None = None) -> Path:
    """Write the score of ``source`` (`ScoreSource`) to ``path`` (``.musicxml``, or ``.mxl`` compressed), atomically.

    ``title`` defaults to the file's stem; ``composer`` for events and pieces to their composer token
    (`header_composer`), for a MIDI file to none.

    Raises:
        InvalidArgumentError: ``path`` does not end with ``.musicxml`` or ``.mxl``.
        RemiError: a MIDI file that cannot be read or converted, or an unknown event.
        NotationError: the piece has no bar (an empty MIDI file).
        MissingExtraError: music21 is not installed.
    """
    path = Path(path)
    if path.suffix.lower() not in SCORE_SUFFIXES:
        raise InvalidArgumentError("path", str(path), f"a score file ends with {' or '.join(SCORE_SUFFIXES)}")
    events, header = _events_of(source)
    score = events_to_score(events, title=title or path.stem, composer=composer or header)
    data = musicxml_bytes(score)
    if path.suffix.lower() == ".mxl":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("mimetype", "application/vnd.recordare.musicxml", compress_type=zipfile.ZIP_STORED)
            archive.writestr("META-INF/container.xml", _CONTAINER, compress_type=zipfile.ZIP_DEFLATED)
            archive.writestr("score.musicxml", data, compress_type=zipfile.ZIP_DEFLATED)
        data = buffer.getvalue()
    return fileio.write_bytes(path, data)


def _musicxml_text(path: Path) -> str:
    """The MusicXML of a ``.musicxml`` or ``.mxl`` file, as text."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not n.startswith("META-INF/") and n.endswith((".xml", ".musicxml"))]
            if not names:
                raise NotationError(f"{path}: no MusicXML score in this archive")
            return archive.read(names[0]).decode("utf-8")
    return path.read_text(encoding="utf-8")


def read_score_notes(path: str | os.PathLike) -> list[ScoreNote]:
    """The notes of a MusicXML file (read by music21), tied notes joined, sorted: to check a score against its piece.

    Raises:
        NotationError: the file cannot be read as MusicXML.
    """
    require("music21", "notation", "reading scores")
    from music21 import converter, stream

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = converter.parseData(_musicxml_text(path), format="musicxml")
    except (OSError, UnicodeDecodeError, Exception) as error:  # music21 raises many kinds on a bad file
        raise NotationError(f"{path}: not a readable MusicXML score ({' '.join(str(error).split())})") from None
    notes: list[ScoreNote] = []
    for staff, part in enumerate(score.getElementsByClass(stream.Part)):
        open_ties: dict[tuple[int, Fraction], list] = {}  # (pitch, end) -> [onset, duration]
        flat = part.flatten()
        for element in sorted(flat.notes, key=lambda e: flat.elementOffset(e)):
            onset = Fraction(flat.elementOffset(element)).limit_denominator(10_000)
            duration = Fraction(element.quarterLength).limit_denominator(10_000)
            for single in (element.notes if element.isChord else [element]):
                midi, kind = single.pitch.midi, single.tie.type if single.tie is not None else None
                if kind in ("continue", "stop") and (midi, onset) in open_ties:
                    chain = open_ties.pop((midi, onset))
                    chain[1] += duration
                    if kind == "continue":
                        open_ties[(midi, onset + duration)] = chain
                    else:
                        notes.append(ScoreNote(chain[0], chain[1], midi, staff))
                elif kind in ("start", "continue"):
                    open_ties[(midi, onset + duration)] = [onset, duration]
                else:
                    notes.append(ScoreNote(onset, duration, midi, staff))
        notes += [ScoreNote(onset, duration, midi, staff) for (midi, _), (onset, duration) in open_ties.items()]
    return sorted(notes)


# --- engraving --------------------------------------------------------------------------------------

ENGRAVING_OPTIONS = {
    "pageWidth": 2100, "pageHeight": 2970, "scale": 40, "adjustPageHeight": True, "footer": "none",
    "header": "auto", "breaks": "auto", "pageMarginLeft": 60, "pageMarginRight": 60, "pageMarginTop": 40,
    "pageMarginBottom": 40, "xmlIdSeed": 1,
}
"""Verovio's settings: A4-proportioned pages at 40% (a page is about 840 px wide), no footer."""


def engrave_svg(score: str | os.PathLike | stream.Score, pages: int = 2) -> list[str]:
    """The first ``pages`` pages of a score (a ``.musicxml`` / ``.mxl`` file or a music21 ``Score``) as SVG
    documents, engraved by Verovio.

    Raises:
        NotationError: Verovio cannot read the score.
        MissingExtraError: verovio is not installed (the ``notation`` extra).
    """
    verovio = require("verovio", "notation", "engraving scores")
    if isinstance(score, (str, os.PathLike)):
        text, label = _musicxml_text(Path(score)), os.fspath(score)
    else:
        text, label = musicxml_bytes(score).decode("utf-8"), "the score"
    verovio.enableLog(verovio.LOG_OFF)
    toolkit = verovio.toolkit()
    # verovio sets its fonts' folder at import, for the importing thread only: a web server's worker
    # thread would engrave without fonts and fail to load any but the smallest scores
    toolkit.setResourcePath(str(importlib.resources.files("verovio") / "data"))
    toolkit.setOptions(ENGRAVING_OPTIONS)
    if not toolkit.loadData(text):
        raise NotationError(f"{label}: Verovio cannot read this MusicXML")
    return [toolkit.renderToSVG(page) for page in range(1, min(pages, toolkit.getPageCount()) + 1)]


__all__ = [
    "ENGRAVING_OPTIONS",
    "SCORE_SUFFIXES",
    "ScoreNote",
    "engrave_svg",
    "events_to_score",
    "header_composer",
    "musicxml_bytes",
    "read_score_notes",
    "score_notes_of_events",
    "write_score",
]
