"""Texture-control tokens (control_tokens.py): the layout on real pieces, training windows, the grammar that
writes a plan, the knobs, the composers' texture table, and the command line.

Real pieces: the corpus works of `conftest.CORPUS_MIDI_WORKS` (Bach chorales, fiddle tunes, a trecento piece).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from g2m_hf import G2MTokenizer, control_tokens, generate_midi, infill_midi, texture_plan
from g2m_hf import infill as infill_layout
from g2m_hf.cli import generate as generate_cli
from g2m_hf.controls import TextureReference, bar_classes, bar_values, piece_texture
from g2m_hf.data import G2MDataCollator
from g2m_hf.errors import InvalidArgumentError, VocabularyError
from g2m_hf.grammar import InfillGrammarLogitsProcessor, RemiGrammarLogitsProcessor
from g2m_hf.remi import midi_to_events
from g2m_hf.texture_steering import STEERING_GAINS
from g2m_hf.vocab import CONTROL_KINDS, CONTROL_TOKENS, INFILL_TOKENS, complete_vocabulary
from tests.cli import exit_code
from tests.test_generation import (  # noqa: F401 (one_thread: the autouse fixture, for this module too)
    check_piece,
    one_thread,
    round_trips,
    tiny_model,
)

VOCAB = complete_vocabulary() + list(INFILL_TOKENS) + list(CONTROL_TOKENS)


def controlled_tokenizer() -> G2MTokenizer:
    tokenizer = G2MTokenizer()
    infill_layout.add_infill_tokens(tokenizer)
    control_tokens.add_control_tokens(tokenizer)
    return tokenizer


TOKENIZER = controlled_tokenizer()
TOKENS = control_tokens.ControlTokens.of(TOKENIZER)


@pytest.fixture(scope="module")
def pieces(corpus_midi) -> dict[str, list[str]]:
    return {work: midi_to_events(path) for work, path in corpus_midi.items()}


def controls_by_bar(events: list[str]) -> list[list[str]]:
    """The control tokens written in each bar (one list per Bar_None)."""
    bars: list[list[str]] = []
    for token in events:
        if token == "Bar_None":
            bars.append([])
        elif token in CONTROL_TOKENS:
            bars[-1].append(token)
    return bars


def test_the_tokens_come_after_every_existing_id_in_a_fixed_order():
    assert TOKENIZER.event_vocabulary == VOCAB  # plain REMI ids, then the infill tokens, then the controls
    assert control_tokens.add_control_tokens(TOKENIZER) == TOKENIZER.events_to_ids(CONTROL_TOKENS)  # no new rows
    assert len(TOKENIZER.event_vocabulary) == len(VOCAB)


def test_inserted_controls_say_what_each_bar_measures_and_strip_back_to_the_piece(pieces):
    for work, events in pieces.items():
        ids = np.array(TOKENIZER.events_to_ids(events))
        levels = control_tokens.bar_levels(events)
        controlled = control_tokens.insert(ids, levels, TOKENS)
        controlled_events = TOKENIZER.ids_to_events(controlled)
        assert control_tokens.strip(controlled, TOKENS).tolist() == ids.tolist(), work
        measured = bar_classes(events)
        for bar, written in enumerate(controls_by_bar(controlled_events)):
            if bar < len(measured["density"]) and measured["density"][bar] >= 0:
                expected = [f"{kind}_{('low', 'mid', 'high')[measured[kind.lower()][bar]]}" for kind in CONTROL_KINDS]
                assert written == expected, (work, bar)
            else:
                assert written == [], (work, bar)
        # every control sits right after its bar's signature
        for index, token in enumerate(controlled_events):
            if token.startswith("Density_"):
                assert controlled_events[index - 1].startswith("Time_Signature_")


def test_training_windows_carry_controls_for_a_share_of_bars_and_never_learn_them(pieces):
    features = [{"input_ids": TOKENIZER.events_to_ids(events)} for events in pieces.values()]
    plain = G2MDataCollator(TOKENIZER, max_length=300, seed=3)
    unused = G2MDataCollator(TOKENIZER, max_length=300, seed=3, control_rate=0.0)
    assert torch.equal(plain(features)["input_ids"], unused(features)["input_ids"])  # rate 0: the same draws

    collator = G2MDataCollator(TOKENIZER, max_length=300, seed=4, control_rate=1.0)
    controlled_bars = all_bars = 0
    for _ in range(4):
        batch = collator(features)
        for row, labels in zip(batch["input_ids"], batch["labels"]):
            kept = row[row != TOKENIZER.pad_token_id]
            assert len(kept) <= 300
            is_control = torch.isin(row, torch.from_numpy(TOKENS.ids.ravel()))
            assert (labels[is_control] == -100).all()
            events = TOKENIZER.ids_to_events(kept.tolist())
            plain_events = TOKENIZER.ids_to_events(control_tokens.strip(kept.numpy(), TOKENS).tolist())
            measured = control_tokens.bar_levels(plain_events)  # the transposed window's own levels
            for bar, written in enumerate(controls_by_bar(events)):
                all_bars += 1
                if written:
                    controlled_bars += 1
                    assert [TOKENIZER.event_vocabulary.index(t) for t in written] == TOKENS.ids[
                        np.arange(3), measured[bar]].tolist()
    assert 0.4 * all_bars < controlled_bars < all_bars  # a share of the bars, drawn per window from 0.5..1


def test_the_grammar_writes_the_plan_and_the_piece_stays_valid():
    model = tiny_model(3, vocabulary=VOCAB)
    plan = torch.tensor([[[0, 1, 2], [2, 2, 2], [-1, -1, -1], [1, 0, 1]], [[2, 0, 0]] * 4])
    grammar = RemiGrammarLogitsProcessor(VOCAB, bars=6, controls=plan)  # a plan shorter than the piece: again
    prompt = torch.tensor([TOKENIZER.events_to_ids(["Composer_Bach", "Tempo_120", "BOS_None"])] * 2)
    torch.manual_seed(0)
    output = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), max_length=900,
                            remi_grammar=False, logits_processor=[grammar], pad_token_id=TOKENIZER.pad_token_id,
                            eos_token_id=TOKENIZER.eos_token_id, do_sample=True)
    names = ("low", "mid", "high")
    for row, levels in zip(output.tolist(), plan.tolist()):
        events = TOKENIZER.ids_to_events([i for i in row if i != TOKENIZER.pad_token_id])
        written = controls_by_bar(events)
        assert len(written) == 6
        for bar, tokens in enumerate(written):
            wanted = levels[bar % len(levels)]
            assert tokens == ([] if wanted[0] < 0 else [f"{k}_{names[v]}" for k, v in zip(CONTROL_KINDS, wanted)])
        piece = [token for token in events if token not in CONTROL_TOKENS]
        assert check_piece(piece) is None and round_trips(piece)


def _tilt_after(events: list[str], levels: tuple[int, int, int], strength: float,
                short_share: float | None = None, knobs: tuple[str, ...] = (),
                register: tuple[float, float, float, float] | None = None) -> torch.Tensor:
    """The scores a grammar with ``texture_steering=strength`` makes of zeros after ``events`` (one row), under
    a plan of every bar at ``levels`` (density, polyphony, register), ``short_share`` of short notes,
    ``knobs`` fixed by the caller and the section ``register`` range. [V]"""
    shares = None if short_share is None else torch.tensor([short_share])
    registers = None if register is None else torch.tensor([register])
    grammar = RemiGrammarLogitsProcessor(VOCAB, controls=torch.tensor([[levels]]), short_shares=shares,
                                         registers=registers, texture_steering=strength, knobs=knobs)
    return grammar(torch.tensor([TOKENIZER.events_to_ids(events)]), torch.zeros(1, len(VOCAB)))[0]


def _bar(levels: tuple[str, str, str], onsets: list[list[int]], step: int = 12) -> list[str]:
    """A piece's opening bar in 4/4 under ``levels``: one onset every ``step`` grids per list of pitches."""
    head = ["Composer_Bach", "Tempo_120", "BOS_None", "Bar_None", "Time_Signature_4/4"]
    controls = [f"{kind}_{level}" for kind, level in zip(CONTROL_KINDS, levels)]
    notes = []
    for index, pitches in enumerate(onsets):
        notes.append(f"Beat_{index * step}")
        notes += [e for pitch in sorted(pitches, reverse=True) for e in (f"Note_Pitch_{pitch}", "Note_Duration_480")]
    return head + controls + notes


