"""Serving many listeners (docs/serving.md): `g2m-app` as a real server on 127.0.0.1 under load from
gradio_client threads, with hostile uploads, a time limit, cancelling, a full queue and a login.

Pieces are one bar long: these tests check the serving, not the music. Two servers: one with the default
limits (load, uploads, cancelling), one with tight ones (``--concurrency 1 --max-queue 1 --time-limit 3``
and a login file).
"""

from __future__ import annotations

import os
import re
import threading
import time
import urllib.error
import urllib.request

import pytest

from g2m_hf.app import KEPT_REQUESTS, ServingLimits, can_stream_audio
from tests import hostile_midi
from tests.app_server import FIRST_SOUND, AppServer, generate_in_page, open_browser
from tests.test_app import chromium  # noqa: F401 (the browser fixture, used by name)

pytest.importorskip("gradio", reason='the web app needs the app extra: pip install "g2m_hf[app]"')

COMPOSERS = ("Bach", "Beethoven", "Mozart")
ARGUMENTS = dict(bars=1, temperature=1.1, top_p=0.99, prompt_midi=None, prompt_bars=4)
MEMORY_GROWTH_MB = 250
"""Bound on the server's resident memory after the load test, over what it held after its first request."""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``g2m-app`` with the default limits, warmed up by one request."""
    server = AppServer.start(tmp_path_factory.mktemp("serving"))
    client(server).predict(composer="Bach", seed=0, **ARGUMENTS, api_name="/generate")
    yield server
    server.stop()
    assert server.app_folders() == [], "the app's folder is removed on shutdown"


def client(server: AppServer, **options):
    from gradio_client import Client

    return Client(server.url, verbose=False, download_files=str(server.log.parent / "downloads"), **options)


@pytest.mark.slow
def test_eight_clients_three_requests_each_are_all_served_each_with_its_own_piece(server):
    before = server.memory_mb()
    answers: dict[tuple[int, int], list[str] | Exception] = {}

    def listener(number: int) -> None:
        session = client(server)
        for request in range(3):
            try:
                events = session.predict(composer=COMPOSERS[number % 3], seed=request, **ARGUMENTS,
                                         api_name="/generate")[3].split()
            except Exception as error:  # noqa: BLE001 (recorded: the assertions below name it)
                events = error
            answers[number, request] = events

    start = time.monotonic()
    threads = [threading.Thread(target=listener, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not any(thread.is_alive() for thread in threads), "every request answered within 10 minutes"
    seconds = time.monotonic() - start

    assert sorted(answers) == [(n, r) for n in range(8) for r in range(3)], "none lost"
    refused = {key: answer for key, answer in answers.items() if isinstance(answer, Exception)}
    assert refused == {}, f"the default queue serves 24 requests from 8 clients at once: {refused}"
    for (number, request), events in answers.items():
        assert events[0] == f"Composer_{COMPOSERS[number % 3]}" and events.count("Bar_None") == 1
        twin = answers[(number + 3) % 6, request]  # another client asking for the same composer and seed
        assert events == twin, "a seed gives its piece, whoever else is generating at the same time"
    assert answers[0, 0] != answers[0, 1], "different seeds, different pieces"

    # the same piece in this process, from the Python API, as the page asks for it
    from g2m_hf.app import DEFAULT_DTYPE
    from g2m_hf.generation import generate_midi, load_model_as, load_tokenizer

    (piece,) = generate_midi(load_model_as(None, DEFAULT_DTYPE), load_tokenizer(), composers=["Bach"], seed=2, bars=1, batch_size=1,
                             temperature=1.1, top_p=0.99)  # the model's own style guidance, as the page's
    assert answers[0, 2] == piece.events

    growth = server.memory_mb() - before
    assert growth < MEMORY_GROWTH_MB, f"the server grew by {growth:.0f} MB"
    (folder,) = server.app_folders()
    assert len(list(folder.iterdir())) == KEPT_REQUESTS, "the app keeps the files of its last requests only"
    print(f"24 requests from 8 clients in {seconds:.1f} s, memory growth {growth:.0f} MB")


@pytest.mark.slow
@pytest.mark.parametrize("build, reason", [
    (lambda: hostile_midi.many_notes(300_000), "too large to read: messages 600,001"),
    (lambda: hostile_midi.many_notes(60_000), "too large to read: notes 60,000"),
    (hostile_midi.far_tick, "too large to read: beats"),
    (lambda: hostile_midi.many_tracks(5000), "too large to read: tracks 5,000"),
    (hostile_midi.huge_track_length, "corrupt MIDI file"),
], ids=["300k notes", "60k notes", "far tick", "5000 tracks", "4 GB track"])
def test_hostile_uploads_are_refused_quickly_and_the_server_goes_on(server, tmp_path, build, reason):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    upload = tmp_path / "upload.mid"
    upload.write_bytes(build())
    session = client(server)
    start = time.monotonic()
    with pytest.raises(AppError, match=f"^upload.mid (is )?(a )?{reason}"):
        session.predict(composer="Bach", seed=0, **{**ARGUMENTS, "prompt_midi": handle_file(str(upload))},
                        api_name="/generate")
    assert time.monotonic() - start < 5, "refused within seconds (upload included)"
    events = session.predict(composer="Mozart", seed=1, **ARGUMENTS, api_name="/generate")[3].split()
    assert events[0] == "Composer_Mozart"


@pytest.mark.slow
def test_an_upload_past_the_size_limit_is_refused_by_the_server(server):
    limit = int(ServingLimits().max_upload_mb * 2**20)
    boundary = "g2m"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.mid\"\r\n"
            "Content-Type: audio/midi\r\n\r\n").encode() + hostile_midi.junk(limit + 1) + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(server.url + "gradio_api/upload", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 413 and b"maximum" in refused.value.read()


@pytest.mark.slow
def test_a_cancelled_request_frees_the_model_within_seconds(server):
    session = client(server)
    job = session.submit(composer="Beethoven", seed=5, **{**ARGUMENTS, "bars": 32}, api_name="/generate")
    deadline = time.monotonic() + 60
    while job.status().code.name != "ITERATING" and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # generating
    assert job.cancel()
    start = time.monotonic()
    events = session.predict(composer="Bach", seed=0, **ARGUMENTS, api_name="/generate")[3].split()
    alone = time.monotonic()
    session.predict(composer="Bach", seed=0, **ARGUMENTS, api_name="/generate")
    alone = time.monotonic() - alone
    waited = time.monotonic() - start - alone
    # the 32-bar piece would hold the model for a minute; cancelled, it is free within a step
    assert waited < alone + 3, f"{waited:.1f} s after the cancel for a piece made alone in {alone:.1f} s"
    assert events[0] == "Composer_Bach"


@pytest.fixture(scope="module")
def tight_server(tmp_path_factory):
    """``g2m-app`` on every address (behind a login file) with one worker, a queue of one and a 3-second time
    limit."""
    folder = tmp_path_factory.mktemp("tight")
    (folder / "logins.txt").write_text("# the class\nteacher:secret\n")
    server = AppServer.start(folder, options=("--concurrency", "1", "--max-queue", "1", "--time-limit", "3",
                                              "--auth-file", str(folder / "logins.txt"), "--host", "0.0.0.0"))
    yield server
    server.stop()


@pytest.mark.slow
def test_a_login_is_required(tight_server):
    from gradio_client.exceptions import AuthenticationError

    warnings = [line for line in tight_server.log.read_text().splitlines() if "warning" in line]
    assert warnings == ["g2m-app: warning: listening on 0.0.0.0: anyone who can reach this machine can use the app"]

    with pytest.raises(AuthenticationError):
        client(tight_server)
    with pytest.raises(Exception, match="login|credentials|Unauthorized|401"):
        client(tight_server, auth=("teacher", "wrong"))
    events = client(tight_server, auth=("teacher", "secret")).predict(
        composer="Bach", seed=0, **ARGUMENTS, api_name="/generate")[3].split()
    assert events[0] == "Composer_Bach"


@pytest.mark.slow
def test_the_time_limit_stops_a_request_and_a_full_queue_refuses_at_once(tight_server):
    from gradio_client.exceptions import AppError
    from gradio_client.utils import QueueError

    session = client(tight_server, auth=("teacher", "secret"))
    start = time.monotonic()
    with pytest.raises(AppError, match="stopped after the time limit of 3 s per request"):
        session.predict(composer="Bach", seed=0, **{**ARGUMENTS, "bars": 32}, api_name="/generate")
    assert time.monotonic() - start < 3 + 5

    jobs = [session.submit(composer="Bach", seed=seed, **{**ARGUMENTS, "bars": 32}, api_name="/generate")
            for seed in range(4)]
    outcomes = []
    for job in jobs:
        start = time.monotonic()
        try:
            job.result(timeout=60)
            outcomes.append("served")
        except QueueError as error:
            assert "Queue is full" in str(error) and time.monotonic() - start < 2, "refused at once"
            outcomes.append("busy")
        except AppError as error:
            assert "time limit" in str(error)
            outcomes.append("stopped")
    assert outcomes.count("busy") >= 2 and "stopped" in outcomes, outcomes
    assert session.predict(composer="Mozart", seed=0, **ARGUMENTS, api_name="/generate")[3].startswith("Composer_Mozart")


@pytest.mark.slow
@pytest.mark.usefixtures("chromium")
def test_the_page_plays_before_the_piece_is_done_and_stop_or_leaving_frees_the_model(server, tmp_path):
    from playwright.sync_api import sync_playwright

    def model_is_free_within_seconds(what: str) -> None:
        start = time.monotonic()
        events = client(server).predict(composer="Bach", seed=0, **ARGUMENTS, api_name="/generate")[3]
        assert events.startswith("Composer_Bach") and time.monotonic() - start < 15, f"{what}: the model stayed busy"

    with sync_playwright() as playwright:
        browser = open_browser(playwright, tmp_path / "profile")
        try:
            page = browser.new_page()
            times = generate_in_page(page, server.url, "Mozart", 4, timeout=300)
            assert can_stream_audio() or os.environ.get("CI") != "true", "CI must hear the stream: .ci/run installs ffmpeg"
            if can_stream_audio():
                assert times.first_sound is not None and times.first_sound < times.done, times
            else:  # no ffmpeg (CI installs it): the piece plays when it is finished
                assert times.first_sound is None
            assert page.get_by_text(re.compile(r"Mozart 1: 4 bars, \d+ s of music made in [\d.]+ s "
                                               r"\([\d.]+x real time\)")).count() == 1

            for leave in ("Stop", "close the tab"):  # a 32-bar piece takes a minute; each is stopped after a bar
                page.get_by_label("number input for Bars").fill("32")
                page.get_by_label("number input for Bars").press("Enter")
                page.evaluate(FIRST_SOUND)
                page.get_by_role("button", name="Generate").click()
                if can_stream_audio():
                    page.wait_for_function("window.firstSound !== null", timeout=120_000)
                else:
                    time.sleep(3)
                if leave == "Stop":
                    page.get_by_role("button", name="Stop").click()
                else:
                    page.close()
                model_is_free_within_seconds(leave)
        finally:
            browser.close()


def test_g2m_app_checks_its_serving_options_in_one_line(tmp_path, capsys):
    from g2m_hf.cli import app as app_cli

    (tmp_path / "empty.txt").write_text("# nobody yet\n")
    (tmp_path / "logins.txt").write_text("teacher:secret\n")
    for options, message in [(["--max-queue", "0"], "argument --max-queue: 0 (must be"),
                             (["--concurrency", "two"], "argument --concurrency: two (not an integer)"),
                             (["--time-limit", "-5"], "argument --time-limit: -5 (must be"),
                             (["--max-upload-mb", "0"], "argument --max-upload-mb: 0 (must be"),
                             (["--auth", "teacher"], "argument --auth: expected USER:PASSWORD"),
                             (["--auth-file", str(tmp_path / "empty.txt")], "(no USER:PASSWORD line)"),
                             (["--auth-file", str(tmp_path / "missing.txt")], "No such file"),
                             (["--auth", "a:b", "--auth-file", str(tmp_path / "logins.txt")], "not allowed with")]:
        with pytest.raises(SystemExit) as exit_info:
            app_cli.main(options)
        error = capsys.readouterr().err.strip()
        assert exit_info.value.code == 2 and len(error.splitlines()) == 1, error
        assert error.startswith("g2m-app: error: ") and message in error, error
