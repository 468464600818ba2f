"""The package as others install it (issue 29): a lean core, extras named in one line, a wheel that works.

- `import g2m_hf` (and the modules the core commands use) imports no optional dependency;
- a command that needs a missing extra names it in one line, before any work;
- the wheel holds the bundled models and the remote-code files, installs into a fresh virtual
  environment holding only the core dependencies, and there, outside the repository, loads the
  bundled model, generates, round-trips MIDI, loads a saved folder with ``trust_remote_code=True``
  and runs ``g2m-generate``; with the ``audio`` extra added it renders a WAV.

The fresh environment is offline: its core dependencies are the very distributions of the test
environment, linked into it (the dependency closure of the wheel's requirements, markers
evaluated, extras not followed), and pip installs the wheel with ``--no-index``, so pip itself
checks that those requirements hold. `benchmarks/install_size.sh` measures real installs' sizes.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import wave
import zipfile
from pathlib import Path

import pretty_midi
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from g2m_hf.cli import generate as generate_cli
from g2m_hf.cli import render as render_cli

REPO = Path(__file__).resolve().parent.parent

OPTIONAL = (
    "music21", "matplotlib", "sklearn", "scipy", "datasets", "pandas", "pyarrow", "tensorboard",
    "midirenderer", "soxr", "gradio", "gradio_client", "verovio", "peft", "accelerate",
)
"""Top-level modules of the extras (and of their heavy dependencies): never needed by ``import g2m_hf``."""

OWN_EXTRAS = ("music21", "matplotlib", "sklearn", "datasets", "pandas", "pyarrow", "midirenderer", "gradio", "verovio", "peft")
"""Optional modules that nothing in the core stack imports by itself when installed."""

CORE_MODULES = ("g2m_hf", "g2m_hf.generation", "g2m_hf.longform", "g2m_hf.remi", "g2m_hf.hub", "g2m_hf.cli.generate",
                "g2m_hf.cli.demo", "g2m_hf.cli.render", "g2m_hf.cli.evaluate", "g2m_hf.cli.app", "g2m_hf.data",
                "hub_upload", "hub_upload.cli", "training")

# A meta-path finder that records every import of an optional module whose importer (the first
# frame outside the import machinery) is g2m_hf's own code; transformers imports some of them
# by itself when they are installed (accelerate, scipy, soxr), which is not g2m_hf's doing.
_WATCH = """
import sys
OPTIONAL = set({optional!r})
found = []
class Watch:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in OPTIONAL:
            frame = sys._getframe(1)
            while frame is not None and frame.f_globals.get("__name__", "").startswith(("importlib", "_frozen_importlib")):
                frame = frame.f_back
            importer = frame.f_globals.get("__name__", "") if frame is not None else ""
            if importer.partition(".")[0] == "g2m_hf":
                found.append(f"{{importer}} imports {{name}}")
        return None
sys.meta_path.insert(0, Watch())
import importlib, json
for module in {modules!r}:
    importlib.import_module(module)
