"""Bar infilling: the layout (infill.py), training examples, the span grammar, infill_midi and g2m-infill.

Validity is checked with `check_piece` (an independent statement of the REMI rules) and the codec itself
(decode the spliced piece, re-encode, compare).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from g2m_hf import G2MTokenizer, infill_midi
from g2m_hf import infill as layout
from g2m_hf.cli import infill as cli
from g2m_hf.data import G2MDataCollator
from g2m_hf.errors import DataError, InvalidArgumentError, RemiError, VocabularyError
from g2m_hf.generation import prepare_infill
from g2m_hf.grammar import InfillGrammarLogitsProcessor, RemiGrammarLogitsProcessor
from g2m_hf.remi import events_to_midi
from tests.cli import exit_code
from tests.infill_model import INFILL_VOCAB as VOCAB
from tests.infill_model import infill_tokenizer
from tests.test_generation import (  # noqa: F401 (one_thread: the autouse fixture, for this module too)
    check_piece,
    one_thread,
    round_trips,
    tiny_model,
)

ID = {token: index for index, token in enumerate(VOCAB)}
PAD = ID["PAD_None"]


TOKENS = layout.InfillTokens.of(infill_tokenizer())


def sample(processor, prompt: list[int], rows: int, seed: int, stop: int, max_length: int) -> list[list[int]]:
    """Random logits through ``processor`` until every row has written ``stop``; the rows without padding."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.tensor([prompt] * rows)
    done = torch.zeros(rows, dtype=torch.bool)
    while ids.shape[1] < max_length and not done.all():
        scores = processor(ids, torch.randn(rows, len(VOCAB), generator=generator) * 2)
        assert torch.isfinite(scores).any(1).all(), "a row with every token masked"
        token = torch.multinomial(scores.softmax(-1), 1, generator=generator).squeeze(1)
        token = torch.where(done, PAD, token)
        done |= token == stop
        ids = torch.cat([ids, token[:, None]], 1)
    return [[i for i in row if i != PAD] for row in ids.tolist()]


@pytest.fixture(scope="module")
def pieces() -> list[list[str]]:
    """Valid round-tripping pieces of 10 bars with changing time signatures (random logits, REMI grammar)."""
    grammar = RemiGrammarLogitsProcessor(VOCAB, bars=10)
    rows = sample(grammar, [ID[t] for t in ("Composer_Bach", "Tempo_80", "BOS_None")], 6, 0, ID["EOS_None"], 900)
    events = [[VOCAB[i] for i in row] for row in rows]
    for piece in events:
        assert check_piece(piece) is None and round_trips(piece)
    return events


def signatures(events: list[str]) -> list[str]:
    return [events[i + 1].rpartition("_")[2] for i, token in enumerate(events) if token == "Bar_None"]


def bars_of(events: list[str]) -> list[list[str]]:
    starts = [i for i, token in enumerate(events) if token == "Bar_None"] + [events.index("EOS_None")]
    return [events[a:b] for a, b in zip(starts, starts[1:])]


# --- the layout -----------------------------------------------------------------------------------


def test_infill_tokens_come_after_every_existing_id_and_survive_saving(tmp_path):
    tokenizer = G2MTokenizer()
    before = tokenizer.event_vocabulary
    tokenizer.add_composer("Haydn")
    ids = layout.add_infill_tokens(tokenizer)
    assert ids == [len(before) + 1, len(before) + 2, len(before) + 3]
    assert tokenizer.event_vocabulary[: len(before)] == before  # plain REMI ids untouched
    assert layout.add_infill_tokens(tokenizer) == ids and len(tokenizer) == len(before) + 4  # idempotent
    tokenizer.save_pretrained(tmp_path)
    assert G2MTokenizer.from_pretrained(tmp_path).event_vocabulary == tokenizer.event_vocabulary


