"""The web app (g2m-app): a real server on 127.0.0.1 driven by headless Chromium and by gradio_client.

The browser test needs Chromium (Debian package ``chromium``). In CI (``CI=true``, .ci/run installs it)
a missing browser fails the test; elsewhere the test is skipped with how to install it.
"""

from __future__ import annotations

import os
import socket
import urllib.request
import wave
from pathlib import Path

import pretty_midi
import pytest

from g2m_hf.cli import app as app_cli
from g2m_hf.notation import read_score_notes, score_notes_of_events
from g2m_hf.remi import midi_to_events
from tests.app_server import AppServer, chromium_path, free_port, generate_in_page, open_browser

pytest.importorskip("gradio", reason='the web app needs the app extra: pip install "g2m_hf[app]"')

BARS = 2  # short pieces: the tests check the plumbing, not the music


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """``g2m-app`` with the bundled model on a free port of 127.0.0.1, for this module's tests."""
    server = AppServer.start(tmp_path_factory.mktemp("app"))
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def chromium() -> None:
    """Fails in CI (CI=true: .ci/run installs Chromium) and skips elsewhere when the browser is missing
    (before the app is started: a module fixture named before ``app_url``)."""
    if chromium_path() is None:
        message = ("the browser test needs Chromium and Playwright: `sudo apt-get install chromium` "
                   "(Debian/Ubuntu) and `pip install \"g2m_hf[test]\"`")
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (.ci/run installs Chromium; it is missing)")
        pytest.skip(message)


