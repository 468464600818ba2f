"""Grammar-constrained generation: RemiGrammarLogitsProcessor, G2MForCausalLM.generate, generate_midi, g2m-generate.

The validity checks use `check_piece` below, a plain re-statement of the rules written independently of
the processor's tensor code, and the codec itself (decode, re-encode, compare).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pretty_midi
import pytest
import torch
from transformers import DynamicCache, LogitsProcessor, LogitsProcessorList
from transformers.generation.streamers import BaseStreamer

from g2m_hf import G2MConfig, G2MForCausalLM, G2MTokenizer, RemiGrammarLogitsProcessor, generate_midi
from g2m_hf import generation as generation_module
from g2m_hf.cli import generate as cli
from g2m_hf.errors import ModelNotFoundError, RemiError, VocabularyError
from g2m_hf.grammar import SPEC_GENERATION_DEFAULTS, remi_generate_arguments
from g2m_hf.kv_cache import PreallocatedCache, PreallocatedLayer
from g2m_hf.remi import events_to_midi, midi_to_events
from g2m_hf.vocab import complete_vocabulary
from tests.cli import exit_code
from tests.reference.original_generation import generate_events
from tests.reference.original_model import OriginalDecoderModel, randomise

VOCAB = complete_vocabulary()
ID = {token: index for index, token in enumerate(VOCAB)}
PAD, EOS = ID["PAD_None"], ID["EOS_None"]
HEAD = ["Composer_Bach", "Tempo_80", "BOS_None"]
# signature: (bar ticks, grids, duration unit), restated from SPEC §1
SIGNATURES = {
    "2/4": (960, 24, 40), "3/4": (1440, 36, 40), "4/4": (1920, 48, 40), "3/8": (720, 18, 80), "6/8": (1440, 36, 80)
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models on a shared 2-core machine: one thread avoids OpenMP contention (restored after)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- an independent statement of the rules ---------------------------------------------------------


def check_piece(events: list[str], max_bars: int = 128) -> str | None:
    """None if ``events`` is a complete piece that should round-trip, else the first broken rule."""
    if events[:1] and not events[0].startswith("Composer_"):
        return "no composer first"
    if events[1:2] not in ([f"Tempo_{t}"] for t in (40, 80, 120, 160)) or events[2:3] != ["BOS_None"]:
        return "no tempo + BOS"
    if events[-1] != "EOS_None":
        return "no EOS at the end"
    bars: list[list] = []  # [signature, [[grid, [[pitch, duration]]]]]
    for token in events[3:-1]:
        name, _, value = token.rpartition("_")
        if token == "Bar_None":
            bars.append([None, []])
        elif name == "Time_Signature" and bars and bars[-1][0] is None:
            bars[-1][0] = value
        elif name == "Beat" and bars and bars[-1][0] is not None:
            bars[-1][1].append([int(value), []])
        elif name == "Note_Pitch" and bars and bars[-1][1]:
            bars[-1][1][-1][1].append([int(value), None])
        elif name == "Note_Duration" and bars and bars[-1][1] and bars[-1][1][-1][1]:
            note = bars[-1][1][-1][1][-1]
            if note[1] is not None:
                return f"{token} out of place"
            note[1] = int(value)
        else:
            return f"{token} out of place"
    if not 1 <= len(bars) <= max_bars:
        return f"{len(bars)} bars"
    if bars[0][0] != "4/4" and (len(bars) == 1 or SIGNATURES[bars[1][0]][0] > SIGNATURES[bars[0][0]][0]):
        return "first bar would read back as a pickup"
    start, last_end, sounding = 0, 0, {}
    for signature, beats in bars:
        if signature is None:
            return "bar without time signature"
        ticks, grids, unit = SIGNATURES[signature]
        grid = -1
        for beat, notes in beats:
            if not grid < beat < grids or not notes:
                return f"Beat_{beat} after {grid} in {signature} (or without notes)"
            grid, previous_pitch, onset = beat, 999, start + 40 * beat
            for pitch, duration in notes:
                if duration is None or duration % unit or not 0 < duration <= ticks:
                    return f"duration {duration} in {signature}"
                if pitch >= previous_pitch or sounding.get(pitch, 0) > onset:
                    return f"pitch {pitch} out of order or still sounding"
                previous_pitch, sounding[pitch] = pitch, onset + duration
                last_end = max(last_end, onset + duration)
        start += ticks
    return None if last_end < start else "a note outlasts the last bar"


def round_trips(events: list[str]) -> bool:
    return midi_to_events(events_to_midi(events), composer=events[0].split("_", 1)[1]) == events


def sample_with_processor(processor, prompts: list[list[str]], seed: int, bias=None) -> list[list[str]]:
    """Sample random logits through the processor (a batch of left-padded prompts) until every row has
    ended or the processor's max_length is reached; returns the event lists."""
    generator = torch.Generator().manual_seed(seed)
    width = max(map(len, prompts))
    ids = torch.tensor([[PAD] * (width - len(p)) + [ID[t] for t in p] for p in prompts])
    done = torch.zeros(len(prompts), dtype=torch.bool)
    while ids.shape[1] < processor.max_length:
        scores = torch.randn(len(prompts), len(VOCAB), generator=generator) * 2 + (0 if bias is None else bias)
        scores = processor(ids, scores)
        assert torch.isfinite(scores).any(1).all(), "a row with every token masked"
        token = torch.multinomial(scores.softmax(-1), 1, generator=generator).squeeze(1)
        token = torch.where(done, PAD, token)
        done |= token == EOS
        ids = torch.cat([ids, token[:, None]], 1)
        if done.all():
            break
    return [[VOCAB[i] for i in row if i != PAD] for row in ids.tolist()]


