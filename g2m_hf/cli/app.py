"""`g2m-app`: serve the web app (g2m_hf/app.py) on one address until stopped (Ctrl+C).

Needs the ``app`` extra: ``pip install "g2m_hf[app]"``. Everything runs on this machine: the model is
loaded once at start, nothing is downloaded, and Gradio's usage statistics are off.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

from .. import extras
from ..errors import G2MError, MissingExtraError
from . import arguments

PROG = "g2m-app"


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0].strip("`"))
    parser.add_argument("--model", default=None, help="model folder or Hub id (default: the bundled model)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=arguments.port, default=7860, help="port to listen on (default 7860)")
    return parser


def _port_free(host: str, port: int) -> str | None:
    """None when ``host:port`` can be listened on, else the reason."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, port))
    except OSError as error:
        return error.strerror or str(error)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    reason = _port_free(args.host, args.port)
    if reason is not None:
        parser.error(f"argument --port: {args.port} (cannot listen there on {args.host}: {reason})")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        extras.require("gradio", "app", "the web app")  # before importing the app, which imports it
        from ..app import build_app
    except MissingExtraError as error:
        parser.error(str(error))
    try:
        demo = build_app(args.model)
    except G2MError as error:
        parser.error(f"argument --model: {error}")
    print(f"{PROG}: serving on http://{args.host}:{args.port}/ (Ctrl+C stops it)", flush=True)
    demo.queue().launch(server_name=args.host, server_port=args.port, show_error=False, quiet=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
