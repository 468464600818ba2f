"""Property-based fuzzing (hypothesis) of the codec, the tokenizer and the grammar, bounded in time.

Each property runs a fixed number of examples (the "ci" profile below: 60, each within a 2 s deadline),
derandomised so that CI is reproducible; ``HYPOTHESIS_PROFILE=long`` explores 2000 random ones.
"""

from __future__ import annotations

import os

import pretty_midi
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from g2m_hf import G2MTokenizer
from g2m_hf.errors import RemiError
from g2m_hf.grammar import RemiGrammarLogitsProcessor
from g2m_hf.remi import events_to_midi, midi_to_events
from g2m_hf.vocab import complete_vocabulary

settings.register_profile(
    "ci", max_examples=60, deadline=2000, derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile("long", parent=settings.get_profile("ci"), max_examples=2000, derandomize=False)
FUZZ = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

TOKENIZER = G2MTokenizer()
VOCABULARY = complete_vocabulary()
COMPOSERS = [event for event in VOCABULARY if event.startswith("Composer_")]
SIGNATURES = {"2/4": (960, 24, 40), "3/4": (1440, 36, 40), "4/4": (1920, 48, 40), "3/8": (720, 18, 80),
              "6/8": (1440, 36, 80)}
"""Time signature -> (bar ticks, grid count, duration unit) (SPEC §1)."""


# --- events -> MIDI -> events ------------------------------------------------------------------


@st.composite
def round_trip_pieces(draw) -> list[str]:
    """Valid REMI pieces inside the part of SPEC §1 where decoding and re-encoding is the identity:
    a first bar in 4/4 (no pickup to detect), durations in the bar's unit and at most a bar long,
    descending pitches per Beat, no note starting while the same pitch sounds, every note ended
    before the end of the last bar."""
    signatures = ["4/4", *draw(st.lists(st.sampled_from(sorted(SIGNATURES)), max_size=5))]
    end_of_piece = sum(SIGNATURES[signature][0] for signature in signatures)
    events = [draw(st.sampled_from(COMPOSERS)), f"Tempo_{draw(st.sampled_from([40, 80, 120, 160]))}", "BOS_None"]
    sounding_until: dict[int, int] = {}
    bar_start = 0
    for signature in signatures:
        ticks, grids, unit = SIGNATURES[signature]
        events += ["Bar_None", f"Time_Signature_{signature}"]
        for grid in sorted(draw(st.sets(st.integers(0, grids - 1), max_size=4))):
            tick = bar_start + grid * (ticks // grids)
            notes = []
            for pitch in sorted(draw(st.sets(st.integers(21, 108), min_size=1, max_size=3)), reverse=True):
                units = min(draw(st.integers(1, ticks // unit)), (end_of_piece - 1 - tick) // unit)
                if units < 1 or sounding_until.get(pitch, -1) >= tick:
                    continue
                sounding_until[pitch] = tick + units * unit
                notes += [f"Note_Pitch_{pitch}", f"Note_Duration_{units * unit}"]
            if notes:
                events += [f"Beat_{grid}", *notes]
        bar_start += ticks
    return [*events, "EOS_None"]


@FUZZ
@given(round_trip_pieces())
def test_events_to_midi_to_events_is_the_identity(events):
    composer = events[0].removeprefix("Composer_")
    assert midi_to_events(events_to_midi(events), composer) == events


# --- mutated real MIDI files -------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_midi(corpus_midi) -> list[bytes]:
    return [path.read_bytes() for path in list(corpus_midi.values())[::6]]


@FUZZ
@given(
    which=st.integers(0, 1000),
    changes=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.one_of(st.none(), st.integers(0, 10**6)),
)
def test_mutated_midi_gives_events_or_a_remi_error(real_midi, which, changes, cut):
    data = bytearray(real_midi[which % len(real_midi)])
    for position, value in changes:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % len(data)]
    try:
        events = midi_to_events(bytes(data))
    except RemiError:
        return  # the one error a caller has to expect
    assert events[-1] == "EOS_None" and all(event in VOCABULARY for event in events[1:])


# --- the grammar under random logits -----------------------------------------------------------


@FUZZ
@given(seed=st.integers(0, 2**32 - 1), composer=st.sampled_from(COMPOSERS), max_bars=st.integers(1, 6),
       max_events=st.integers(8, 160), spread=st.floats(0.1, 30))
def test_random_logits_through_the_grammar_give_valid_remi(seed, composer, max_bars, max_events, spread):
    processor = RemiGrammarLogitsProcessor(VOCABULARY, max_bars=max_bars, max_events=max_events)
    generator = torch.Generator().manual_seed(seed)
    ids = torch.tensor([[VOCABULARY.index(composer)]])
    while ids[0, -1].item() != VOCABULARY.index("EOS_None"):
        assert ids.shape[1] < max_events, "the grammar let the piece run past max_events"
        scores = processor(ids, torch.randn(1, len(VOCABULARY), generator=generator) * spread)
        ids = torch.cat([ids, scores.argmax(-1, keepdim=True)], dim=1)
    events = [VOCABULARY[i] for i in ids[0].tolist()]
    assert events.count("Bar_None") <= max_bars
    assert midi_to_events(events_to_midi(events), composer.removeprefix("Composer_")) == events


# --- tokenizer -----------------------------------------------------------------------------------


@FUZZ
@given(st.lists(st.sampled_from(VOCABULARY), max_size=300))
def test_tokenizer_ids_and_text_round_trip(events):
    ids = TOKENIZER.events_to_ids(events)
    assert TOKENIZER.ids_to_events(ids) == events
    assert TOKENIZER.convert_ids_to_tokens(TOKENIZER.convert_tokens_to_ids(events)) == events
    text = " ".join(events)
    assert TOKENIZER.decode(TOKENIZER.encode(text, add_special_tokens=False)) == text


@FUZZ
@given(st.lists(st.integers(0, len(VOCABULARY) - 1), max_size=400))
def test_any_token_sequence_decodes_to_midi(ids):
    midi = TOKENIZER.decode_midi(ids)
    assert isinstance(midi, pretty_midi.PrettyMIDI)
    assert all(note.end > note.start for instrument in midi.instruments for note in instrument.notes)