def test_steering_tilts_pitches_toward_the_planned_register_only_outside_it():
    def pitches(*values: int) -> list[int]:
        return TOKENIZER.events_to_ids([f"Note_Pitch_{value}" for value in values])

    low = _bar(("mid", "mid", "high"), [[36, 40, 43]]) + ["Beat_12"]  # far below the high band; any pitch next
    near = pitches(42, 45, 48)  # within an octave of the bar's register (about 40)
    up = _tilt_after(low, (1, 1, 2), 1.0)[near]
    assert up[0] < up[1] < up[2] and torch.allclose(up[2] - up[1], up[1] - up[0])  # a tilt linear in pitch
    assert torch.allclose(_tilt_after(low, (1, 1, 2), 2.0)[near].diff(), 2 * up.diff())  # as strong as asked
    far = _tilt_after(low, (1, 1, 2), 1.0)[pitches(60, 84, 108)]
    assert far[0] == far[1] == far[2] > up[2]  # no further than an octave: the extremes gain no more
    down = _tilt_after(_bar(("mid", "mid", "low"), [[84, 88, 91]]) + ["Beat_12"], (1, 1, 0), 1.0)[pitches(80, 83, 86)]
    assert down[0] > down[1] > down[2]
    inside = _tilt_after(_bar(("mid", "mid", "mid"), [[60, 64, 67]]) + ["Beat_12"], (1, 1, 1), 1.0)[near]
    assert (inside == 0).all()
    assert (_tilt_after(low, (1, 1, 2), 0.0)[near] == 0).all()
    with pytest.raises(InvalidArgumentError, match="texture_steering"):
        RemiGrammarLogitsProcessor(VOCAB, texture_steering=-1.0)