def allowed_after(events: list[str], **kwargs) -> set[str]:
    processor = RemiGrammarLogitsProcessor(VOCAB, **kwargs)
    mask = processor.allowed_mask(torch.tensor([[ID[t] for t in events]]))[0]
    return {VOCAB[i] for i in mask.nonzero().flatten().tolist()}


# --- the processor on random logits ---------------------------------------------------------------


def test_random_sampling_through_the_grammar_gives_valid_round_tripping_pieces():
    prompts = [
        ["Composer_Bach"],
        ["Composer_Chopin", "Tempo_40"],
        ["Composer_None", "Tempo_160", "BOS_None", "Bar_None", "Time_Signature_3/8"],
        ["Composer_Mozart", "Tempo_120", "BOS_None", "Bar_None", "Time_Signature_6/8", "Beat_3", "Note_Pitch_60"],
    ]
    long_notes = torch.zeros(len(VOCAB))
    long_notes[[ID[f"Note_Duration_{d}"] for d in range(1000, 1921, 20)]] = 3.0  # notes that outlast bars
    many_bars = torch.zeros(len(VOCAB))
    many_bars[ID["Bar_None"]] = 4.0  # empty bars
    checked = 0
    for seed in range(12):
        max_bars, length = (1, 2, 3, 16)[seed % 4], (30, 90, 200)[seed % 3]
        processor = RemiGrammarLogitsProcessor(VOCAB, max_bars=max_bars, max_length=length)
        bias = (None, long_notes, many_bars)[seed % 3]
        rows = prompts if max_bars > 1 else prompts[:2]  # a short first bar needs a second bar
        for events in sample_with_processor(processor, rows, seed, bias):
            assert check_piece(events, max_bars) is None, (check_piece(events, max_bars), events)
            assert round_trips(events), events
            assert len(events) <= length
            checked += 1
    assert checked == 42


def test_pieces_end_inside_the_length_and_event_budgets():
    prompts = [["Composer_Bach"], ["Composer_Bach", "Tempo_80", "BOS_None", "Bar_None", "Time_Signature_4/4"]]
    for max_length, max_events in ((12, None), (40, 25), (400, 60)):
        processor = RemiGrammarLogitsProcessor(VOCAB, max_length=max_length, max_events=max_events)
        for events in sample_with_processor(processor, prompts, seed=max_length):
            assert check_piece(events) is None
            assert len(events) <= min(max_length, max_events or max_length)


