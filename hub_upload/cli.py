"""``g2m-push``: upload a model or adapter folder to the Hugging Face Hub (see `hub_upload.push`)."""

from __future__ import annotations

import argparse

from huggingface_hub import ModelCard

from g2m_hf.cli import arguments
from g2m_hf.errors import G2MError

from .push import DEFAULT_TIMEOUT_SECONDS, plan_upload, push_to_hub

PROG = "g2m-push"


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.ArgumentParser(
        prog=PROG,
        description="Upload a g2m model folder (or a PEFT adapter folder) to the Hugging Face Hub, "
        "with the remote-code files and a generated model card. Pickle files are never uploaded, "
        "and remote files this tool did not write are never deleted.",
    )
    parser.add_argument("model_dir", type=arguments.existing_dir, metavar="MODEL_DIR",
                        help="folder written by save_pretrained")
    parser.add_argument("--repo-id", required=True, metavar="USER/NAME", help="target repository")
    parser.add_argument("--private", action="store_true", help="create the repository private")
    parser.add_argument("--revision", metavar="BRANCH", help="branch to commit to (created from main if missing)")
    parser.add_argument("--commit-message", help='default: "Upload model with g2m-push"')
    parser.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing to main")
    parser.add_argument("--token", help="Hub token with write access (default: `hf auth login` token or HF_TOKEN)")
    parser.add_argument("--model-card", type=arguments.existing_file, metavar="FILE",
                        help="upload this README.md instead of the generated card")
    parser.add_argument("--timeout", type=arguments.positive_float, default=DEFAULT_TIMEOUT_SECONDS, metavar="S",
                        help=f"seconds to wait for each answer of the Hub (default {DEFAULT_TIMEOUT_SECONDS:g})")
    parser.add_argument("--dry-run", action="store_true", help="check the folder and list what would be uploaded")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        card = ModelCard(args.model_card.read_text(encoding="utf-8")) if args.model_card else None
        if args.dry_run:
            plan = plan_upload(args.model_dir, args.repo_id, card)
            print(f"{plan.kind} folder {plan.model_dir}: would upload to {args.repo_id}")
            for path in plan.files:
                print(f"  {path}")
            skipped = plan.skipped
        else:
            result = push_to_hub(
                args.model_dir, args.repo_id, private=args.private, revision=args.revision,
                commit_message=args.commit_message, create_pr=args.create_pr, token=args.token, model_card=card,
                timeout=args.timeout,
            )
            if result.changed:
                print(f"Pushed {len(result.uploaded)} file(s) to {result.repo_id}: {result.commit_url}")
                for path in result.uploaded:
                    print(f"  {path}")
                for path in result.deleted:
                    print(f"  deleted {path} (written by an earlier push, no longer in the folder)")
            else:
                print(f"{result.repo_id} is up to date (commit {result.commit_oid[:8]}): nothing to push")
            if result.pr_url:
                print(f"Pull request: {result.pr_url}")
            skipped = result.skipped
    except (G2MError, OSError) as error:
        parser.exit(arguments.fail(PROG, error))
    for path, reason in skipped.items():
        print(f"  skipped {path}: {reason}")


if __name__ == "__main__":
    main()