def test_steering_keeps_the_sections_in_the_composers_register_range():
    pitch = TOKENIZER.events_to_ids([f"Note_Pitch_{value}" for value in (50, 53, 56, 59, 60, 63)])
    # a bar in the bass (mean pitch 50, none at or above middle C) of a composer whose sections lie at 62-69
    # with 60-85 % of their notes at or above middle C
    bass = _bar(("mid", "mid", "low"), [[52, 48]] * 6, step=6) + ["Beat_36"]
    composer = (62.0, 69.0, 0.6, 0.85)
    plain, held = _tilt_after(bass, (1, 1, 0), 1.0)[pitch], _tilt_after(bass, (1, 1, 0), 1.0, register=composer)[pitch]
    lift = held - plain  # what the section range adds: higher pitches favoured, and those at or above C4 most
    assert (lift.diff()[:3] > 0).all() and lift[4] - lift[3] > lift[3] - lift[2]
    # a piece inside the range: the section measure adds nothing; no range (a register knob): nothing either
    treble = _bar(("mid", "mid", "high"), [[67, 64]] * 6, step=6) + ["Beat_36"]
    assert torch.equal(_tilt_after(treble, (1, 1, 2), 1.0, register=composer), _tilt_after(treble, (1, 1, 2), 1.0))
    nan = (float("nan"),) * 4
    assert torch.equal(_tilt_after(bass, (1, 1, 0), 1.0, register=nan), _tilt_after(bass, (1, 1, 0), 1.0))
    with pytest.raises(InvalidArgumentError, match="registers"):
        RemiGrammarLogitsProcessor(VOCAB, controls=torch.tensor([[(1, 1, 1)]]), registers=torch.tensor([[69.0, 62, 0, 1]]))
    with pytest.raises(InvalidArgumentError, match="registers"):
        RemiGrammarLogitsProcessor(VOCAB, registers=torch.tensor([composer]))  # a range needs a plan