def test_incremental_state_matches_a_full_parse():
    """The per-step update must give the same mask as parsing the whole sequence afresh."""
    generator = torch.Generator().manual_seed(3)
    incremental = RemiGrammarLogitsProcessor(VOCAB, max_bars=4, max_length=160)
    ids = torch.tensor([[PAD, ID["Composer_Bach"]], [ID["Composer_Chopin"], ID["Tempo_80"]]])
    for step in range(150):
        mask = incremental.allowed_mask(ids)
        if step % 10 == 0:
            fresh = RemiGrammarLogitsProcessor(VOCAB, max_bars=4, max_length=160).allowed_mask(ids)
            assert torch.equal(mask, fresh), step
        scores = torch.randn(2, len(VOCAB), generator=generator).masked_fill(~mask, float("-inf"))
        token = torch.multinomial(scores.softmax(-1), 1, generator=generator)
        ids = torch.cat([ids, token], 1)


# Each case: a prefix, a token the converter would not give back, and one it would.
NOT_ROUND_TRIPPING = [
    # a 3/4 first bar before a longer bar (or alone) reads back as a 4/4 pickup
    (HEAD + ["Bar_None", "Time_Signature_3/4", "Beat_0", "Note_Pitch_60", "Note_Duration_40", "Bar_None"],
     "Time_Signature_4/4", "Time_Signature_3/4"),
    (HEAD + ["Bar_None", "Time_Signature_3/4", "Beat_0", "Note_Pitch_60", "Note_Duration_40"], "EOS_None", "Bar_None"),
    # a note ending exactly at the end of the piece makes the converter add a bar
    (HEAD + ["Bar_None", "Time_Signature_4/4", "Beat_0", "Note_Pitch_60", "Note_Duration_1920"],
     "EOS_None", "Bar_None"),
    # notes on a Beat come in descending pitch
    (HEAD + ["Bar_None", "Time_Signature_4/4", "Beat_0", "Note_Pitch_60", "Note_Duration_40"],
     "Note_Pitch_64", "Note_Pitch_59"),
    # a pitch cannot restart while it sounds (MIDI merges the two notes)
    (HEAD + ["Bar_None", "Time_Signature_4/4", "Beat_0", "Note_Pitch_60", "Note_Duration_400", "Beat_4"],
     "Note_Pitch_60", "Note_Pitch_61"),
    # durations are multiples of 40 ticks (/4) or 80 ticks (/8)
    (HEAD + ["Bar_None", "Time_Signature_4/4", "Beat_0", "Note_Pitch_60"], "Note_Duration_20", "Note_Duration_40"),
    (HEAD + ["Bar_None", "Time_Signature_6/8", "Beat_0", "Note_Pitch_60"], "Note_Duration_40", "Note_Duration_80"),
    # a Beat needs a note
    (HEAD + ["Bar_None", "Time_Signature_4/4", "Beat_0"], "EOS_None", "Note_Pitch_60"),
]


@pytest.mark.parametrize("prefix, forbidden, allowed", NOT_ROUND_TRIPPING)
def test_grammar_forbids_exactly_what_the_codec_would_change(prefix, forbidden, allowed):
    def completed(token: str) -> list[str]:
        """The prefix, the token, and the shortest way to finish the piece after it."""
        events = prefix + [token]
        if token == "EOS_None":
            return events
        if token.startswith("Note_Pitch"):
            events.append("Note_Duration_40")
        if token.startswith("Time_Signature"):
            events += ["Beat_0", "Note_Pitch_60", "Note_Duration_40"]
        signature = next(t for t in events[::-1] if t.startswith("Time_Signature"))
        return events + ([] if token == "Bar_None" else ["Bar_None"]) + [signature, "EOS_None"]

    assert not round_trips(completed(forbidden))  # the rule is real...
    assert round_trips(completed(allowed))
    options = allowed_after(prefix)
    assert forbidden not in options and allowed in options  # ...and the grammar enforces it


