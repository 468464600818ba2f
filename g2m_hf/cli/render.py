"""`g2m-render`: WAV files (and with --score MusicXML scores) for MIDI files and folders, offline.

Each ``x.mid`` becomes ``x.wav`` (with the default or a given SoundFont) and, with ``--score``,
``x.musicxml`` (or ``x.mxl``), beside it or under ``--output-dir`` (keeping the layout of a folder given
on the command line). A file that cannot be rendered or converted is skipped with a one-line reason and
the others go on; the exit code is 2 when anything was skipped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import extras
from ..audio import read_soundfont, render_audio
from ..errors import AudioError, MissingExtraError, NotationError, RemiError
from ..notation import SCORE_SUFFIXES, write_score
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
    parser.add_argument("--score", action="store_true",
                        help="also write x.musicxml: a two-staff piano score of the file's notes on the REMI grid")
    parser.add_argument("--score-format", choices=[s.lstrip(".") for s in SCORE_SUFFIXES], default="musicxml",
                        help="musicxml (default) or mxl (compressed MusicXML)")
    parser.add_argument("--no-audio", action="store_true", help="write no WAV files (with --score: scores only)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files (default: skip them)")
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
    if args.no_audio and not args.score:
        parser.error("argument --no-audio: only with --score (there would be nothing to write)")
    if not 8000 <= args.sample_rate <= 192000:
        parser.error(f"argument --sample-rate: {args.sample_rate} (must be from 8000 to 192000)")
    try:
        for module in () if args.no_audio else extras.AUDIO_MODULES:
            extras.require(module, "audio", PROG)
        if args.score:
            extras.require("music21", "notation", f"{PROG} --score")
    except MissingExtraError as error:
        parser.error(str(error))
    try:
        read_soundfont(args.soundfont)  # not an SF2: refused once, before any work
    except AudioError as error:
        parser.error(f"argument --soundfont: {error}")
    output_dir = args.output_dir

    suffixes = ([] if args.no_audio else [".wav"]) + (["." + args.score_format] if args.score else [])
    skipped = written = 0
    for midi, wav, reason in _jobs(args.paths, output_dir):
        for suffix in suffixes if reason is None else [None]:
            if suffix is not None:
                reason = _write(midi, wav.with_suffix(suffix), args)
                if reason is None:
                    written += 1
                    continue
            skipped += 1
            print(f"{PROG}: skipped {reason}", file=sys.stderr)
    kinds = " and ".join(({".wav": "WAV"}.get(s, "score") for s in suffixes))
    print(f"{written} {kinds} files written, {skipped} skipped")
    return 2 if skipped else 0


def _write(midi: Path, target: Path, args: argparse.Namespace) -> str | None:
    """Write ``target`` (a WAV or a score) for ``midi``; the reason when it is skipped, else None."""
    if target.exists() and not args.overwrite:
        return f"{target}: exists (pass --overwrite to replace it)"
    try:
        if target.suffix == ".wav":
            audio = render_audio(midi, target, soundfont=args.soundfont, sample_rate=args.sample_rate)
            print(f"{midi} -> {target} ({audio.shape[1] / args.sample_rate:.1f} s)")
        else:
            write_score(midi, target)
            print(f"{midi} -> {target}")
    except (AudioError, RemiError, NotationError) as error:
        return str(error)
    return None


if __name__ == "__main__":
    sys.exit(main())