def test_model_generate_plans_the_composers_texture(pieces):
    # model.generate() plans as generate_midi does: the composer's real bars, its tempo, its register range
    model = tiny_model(3, vocabulary=VOCAB)
    chorales = [events for work, events in pieces.items() if work.startswith("bach/")]
    for field, value in control_tokens.measure_textures({"Bach": chorales}).to_config().items():
        setattr(model.config, field, value)
    prompt = TOKENIZER.composer_prompt(["Bach", "Bach"])

    def generate(**options) -> torch.Tensor:
        torch.manual_seed(5)
        return model.generate(**prompt, max_bars=3, max_new_tokens=200, **options)

    output = generate()
    assert torch.equal(output, generate())  # the plan comes from the torch random state
    table = texture_plan.ComposerTextures.from_config(model.config)
    tempi = {f"Tempo_{piece.tempo}" for piece in table.pieces["Bach"]}
    for row in output.tolist():
        events = [e for e in TOKENIZER.ids_to_events(row) if e != TOKENIZER.pad_token]
        assert events[0] == "Composer_Bach" and events[1] in tempi  # the prompt primed at a real chorale's tempo
        written = [bar for bar in controls_by_bar(events) if bar]
        assert written and all(len(bar) == len(CONTROL_KINDS) for bar in written)
        plain = [e for e in events if e not in CONTROL_TOKENS]
        assert check_piece(plain) is None
        assert len(TOKENIZER.decode_midi(row).instruments[0].notes) == sum(e.startswith("Note_Pitch") for e in plain)
    high = generate(register="high")
    assert all(bar[-1] == "Register_high" for row in high.tolist()
               for bar in controls_by_bar(TOKENIZER.ids_to_events(row)) if bar)
    free = generate(composer_texture=False)
    assert free.shape[1] > 0 and not set(TOKENIZER.ids_to_events(free[0].tolist())) & set(CONTROL_TOKENS)
    # a row's composer is its first attended token, as the style adapters read it: left padding is not a composer
    bach, tempo = TOKENIZER.events_to_ids(["Composer_Bach", min(tempi)])
    padded = model.generate(input_ids=torch.tensor([[TOKENIZER.pad_token_id, bach], [bach, tempo]]),
                            attention_mask=torch.tensor([[0, 1], [1, 1]]), max_bars=2, max_new_tokens=120)
    for row in padded.tolist():
        written = [bar for bar in controls_by_bar(TOKENIZER.ids_to_events(row)) if bar]
        assert written and all(len(bar) == len(CONTROL_KINDS) for bar in written)
    started = model.generate(input_ids=torch.tensor([[tempo, bach]]), max_bars=2, max_new_tokens=120)
    assert not set(TOKENIZER.ids_to_events(started[0].tolist())) & set(CONTROL_TOKENS)  # no composer first: no plan
    with pytest.raises(InvalidArgumentError, match="density"):
        generate(density="loud")
    with pytest.raises(VocabularyError, match="no texture-control tokens"):
        tiny_model(0).generate(**G2MTokenizer().composer_prompt(["Bach"]), max_bars=1, register="high")


def test_steering_asks_for_another_note_at_an_onset_when_polyphony_is_short():
    pitch = TOKENIZER.convert_tokens_to_ids("Note_Pitch_55")
    single = _bar(("mid", "high", "mid"), [[64], [62], [60]])  # one note per onset, high polyphony planned
    assert _tilt_after(single, (1, 2, 1), 1.0)[pitch] > 0
    chords = _bar(("mid", "low", "mid"), [[67, 64, 60], [65, 62, 59], [64, 60, 57]])  # chords, low planned
    assert _tilt_after(chords, (1, 0, 1), 1.0)[pitch] < 0
    assert _tilt_after(chords + ["Beat_40"], (1, 0, 1), 1.0)[pitch] == 0  # a new onset needs its pitch anyway


def test_a_knob_the_caller_set_is_held_harder_than_the_composers_plan():
    from g2m_hf.texture_steering import KNOB_GAINS

    pitches = TOKENIZER.events_to_ids(["Note_Pitch_55", "Note_Pitch_50"])
    single = _bar(("mid", "high", "mid"), [[64], [62], [60]])  # one note per onset, high polyphony asked
    planned = _tilt_after(single, (1, 2, 1), 1.0)[pitches]
    fixed = _tilt_after(single, (1, 2, 1), 1.0, knobs=("polyphony",))[pitches]
    assert (planned > 0).all() and torch.allclose(fixed, planned * KNOB_GAINS["polyphony"] / STEERING_GAINS["polyphony"])
    low = _bar(("mid", "mid", "high"), [[36, 40, 43]]) + ["Beat_12"]  # a register knob keeps the plan's gain
    assert torch.equal(_tilt_after(low, (1, 1, 2), 1.0, knobs=("register",)), _tilt_after(low, (1, 1, 2), 1.0))
    with pytest.raises(InvalidArgumentError, match="knobs"):
        RemiGrammarLogitsProcessor(VOCAB, texture_steering=1.0, knobs=("loudness",))
    assert RemiGrammarLogitsProcessor(VOCAB, controls=torch.tensor([[(1, 2, 1)]])).planned
    assert not RemiGrammarLogitsProcessor(VOCAB).planned


