"""Style: guidance on the composer, the feature classifier, recognition intervals, memorisation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from transformers import LogitsProcessor, LogitsProcessorList

from g2m_hf.errors import EvaluationError, ModelInputError
from g2m_hf.evaluation import FEATURE_CLASSIFIER_FILE, ComposerClassifier, default_classifier_path
from g2m_hf.evaluation.feature_classifier import FEATURE_NAMES, FeatureComposerClassifier, piece_features
from g2m_hf.evaluation.memorisation import SpanIndex, span_keys
from g2m_hf.evaluation.recognition import Recognition, wilson_interval
from g2m_hf.evaluation.style import excerpts, measure_style, network_judge
from g2m_hf.generation import load_model, load_tokenizer, trained_composers
from g2m_hf.metrics import PieceNotes
from g2m_hf.style_guidance import StyleGuidanceLogitsProcessor
from tests.test_generation import (  # noqa: F401 (one_thread: the autouse fixture, for this module too)
    ID,
    PAD,
    VOCAB,
    check_piece,
    events_of,
    one_thread,
    round_trips,
    tiny_model,
)

# --- classifier-free guidance on the style ------------------------------------------------------------


class _Recorder(LogitsProcessor):
    """Keeps the scores it is handed (after guidance, before the grammar) and the sequences."""

    def __init__(self):
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def __call__(self, input_ids, scores):
        self.calls.append((input_ids.clone(), scores.clone()))
        return scores


def _next_log_probs(model, ids: list[int]) -> torch.Tensor:
    """Full-forward next-token log-probabilities of one sequence (no cache). [V]"""
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, -1]
    return torch.log_softmax(logits.float(), dim=-1)


def _contrast_log_probs(model, ids: list[int], contrast: str) -> torch.Tensor:
    """What guidance pushes away from, from full forwards: ``Composer_None``'s next-token log-probabilities, or
    the log of the other trained composers' mean probability. [V]"""
    if contrast == "none":
        return _next_log_probs(model, [ID["Composer_None"]] + ids[1:])
    others = [ID[f"Composer_{name}"] for name in model.config.trained_composers if ID[f"Composer_{name}"] != ids[0]]
    if len(others) == len(model.config.trained_composers):  # a composer outside the contrast: no push from it
        others = [ids[0]] * (len(others) - 1)
    stacked = torch.stack([_next_log_probs(model, [other] + ids[1:]) for other in others])
    return torch.logsumexp(stacked, dim=0) - math.log(len(others))


@pytest.mark.parametrize("guidance,contrast", [(0.0, "none"), (2.5, "none"), (2.5, "composers")])
def test_guided_scores_equal_the_formula_on_full_forwards(guidance, contrast):
    model = tiny_model(5)
    model.config.trained_composers = ["Bach", "Beethoven", "Mozart"]
    prompt = torch.tensor([[PAD, ID["Composer_Bach"]], [ID["Composer_Mozart"], ID["Tempo_120"]],
                           [ID["Composer_Chopin"], ID["Tempo_80"]]])
    recorder = _Recorder()
    torch.manual_seed(0)
    model.generate(
        prompt, attention_mask=(prompt != PAD).long(), max_new_tokens=12, style_guidance=guidance,
        style_guidance_contrast=contrast, logits_processor=LogitsProcessorList([recorder]),
    )  # fmt: skip
    assert len(recorder.calls) >= 10
    for input_ids, scores in recorder.calls[::3]:
        for row in input_ids.tolist():
            ids = [token for token in row if token != PAD]
            styled, unstyled = _next_log_probs(model, ids), _contrast_log_probs(model, ids, contrast)
            expected = unstyled + guidance * (styled - unstyled)
            got = scores[input_ids.tolist().index(row)]
            assert torch.allclose(got, expected, atol=1e-4), (guidance, contrast, ids)


