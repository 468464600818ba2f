"""`g2m-convert-original`: an original checkpoint + dictionary.pkl -> a transformers model folder."""

from __future__ import annotations

import argparse
import sys

from ..convert_original import ORIGINAL_NUM_HEADS, convert_original_checkpoint
from ..errors import G2MError
from . import arguments

PROG = "g2m-convert-original"


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.ArgumentParser(
        prog=PROG,
        description="Convert an original Generality-to-Mastery checkpoint (decoder or composer classifier) "
        "and its dictionary.pkl into a transformers model folder (safetensors, tokenizer, generation config).",
    )
    parser.add_argument("--checkpoint", required=True, type=arguments.existing_file,
                        help="original .pt state dict, e.g. ep022_loss0.434_params.pt")
    parser.add_argument("--dictionary", required=True, type=arguments.existing_file,
                        help="the original dictionary.pkl of that checkpoint")
    parser.add_argument("--output", required=True, type=arguments.output_dir,
                        help="folder to write (must be new or empty)")
    parser.add_argument("--overwrite", action="store_true", help="replace the files of an existing output folder")
    parser.add_argument(
        "--num-heads",
        type=arguments.positive_int,
        default=ORIGINAL_NUM_HEADS,
        help=f"attention heads (not stored in the checkpoint; default {ORIGINAL_NUM_HEADS}, as every original model)",
    )
    parser.add_argument(
        "--layer-norm", choices=("pre", "post"), default="pre",
        help="where the original layers normalise: pre (default; every published config sets pre_lnorm: True) "
        "or post (a checkpoint trained with pre_lnorm: False, the default of the original code). "
        "The checkpoint cannot tell: the two have the same parameters",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        output = convert_original_checkpoint(
            args.checkpoint, args.dictionary, args.output, overwrite=args.overwrite, num_attention_heads=args.num_heads,
            pre_layer_norm=args.layer_norm == "pre",
        )
    except (G2MError, FileNotFoundError) as error:
        return arguments.fail(PROG, error)
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