def test_steering_spaces_onsets_by_the_planned_density():
    beats = TOKENIZER.events_to_ids(["Beat_27", "Beat_36", "Beat_45", "Bar_None"])
    busy = _bar(("low", "mid", "mid"), [[67, 64, 60]] * 8, step=3)  # 24 notes in a beat and a half: too dense
    spread = _tilt_after(busy, (0, 1, 1), 1.0)[beats]
    assert spread[0] < spread[1] < spread[2] < spread[3]  # later onsets, and the bar line, gain
    sparse = _bar(("high", "mid", "mid"), [[60], [62]], step=24)  # a note in two quarters, high density planned
    tight = _tilt_after(sparse, (2, 1, 1), 1.0)[beats]
    assert tight[0] > tight[1] > tight[2] > tight[3]


def test_steering_gathers_a_bar_whose_pitches_spread_too_far():
    def pitches(*values: int) -> list[int]:
        return TOKENIZER.events_to_ids([f"Note_Pitch_{value}" for value in values])

    wide = _bar(("mid", "mid", "high"), [[88, 40], [86, 38]]) + ["Beat_24"]  # four octaves in a bar
    compact = _bar(("mid", "mid", "high"), [[67, 64], [69, 65]]) + ["Beat_24"]  # a sixth, inside the high band
    near = pitches(60, 64, 68, 72)
    curve = _tilt_after(wide, (1, 1, 2), 1.0)[near].diff().diff()  # second differences: a parabola's are equal ...
    assert (curve < 0).all() and torch.allclose(curve[0], curve[1])  # ... and negative, opening downward
    middle, low, high = _tilt_after(wide, (1, 1, 2), 1.0)[pitches(64, 24, 108)]
    assert low < middle and high < middle  # the extremes lose on both sides
    assert (_tilt_after(compact, (1, 1, 2), 1.0)[near] == 0).all()  # within the limit: untouched
    assert (_tilt_after(wide, (1, 1, 2), 0.0)[near] == 0).all()


def test_steering_never_empties_a_bar_for_density():
    # after a busy bar, a bar planned sparse has no notes yet: leaving it empty (the bar line next) is a rest,
    # not a sparser bar, and gets no density tilt; once it has a note, density is steered
    busy = _bar(("high", "mid", "mid"), [[67, 64, 60]] * 8, step=3)
    bar_line, *beats = TOKENIZER.events_to_ids(["Bar_None", "Beat_0", "Beat_12", "Beat_24"])
    empty = busy + ["Bar_None", "Time_Signature_4/4", "Density_low", "Polyphony_mid", "Register_mid"]
    tilt = _tilt_after(empty, (0, 1, 1), 1.0)
    assert tilt[bar_line] == 0 and (tilt[beats] == 0).all()
    begun = _tilt_after(empty + ["Beat_0", "Note_Pitch_64", "Note_Duration_240"], (0, 1, 1), 1.0)
    assert begun[bar_line] > begun[beats[2]] > begun[beats[1]]  # still too busy: later onsets and the bar line gain


def test_steering_keeps_onsets_on_the_metric_grid():
    # Beat_25 is neither on a sixteenth (a multiple of 3) nor on an eighth-note triplet (of 4)
    off, *metric = TOKENIZER.events_to_ids(["Beat_25", "Beat_27", "Beat_28", "Beat_36", "Bar_None"])
    for plan, bar in (((0, 1, 1), _bar(("low", "mid", "mid"), [[67, 64, 60]] * 8, step=3)),  # too dense
                      ((2, 1, 1), _bar(("high", "mid", "mid"), [[60], [62]], step=24)),  # too sparse
                      ((1, 1, 1), _bar(("mid", "mid", "mid"), [[64, 60], [65, 62]], step=6))):  # on its levels
        tilt = _tilt_after(bar, plan, 1.0)
        assert tilt[off] < tilt[metric].min() and tilt[off] < 0
    assert (tilt[metric] == 0).all()  # density in its band: the grid alone is steered
    assert (_tilt_after(bar, plan, 0.0)[[off, *metric]] == 0).all()