def test_contrast_of_the_other_composers_needs_two_of_them_and_a_known_name():
    model = tiny_model(2)
    prompt = torch.tensor([[ID["Composer_Bach"]]])
    model.config.trained_composers = ["Bach"]
    with pytest.raises(ModelInputError, match="two or more trained composers"):
        model.generate(prompt, max_new_tokens=4, style_guidance=2.0, style_guidance_contrast="composers")
    with pytest.raises(ModelInputError, match="style_guidance_contrast must be one of none, composers"):
        model.generate(prompt, max_new_tokens=4, style_guidance=2.0, style_guidance_contrast="others")


def test_guidance_one_is_plain_sampling_and_guided_pieces_stay_valid():
    model = tiny_model(2)
    prompt = torch.tensor([[ID["Composer_Bach"]], [ID["Composer_Beethoven"]]])
    torch.manual_seed(3)
    plain = model.generate(prompt, max_new_tokens=80)
    torch.manual_seed(3)
    assert torch.equal(plain, model.generate(prompt, max_new_tokens=80, style_guidance=1.0))
    torch.manual_seed(3)
    guided = model.generate(prompt, max_new_tokens=300, max_bars=4, style_guidance=3.0)
    assert not torch.equal(guided[:, :80], plain[:, : guided.shape[1]][:, :80])
    for row in guided.tolist():
        events = events_of(row)
        assert check_piece(events, max_bars=4) is None and round_trips(events)


def test_guidance_default_comes_from_the_generation_config_and_bad_values_are_refused():
    model = tiny_model(2)
    prompt = torch.tensor([[ID["Composer_Bach"]]])
    torch.manual_seed(1)
    explicit = model.generate(prompt, max_new_tokens=40, style_guidance=2.0)
    model.generation_config.style_guidance = 2.0
    torch.manual_seed(1)
    assert torch.equal(explicit, model.generate(prompt, max_new_tokens=40))
    model.generation_config.style_guidance = 0.0  # a configured 0 (the unstyled model alone) is a setting too
    torch.manual_seed(1)
    configured_zero = model.generate(prompt, max_new_tokens=40)
    torch.manual_seed(1)
    assert torch.equal(configured_zero, model.generate(prompt, max_new_tokens=40, style_guidance=0.0))
    with pytest.raises(ModelInputError, match="style_guidance"):
        model.generate(prompt, max_new_tokens=4, style_guidance=-1.0)
    with pytest.raises(ModelInputError, match="num_beams"):  # the beams' cache reordering would mix up the rows
        model.generate(prompt, max_new_tokens=4, style_guidance=2.0, num_beams=2, do_sample=False)


def test_one_forward_guidance_is_the_two_forward_distribution_on_the_bundled_model():
    # issue 26: the styled and contrast rows share one batched forward and one cache; the guided next-token
    # distribution is the one of separate full forwards (styled; first token each contrast composer), at a scale a
    # user adds on top of the bundled model's distilled guidance, against its contrast (the other composers)
    model, scale = load_model(), 2.0
    contrast = model.generation_config.style_guidance_contrast
    assert contrast == "composers"
    prompt = torch.tensor([[PAD, ID["Composer_Bach"]], [ID["Composer_Mozart"], ID["Tempo_120"]]])  # left padding
    recorder = _Recorder()
    torch.manual_seed(0)
    model.generate(prompt, attention_mask=(prompt != PAD).long(), max_new_tokens=60, style_guidance=scale,
                   logits_processor=LogitsProcessorList([recorder]))
    assert len(recorder.calls) == 60
    for input_ids, scores in recorder.calls[::7]:
        for index, row in enumerate(input_ids.tolist()):
            ids = [token for token in row if token != PAD]
            if ID["EOS_None"] in ids:  # a finished row: generate pads it, whatever its scores
                continue
            styled, unstyled = _next_log_probs(model, ids), _contrast_log_probs(model, ids, contrast)
            expected = torch.softmax(unstyled + scale * (styled - unstyled), dim=-1)
            got = torch.softmax(scores[index], dim=-1)
            assert float(0.5 * (got - expected).abs().sum()) < 1e-5, ids
            assert torch.allclose(got, expected, atol=1e-6), ids


