"""``python -m hub_upload MODEL_DIR --repo-id USER/NAME``: the same as ``g2m-push``."""

from .cli import main

main()
