"""Command-line argument types and the one-line refusal every console script uses.

Every console script builds its parser with `ArgumentParser`, whose refusals are one line and exit
code 2, and uses the ``type=`` functions below, which wrap the checks of `g2m_hf.validation`: a bad
value is refused while parsing, before a model is loaded or a file written::

    g2m-generate: error: argument --temperature: 0 (must be greater than 0)

Argparse also runs them on string defaults, so a default output folder that is a file is refused
the same way. Errors found after parsing (a model folder without weights, an unreadable MIDI file)
go through `fail`: the same one line, exit code 2.

    parser = arguments.ArgumentParser(prog="g2m-generate", description=...)
    parser.add_argument("--temperature", type=arguments.positive_float)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from .. import validation
from ..errors import InvalidArgumentError
from ..style_guidance import CONTRASTS
from ..texture_plan import level_help, parse_level, require_control_tokens

T = TypeVar("T")


class ArgumentParser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` whose errors are the single line ``prog: error: <message>`` (exit code 2).

    Argparse's own parser prints the usage block first; one line is easier to read in a log, and
    ``--help`` still shows the usage.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def _argument_type(check: Callable[[str, Any], T], parse: Callable[[str], Any], kind: str) -> Callable[[str], T]:
    """An argparse ``type=``: ``parse`` the text, then ``check`` it; errors name the text and the reason."""

    def convert(text: str) -> T:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text} (not {kind})") from None
        try:
            return check("", value)
        except InvalidArgumentError as error:
            raise argparse.ArgumentTypeError(f"{text} ({error.why})") from None

    convert.__name__ = check.__name__  # argparse names the type in some messages
    convert.__doc__ = check.__doc__
    return convert


positive_int = _argument_type(validation.positive_int, int, "an integer")
non_negative_int = _argument_type(validation.non_negative_int, int, "an integer")
positive_float = _argument_type(validation.positive_float, float, "a number")
non_negative_float = _argument_type(validation.non_negative_float, float, "a number")
probability = _argument_type(validation.probability, float, "a number")
fraction = _argument_type(validation.fraction, float, "a number")
existing_file = _argument_type(validation.existing_file, str, "a path")
port = _argument_type(validation.port, int, "an integer")
existing_path = _argument_type(validation.existing_path, str, "a path")
existing_dir = _argument_type(validation.existing_dir, str, "a path")
output_dir = _argument_type(validation.output_dir, str, "a path")
output_file = _argument_type(validation.output_file, str, "a path")



def option_name(name: str) -> str:
    """The option of a library argument, for the messages of checks that run after parsing:
    ``max_bars`` -> ``--max-bars``."""
    return "--" + name.replace("_", "-")


def add_sampling_options(parser: argparse.ArgumentParser) -> None:
    """``--temperature``, ``--top-p``, ``--style-guidance`` and ``--style-guidance-contrast``: the sampling of `generate_midi` and
    `infill_midi`, each defaulting to the model's generation config."""
    parser.add_argument("--temperature", type=positive_float, default=None,
                        help="sampling temperature (default: the model's generation config)")
    parser.add_argument("--top-p", type=probability, default=None,
                        help="nucleus probability (default: the model's generation config)")
    parser.add_argument(
        "--style-guidance", type=non_negative_float, default=None, metavar="S",
        help="classifier-free guidance on the composer: 1 = none, larger = a stronger style "
        "(default: the model's generation config, else 1)",
    )
    parser.add_argument(
        "--style-guidance-contrast", choices=CONTRASTS, default=None,
        help="what guidance pushes the composer away from: none = the general corpus, composers = the model's "
        "other composers (default: the model's generation config, else none)",
    )


def _texture_level(kind: str) -> Callable[[str], str]:
    """An argparse ``type=`` for a texture knob: the text itself, once `texture_plan.parse_level` accepts it."""

    def convert(text: str) -> str:
        try:
            parse_level(kind, text)
        except InvalidArgumentError as error:
            raise argparse.ArgumentTypeError(f"{text} ({error.why})") from None
        return text

    convert.__name__ = f"{kind} level"
    return convert


def add_texture_options(parser: argparse.ArgumentParser) -> None:
    """``--density``, ``--polyphony``, ``--register`` and ``--texture-steering``: the texture knobs of `generate_midi`
    and `infill_midi` (a model trained with texture-control tokens)."""
    texture = parser.add_argument_group(
        "texture (each bar's level: low, mid or high, or a number; default: the composer's own texture)")
    for kind in ("density", "polyphony", "register"):
        texture.add_argument(f"--{kind}", type=_texture_level(kind), default=None, metavar="LEVEL",
                             help=level_help(kind))
    texture.add_argument("--texture-steering", type=non_negative_float, default=None, metavar="S",
                         help="how hard each bar is pulled into its levels as it is written: 0 = not at all, "
                         "1 = the tuned strength (default: the model's generation config, else 0)")


def sampling_keywords(args: argparse.Namespace, tokenizer: Any) -> dict[str, Any]:
    """The options of `add_sampling_options` and `add_texture_options` as `generate_midi` / `infill_midi`
    keywords. A texture knob asked of a model whose tokenizer has no texture-control tokens is refused here
    (`VocabularyError`), before the weights are loaded."""
    knobs = {"density": args.density, "polyphony": args.polyphony, "register": args.register}
    if any(knobs.values()):
        require_control_tokens(tokenizer.event_vocabulary, "the model")
    return {"temperature": args.temperature, "top_p": args.top_p, "style_guidance": args.style_guidance,
            "style_guidance_contrast": args.style_guidance_contrast, "texture_steering": args.texture_steering, **knobs}


def fail(prog: str, error: BaseException | str) -> int:
    """Print ``prog: error: <message>`` on one line (whitespace collapsed) and return exit code 2."""
    print(f"{prog}: error: {' '.join(str(error).split())}", file=sys.stderr)
    return 2


__all__ = [
    "ArgumentParser",
    "add_sampling_options",
    "add_texture_options",
    "option_name",
    "existing_dir",
    "existing_file",
    "existing_path",
    "fail",
    "fraction",
    "non_negative_float",
    "non_negative_int",
    "output_dir",
    "output_file",
    "positive_float",
    "port",
    "positive_int",
    "probability",
    "sampling_keywords",
]