def test_training_examples_put_back_together_give_the_window_and_fit_it(corpus_midi):
    tokenizer = infill_tokenizer()
    collator = G2MDataCollator(tokenizer, max_length=256, infill_rate=1.0, augment=False, seed=0)
    spans = set()
    for path in list(corpus_midi.values())[:4]:
        ids = tokenizer.encode_midi(path, composer="Bach")
        for _ in range(6):
            batch = collator([{"input_ids": ids}])
            example = batch["input_ids"][0].numpy()
            assert len(example) <= 256
            before, span, after = layout.unarrange(example, TOKENS)
            count = int((example == TOKENS.placeholder).sum())
            assert 1 <= count <= layout.DEFAULT_MAX_SPAN_BARS and int((span == TOKENS.bar).sum()) == count
            spans.add(count)
            window = np.concatenate([before, span, after])  # the window the example was cut from
            text = " ".join(map(str, ids))
            assert " ".join(map(str, window[2:] if window[2] == TOKENS.bar else window)) in text
            # the model learns the music and the end of the span, not where the example put the gap
            labels = batch["labels"][0].numpy()
            assert (labels[np.isin(example, [TOKENS.placeholder, TOKENS.start])] == -100).all()
            assert labels[-1] == TOKENS.end
    assert len(spans) > 2


def test_rate_zero_draws_the_same_windows_as_a_collator_without_infilling(corpus_midi):
    ids = infill_tokenizer().encode_midi(next(iter(corpus_midi.values())), composer="Bach")
    plain = G2MDataCollator(G2MTokenizer(), max_length=128, seed=3)
    zero = G2MDataCollator(infill_tokenizer(), max_length=128, seed=3, infill_rate=0.0)
    for _ in range(5):
        assert torch.equal(plain([{"input_ids": ids}])["input_ids"], zero([{"input_ids": ids}])["input_ids"])
    with pytest.raises(VocabularyError, match="no infilling tokens"):
        G2MDataCollator(G2MTokenizer(), infill_rate=0.5)
    with pytest.raises(DataError, match="infill_rate"):
        G2MDataCollator(infill_tokenizer(), infill_rate=1.5)


def test_splicing_the_original_span_back_gives_the_piece_and_contexts_are_bar_aligned(pieces):
    piece = np.array([ID[t] for t in pieces[0]])
    bounds = layout.bar_bounds(piece, TOKENS)
    for first, stop in [(0, 2), (3, 7), (8, 10), (4, 5)]:
        span = piece[bounds[first] : bounds[stop]]
        assert np.array_equal(layout.splice(piece, first, stop, span, TOKENS), piece)
        whole = layout.infill_context(piece, first, stop, 10_000, TOKENS)  # everything fits
        before, _, after = layout.unarrange(whole, TOKENS)
        assert np.array_equal(np.concatenate([before, span, after]), piece)
        for budget in (40, 80, 120):
            prompt = layout.infill_context(piece, first, stop, budget, TOKENS)
            before, _, after = layout.unarrange(prompt, TOKENS)
            assert len(prompt) <= budget or len(prompt) == 2 + (stop - first) + 1 + (first == 0)
            # before: the piece's head, or its Composer and Tempo then whole bars, up to the gap
            assert np.array_equal(before, piece[: len(before)]) or before[2] == TOKENS.bar
            assert np.array_equal(before[:2], piece[:2])
            assert np.array_equal(before[2:], piece[bounds[first] - len(before) + 2 : bounds[first]])
            # after: whole bars from the gap on, with the EOS when they reach the piece end
            assert np.array_equal(after, piece[bounds[stop] : bounds[stop] + len(after)])
            assert after.size == 0 or after[-1] == TOKENS.eos or piece[bounds[stop] + len(after)] == TOKENS.bar


@pytest.mark.parametrize(("text", "why"), [("0-3", "from 1"), ("5-3", "reversed"), ("9-12", "past the end"),
                                           ("1-10", "whole"), ("x", "FIRST-LAST")])
