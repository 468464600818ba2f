"""The web app's Infill tab and ``infill`` API endpoint: a real ``g2m-app`` on 127.0.0.1 serving a tiny model
that knows the infill tokens (tests/infill_model.py; a tiny plain model is refused), driven by gradio_client
and by headless Chromium. Spans of one or two bars keep it quick."""

from __future__ import annotations

from pathlib import Path

import pretty_midi
import pytest

from g2m_hf.remi import midi_to_events
from tests.app_server import AppServer, open_browser
from tests.test_app import chromium  # noqa: F401 (the browser fixture, used by name)

pytest.importorskip("gradio", reason='the web app needs the app extra: pip install "g2m_hf[app]"')

BARS = 4


@pytest.fixture(scope="module")
def infill_server(tmp_path_factory, infill_model_folder):
    server = AppServer.start(tmp_path_factory.mktemp("app_infill"), options=("--model", str(infill_model_folder)))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def piece(tmp_path_factory) -> Path:
    """A MIDI file of 4 bars of 4/4 (16 quarter notes at 100 BPM)."""
    midi = pretty_midi.PrettyMIDI(initial_tempo=100)
    piano = pretty_midi.Instrument(0)
    piano.notes += [pretty_midi.Note(velocity=80, pitch=60 + i % 12, start=i * 0.6, end=i * 0.6 + 0.5)
                    for i in range(4 * BARS)]
    midi.instruments.append(piano)
    path = tmp_path_factory.mktemp("piece") / "piece.mid"
    midi.write(str(path))
    return path


def bars_of(events: list[str]) -> list[list[str]]:
    starts = [i for i, token in enumerate(events) if token == "Bar_None"] + [events.index("EOS_None")]
    return [events[a:b] for a, b in zip(starts, starts[1:])]