def test_structure_rules():
    assert allowed_after(["Composer_Bach"]) == {f"Tempo_{t}" for t in (40, 80, 120, 160)}
    assert allowed_after(["Composer_Bach", "Tempo_80"]) == {"BOS_None"}
    assert allowed_after(HEAD) == {"Bar_None"}
    assert allowed_after(HEAD + ["Bar_None"]) == {f"Time_Signature_{s}" for s in SIGNATURES}
    in_bar = allowed_after(HEAD + ["Bar_None", "Time_Signature_3/8", "Beat_5", "Note_Pitch_60", "Note_Duration_80"])
    beats = {int(t.split("_")[1]) for t in in_bar if t.startswith("Beat_")}
    assert beats == set(range(6, 18)) and "Bar_None" in in_bar and "PAD_None" not in in_bar
    assert not any(t.startswith(("Composer", "Tempo", "BOS")) for t in in_bar)
    # an empty bar may be followed by a bar; max_bars forces the end
    assert "Bar_None" in allowed_after(HEAD + ["Bar_None", "Time_Signature_4/4"])
    assert allowed_after(HEAD + ["Bar_None", "Time_Signature_4/4"], max_bars=1) >= {"EOS_None"}
    assert "Bar_None" not in allowed_after(HEAD + ["Bar_None", "Time_Signature_4/4"], max_bars=1)
    assert allowed_after(HEAD + ["Bar_None", "Time_Signature_4/4", "EOS_None"]) == {"EOS_None"}  # finished rows


def test_where_the_length_ends_the_piece_eos_takes_the_models_wish_to_close_the_bar():
    # the model does not know that its last bar is the last: where it would close the bar, it must end the piece
    # (with the mask alone it piled notes on the last grid steps of a 16-bar piece)
    last = HEAD + ["Bar_None", "Time_Signature_4/4", "Beat_0", "Note_Pitch_60", "Note_Duration_40"]
    ids = torch.tensor([[ID[t] for t in last]] * 2)
    scores = torch.full((2, len(VOCAB)), -4.0)
    scores[:, ID["Bar_None"]], scores[:, ID["EOS_None"]] = 3.0, -5.0
    ended = RemiGrammarLogitsProcessor(VOCAB, bars=1)(ids, scores.clone())
    assert torch.isneginf(ended[:, ID["Bar_None"]]).all()
    assert torch.allclose(ended[:, ID["EOS_None"]], torch.logaddexp(torch.tensor(-5.0), torch.tensor(3.0)))
    assert torch.equal(ended[:, ID["Beat_4"]], scores[:, ID["Beat_4"]])  # the bar may still go on
    going_on = RemiGrammarLogitsProcessor(VOCAB, bars=2)(ids, scores.clone())  # a bar to come: nothing moves
    assert going_on[0, ID["Bar_None"]] == 3.0 and going_on[0, ID["EOS_None"]] == float("-inf")
    free = RemiGrammarLogitsProcessor(VOCAB)(ids, scores.clone())  # the model decides: both as it scores them
    assert free[0, ID["Bar_None"]] == 3.0 and free[0, ID["EOS_None"]] == -5.0


def test_ids_outside_the_vocabulary_are_never_allowed():
    processor = RemiGrammarLogitsProcessor(VOCAB[:-1] + ["PAD_None"])
    ids = torch.tensor([[len(VOCAB) + 1, ID["Composer_Bach"]]])  # an unknown id in the prompt is skipped
    scores = processor(ids, torch.zeros(1, len(VOCAB) + 5))  # a model head wider than the vocabulary
    allowed = torch.isfinite(scores[0]).nonzero().flatten().tolist()
    assert allowed and all(VOCAB[i].startswith("Tempo_") for i in allowed)


# --- the model: G2MForCausalLM.generate ------------------------------------------------------------


def tiny_model(seed: int = 0, realistic: bool = True, vocabulary=VOCAB) -> G2MForCausalLM:
    config = G2MConfig(
        vocab_size=len(vocabulary), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, style_adapter_layers=[1], event_vocabulary=list(vocabulary),
    )
    torch.manual_seed(seed)
    model = G2MForCausalLM(config)
    return (randomise(model, seed) if realistic else model).eval()