def test_steering_holds_the_share_of_short_notes_near_the_real_pieces():
    short, eighth, quarter = TOKENIZER.events_to_ids(["Note_Duration_120", "Note_Duration_240", "Note_Duration_480"])
    held = _bar(("mid", "mid", "mid"), [[60], [62], [64], [65]], step=6) + ["Beat_24", "Note_Pitch_67"]  # quarters
    for target, sign in ((0.4, 1), (0.0, 0), (None, 0)):  # below the target, near it, no target
        tilt = _tilt_after(held, (1, 1, 1), 1.0, target)
        assert torch.sign(tilt[short]) == sign and tilt[eighth] == tilt[quarter] == 0
    sixteenths = [e.replace("Note_Duration_480", "Note_Duration_120") for e in held]
    assert _tilt_after(sixteenths, (1, 1, 1), 1.0, 0.1)[short] < 0  # all short, a real piece with few
    assert _tilt_after(sixteenths, (1, 1, 1), 2.0, 0.1)[short] == 2 * _tilt_after(sixteenths, (1, 1, 1), 1.0, 0.1)[short]
    # as far below the band as above it: the push toward more short notes is the gentler (they come in runs)
    assert 0 < _tilt_after(held, (1, 1, 1), 1.0, 0.4)[short] < -_tilt_after(sixteenths, (1, 1, 1), 1.0, 0.6)[short]
    with pytest.raises(InvalidArgumentError, match="short_shares"):
        RemiGrammarLogitsProcessor(VOCAB, controls=torch.tensor([[(1, 1, 1)]]), short_shares=torch.tensor([1.5]))
    with pytest.raises(InvalidArgumentError, match="short_shares"):
        RemiGrammarLogitsProcessor(VOCAB, short_shares=torch.tensor([0.2]))  # a target needs a plan


def test_steering_writes_off_a_pieces_surplus_of_short_notes(monkeypatch):
    short = TOKENIZER.convert_tokens_to_ids("Note_Duration_120")

    def tilt(durations: list[int]) -> float:  # one note a sixteenth apart per duration, then a note to end
        notes = [e for i, d in enumerate(durations) for e in (f"Beat_{3 * i}", f"Note_Pitch_{60 + i}", f"Note_Duration_{d}")]
        bar = _bar(("mid", "mid", "mid"), []) + notes + [f"Beat_{3 * len(durations)}", "Note_Pitch_80"]
        return float(_tilt_after(bar, (1, 1, 1), 1.0, 0.5)[short])

    # 8 sixteenths then 7 eighths: the moving share (about 0.48) lies inside the band around 0.5, but the piece has
    # half a short note too many, and is pushed toward fewer; 8 eighths then 7 sixteenths (half a note too few) is not
    surplus, deficit = [120] * 8 + [240] * 7, [240] * 8 + [120] * 7
    assert tilt(surplus) < 0 and tilt(deficit) == 0
    assert tilt([120] * 9 + [240] * 6) < tilt(surplus)  # a note and a half too many (share 0.53): more push
    monkeypatch.setitem(STEERING_GAINS, "short_piece", 0.0)
    assert tilt(surplus) == 0  # the piece-level term alone: the moving share is inside its band


@pytest.mark.parametrize("register,band", [("low", (56.0, 61.5)), ("high", (65.5, 72.0))])
def test_steering_brings_pieces_toward_the_asked_register(register, band):
    # a random tiny model ignores the register tokens (its pieces sit in the bass whatever is asked, many
    # notes per onset written from the top down): steering alone brings them toward the band asked for
    model = tiny_model(3, vocabulary=VOCAB)

    def distance(steering: float) -> float:
        pieces = generate_midi(model, TOKENIZER, ["Bach"], num_pieces=2, seed=2, bars=4, register=register,
                               texture_steering=steering)
        means = [float(np.nanmean(bar_values(piece.events)["register"])) for piece in pieces]
        return float(np.mean([max(band[0] - mean, mean - band[1], 0.0) for mean in means]))

    assert distance(2.0) < distance(0.0) - 3