print(json.dumps({{"imported by g2m_hf": found, "loaded": [m for m in {own!r} if m in sys.modules]}}))
"""


def test_import_g2m_hf_imports_no_optional_dependency(tmp_path):
    """g2m_hf's own modules import no optional module, and of the extras that nothing in the core stack
    loads on its own (transformers loads accelerate, scipy and soxr when they are there), none is loaded."""
    done = subprocess.run(
        [sys.executable, "-c", _WATCH.format(optional=OPTIONAL, modules=CORE_MODULES, own=OWN_EXTRAS)],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1]) == {"imported by g2m_hf": [], "loaded": []}


def test_render_without_the_audio_extra_says_which_to_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "soxr", None)
    with pytest.raises(SystemExit) as exit:
        render_cli.main([str(tmp_path)])
    assert exit.value.code == 2
    assert capsys.readouterr().err == 'g2m-render: error: g2m-render needs soxr, which is not installed: pip install "g2m_hf[audio]"\n'


def test_generate_audio_without_the_audio_extra_says_which_to_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "midirenderer", None)  # as if not installed: importing it raises
    assert generate_cli.main(["--audio", "--bars", "4", "--output-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install "g2m_hf[audio]"' in err and "--audio" in err
    assert not (tmp_path / "out").exists()  # refused before any work


def test_training_commands_without_the_train_extra_say_which_to_install(monkeypatch, capsys):
    import training

    monkeypatch.setitem(sys.modules, "datasets", None)
    for script in ("training.pretrain", "training.finetune", "training.datasource"):
        monkeypatch.delitem(sys.modules, script, raising=False)  # imported afresh, as by the console script
    assert training.finetune_cli() == 2
    assert capsys.readouterr().err == (
        'g2m-finetune: error: training needs datasets, which is not installed: pip install "g2m_hf[train]"\n')


# --- the wheel --------------------------------------------------------------------------------

BUNDLED = ("default_model", "default_base_model", "default_classifier")
REMOTE_CODE = ("configuration_g2m.py", "modeling_g2m.py", "tokenization_g2m.py", "grammar.py", "kv_cache.py",
               "vocab.py", "errors.py", "style_guidance.py", "texture_steering.py", "texture_plan.py")


def _closure(requirements: list[str], extras: tuple[str, ...] = ()) -> dict[str, importlib.metadata.Distribution]:
    """The installed distributions that ``requirements`` need, recursively (markers evaluated)."""
    found: dict[str, importlib.metadata.Distribution] = {}
    todo = [(Requirement(text), extras) for text in requirements]
    while todo:
        requirement, wanted = todo.pop()
        if requirement.marker is not None and not any(
            requirement.marker.evaluate({"extra": extra}) for extra in (wanted or ("",))
        ):
            continue
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        found[name] = importlib.metadata.distribution(name)  # PackageNotFoundError: not installed here
        todo += [(Requirement(text), tuple(requirement.extras)) for text in found[name].requires or ()]
    return found


def _link_into(site: Path, distributions) -> None:
    """Make ``distributions`` importable in the venv whose site-packages is ``site`` (symbolic links)."""
    for distribution in distributions:
        tops = {Path(str(file)).parts[0] for file in distribution.files or ()}
        for top in tops - {"..", "__pycache__"}:
            source = Path(distribution.locate_file(top))
            if source.exists() and not (site / top).exists() and not top.endswith(".pth"):
                (site / top).symlink_to(source)


def _wheel_requirements(wheel: Path, extra: str | None = None) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(name for name in archive.namelist() if name.endswith(".dist-info/METADATA"))
        lines = archive.read(metadata).decode().splitlines()
    requirements = [line.split(": ", 1)[1] for line in lines if line.startswith("Requires-Dist: ")]
    if extra is None:
        return [text for text in requirements if Requirement(text).marker is None]
    return [text.split(";")[0] for text in requirements if Requirement(text).marker is not None
            and Requirement(text).marker.evaluate({"extra": extra})]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """``python -m build`` (sdist, then the wheel from the sdist) of a copy of the repository."""
    work = tmp_path_factory.mktemp("build")
    source = work / "src"
    ignore = shutil.ignore_patterns(".git", ".venv", "build", "dist", "site", "*.egg-info", "__pycache__",
                                    "demo_output", ".pytest_cache", "runs", "outputs", "data")
    shutil.copytree(REPO, source, ignore=ignore)
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(work / "dist"), str(source)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    (wheel,) = (work / "dist").glob("*.whl")
    (sdist,) = (work / "dist").glob("*.tar.gz")
    return wheel, sdist


@pytest.mark.slow
def test_the_wheel_holds_the_bundled_models_and_the_remote_code(built):
    wheel, sdist = built
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for folder in BUNDLED:
        assert {f"g2m_hf/{folder}/config.json", f"g2m_hf/{folder}/model.safetensors", f"g2m_hf/{folder}/README.md"} <= names
    assert {f"g2m_hf/{name}" for name in REMOTE_CODE} <= names
    assert {"training/finetune.py", "hub_upload/push.py", "g2m_hf/cli/generate.py"} <= names
    assert not any(name.startswith("tests/") for name in names)
    core = {canonicalize_name(Requirement(text).name) for text in _wheel_requirements(wheel)}
    assert {"torch", "transformers", "pretty-midi"} <= core
    assert not core & {"music21", "matplotlib", "scikit-learn", "scipy", "datasets", "gradio", "midirenderer", "peft"}
    print(f"\nwheel {wheel.name}: {wheel.stat().st_size / 2**20:.1f} MiB; sdist {sdist.stat().st_size / 2**20:.1f} MiB")


@pytest.fixture(scope="module")
def core_venv(built, tmp_path_factory):
    """A fresh venv holding the wheel and its core dependencies only."""
    wheel, _ = built
    venv = tmp_path_factory.mktemp("venv") / "core"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    (site,) = venv.glob("lib/python*/site-packages")
    _link_into(site, _closure(_wheel_requirements(wheel)).values())
    pip(venv, "install", "--no-index", str(wheel))  # fails if a core requirement is not among the linked ones
    return venv, site


def pip(venv: Path, *args: str) -> None:
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "--quiet", *args],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def run_in(venv: Path, cwd: Path, *command: str, check: bool = True) -> subprocess.CompletedProcess:
    """``command`` in ``venv`` from ``cwd`` (outside the repository), offline, without this checkout on the path."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(cwd / "hf_modules"), OMP_NUM_THREADS="2",
               PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


