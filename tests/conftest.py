"""Shared fixtures. Tests never reach the internet: the Hub is forced offline here."""

import json
import os
import subprocess
import sys

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


_BLOCK_G2M_HF = """
import sys
sys.modules["g2m_hf"] = None  # any `import g2m_hf...` now raises ImportError
try:
    import g2m_hf
except ImportError:
    pass
else:
    raise SystemExit("g2m_hf is still importable")
"""


@pytest.fixture
def run_without_g2m_hf(tmp_path):
    """Run a Python snippet in a fresh process where g2m_hf cannot be imported (as on a Hub user's machine).

    Remote-code modules are cached under tmp_path; the snippet's last stdout line is parsed as JSON.
    """

    def run(snippet: str) -> object:
        env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "hf_modules"), "PYTHONPATH": ""}
        done = subprocess.run(
            [sys.executable, "-c", _BLOCK_G2M_HF + snippet],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    return run


@pytest.fixture(scope="session")
def loopback_hub(tmp_path_factory):
    """A Hub server on 127.0.0.1 (tests/hub_server.py, accounts in LoopbackHub.USERS), stopped by its pid."""
    from tests.hub_server import LoopbackHub

    hub = LoopbackHub.start(tmp_path_factory.mktemp("loopback_hub"))
    yield hub
    hub.stop()


# --- real pieces: music21 corpus works written to MIDI once per session (codec room) ----------

CORPUS_MIDI_WORKS = (
    *(f"bach/bwv{n}" for n in (
        "1.6", "10.7", "101.7", "102.7", "103.6", "104.6", "108.6", "11.6", "110.7", "111.6", "112.5",
        "113.8", "114.7", "115.6", "116.6", "117.4", "119.9", "12.7", "120.6", "120.8-a", "121.6",
        "122.6", "124.6", "125.6", "128.5", "13.6", "130.6", "133.6", "135.6", "137.5", "139.6", "14.5",
        "144.6")),
    *(f"palestrina/Agnus{n}" for n in ("", "_00", "_01", "_03", "_07", "_08")),
    *(f"ryansMammoth/{n}" for n in (
        "42dHighlandRegimentStrathspey", "7thRegimentReel", "AWillieWeHaveMissdYouStrathspey", "AcaciaReel",
        "AdmiralsHornpipe", "AfterTheHareReel", "AldridgesHornpipe", "AlhambraReel",
        "AlistairMaclalastairStrathspey", "AcrobatsHornpipe", "AlbemarleHornpipe")),
    "haydn/opus1no1/movement2",
    "trecento/Fava_Dicant_nunc_iudei",
)
"""Quick-to-parse works: Bach chorales (4/4 and 3/4, many with pickups, voices sharing a MIDI
channel), Palestrina masses, fiddle tunes in 2/4 and 4/4, a Haydn quartet movement, and a
trecento piece mixing 4/4 and 6/8 bars. About 15 s of music21 conversion."""


@pytest.fixture(scope="session")
def corpus_midi(tmp_path_factory) -> dict[str, "os.PathLike"]:
    """{work: path of its MIDI file} for CORPUS_MIDI_WORKS, written by music21 once per session."""
    from music21 import corpus

    folder = tmp_path_factory.mktemp("corpus_midi")
    paths = {}
    for work in CORPUS_MIDI_WORKS:
        path = folder / (work.replace("/", "_") + ".mid")
        corpus.parse(work).write("midi", fp=str(path))
        paths[work] = path
    return paths


@pytest.fixture(scope="session")
def infill_model_folder(tmp_path_factory):
    """A tiny random model folder that knows the infill tokens (tests/infill_model.py), once per session."""
    from tests.infill_model import save_infill_model

    return save_infill_model(tmp_path_factory.mktemp("infill_model"))