def test_bad_ranges_are_refused_in_one_line(text, why):
    with pytest.raises(InvalidArgumentError, match=why) as error:
        layout.check_bars(layout.parse_bars(text), 10)
    assert "\n" not in str(error.value)


# --- the span grammar ----------------------------------------------------------------------------


def test_spans_are_valid_with_exact_bars_and_signatures_and_the_spliced_piece_round_trips(pieces):
    crossing = 0
    for seed, events in enumerate(pieces):
        piece = np.array([ID[t] for t in events])
        bounds = layout.bar_bounds(piece, TOKENS)
        own = signatures(events)
        for first, stop in [(0, 2), (2, 5), (5, 6), (7, 10)]:
            crossing += len(set(own[first:stop])) > 1
            for wanted in (own[first:stop], ["3/8"] * (stop - first)):
                if first == 0 and wanted[0] != "4/4":  # a new first bar shorter than its successor reads as a pickup
                    continue
                prompt = layout.infill_context(piece, first, stop, 10_000, TOKENS).tolist()
                grammar = InfillGrammarLogitsProcessor(VOCAB, piece[: bounds[first]], wanted, piece[bounds[stop] :],
                                                       max_length=len(prompt) + 200)
                for row in sample(grammar, prompt, 3, seed, TOKENS.end, len(prompt) + 200):
                    _, span, _ = layout.unarrange(np.array(row), TOKENS)
                    spliced = [VOCAB[i] for i in layout.splice(piece, first, stop, span, TOKENS)]
                    assert check_piece(spliced) is None, check_piece(spliced)
                    if wanted == own[first:stop]:
                        assert round_trips(spliced)
                    assert signatures(spliced)[first:stop] == wanted
                    assert bars_of(spliced)[:first] == bars_of(events)[:first]
                    assert bars_of(spliced)[stop:] == bars_of(events)[stop:]
    assert crossing >= 3  # spans across a time-signature change


def test_the_span_grammar_keeps_notes_off_the_next_onsets_of_their_pitch():
    # bar 2 is rewritten; bar 3 starts with C4 on its first beat: a C4 in bar 2 must end by then
    events = ["Composer_Bach", "Tempo_80", "BOS_None", "Bar_None", "Time_Signature_4/4", "Beat_0", "Note_Pitch_67",
              "Note_Duration_1920", "Bar_None", "Time_Signature_4/4", "Bar_None", "Time_Signature_4/4", "Beat_0",
              "Note_Pitch_60", "Note_Duration_480", "EOS_None"]  # fmt: skip
    piece = np.array([ID[t] for t in events])
    bounds = layout.bar_bounds(piece, TOKENS)
    grammar = InfillGrammarLogitsProcessor(VOCAB, piece[: bounds[1]], ["4/4"], piece[bounds[2] :])
    prompt = layout.infill_context(piece, 1, 2, 10_000, TOKENS).tolist()
    allowed = grammar.allowed_mask(torch.tensor([prompt + [ID[t] for t in ("Bar_None", "Time_Signature_4/4",
                                                                           "Beat_36", "Note_Pitch_60")]]))[0]
    durations = sorted(int(VOCAB[i].rpartition("_")[2]) for i in allowed.nonzero().flatten().tolist())
    assert durations == list(range(40, 480 + 1, 40))  # from beat 36 (tick 1440) to the onset at 1920


# --- infill_midi and g2m-infill ------------------------------------------------------------------


@pytest.fixture(scope="module")
def midi_file(pieces, tmp_path_factory):
    path = tmp_path_factory.mktemp("infill") / "piece.mid"
    events_to_midi(pieces[1]).write(str(path))
    return path