_IN_CORE_VENV = """
import importlib.util, json, pathlib, sys
import torch
import g2m_hf
from g2m_hf import events_to_midi, generate_midi, midi_to_events
from g2m_hf.generation import load_model, load_tokenizer

assert pathlib.Path(g2m_hf.__file__).is_relative_to(pathlib.Path(sys.prefix)), g2m_hf.__file__
missing = [m for m in {optional!r} if importlib.util.find_spec(m) is None]
tokenizer, model = load_tokenizer(), load_model()
(piece,) = generate_midi(model, tokenizer, composers=["Bach"], bars=4, seed=0)
piece.midi.write("piece.mid")
again = midi_to_events("piece.mid", composer="Bach")
events_to_midi(again).write("again.mid")
model.save_pretrained("saved")
tokenizer.save_pretrained("saved")
print(json.dumps({{"missing": missing, "round_trip": again == piece.events, "bars": piece.events.count("Bar_None"),
                  "same_again": midi_to_events("again.mid", composer="Bach") == again}}))
"""

_REMOTE = """
import json, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained("saved", trust_remote_code=True)
model = AutoModelForCausalLM.from_pretrained("saved", trust_remote_code=True)
torch.manual_seed(0)
start = torch.tensor([[model.config.event_vocabulary.index("Composer_Bach")]])
out = model.generate(start, max_new_tokens=24, max_bars=2)
print(json.dumps({"model": type(model).__module__, "tokenizer": type(tokenizer).__module__, "length": out.shape[1]}))
"""


@pytest.mark.slow
def test_the_core_install_generates_outside_the_repository(core_venv, tmp_path):
    venv, _ = core_venv
    python = str(venv / "bin" / "python")
    result = json.loads(run_in(venv, tmp_path, python, "-c", _IN_CORE_VENV.format(optional=OPTIONAL)).stdout.splitlines()[-1])
    assert set(result["missing"]) == set(OPTIONAL)  # the venv holds the core only
    assert result["round_trip"] and result["same_again"] and result["bars"] == 4

    # the saved folder loads as remote code: the module comes from the folder, not from g2m_hf
    remote = json.loads(run_in(venv, tmp_path, python, "-c", _REMOTE).stdout.splitlines()[-1])
    assert remote["model"].startswith("transformers_modules") and remote["tokenizer"].startswith("transformers_modules")
    assert remote["length"] > 1

    done = run_in(venv, tmp_path, "g2m-generate", "--bars", "4", "--composer", "Bach", "--output-dir", "out")
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["Bach_0.mid", "Bach_0.txt"]
    assert 'no piano rolls (.png) without matplotlib: pip install "g2m_hf[notation]"' in done.stderr

    refused = run_in(venv, tmp_path, "g2m-generate", "--audio", "--bars", "4", "--output-dir", "out2", check=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.strip() == ('g2m-generate: error: --audio needs midirenderer, which is not installed: '
                                      'pip install "g2m_hf[audio]"')


@pytest.mark.slow
def test_the_audio_extra_renders_a_wav(built, core_venv, tmp_path):
    wheel, _ = built
    venv, site = core_venv
    _link_into(site, _closure(_wheel_requirements(wheel, extra="audio")).values())
    pip(venv, "install", "--no-index", f"g2m_hf[audio] @ {wheel.as_uri()}")  # pip checks the extra is satisfied
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes = [pretty_midi.Note(velocity=80, pitch=60 + step, start=step / 2, end=step / 2 + 0.5) for step in range(4)]
    midi.instruments.append(piano)
    midi.write(str(tmp_path / "scale.mid"))
    run_in(venv, tmp_path, "g2m-render", "scale.mid")
    with wave.open(str(tmp_path / "scale.wav")) as wav:  # 2 s of notes and 1 s of release, at 44.1 kHz
        assert wav.getframerate() == 44_100 and wav.getnframes() == 3 * 44_100