def test_the_infill_grammar_writes_the_plan_of_the_span(pieces):
    events = pieces["bach/bwv1.6"]
    ids = np.array(TOKENIZER.events_to_ids(events))
    tokens = infill_layout.InfillTokens.of(TOKENIZER)
    bounds = infill_layout.bar_bounds(ids, tokens)
    signatures = [events[bounds[bar] + 1].rpartition("_")[2] for bar in (3, 4)]
    plan = torch.tensor([[[2, 1, 0], [0, 0, 2]]])
    grammar = InfillGrammarLogitsProcessor(VOCAB, ids[: bounds[3]], signatures, ids[bounds[5] :], controls=plan)
    prompt = torch.as_tensor(infill_layout.infill_context(ids, 3, 5, 10_000, tokens)).unsqueeze(0)
    model = tiny_model(4, vocabulary=VOCAB)
    torch.manual_seed(1)
    output = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), max_length=len(prompt[0]) + 400,
                            remi_grammar=False, logits_processor=[grammar], pad_token_id=TOKENIZER.pad_token_id,
                            eos_token_id=tokens.end, do_sample=True)
    _, span, _ = infill_layout.unarrange(output[0].numpy(), tokens)
    assert controls_by_bar(TOKENIZER.ids_to_events(span.tolist())) == [
        ["Density_high", "Polyphony_mid", "Register_low"], ["Density_low", "Polyphony_low", "Register_high"]]


def test_steering_brings_infilled_bars_toward_the_asked_register(pieces, tmp_path):
    # the tiny model writes the span's notes in the bass; asked for a high register, steering lifts them
    path = tmp_path / "chorale.mid"
    TOKENIZER.decode_midi(TOKENIZER.events_to_ids(pieces["bach/bwv1.6"])).write(str(path))
    model = tiny_model(4, vocabulary=VOCAB)

    def span_register(steering: float) -> float:
        (piece,) = infill_midi(model, TOKENIZER, path, bars=(4, 5), composer="Bach", register="high",
                               texture_steering=steering)
        return float(np.nanmean(bar_values(piece.events)["register"][3:5]))

    assert span_register(2.0) > span_register(0.0) + 3
    with pytest.raises(InvalidArgumentError, match="texture_steering"):
        infill_midi(model, TOKENIZER, tmp_path / "missing.mid", bars=(4, 5), composer="Bach", texture_steering=-1.0)


@pytest.mark.parametrize(("kind", "value", "level"), [
    ("density", "low", 0), ("density", "HIGH", 2), ("density", 4.2, 1), ("density", "3.49", 0),
    ("polyphony", 2.8, 2), ("register", 60, 0), ("register", "64", 1), ("register", 72, 2), ("register", None, None),
])
def test_a_knob_takes_a_level_or_a_number_in_its_unit(kind, value, level):
    assert texture_plan.parse_level(kind, value) == level


@pytest.mark.parametrize("value", ["loud", "-1", "nan", "inf"])
def test_a_bad_knob_is_refused_in_one_line_naming_it(value):
    with pytest.raises(InvalidArgumentError) as caught:
        texture_plan.parse_knobs(density=value, spell=lambda name: f"--{name}")
    assert str(caught.value).startswith("--density") and "\n" not in str(caught.value)


