"""`g2m-render`: WAV files for MIDI files and folders, offline, with the default or a given SoundFont.

Each ``x.mid`` becomes ``x.wav`` beside it, or under ``--output-dir`` (keeping the layout of a folder
given on the command line). A file that cannot be rendered is skipped with a one-line reason and the
others go on; the exit code is 2 when anything was skipped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import extras
from ..audio import read_soundfont, render_audio
from ..errors import AudioError, MissingExtraError
from . import arguments

PROG = "g2m-render"
MIDI_SUFFIXES = (".mid", ".midi")


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0].strip("`"))
    parser.add_argument("paths", nargs="+", metavar="PATH", help="MIDI files, or folders searched for *.mid / *.midi")
    parser.add_argument("--soundfont", type=arguments.existing_file, default=None, metavar="FILE",
                        help="an SF2 SoundFont (default: TimGM6mb.sf2 from the pretty_midi package)")
    parser.add_argument("--output-dir", type=arguments.output_dir, default=None, metavar="DIR",
                        help="where to write the WAVs (default: beside each MIDI)")
    parser.add_argument("--sample-rate", type=arguments.positive_int, default=44100,
                        help="samples per second, 8000 to 192000 (default 44100)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing WAV files (default: skip them)")
    return parser


def _jobs(paths: list[str], output_dir: Path | None) -> list[tuple[Path, Path | None, str | None]]:
    """(MIDI file, WAV path, None) per file found, or (path, None, "path: reason") for a path that is not one."""
    jobs = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())
            if not found:
                jobs.append((path, None, f"{path}: no .mid or .midi files in this folder"))
            for midi in found:
                target = midi.with_suffix(".wav") if output_dir is None else output_dir / midi.relative_to(path)
                jobs.append((midi, target.with_suffix(".wav"), None))
        elif path.is_file():
            target = path if output_dir is None else output_dir / path.name
            jobs.append((path, target.with_suffix(".wav"), None))
        else:
            jobs.append((path, None, f"{path}: no such file or folder"))
    return jobs


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 8000 <= args.sample_rate <= 192000:
        parser.error(f"argument --sample-rate: {args.sample_rate} (must be from 8000 to 192000)")
    try:
        for module in extras.AUDIO_MODULES:
            extras.require(module, "audio", PROG)
    except MissingExtraError as error:
        parser.error(str(error))
    try:
        read_soundfont(args.soundfont)  # not an SF2: refused once, before any work
    except AudioError as error:
        parser.error(f"argument --soundfont: {error}")
    output_dir = args.output_dir

    skipped = written = 0
    for midi, wav, reason in _jobs(args.paths, output_dir):
        if reason is None and wav.exists() and not args.overwrite:
            reason = f"{wav}: exists (pass --overwrite to replace it)"
        if reason is None:
            try:
                audio = render_audio(midi, wav, soundfont=args.soundfont, sample_rate=args.sample_rate)
            except AudioError as error:
                reason = str(error)
            else:
                written += 1
                print(f"{midi} -> {wav} ({audio.shape[1] / args.sample_rate:.1f} s)")
                continue
        skipped += 1
        print(f"{PROG}: skipped {reason}", file=sys.stderr)
    print(f"{written} WAV files written, {skipped} skipped")
    return 2 if skipped else 0


if __name__ == "__main__":
    sys.exit(main())