def prompt(*composers: str) -> torch.Tensor:
    return torch.tensor([[ID[f"Composer_{c}"]] for c in composers])


def events_of(row: list[int]) -> list[str]:
    return [VOCAB[i] for i in row if i != PAD]


def test_model_generate_gives_valid_pieces_in_a_batch_with_left_padding():
    model = tiny_model(realistic=False)  # near-uniform logits: every allowed token gets drawn
    ids = torch.tensor([[PAD, PAD, ID["Composer_Bach"]], [ID["Composer_Chopin"], ID["Tempo_40"], ID["BOS_None"]]])
    mask = (ids != PAD).long()
    torch.manual_seed(0)
    out = model.generate(ids, attention_mask=mask, max_new_tokens=150, max_bars=5, num_return_sequences=3)
    assert out.shape[0] == 6
    for row in out.tolist():
        events = events_of(row)
        assert check_piece(events, max_bars=5) is None and round_trips(events)


def test_model_generate_defaults_are_the_original_sampling():
    model = tiny_model()
    config, processors, kwargs = remi_generate_arguments(model, prompt("Bach"), None, None, {}, True, 64, None)
    assert config is None and {k: kwargs[k] for k in SPEC_GENERATION_DEFAULTS} == SPEC_GENERATION_DEFAULTS
    assert SPEC_GENERATION_DEFAULTS["temperature"] == 1.1 and kwargs["max_length"] == 1200
    assert isinstance(kwargs["cache"], PreallocatedCache)
    grammar = processors[-1]
    assert isinstance(grammar, RemiGrammarLogitsProcessor) and grammar.max_bars == 64 and grammar.max_length == 1200
    # what the caller or the model's generation config sets wins; max_new_tokens replaces max_length
    model.generation_config.temperature = 0.7
    user = LogitsProcessorList([RemiGrammarLogitsProcessor(VOCAB)])
    _, processors, kwargs = remi_generate_arguments(
        model, prompt("Bach"), None, user, {"top_p": 0.5, "max_new_tokens": 10}, True, 128, None
    )
    assert "temperature" not in kwargs and kwargs["top_p"] == 0.5 and "max_length" not in kwargs
    assert processors[0] is user[0] and processors[-1].max_length == 11
    _, processors, _ = remi_generate_arguments(model, prompt("Bach"), None, None, {}, False, 128, None)
    assert len(processors) == 0
    _, _, kwargs = remi_generate_arguments(model, prompt("Bach"), None, None, {"do_sample": False}, True, 128, None)
    assert not {"temperature", "top_p", "top_k"} & set(kwargs)  # greedy: no sampling settings to warn about


class _Ban(LogitsProcessor):
    """Forbids the given tokens."""

    def __init__(self, token_ids):
        self.token_ids = token_ids

    def __call__(self, input_ids, scores):
        scores[:, self.token_ids] = float("-inf")
        return scores


class _Boost(LogitsProcessor):
    """Makes the given tokens by far the most likely."""

    def __init__(self, token_ids):
        self.token_ids = token_ids

    def __call__(self, input_ids, scores):
        scores[:, self.token_ids] += 50.0
        return scores


def test_user_processors_and_plain_generation_still_work():
    model = tiny_model(1)
    low_pitches = [ID[f"Note_Pitch_{p}"] for p in range(21, 60)]
    ban = _Ban(low_pitches)
    torch.manual_seed(1)
    out = model.generate(prompt("Bach", "Mozart"), max_new_tokens=120, logits_processor=LogitsProcessorList([ban]))
    for row in out.tolist():
        events = events_of(row)
        assert check_piece(events) is None and not set(events) & {VOCAB[i] for i in low_pitches}
    # the grammar overrides a processor pushing PAD; without the grammar PAD comes out
    torch.manual_seed(1)
    out = model.generate(prompt("Bach"), max_new_tokens=20, logits_processor=[_Boost([PAD])])
    assert PAD not in out[0].tolist()
    torch.manual_seed(1)
    out = model.generate(prompt("Bach"), max_new_tokens=20, logits_processor=[_Boost([PAD])], remi_grammar=False)
    assert PAD in out[0].tolist()