def test_the_composer_table_follows_real_pieces_bar_by_bar_at_their_tempo(pieces):
    chorales = [events for work, events in pieces.items() if work.startswith("bach/")]
    table = control_tokens.measure_textures({"Bach": chorales})
    config = type("Config", (), table.to_config())()
    loaded = texture_plan.ComposerTextures.from_config(config)
    # the register ranges are the chorales' own 10-90 % ranges of 8-bar sections, as the benchmarks measure them
    reference = TextureReference.from_pieces(chorales)
    assert loaded.registers["Bach"] == pytest.approx((*reference.mean_pitch, *reference.high_share), abs=1e-4)
    assert 55 < loaded.registers["Bach"][0] < loaded.registers["Bach"][1] < 70
    assert [p.levels.tolist() for p in loaded.pieces["Bach"]] == [control_tokens.bar_levels(e).tolist() for e in chorales]
    assert [p.tempo for p in loaded.pieces["Bach"]] == [int(e[1].rpartition("_")[2]) for e in chorales]
    shares = [p.short_share for p in loaded.pieces["Bach"]]
    assert shares == [round(piece_texture(e)["short_share"], 2) for e in chorales] and 0 < max(shares) < 0.5
    plan, _ = loaded.plan("Bach", 200, np.random.default_rng(0))
    assert plan.shape == (200, 3)
    # the plan enters a real chorale at one of its phrases (every PLAN_PHRASE_BARS bars, the opening among them) and
    # takes that chorale's tempo and share of short notes; over many plans, openings and later phrases both
    step = texture_plan.PLAN_PHRASE_BARS
    entries = []
    for seed in range(40):
        levels, entered = loaded.plan("Bach", 200, np.random.default_rng(seed))
        starts = [start for start in range(0, len(entered.levels), step)
                  if np.array_equal(levels[: min(step, len(entered.levels) - start)], entered.levels[start : start + step])]
        assert starts, (seed, "the plan does not follow the piece whose tempo it takes")
        entries.append(starts[0])
    assert 0 in entries and max(entries) >= step, entries
    unknown = texture_plan.plan_batch(loaded, ["Mozart"], 5, 0, {})
    assert (unknown.levels == texture_plan.FREE).all() and unknown.tempi == [None]
    assert np.isnan(unknown.short_shares).all() and np.isnan(unknown.registers).all()
    # a table packaged before the shares were kept still reads: no share, no steering of short notes
    old = texture_plan.RealTexture.decode("120: 012 ---")
    assert old.tempo == 120 and old.levels.tolist() == [[0, 1, 2], [-1, -1, -1]] and np.isnan(old.short_share)
    fixed = texture_plan.plan_batch(loaded, ["Bach", "Mozart"], 40, 0, {"density": 2, "register": None})
    assert (fixed.levels[..., 0] == 2).all() and (fixed.levels[1, :, 1:] == 1).all()
    # a density knob drops the real piece's share of short notes (part of its density); other knobs keep it
    assert np.isnan(fixed.short_shares).all()
    registered = texture_plan.plan_batch(loaded, ["Bach"], 40, 0, {"register": 2})
    plain = texture_plan.plan_batch(loaded, ["Bach"], 40, 0, {})
    assert registered.short_shares == plain.short_shares and (registered.levels[0, :, 2] == 2).all()
    assert np.isfinite(plain.short_shares).all()
    # the composer's register range is held unless the register knob is set (it asks for another register)
    assert fixed.registers[0] == loaded.registers["Bach"] and np.isnan(registered.registers).all()
    unmeasured = texture_plan.ComposerTextures.from_config(type("Config", (), {"composer_textures": config.composer_textures})())
    assert np.isnan(texture_plan.plan_batch(unmeasured, ["Bach"], 8, 0, {}).registers).all()
    free = texture_plan.plan_batch(loaded, ["Bach", "Mozart"], 40, 0, {})  # the same seed: the same real pieces
    real = np.where((free.levels[0] == texture_plan.FREE).any(1), 1, free.levels[0, :, 2])  # silent: the middle level
    assert (fixed.levels[0, :, 2] == real).all() and fixed.tempi[0] == free.tempi[0]


def test_knobs_refused_for_a_model_without_the_tokens(tmp_path):
    model = tiny_model(0)  # plain REMI vocabulary
    tokenizer = G2MTokenizer()
    assert generate_midi(model, tokenizer, ["Bach"], bars=1, max_events=60)  # no knob: fine, as before
    with pytest.raises(VocabularyError, match="no texture-control tokens"):
        generate_midi(model, tokenizer, ["Bach"], bars=1, density="high")
    model.save_pretrained(tmp_path / "plain")
    tokenizer.save_pretrained(tmp_path / "plain")
    assert exit_code(generate_cli.main, ["--model", str(tmp_path / "plain"), "--composer", "Bach", "--bars", "1",
                                         "--register", "high", "--output-dir", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()


def test_generated_pieces_under_knobs_are_plain_remi_and_follow_the_plan():
    model = tiny_model(3, vocabulary=VOCAB)
    pieces = generate_midi(model, TOKENIZER, ["Bach"], num_pieces=2, seed=1, bars=4, density="low", register=70)
    for piece in pieces:
        assert not set(piece.events) & set(CONTROL_TOKENS)
        assert check_piece(piece.events) is None and round_trips(piece.events)
    with pytest.raises(InvalidArgumentError, match="density"):
        generate_midi(model, TOKENIZER, ["Bach"], bars=4, density="loud")