def test_infill_midi_keeps_the_other_bars_and_writes_exactly_the_span(pieces, midi_file):
    model, tokenizer = tiny_model(1, vocabulary=VOCAB), infill_tokenizer()
    model.config.training_window = 400  # a random model writes long spans: a short window keeps the test quick
    out = infill_midi(model, tokenizer, midi_file, bars=(3, 6), composer="mozart", num_pieces=3, seed=1,
                      batch_size=2, style_guidance=1.5)
    original = ["Composer_Mozart"] + pieces[1][1:]
    assert len(out) == 3 and len({tuple(p.events) for p in out}) > 1
    for piece in out:
        assert piece.infilled_bars == (3, 6) and piece.composer == "Mozart"
        assert check_piece(piece.events) is None and round_trips(piece.events)
        assert bars_of(piece.events)[:2] == bars_of(original)[:2] and bars_of(piece.events)[6:] == bars_of(original)[6:]
        assert piece.events[: piece.prompt_length] == original[: piece.prompt_length]
        assert signatures(piece.events) == signatures(original)
    again = infill_midi(model, tokenizer, midi_file, bars=(3, 6), composer="mozart", num_pieces=3, seed=1,
                        batch_size=2, style_guidance=1.5)
    assert [p.events for p in again] == [p.events for p in out]  # the same arguments and seed


def test_a_piece_longer_than_the_window_is_infilled_from_the_bars_around_the_gap(pieces, tmp_path):
    long = pieces[2][:-1] + [t for bar in bars_of(pieces[3]) + bars_of(pieces[4]) for t in bar] + ["EOS_None"]
    assert round_trips(long)
    path = tmp_path / "long.mid"
    events_to_midi(long).write(str(path))
    model = tiny_model(2, vocabulary=VOCAB)
    model.config.training_window = 160
    assert len(long) > 2 * 160
    seen = []
    model.register_forward_pre_hook(lambda module, args, kwargs: seen.append(kwargs["input_ids"].shape[1]),
                                    with_kwargs=True)
    (piece,) = infill_midi(model, infill_tokenizer(), path, bars=(14, 16), composer="bach", seed=4)
    assert max(seen) <= 80  # the prompt: half the window
    assert len(piece.events) > 2 * 160 and check_piece(piece.events) is None and round_trips(piece.events)
    assert bars_of(piece.events)[:13] == bars_of(long)[:13] and bars_of(piece.events)[16:] == bars_of(long)[16:]


def test_requests_are_checked_before_any_work(midi_file, tmp_path):
    tokenizer = infill_tokenizer()
    with pytest.raises(VocabularyError, match="no infilling tokens"):
        prepare_infill(G2MTokenizer(), midi_file, (2, 3), "bach")
    with pytest.raises(VocabularyError, match="no infilling tokens"):  # a model trained without them
        infill_midi(tiny_model(), tokenizer, midi_file, bars=(2, 3), composer="bach")
    with pytest.raises(InvalidArgumentError, match="past the end"):
        prepare_infill(tokenizer, midi_file, (9, 11), "bach")
    with pytest.raises(InvalidArgumentError, match="time_signature"):
        prepare_infill(tokenizer, midi_file, (2, 3), "bach", ["4/4"])  # one signature for two bars
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"not a midi file")
    with pytest.raises(RemiError):
        prepare_infill(tokenizer, bad, (2, 3), "bach")