@pytest.mark.slow
def test_the_infill_api_by_keyword_keeps_the_other_bars(infill_server, infill_model_folder, piece, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(infill_server.url, verbose=False, download_files=str(tmp_path / "downloads"))
    arguments = dict(midi=handle_file(str(piece)), first_bar=2, last_bar=3, composer="Mozart", seed=1,
                     temperature=1.1, top_p=0.99, style_guidance=1.0)
    wav, midi, piano_roll, events, score = client.predict(**arguments, api_name="/infill")
    original, events = midi_to_events(piece, "Mozart"), events.split()
    assert len(bars_of(events)) == BARS and midi_to_events(midi, "Mozart") == events
    assert bars_of(events)[:1] == bars_of(original)[:1] and bars_of(events)[3:] == bars_of(original)[3:]
    assert bars_of(events)[1:3] != bars_of(original)[1:3]
    assert Path(wav).suffix == ".wav" and Path(score).suffix == ".musicxml"
    assert Path(piano_roll).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.predict(**arguments, api_name="/infill")[3].split() == events  # same seed, same piece
    # the same piece in this process, from the Python API, with the app's weights (int8)
    from g2m_hf import infill_midi
    from g2m_hf.app import DEFAULT_DTYPE
    from g2m_hf.generation import load_model_as, load_tokenizer

    (same,) = infill_midi(load_model_as(infill_model_folder, DEFAULT_DTYPE), load_tokenizer(infill_model_folder), piece,
                          bars=(2, 3), composer="Mozart", seed=1, temperature=1.1, top_p=0.99, style_guidance=1.0)
    assert same.events == events

    one = client.predict(**{**arguments, "first_bar": 4, "last_bar": 4}, api_name="/infill")[3].split()
    assert bars_of(one)[:3] == bars_of(original)[:3] and len(bars_of(one)) == BARS

    for bad, message in [(dict(first_bar=3, last_bar=2), "^bars: 3-2 .reversed or empty"),
                         (dict(first_bar=3, last_bar=9), "^bars: 3-9 .past the end: piece.mid has 4 bars"),
                         (dict(first_bar=1, last_bar=4), "^bars: 1-4 .*whole"),
                         (dict(first_bar=0), "less than minimum value 1"),
                         (dict(midi=None), "^no MIDI file to infill")]:
        with pytest.raises(AppError, match=message) as error:
            client.predict(**{**arguments, **bad}, api_name="/infill")
        assert "\n" not in str(error.value)
    assert client.predict(**arguments, api_name="/infill")[3].split() == events  # still serving


@pytest.mark.slow
@pytest.mark.usefixtures("chromium")
def test_the_infill_tab_infills_an_upload_and_marks_the_bars(infill_server, piece, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = open_browser(playwright, tmp_path / "profile")
        try:
            page = browser.new_page()
            page.goto(infill_server.url)
            page.get_by_role("tab", name="Infill").click()
            page.locator("#infill-midi input[type=file]").set_input_files(piece)
            for label, bar in (("First bar to rewrite", "2"), ("Last bar to rewrite", "2")):
                page.get_by_label(label).fill(bar)
                page.get_by_label(label).press("Enter")
            page.get_by_role("button", name="Infill", exact=True).click()
            page.get_by_text("Bach 1: bars 2-2 of 4 rewritten").wait_for(timeout=120_000)
            expect(page.locator("audio[src]").first).to_be_attached()
            roll = page.locator("img[src*='Bach_1.png']")
            expect(roll).to_have_count(1)
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=roll.element_handle())
            expect(page.locator("a[download='Bach_1.mid']")).to_have_count(1)
            expect(page.locator(".g2m-score svg g.measure")).to_have_count(BARS)

            # the piece just made, infilled again: bars 3-4 of it
            page.get_by_role("button", name="Take the last generated piece").click()
            expect(page.locator("#infill-midi").get_by_role("cell", name="Bach_1.mid")).to_be_visible()
            for label, bar in (("First bar to rewrite", "3"), ("Last bar to rewrite", "4")):
                page.get_by_label(label).fill(bar)
                page.get_by_label(label).press("Enter")
            page.get_by_role("button", name="Infill", exact=True).click()
            page.get_by_text("Bach 1: bars 3-4 of 4 rewritten").wait_for(timeout=120_000)
        finally:
            browser.close()


def test_infilling_stops_on_cancel_and_at_the_time_limit_and_frees_the_model(infill_model_folder, piece):
    import threading

    from g2m_hf.app import Generator, ServingLimits
    from g2m_hf.errors import GenerationCancelled, TimeLimitError

    generator = Generator(infill_model_folder, ServingLimits(time_limit=0.0))  # every step is past the limit
    try:
        with pytest.raises(TimeLimitError, match="time limit of 0 s"):
            generator.infill(str(piece), 2, 3, "Bach", 1.1, 0.99, 0)
        cancelled = threading.Event()
        cancelled.set()
        with pytest.raises(GenerationCancelled) as error:
            generator.infill(str(piece), 2, 3, "Bach", 1.1, 0.99, 0, cancel=cancelled)
        assert not isinstance(error.value, TimeLimitError)
        assert not generator.lock.locked() and generator.requests == 0
    finally:
        generator.close()


def test_a_model_without_infill_tokens_is_refused_in_one_line_before_any_work(tmp_path, piece):
    from g2m_hf import G2MTokenizer
    from g2m_hf.app import Generator
    from g2m_hf.errors import G2MError
    from tests.test_generation import tiny_model

    folder = tmp_path / "plain"  # plain REMI, as a converted original checkpoint
    tiny_model(0).save_pretrained(folder)
    G2MTokenizer().save_pretrained(folder)
    generator = Generator(folder)
    try:
        assert generator.infill_refusal.startswith("This model was not trained for infilling")
        with pytest.raises(G2MError, match="^This model was not trained for infilling"):
            generator.infill(str(piece), 2, 3, "Bach", 1.1, 0.99, 0)
        assert generator.requests == 0 and not any(generator.folder.iterdir())
    finally:
        generator.close()