class _Collect(BaseStreamer):
    def __init__(self):
        self.tokens = []

    def put(self, value):
        self.tokens.append(value.flatten().tolist())

    def end(self):
        pass


def test_hf_sampling_arguments_and_streamer():
    model = tiny_model(2)
    streamer = _Collect()
    torch.manual_seed(0)
    out = model.generate(prompt("Chopin"), max_new_tokens=40, temperature=0.8, top_k=20, top_p=0.9, streamer=streamer)
    assert [t for step in streamer.tokens[1:] for t in step] == out[0, 1:].tolist()
    greedy = [model.generate(prompt("Chopin"), do_sample=False, max_new_tokens=30) for _ in range(2)]
    assert torch.equal(*greedy) and check_piece(events_of(greedy[0].tolist()[0])) is None


def test_preallocated_cache_decodes_like_the_dynamic_cache():
    """Greedy and beam search (which reorders the cache rows) give the same tokens with either cache."""
    model = tiny_model(6)
    ids = torch.tensor([[PAD, ID["Composer_Bach"]], [ID["Composer_Chopin"], ID["Tempo_120"]]])
    mask = (ids != PAD).long()
    for extra in ({"do_sample": False}, {"do_sample": False, "num_beams": 3}):
        fast = model.generate(ids, attention_mask=mask, max_new_tokens=70, **extra)
        plain = model.generate(ids, attention_mask=mask, max_new_tokens=70, cache=DynamicCache(), **extra)
        assert torch.equal(fast, plain)
        assert all(check_piece(events_of(row)) is None for row in fast.tolist())
    layer = PreallocatedLayer()
    keys = torch.randn(2, 2, 5, 4)
    layer.update(keys, keys)
    layer.crop(-2)
    layer.batch_select_indices(torch.tensor([1]))
    more = torch.randn(1, 2, 1, 4)
    new_keys, _ = layer.update(more, more)
    assert torch.equal(new_keys, torch.cat([keys[1:, :, :3], more], 2))


# --- generate_midi ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer():
    return G2MTokenizer()


def test_generate_midi_round_trips_and_is_deterministic(tokenizer):
    model = tiny_model(3)
    kwargs = {"composers": ["bach", "Chopin", "None"], "num_pieces": 4, "max_bars": 8, "max_events": 260, "batch_size": 6}
    pieces = generate_midi(model, tokenizer, seed=7, **kwargs)
    assert [p.composer for p in pieces] == ["Bach"] * 4 + ["Chopin"] * 4 + ["None"] * 4
    for piece in pieces:
        assert check_piece(piece.events, max_bars=8) is None and len(piece.events) <= 260
        assert piece.events[0] == f"Composer_{piece.composer}" and piece.prompt_length == 1
        assert midi_to_events(piece.midi, composer=piece.composer) == piece.events
    again = generate_midi(model, tokenizer, seed=7, **kwargs)
    assert [p.events for p in again] == [p.events for p in pieces]
    other = generate_midi(model, tokenizer, seed=8, **kwargs)
    assert [p.events for p in other] != [p.events for p in pieces]


def write_prompt_midi(path: Path, bars: int = 6) -> Path:
    midi = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=80.0)
    piano = pretty_midi.Instrument(0)
    beat = 60 / 80
    for i in range(4 * bars):
        piano.notes.append(pretty_midi.Note(80, 60 + i % 12, i * beat, (i + 0.5) * beat))
    midi.instruments.append(piano)
    midi.write(str(path))
    return path


