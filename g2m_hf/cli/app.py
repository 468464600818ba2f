"""`g2m-app`: serve the web app (g2m_hf/app.py) on one address until stopped (Ctrl+C).

Needs the ``app`` extra: ``pip install "g2m_hf[app]"``. Everything runs on this machine: the model is
loaded once at start, nothing is downloaded, and Gradio's usage statistics are off. The queue, time and
upload limits and the login are docs/serving.md's.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import socket
import sys

from .. import extras
from ..errors import G2MError, MissingExtraError
from . import arguments

PROG = "g2m-app"


def _login(text: str) -> tuple[str, str]:
    """``USER:PASSWORD`` -> (user, password)."""
    user, colon, password = text.partition(":")
    if not (user and colon and password):
        raise argparse.ArgumentTypeError("expected USER:PASSWORD (both not empty)")
    return user, password


def _logins_file(path: str) -> list[tuple[str, str]]:
    """A file of ``USER:PASSWORD`` lines (blank lines and ``#`` comments skipped)."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = [line.strip() for line in handle]
    except (OSError, UnicodeDecodeError) as error:
        raise argparse.ArgumentTypeError(f"{path} ({getattr(error, 'strerror', None) or error})") from None
    logins = []
    for number, line in enumerate(lines, 1):
        if line and not line.startswith("#"):
            try:
                logins.append(_login(line))
            except argparse.ArgumentTypeError as error:
                raise argparse.ArgumentTypeError(f"{path}, line {number}: {error}") from None
    if not logins:
        raise argparse.ArgumentTypeError(f"{path} (no USER:PASSWORD line)")
    return logins


def build_parser() -> argparse.ArgumentParser:
    from ..app import ServingLimits  # noqa: PLC0415 (the defaults shown in --help are the library's)

    defaults = ServingLimits()
    parser = arguments.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0].strip("`"))
    parser.add_argument("--model", default=None, help="model folder or Hub id (default: the bundled model)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=arguments.port, default=7860, help="port to listen on (default 7860)")
    parser.add_argument("--concurrency", type=arguments.positive_int, default=defaults.concurrency,
                        help=f"requests served at once (default {defaults.concurrency}); the others wait in the queue")
    parser.add_argument("--max-queue", type=arguments.positive_int, default=defaults.max_queue,
                        help=f"requests waiting at most (default {defaults.max_queue}); past it a request is refused as busy")
    parser.add_argument("--time-limit", type=arguments.positive_float, default=defaults.time_limit,
                        help=f"seconds of generation per request (default {defaults.time_limit:g})")
    parser.add_argument("--max-upload-mb", type=arguments.positive_float, default=defaults.max_upload_mb,
                        help=f"largest uploaded MIDI file in MiB (default {defaults.max_upload_mb:g})")
    login = parser.add_mutually_exclusive_group()
    login.add_argument("--auth", type=_login, default=None, metavar="USER:PASSWORD", help="require this login")
    login.add_argument("--auth-file", type=_logins_file, default=None, metavar="PATH",
                       help="require one of the logins in this file (USER:PASSWORD lines)")
    return parser


def _port_free(host: str, port: int) -> str | None:
    """None when ``host:port`` can be listened on, else the reason."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, port))
    except OSError as error:
        return error.strerror or str(error)
    return None


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def main(argv: list[str] | None = None) -> int:
    try:
        extras.require("gradio", "app", "the web app")  # before building the parser, whose defaults come from the app
    except MissingExtraError as error:
        return arguments.fail(PROG, error)
    parser = build_parser()
    args = parser.parse_args(argv)
    reason = _port_free(args.host, args.port)
    if reason is not None:
        parser.error(f"argument --port: {args.port} (cannot listen there on {args.host}: {reason})")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from ..app import ServingLimits, build_app, can_stream_audio, launch_options

    limits = ServingLimits(args.concurrency, args.max_queue, args.time_limit, args.max_upload_mb)
    try:
        demo = build_app(args.model, limits)
    except G2MError as error:
        parser.error(f"argument --model: {error}")
    if not _loopback(args.host):
        print(f"{PROG}: warning: listening on {args.host}: anyone who can reach this machine can use the app"
              f"{'' if args.auth or args.auth_file else ' (no login: see --auth)'}", file=sys.stderr, flush=True)
    if not can_stream_audio():
        print(f"{PROG}: note: no ffmpeg on PATH: each piece plays when it is finished "
              "(install ffmpeg to hear it while it is written)", file=sys.stderr, flush=True)
    print(f"{PROG}: serving on http://{args.host}:{args.port}/ (Ctrl+C stops it)", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a stop by `kill` also removes the app's files
    try:
        demo.launch(**launch_options(limits, args.host, args.port, args.auth_file or args.auth))
    finally:
        demo.close()
        demo.generator.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