@pytest.mark.slow
def test_the_page_generates_pieces_that_play_and_download(chromium, app_url, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    outside = []

    def local_only(route):  # no request of the page may leave this machine
        if route.request.url.startswith(app_url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = open_browser(playwright, tmp_path / "profile")
        try:
            page = browser.new_page()
            page.route("**/*", local_only)
            generate_in_page(page, app_url, "Beethoven", BARS, timeout=180)
            assert page.get_by_text("Beethoven 1: ").count() >= 1
            with page.expect_download() as download:
                page.locator("a[download='Beethoven_1.mid']").click()
            midi_path = tmp_path / "downloaded.mid"
            download.value.save_as(midi_path)
            midi = pretty_midi.PrettyMIDI(str(midi_path))
            assert sum(len(instrument.notes) for instrument in midi.instruments) > 0
            events = midi_to_events(midi_path, "Beethoven")
            assert events[0] == "Composer_Beethoven" and events.count("Bar_None") == BARS
            # the engraved score under the piece (Verovio's SVG, with note heads), and its MusicXML to download
            expect(page.locator(".g2m-score svg g.notehead").first).to_be_attached()
            assert page.locator(".g2m-score svg g.measure").count() == BARS and page.locator(".g2m-score svg g.staff").count() == 2 * BARS
            with page.expect_download() as download:
                page.locator("a[download='Beethoven_1.musicxml']").click()
            download.value.save_as(tmp_path / "downloaded.musicxml")
            assert read_score_notes(tmp_path / "downloaded.musicxml") == score_notes_of_events(events)

            # two pieces at once: each gets its own player, piano roll and downloads
            page.get_by_label("number input for Pieces").fill("2")
            page.get_by_label("number input for Pieces").press("Enter")
            page.get_by_role("button", name="Generate").click()
            page.locator("a[download='Beethoven_2.mid']").wait_for(timeout=180_000)
            expect(page.locator("audio[src]:not(#live audio)")).to_have_count(2, timeout=60_000)
            expect(page.locator("a[download$='.png']")).to_have_count(2)

            # an unreadable upload: a readable message in the page, and the server keeps serving
            (tmp_path / "broken.mid").write_bytes(b"MThd not a MIDI file")
            page.get_by_text("Continue a MIDI file").click()
            page.locator("input[type=file]").set_input_files(tmp_path / "broken.mid")
            page.get_by_role("button", name="Generate").click()
            message = page.get_by_text("broken.mid is a corrupt MIDI file")
            message.wait_for(timeout=60_000)
            assert "gradio" not in message.inner_text() and page.get_by_text("Traceback").count() == 0

            # the texture knobs of a model trained with them, under "Style and form"
            page.get_by_text("Style and form").click()
            expect(page.get_by_label("Density (notes per beat)")).to_be_visible()
            expect(page.get_by_label("Register (how high)")).to_be_visible()

            # the Infill tab is there, ready for a model that infills (the bundled one does)
            page.get_by_role("tab", name="Infill").click()
            expect(page.get_by_text("Rewrite bars in the middle of a piece")).to_be_visible()
        finally:
            browser.close()
    assert outside == []
    with urllib.request.urlopen(app_url, timeout=10) as response:
        assert response.status == 200


@pytest.mark.slow
def test_the_generate_api_by_keyword(app_url, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(app_url, verbose=False, download_files=str(tmp_path / "downloads"))
    arguments = dict(composer="Mozart", bars=BARS, temperature=1.1, top_p=0.99, seed=3, prompt_midi=None, prompt_bars=4)
    wav, midi, piano_roll, events, score = client.predict(**arguments, api_name="/generate")
    assert midi_to_events(midi, "Mozart") == events.split() and events.split().count("Bar_None") == BARS
    assert Path(score).suffix == ".musicxml" and read_score_notes(score) == score_notes_of_events(events.split())
    with wave.open(wav) as reader:
        assert reader.getframerate() == 44100 and reader.getnchannels() == 2 and reader.getnframes() > 44100
    assert Path(piano_roll).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.predict(**arguments, api_name="/generate")[3] == events  # same seed, same piece

    # continuing the opening bars of an uploaded MIDI file
    prompt = pretty_midi.PrettyMIDI(initial_tempo=100)
    piano = pretty_midi.Instrument(0)
    piano.notes += [pretty_midi.Note(velocity=80, pitch=60 + i, start=i * 0.6, end=i * 0.6 + 0.5) for i in range(8)]
    prompt.instruments.append(piano)
    prompt.write(str(tmp_path / "prompt.mid"))
    opening = midi_to_events(tmp_path / "prompt.mid", "Mozart")
    first_bar = opening[: opening.index("Bar_None", opening.index("Bar_None") + 1)]
    continued = client.predict(**{**arguments, "prompt_midi": handle_file(str(tmp_path / "prompt.mid")),
                                  "prompt_bars": 1}, api_name="/generate")[3].split()
    assert continued[: len(first_bar)] == first_bar

    # the form's style and form controls: tempo, the first bar's time signature, style guidance
    shaped = client.predict(**arguments, style_guidance=1.0, tempo="160", time_signature="3/4",
                            api_name="/generate")[3].split()
    assert shaped[1] == "Tempo_160" and shaped[shaped.index("Bar_None") + 1] == "Time_Signature_3/4"
    assert shaped.count("Bar_None") == BARS
    timed = client.predict(**arguments, tempo="120", duration=10.0, api_name="/generate")[3].split()
    signatures = [timed[i + 1].removeprefix("Time_Signature_") for i, e in enumerate(timed) if e == "Bar_None"]
    seconds = [int(n) * 4 / int(d) * 60 / 120 for n, d in (s.split("/") for s in signatures)]  # beats at 120 BPM
    assert sum(seconds) >= 10 > sum(seconds[:-1])  # ends at the first bar line at or after 10 s

    # Gradio's own checks of the form's ranges and choices come first; ours (g2m_hf.app.Generator) back them
    for bad, message in [(dict(bars=0), "less than minimum value 1"), (dict(top_p=1.5), "greater than maximum value 1"),
                         (dict(temperature=0), "less than minimum value 0.05"), (dict(composer="Hildegard"), "Hildegard"),
                         (dict(prompt_midi=handle_file(str(_broken(tmp_path)))), "^not.mid is a corrupt MIDI file")]:
        with pytest.raises(AppError, match=message):
            client.predict(**{**arguments, **bad}, api_name="/generate")
    assert client.predict(**arguments, api_name="/generate")[3] == events  # still serving

    # the texture knobs: a level for every bar (the others follow the composer); a bad one refused in one line
    _, sparse_midi, _, sparse, _ = client.predict(**arguments, density="low", register="high", api_name="/generate")
    assert sparse.split().count("Bar_None") == BARS and midi_to_events(sparse_midi, "Mozart") == sparse.split()
    with pytest.raises(AppError, match="loud is not in the list of choices"):  # Gradio's check; ours backs it
        client.predict(**arguments, density="loud", api_name="/generate")

    # the bundled model infills: bar 2 of a generated piece rewritten, the other bars kept event for event
    (tmp_path / "piece.mid").write_bytes(Path(midi).read_bytes())
    infilled = client.predict(midi=handle_file(str(tmp_path / "piece.mid")), first_bar=2, last_bar=2, composer="Mozart",
                              seed=0, temperature=1.1, top_p=0.99, style_guidance=1.0, api_name="/infill")[3].split()
    bars_of = [i for i, e in enumerate(infilled) if e == "Bar_None"]
    original = events.split()
    assert infilled[: bars_of[1]] == original[: [i for i, e in enumerate(original) if e == "Bar_None"][1]]
    assert infilled.count("Bar_None") == BARS


def _broken(folder: Path) -> Path:
    (folder / "not.mid").write_bytes(b"MThd garbage")
    return folder / "not.mid"


def test_g2m_app_refuses_a_busy_port_and_a_missing_model(tmp_path, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(SystemExit) as exit_info:
            app_cli.main(["--port", str(busy.getsockname()[1])])
    assert exit_info.value.code == 2
    assert "cannot listen there" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        app_cli.main(["--model", str(tmp_path), "--port", str(free_port())])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("g2m-app: error: argument --model: ") and "no model weights" in error


def test_the_generator_checks_its_values_before_generating():
    from g2m_hf.app import Generator
    from g2m_hf.errors import G2MError

    generator = Generator()
    good = dict(composer="Bach", bars=2, temperature=1.1, top_p=0.99, seed=0)
    for bad, message in [(dict(bars=0), "bars must be from 1 to 32"), (dict(bars=2.5), "bars must be a whole number"),
                         (dict(top_p=0), "top_p: 0 .must be greater than 0"),
                         (dict(temperature=-1), "temperature: -1 .must be greater than 0"),
                         (dict(composer="Hildegard"), "composer must be one of Bach, Beethoven, Mozart"),
                         (dict(num_pieces=5), "number of pieces must be from 1 to 4"),
                         (dict(dtype="int4"), "dtype must be one of float32, bfloat16, int8"),
                         (dict(tempo="100"), "tempo must be one of 40, 80, 120, 160"),
                         (dict(time_signature="5/4"), "time signature must be one of 2/4"),
                         (dict(style_guidance=-1.0), "style_guidance: -1.0 .must be at least 0"),
                         (dict(duration=1000), "duration must be from 0 to 120 seconds"),
                         (dict(density="loud"), "density: loud .expected one of low, mid, high or a number")]:
        with pytest.raises(G2MError, match=message):
            generator.write(**{**good, **bad})
    with pytest.raises(G2MError, match="^no MIDI file to infill"):
        generator.infill(None, 2, 3, "Bach", 1.1, 0.99, 0)
    assert generator.requests == 0 and not any(generator.folder.iterdir())
    generator.folder.rmdir()