def test_prompt_midi_continuation_keeps_composer_tempo_and_opening_bars(tokenizer, tmp_path):
    path = write_prompt_midi(tmp_path / "opening.mid")
    full = midi_to_events(path, composer="Mozart")
    second_bar_end = [i for i, t in enumerate(full) if t == "Bar_None"][2]
    opening = full[:second_bar_end]
    assert opening[:2] == ["Composer_Mozart", "Tempo_80"]
    pieces = generate_midi(
        tiny_model(4), tokenizer, composers=["Mozart"], num_pieces=2, prompt_midi=path, prompt_from="start",
        prompt_bars=2, max_bars=6, max_events=200, seed=1,
    )
    for piece in pieces:
        assert piece.events[: len(opening)] == opening and piece.prompt_length == len(opening)
        continuation = piece.events[len(opening) :]
        assert not any(t.startswith(("Composer", "Tempo", "BOS")) for t in continuation)
        assert continuation[-1] == "EOS_None" and check_piece(piece.events, max_bars=6) is None


def test_generate_midi_errors(tokenizer, tmp_path):
    model = tiny_model()
    with pytest.raises(VocabularyError, match="Bach"):  # the message lists the known composers
        generate_midi(model, tokenizer, composers=["Telemann"])
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"not a midi file")
    with pytest.raises(RemiError, match="bad.mid"):
        generate_midi(model, tokenizer, composers=["Bach"], prompt_midi=bad)


def test_reference_original_loop_behaves_as_the_original():
    """The benchmark baseline: BOS after the second token, no PAD, Beats never below the current one."""
    network = randomise(OriginalDecoderModel(len(VOCAB), n_layer=2, n_head=2, d_model=32, d_ff=64,
                                             adapter_positions=(1,)), seed=0).eval()
    run = generate_events(network, VOCAB, composer="Chopin", max_bars=4, max_events=150, seed=0)
    events = [VOCAB[i] for i in run.ids]
    assert events[0] == "Composer_Chopin" and events[2] == "BOS_None" and "PAD_None" not in events
    assert run.forward_passes == len(run.step_seconds) >= len(events) - 2
    position = 0
    for token in events:
        if token == "Bar_None":
            position = 0
        elif token.startswith("Beat_"):
            assert int(token.split("_")[1]) >= position
            position = int(token.split("_")[1])


# --- the command line ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory, tokenizer):
    folder = tmp_path_factory.mktemp("tiny_model")
    tiny_model(5).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def run_cli(*args) -> int:
    return exit_code(cli.main, args)


def test_cli_writes_files_and_never_overwrites(model_folder, tmp_path):
    out = tmp_path / "out"
    common = ["--model", model_folder, "--composer", "bach", "chopin", "--num-pieces", "2", "--max-bars", "4",
              "--max-events", "120", "--output-dir", out, "--seed", "3"]
    assert run_cli(*common) == 0
    names = sorted(p.name for p in out.iterdir())
    stems = ["Bach_0", "Bach_1", "Chopin_0", "Chopin_1"]
    assert names == sorted(f"{s}{x}" for s in stems for x in (".mid", ".png", ".txt"))
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    for stem in stems:
        events = (out / f"{stem}.txt").read_text().split()
        assert check_piece(events) is None
        assert midi_to_events(out / f"{stem}.mid", composer=stem.split("_")[0]) == events
    # a second run picks new names and leaves the first files alone
    assert run_cli(*common) == 0
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name in first} == first
    assert len(list(out.iterdir())) == 24
    # same seed, same pieces; --overwrite reuses the first names
    (out / "Bach_0.txt").write_text("user file")
    assert run_cli(*common, "--overwrite") == 0
    assert (out / "Bach_0.txt").read_bytes() == first["Bach_0.txt"] and len(list(out.iterdir())) == 24
    half = tmp_path / "bf16"
    assert run_cli("--model", model_folder, "--composer", "mozart", "--max-events", "120", "--output-dir", half,
                   "--dtype", "bfloat16") == 0
    assert check_piece((half / "Mozart_0.txt").read_text().split()) is None
    assert run_cli("--model", model_folder, "--composer", "mozart", "--max-events", "120", "--output-dir", half,
                   "--dtype", "int8") == 0
    assert check_piece((half / "Mozart_1.txt").read_text().split()) is None