def test_guidance_processor_refuses_to_run_without_the_paired_forward():
    processor = StyleGuidanceLogitsProcessor(tiny_model(), 2.0, ID["Composer_None"], PAD)
    with pytest.raises(ModelInputError, match="no unstyled logits"):
        processor(torch.tensor([[ID["Composer_Bach"]]]), torch.randn(1, len(VOCAB)))


def test_processor_with_scale_one_leaves_scores_alone():
    scores = torch.randn(2, len(VOCAB))
    processor = StyleGuidanceLogitsProcessor(tiny_model(), 1.0, ID["Composer_None"], PAD)
    assert processor(torch.tensor([[ID["Composer_Bach"]]] * 2), scores) is scores


def _log_probs(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Styled and unstyled log-probabilities of two rows over the test vocabulary. [2, V] each"""
    generator = torch.Generator().manual_seed(seed)
    styled, unstyled = (torch.log_softmax(3 * torch.randn(2, len(VOCAB), generator=generator), -1) for _ in range(2))
    return styled, unstyled


def _kind_mass(log_probs: torch.Tensor, kind: str) -> torch.Tensor:
    """Total probability of the tokens of one event kind, per row. [B]"""
    columns = [index for index, token in enumerate(VOCAB) if token.rpartition("_")[0] == kind]
    return torch.softmax(log_probs, -1)[:, columns].sum(-1)


def test_guided_kinds_keep_the_conditional_kind_choice_and_guide_within_a_kind():
    styled, unstyled = _log_probs(0)
    scale = torch.full((2, 1), 3.0)
    plain = StyleGuidanceLogitsProcessor(tiny_model(), 3.0, ID["Composer_None"], PAD).combine(styled, unstyled, scale)
    processor = StyleGuidanceLogitsProcessor(tiny_model(), 3.0, ID["Composer_None"], PAD, guided_kinds=["Note_Pitch"])
    mixed = torch.log_softmax(processor.combine(styled, unstyled, scale), -1)
    for kind in ("Note_Pitch", "Beat", "Bar", "Note_Duration"):  # every kind as likely as without guidance
        assert torch.allclose(_kind_mass(mixed, kind), _kind_mass(styled, kind), atol=1e-5)
    assert not torch.allclose(_kind_mass(torch.log_softmax(plain, -1), "Note_Pitch"), _kind_mass(styled, "Note_Pitch"), atol=1e-3)
    pitches = [ID[f"Note_Pitch_{p}"] for p in (40, 60, 80)]
    beats = [ID[f"Beat_{b}"] for b in (0, 12, 24)]
    # pitches compare as plain guidance has them; other values as the conditional model has them
    assert torch.allclose(mixed[:, pitches].diff(dim=-1), plain[:, pitches].diff(dim=-1), atol=1e-4)
    assert torch.allclose(mixed[:, beats].diff(dim=-1), styled[:, beats].diff(dim=-1), atol=1e-4)
    with pytest.raises(ModelInputError, match="Note_Pitchh"):
        StyleGuidanceLogitsProcessor(tiny_model(), 3.0, ID["Composer_None"], PAD, guided_kinds=["Note_Pitchh"])


def _spread(log_probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    mean = (weights * log_probs).sum(-1, keepdim=True)
    return (weights * (log_probs - mean) ** 2).sum(-1).sqrt()


def test_rescale_brings_the_guided_spread_back_to_the_conditional_one():
    styled, unstyled = _log_probs(1)
    scale = torch.full((2, 1), 3.0)

    def combined(phi: float) -> torch.Tensor:
        processor = StyleGuidanceLogitsProcessor(tiny_model(), 3.0, ID["Composer_None"], PAD, rescale=phi)
        return processor.combine(styled, unstyled, scale)

    weights = styled.exp()
    plain, half, full = combined(0.0), combined(0.5), combined(1.0)
    assert torch.allclose(plain, unstyled + 3.0 * (styled - unstyled))
    assert torch.allclose(_spread(full, weights), _spread(styled, weights), rtol=1e-4)
    assert _spread(styled, weights).lt(_spread(half, weights)).all() and _spread(half, weights).lt(_spread(plain, weights)).all()
    # rescaling is a temperature: the order of the tokens stays guidance's
    assert torch.equal(full.argsort(-1), plain.argsort(-1))
    with pytest.raises(ModelInputError, match="rescale"):
        StyleGuidanceLogitsProcessor(tiny_model(), 3.0, ID["Composer_None"], PAD, rescale=1.5)


def test_warmup_ramps_the_scale_over_the_context_length():
    processor = StyleGuidanceLogitsProcessor(tiny_model(), 3.0, ID["Composer_None"], PAD, warmup=10)
    rows = torch.full((3, 20), PAD)
    for row, length in enumerate((1, 5, 20)):  # left-padded contexts of 1, 5 and 20 events
        rows[row, 20 - length :] = ID["Bar_None"]
    assert processor._scale(rows).flatten().tolist() == pytest.approx([1.2, 2.0, 3.0])


def test_guidance_options_come_from_the_call_or_the_generation_config_and_change_the_piece():
    model = tiny_model(2)
    prompt = torch.tensor([[ID["Composer_Bach"]]])
    torch.manual_seed(1)
    plain = model.generate(prompt, max_new_tokens=300, max_bars=4, style_guidance=3.0)
    torch.manual_seed(1)
    shaped = model.generate(prompt, max_new_tokens=300, max_bars=4, style_guidance=3.0,
                            style_guidance_kinds=["Note_Pitch"], style_guidance_warmup=20, style_guidance_rescale=0.5)
    assert not torch.equal(plain, shaped)
    model.generation_config.style_guidance_kinds = ["Note_Pitch"]
    model.generation_config.style_guidance_warmup = 20
    model.generation_config.style_guidance_rescale = 0.5
    torch.manual_seed(1)
    assert torch.equal(shaped, model.generate(prompt, max_new_tokens=300, max_bars=4, style_guidance=3.0))
    for row in shaped.tolist():
        events = events_of(row)
        assert check_piece(events, max_bars=4) is None and round_trips(events)
    with pytest.raises(ModelInputError, match="warmup"):
        model.generate(prompt, max_new_tokens=4, style_guidance=2.0, style_guidance_warmup=-1)


# --- recognition and its interval ------------------------------------------------------------------


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval written out (Wilson 1927), to check scipy's use."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize("k,n", [(0, 12), (8, 10), (17, 24), (24, 24)])
def test_wilson_interval(k, n):
    assert wilson_interval(k, n) == pytest.approx(_wilson(k, n), abs=1e-9)


def test_recognition_counts_rates_and_intervals():
    prompted = ["Bach"] * 4 + ["Mozart"] * 4 + ["Chopin"]
    predicted = ["Bach", "bach", "Mozart", None, "Mozart", "Beethoven", "Mozart", "Bach", "Bach"]
    summary = Recognition.count(prompted, predicted, ["Bach", "Beethoven", "Mozart"]).summary()
    # Chopin is not a label: 8 pieces counted; the Bach piece without a prediction was not recognised
    assert summary["confusion_matrix"] == [[2, 0, 1], [0, 0, 0], [1, 1, 2]]
    assert summary["per_composer"]["Bach"] == {**summary["per_composer"]["Bach"], "pieces": 4, "judged_elsewhere": 1}
    assert summary["per_composer"]["Bach"]["rate"] == pytest.approx(2 / 4)
    assert summary["per_composer"]["Beethoven"]["rate"] is None
    assert summary["mean"] == pytest.approx((2 / 4 + 2 / 4) / 2)
    assert summary["pooled_ci95"] == pytest.approx(list(_wilson(4, 8)))
    # judged only among two of the labels, a piece heard as a third composer is a miss, not left out
    pair = Recognition.count(["Bach", "Mozart"], ["Beethoven", "Mozart"], ["Bach", "Mozart"]).summary()
    assert pair["per_composer"]["Bach"]["rate"] == 0.0 and pair["pooled_ci95"] == pytest.approx(list(_wilson(1, 2)))


def test_the_mean_of_unbalanced_composers_gets_an_interval_around_it():
    # real music: 9 Bach excerpts all recognised, 1 Mozart excerpt missed; the pooled count (9/10) would put an
    # interval far above the mean of the two composers' rates (0.5)
    summary = Recognition.count(["Bach"] * 9 + ["Mozart"], ["Bach"] * 10, ["Bach", "Mozart"]).summary()
    low, high = summary["mean_ci95"]
    assert summary["mean"] == pytest.approx(0.5) and low < 0.5 < high
    assert (low, high) == pytest.approx(tuple(np.mean([_wilson(9, 9), _wilson(0, 1)], axis=0)))
    assert summary["pooled_ci95"][0] > 0.5  # what the card showed before: an interval that missed its own mean
    balanced = Recognition.count(["Bach"] * 2 + ["Mozart"] * 2, ["Bach", "Mozart", "Mozart", "Mozart"], ["Bach", "Mozart"])
    assert balanced.summary()["mean_ci95"] == pytest.approx(list(_wilson(3, 4)))


# --- memorisation -----------------------------------------------------------------------------------


def _piece(bars: list[list[int]], composer: str = "Bach") -> list[str]:
    events = [f"Composer_{composer}", "Tempo_120", "BOS_None"]
    for pitches in bars:
        events += ["Bar_None", "Time_Signature_4/4"]
        for beat, pitch in enumerate(pitches):
            events += [f"Beat_{beat * 12}", f"Note_Pitch_{pitch}", "Note_Duration_480"] if pitch else []
    return events + ["EOS_None"]


def test_copied_spans_are_found_in_any_key_and_silence_is_not_counted():
    rng = np.random.default_rng(0)
    training = [_piece(rng.integers(40, 80, size=(12, 4)).tolist()) for _ in range(3)]
    index = SpanIndex(training)
    own = training[1]
    assert index.copied_share([own]) == (9, 9)  # 12 bars: 9 four-bar spans, all copied
    up_a_third = [f"Note_Pitch_{int(e[11:]) + 4}" if e.startswith("Note_Pitch_") else e for e in own]
    assert index.copied_share([up_a_third]) == (9, 9)
    fresh = _piece(rng.integers(40, 80, size=(12, 4)).tolist(), composer="Mozart")
    assert index.copied_share([fresh]) == (0, 9)
    # a generated piece that quotes bars 2-7 of a training piece inside new material
    quote = _piece(rng.integers(40, 80, size=(3, 4)).tolist())[:-1] + own[own.index("Bar_None") :][:-1]
    assert span_keys(_piece([[0] * 4] * 6)) == []  # silent bars: no span
    copied, spans = index.copied_share([quote])
    assert 9 <= copied < spans
    tokenizer = load_tokenizer()  # the same index from a dataset's token ids
    assert SpanIndex.from_ids([tokenizer.events_to_ids(e) for e in training], tokenizer).keys == index.keys


# --- the feature classifier -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus_events(corpus_midi):
    from g2m_hf.remi import midi_to_events

    return {work: midi_to_events(path) for work, path in corpus_midi.items()}


def test_features_describe_a_piece_window_by_window(corpus_events):
    chorale = corpus_events["bach/bwv1.6"]
    table = piece_features(chorale)
    assert table.shape[1] == len(FEATURE_NAMES) and len(table) >= 2
    column = dict(zip(FEATURE_NAMES, table.T))
    # a four-voice chorale: several notes per onset (at most four), mostly on beats and eighths, no triplets
    assert np.all((column["notes_per_onset"] > 2) & (column["notes_per_onset"] <= 4.0))
    assert np.all(column["pos_beat"] + column["pos_8th"] > 0.85) and np.all(column["pos_triplet"] == 0)
    assert np.allclose(table[:, FEATURE_NAMES.index("dur_16th_or_less") : FEATURE_NAMES.index("dur_longer") + 1].sum(1), 1)


def test_real_pieces_are_cut_into_whole_excerpts_after_their_opening(corpus_events):
    chorale = corpus_events["bach/bwv1.6"]
    opening = chorale[: chorale.index("Bar_None")]
    cut = excerpts(chorale, 4)
    bars = chorale.count("Bar_None")
    assert len(cut) == (bars - 1) // 4 >= 2  # whole excerpts only; the piece's last bar runs on to EOS
    for index, excerpt in enumerate(cut):
        assert excerpt[: len(opening)] == opening and excerpt.count("Bar_None") == 4
        body = excerpt[len(opening) :]
        assert body[0] == "Bar_None" and "EOS_None" not in body
        assert PieceNotes.from_events(excerpt).n_bars == 4
    assert sum(len(e) - len(opening) for e in cut) < len(chorale) - len(opening)
    assert excerpts(chorale, bars) == []  # too short for one


def test_beats_per_bar_counts_every_bar_of_a_window_the_last_too():
    bar = lambda signature: ["Bar_None", f"Time_Signature_{signature}", "Beat_0", "Note_Pitch_60", "Note_Duration_480"]
    events = ["Composer_None", "Tempo_120", "BOS_None", *bar("3/4"), *bar("3/4"), *bar("6/8"), "Bar_None", "EOS_None"]
    notes = PieceNotes.from_events(events)  # the closing empty bar is left out
    assert notes.n_bars == 3 and list(notes.bar_ticks) == [1440, 1440, 1440]
    last_two = notes.bars(1, 8)
    assert last_two.n_bars == 2 and list(last_two.bar) == [0, 1] and list(last_two.bar_starts) == [1440, 2880]
    (row,) = piece_features(events)
    assert row[FEATURE_NAMES.index("beats_per_bar")] == 3.0  # all three bars are three quarters long


def test_feature_classifier_tells_held_out_chorales_from_fiddle_tunes_and_saves(corpus_events, tmp_path):
    chorales = [e for w, e in corpus_events.items() if w.startswith("bach/")]
    tunes = [e for w, e in corpus_events.items() if w.startswith("ryansMammoth/")]
    train = chorales[:-6] + tunes[:-4]
    labels = ["Bach"] * (len(chorales) - 6) + ["Tunes"] * (len(tunes) - 4)
    classifier = FeatureComposerClassifier.fit(train, labels)
    held_out = chorales[-6:] + tunes[-4:]
    truth = ["Bach"] * 6 + ["Tunes"] * 4
    predicted = classifier.predict(held_out)
    assert sum(p == t for p, t in zip(predicted, truth)) >= 9
    classifier.save(tmp_path / "features.safetensors")
    again = FeatureComposerClassifier.load(tmp_path / "features.safetensors")
    assert again.labels == ["Bach", "Tunes"] and again.predict(held_out) == predicted
    assert again.predict([["Composer_Bach", "Tempo_120", "BOS_None", "EOS_None"]]) == [None]
    with pytest.raises(EvaluationError, match="cannot read"):
        FeatureComposerClassifier.load(tmp_path / "missing.safetensors")


# --- the bundled model and classifiers: does the composer token steer? -------------------------------


def test_bundled_classifiers_load_and_state_their_held_out_accuracy():
    folder = default_classifier_path()  # shipped with the package: missing is a failure, not a skip
    network = ComposerClassifier.from_pretrained(folder)
    features = FeatureComposerClassifier.load(folder / FEATURE_CLASSIFIER_FILE)
    assert network.labels == features.labels == ["Bach", "Beethoven", "Mozart"]
    assert network.max_events == json.loads((folder / "config.json").read_text())["classifier_max_events"]
    held_out = json.loads((folder / "evaluation.json").read_text())
    assert held_out["split"] == "test" and held_out["pieces"] >= 30
    for summary in held_out["judges"].values():  # both judges recognise unseen real pieces well
        assert summary["pooled_ci95"][0] > 0.7


def test_the_same_seeds_under_different_composer_prompts_are_told_apart():
    """The bundled model, its default settings (style guidance from its generation config), the same seeds
    for every composer: the bundled Transformer classifier names the prompted composer clearly above chance."""
    model, tokenizer = load_model(), load_tokenizer()
    judge = network_judge(ComposerClassifier.from_pretrained(default_classifier_path()))
    composers = trained_composers(tokenizer)
    result = measure_style(
        model, tokenizer, composers, {"network": judge}, pieces_per_composer=8, seed=0, max_events=400, batch_size=8
    )
    summary = result["recognition"]["network"]
    assert sum(entry["pieces"] for entry in summary["per_composer"].values()) == 8 * len(composers)
    assert summary["pooled_ci95"][0] > 1 / len(composers), summary


def test_composer_token_effect_scores_real_pieces_under_every_token(corpus_events, tmp_path, capsys):
    import datasets

    from training import composer_token_effect

    tokenizer = load_tokenizer()
    chorales = [events for work, events in corpus_events.items() if work.startswith("bach/")][:3]
    rows = {"input_ids": [tokenizer.events_to_ids(["Composer_Bach", *events[1:]]) for events in chorales],
            "composer": ["Bach"] * len(chorales)}
    datasets.DatasetDict({"test": datasets.Dataset.from_dict(rows)}).save_to_disk(str(tmp_path / "data"))
    assert composer_token_effect.main(["--data", str(tmp_path / "data"), "--events", "256"]) == 0
    table = capsys.readouterr().out.strip().splitlines()
    assert table[1] == "composer (pieces) | token Bach | token Beethoven | token Mozart | token None"
    bach = [float(cell) for cell in table[2].split(" | ")[1:]]
    assert table[2].startswith("Bach (3)") and len(bach) == 4
    assert bach[0] < min(bach[1:])  # the bundled model knows a chorale best under its own token
    adapters = table[table.index("adapter after layer | None | Bach - None | Beethoven - None | Mozart - None") + 1 :]
    layers = load_model().config.style_adapter_layers
    assert [int(row.split(" | ")[0]) for row in adapters] == layers
    for row in adapters:  # every adapter updates the hidden states, and each composer changes the update
        assert all(float(cell) > 0.01 for cell in row.split(" | ")[1:]), row


def test_compare_style_runs_every_sampling_and_guidance_setting_and_refuses_bad_ones(tmp_path, capsys):
    from g2m_hf import default_model_path
    from training import compare_style

    folder, model = default_classifier_path(), str(default_model_path())
    judges = ["--judge", f"network={folder}", f"features={folder / FEATURE_CLASSIFIER_FILE}"]
    output = tmp_path / "compare.json"
    argv = ["--model", model, "--sampling", "1.0/0.95", "0.9/0.9", "--guidance", "1", "2",
            "--pieces", "1", "--max-events", "120", "--batch-size", "3", *judges, "--output", str(output)]
    assert compare_style.main(argv) == 0
    results = json.loads(output.read_text())
    settings = [(r["settings"]["temperature"], r["settings"]["top_p"], r["guidance"]) for r in results]
    assert settings == [(1.0, 0.95, 1.0), (1.0, 0.95, 2.0), (0.9, 0.9, 1.0), (0.9, 0.9, 2.0)]
    for result in results:  # three pieces judged twice: one per composer
        assert set(result["recognition"]) == {"network", "features"}
        assert all(sum(map(sum, s["confusion_matrix"])) == 3 for s in result["recognition"].values())
    rows = capsys.readouterr().out.strip().splitlines()[1:]
    assert [row.split(" | ")[1:3] for row in rows] == [["1/0.95", "1"], ["1/0.95", "2"], ["0.9/0.9", "1"], ["0.9/0.9", "2"]]
    with pytest.raises(SystemExit) as refused:
        compare_style.main(["--model", model, "--sampling", "1.0", *judges])
    assert refused.value.code == 2 and "--sampling: 1.0 (not TEMPERATURE/TOP_P" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:  # the figures of a run are never replaced silently
        compare_style.main(argv)
    assert refused.value.code == 2 and "already exists" in capsys.readouterr().err
