"""Share g2m checkpoints on the Hugging Face Hub: `push_to_hub` (``g2m-push``) and `build_model_card`."""

from .model_card import TRAINING_RECORD, build_model_card
from .push import PushResult, plan_upload, push_to_hub

__all__ = ["TRAINING_RECORD", "PushResult", "build_model_card", "plan_upload", "push_to_hub"]