def test_cli_all_means_the_composers_the_model_was_fine_tuned_on(tokenizer, tmp_path):
    folder = tmp_path / "model"
    model = tiny_model(5)
    model.config.trained_composers = ["Chopin", "Mozart"]
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    out = tmp_path / "out"
    assert run_cli("--model", folder, "--max-bars", "2", "--max-events", "60", "--output-dir", out) == 0
    assert sorted(p.stem for p in out.glob("*.mid")) == ["Chopin_0", "Mozart_0"]
    assert generation_module.trained_composers(tokenizer, folder) == ["Chopin", "Mozart"]
    # without the record (a converted original checkpoint), every composer of the vocabulary
    model.config.trained_composers = None
    model.save_pretrained(tmp_path / "unrecorded")
    tokenizer.save_pretrained(tmp_path / "unrecorded")
    assert generation_module.trained_composers(tokenizer, tmp_path / "unrecorded") == tokenizer.composers
    assert len(tokenizer.composers) > 2
    # fine-tuned on no composer (a base model): "all" is the unstyled condition
    model.config.trained_composers = []
    model.save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    assert run_cli("--model", tmp_path / "base", "--max-bars", "2", "--max-events", "60", "--output-dir", out) == 0
    assert sorted(p.stem for p in out.glob("*.mid")) == ["Chopin_0", "Mozart_0", "None_0"]


def test_cli_errors_exit_with_code_2(model_folder, tmp_path, capsys):
    assert run_cli("--model", model_folder, "--composer", "Telemann", "--output-dir", tmp_path / "o") == 2
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1 and "Telemann" in message and "Bach" in message
    bad = tmp_path / "broken.mid"
    bad.write_bytes(b"MThd garbage")
    assert run_cli("--model", model_folder, "--composer", "bach", "--prompt-midi", bad, "--output-dir", tmp_path) == 2
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1 and "broken.mid" in message
    assert run_cli("--model", model_folder, "--prompt-midi", tmp_path / "missing.mid", "--output-dir", tmp_path) == 2
    assert run_cli("--model", tmp_path, "--output-dir", tmp_path / "o") == 2  # a folder without weights
    assert not (tmp_path / "o").exists()


def test_default_model_path_names_the_missing_weights(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(generation_module, "DEFAULT_MODEL_DIR", tmp_path)
    with pytest.raises(ModelNotFoundError, match="no bundled model weights"):
        generation_module.default_model_path()
    assert run_cli("--composer", "bach", "--output-dir", tmp_path / "out") == 2  # no --model, nothing bundled
    assert "no bundled model weights" in capsys.readouterr().err
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert generation_module.default_model_path() == tmp_path


@pytest.mark.slow
def test_cli_console_entry_exit_code(model_folder, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "g2m_hf.cli.generate", "--model", str(model_folder), "--composer", "nobody",
         "--output-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}, check=False,
    )
    assert done.returncode == 2 and done.stderr.startswith("g2m-generate: error: unknown composer")


@pytest.mark.slow
def test_generate_with_the_grammar_as_remote_code(model_folder, run_without_g2m_hf):
    """The saved folder generates with the grammar where g2m_hf is not installed (trust_remote_code)."""
    result = run_without_g2m_hf(f"""
import json, torch
from transformers import AutoModelForCausalLM
torch.set_num_threads(1)
model = AutoModelForCausalLM.from_pretrained({str(model_folder)!r}, trust_remote_code=True)
vocab = model.config.event_vocabulary
torch.manual_seed(0)
out = model.generate(torch.tensor([[vocab.index("Composer_Bach")]]), max_new_tokens=80, max_bars=3)
guided = model.generate(torch.tensor([[vocab.index("Composer_Bach")]]), max_new_tokens=80, max_bars=3,
                        style_guidance=2.0, style_guidance_kinds=["Note_Pitch"], style_guidance_rescale=0.5)
print(json.dumps([[vocab[i] for i in row[0].tolist()] for row in (out, guided)]))
""")
    for events in result:  # plain, and with style guidance (its options too)
        assert check_piece(events, max_bars=3) is None