def test_the_command_line_refuses_bad_requests_in_one_line(midi_file, tmp_path, capsys):
    model_dir = tmp_path / "model"
    tiny_model(vocabulary=VOCAB).save_pretrained(model_dir)
    infill_tokenizer().save_pretrained(model_dir)
    capsys.readouterr()
    for bars, why in [("5-3", "reversed"), ("7-12", "past the end"), ("1-10", "whole"), ("a-b", "FIRST-LAST")]:
        assert exit_code(cli.main, [midi_file, "--bars", bars, "--composer", "bach", "--model", model_dir]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and why in err and err.startswith("g2m-infill: error:")
    assert exit_code(cli.main, [tmp_path / "missing.mid", "--bars", "2-3", "--composer", "bach"]) == 2
    assert "missing.mid" in capsys.readouterr().err
    out = tmp_path / "out"
    code = exit_code(cli.main, [midi_file, "--bars", "2-3", "--composer", "bach", "--model", model_dir,
                                "--num-pieces", "2", "--output-dir", out])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [f"Bach_{n}{s}" for n in (0, 1) for s in (".mid", ".png", ".txt")]


# --- the evaluation script ----------------------------------------------------------------------


def test_the_evaluation_script_measures_all_three_systems(infill_model_folder, pieces, tmp_path):
    from training import infill_eval

    paths = []
    for index, events in enumerate(pieces[:2]):
        paths.append(tmp_path / f"{index}.mid")
        events_to_midi(events).write(str(paths[-1]))
    output = tmp_path / "figures.json"
    figures = infill_eval.main(["--model", str(infill_model_folder), "--midi", *map(str, paths), "--composer", "bach",
                                "--gap-bars", "2", "--context-bars", "2", "--gaps", "2", "--output", str(output)])
    assert figures["pieces"] == 2 and figures["gaps"] == 4
    original = figures["measures"]["original"]
    for system in infill_eval.SYSTEMS:
        assert figures["measures"][system]["density_gap"]["n"] == 4
    assert 0 <= original["pitch_class_distance"]["mean"] <= 1 and 0 <= original["key_agreement"]["mean"] <= 1
    assert all(0 < figures["nll"][kind]["mean"] < 20 for kind in ("infilling", "continuation"))
    assert output.is_file()


def test_measures_of_a_span_against_its_context():
    from training.infill_eval import key_of, span_measures

    def bar(*pitches: int) -> list[str]:
        return ["Bar_None", "Time_Signature_4/4", "Beat_0"] + [t for p in pitches for t in (f"Note_Pitch_{p}",
                                                                                         "Note_Duration_480")]

    c_major = (72, 67, 64, 60)
    events = ["Composer_Bach", "Tempo_80", "BOS_None", *bar(*c_major), *bar(74, 71, 67, 55), *bar(66, 61),
              *bar(*c_major), "EOS_None"]  # fmt: skip
    measures = span_measures(events, 2, 3, 1)
    assert measures["density_gap"] == 2  # 2 notes against 4 per bar
    assert measures["range_gap"] == (abs(61 - 55) + abs(66 - 74)) / 2
    assert measures["boundary_distance"] == (abs(66 - 72) + abs(61 - 60)) / 2
    assert key_of(np.array(c_major * 3), np.full(12, 480)) == 0  # C major


def test_the_bundled_model_infills_closer_to_the_context_than_continuation():
    """The figures training/infill_eval.py measured on the held-out test pieces when the bundled model was
    built (training/build_default_model.sh writes them into the model folder)."""
    import json

    from g2m_hf.generation import DEFAULT_MODEL_DIR

    figures = json.loads((DEFAULT_MODEL_DIR / "infill_evaluation.json").read_text())  # the package ships it
    assert figures["gaps"] >= 20 and figures["gap_bars"] == 4
    measures = figures["measures"]

    def difference(measure: str) -> tuple[float, float]:  # continuation minus infilling, and its standard error
        infilled, continued = measures["infilled"][measure], measures["continuation"][measure]
        return continued["mean"] - infilled["mean"], math.hypot(infilled["stderr"], continued["stderr"])

    # closer to the bars around the gap than continuation, by more than the difference's standard error
    for measure in ("density_gap", "range_gap", "boundary_distance"):
        gain, error = difference(measure)
        assert gain > error, (measure, gain, error)
    # pitch classes: no further than continuation (the context before the gap sets them for both)
    gain, error = difference("pitch_class_distance")
    assert gain > -error, (gain, error)
    # a sanity bound: within four times the real bars' own distance from their context
    for measure in ("density_gap", "range_gap", "boundary_distance"):
        assert measures["infilled"][measure]["mean"] < 4 * measures["original"][measure]["mean"], measure
