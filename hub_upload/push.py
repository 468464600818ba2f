"""Push a g2m model folder (a full model or a PEFT adapter) to the Hugging Face Hub.

What goes up, in one commit (`HfApi.create_commit` with explicit operations):

- the folder's top-level ``*.json`` files (config, generation config, tokenizer files, adapter
  config, training record) and ``*.safetensors`` weights, plus ``evaluation/report.json``;
- the remote-code files, taken from the installed g2m_hf package and uploaded flat:
  ``configuration_g2m.py``, ``modeling_g2m.py``, ``tokenization_g2m.py`` and everything they
  import relatively, found the way transformers finds it when it loads them; ``config.json``
  and ``tokenizer_config.json`` declare them (``auto_map``, by `g2m_hf.remote_code`);
- ``README.md``: the model card of `build_model_card` (or a card file the caller gives);
- ``g2m_push_manifest.json``: the list of the files this tool wrote.

What never goes up: pickle files (a folder whose weights are pickled is refused; pickled
Trainer state such as ``training_args.bin`` is skipped), Python files of the folder (the code
comes from the installed package), anything else (reported as skipped).

Remote files are never deleted unless the previous push's manifest lists them and this push
no longer writes them (a stale ``model.safetensors`` left beside a new sharded checkpoint
would otherwise shadow it). A re-push of an unchanged folder makes no commit.
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Literal

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, ModelCard, get_token
from huggingface_hub.errors import HFValidationError, OfflineModeIsEnabled
from huggingface_hub.hf_api import RepoFile
from huggingface_hub.utils import get_session, validate_repo_id
from huggingface_hub.utils.sha import git_hash, sha_fileobj
from transformers.dynamic_module_utils import get_relative_import_files

from g2m_hf.hub import CLIENT_ERROR, first_line, unreachable
from g2m_hf.remote_code import CONFIG_NAME, TOKENIZER_CONFIG_NAME, auto_map_modules, declared_files
from g2m_hf.validation import positive_float

from .errors import HubPushError
from .model_card import ADAPTER_CONFIG, EVALUATION_REPORT, build_model_card, read_json_object

logger = logging.getLogger(__name__)

MANIFEST_NAME = "g2m_push_manifest.json"
"""Repo file listing what the last push wrote: the only files a later push may delete."""

ADAPTER_WEIGHTS_NAME = "adapter_model.safetensors"
WEIGHTS_NAME = "model.safetensors"
WEIGHTS_INDEX_NAME = "model.safetensors.index.json"

REMOTE_CODE_ENTRY_POINTS = tuple(auto_map_modules())
"""Modules that ``auto_map`` names; their relative imports are collected with them."""

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
"""File types that hold pickles: never uploaded (loading one can run arbitrary code)."""

PICKLED_STATE_FILES = ("training_args.bin", "optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state.pth")
"""Pickled training state that Trainer leaves beside the weights: skipped, not refused."""


@dataclass
class UploadPlan:
    """What a push writes (repo path -> local file or bytes) and what it leaves out (path -> reason)."""

    model_dir: Path
    kind: Literal["model", "adapter"]
    files: dict[str, Path | bytes]
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass
class PushResult:
    """The outcome of `push_to_hub`."""

    repo_id: str
    commit_url: str
    commit_oid: str
    changed: bool
    """False when the repository already held exactly these files (no commit was made)."""
    uploaded: list[str]
    """Files that were new or different (identical ones are not sent)."""
    deleted: list[str]
    """Files an earlier push wrote that this one no longer does."""
    skipped: dict[str, str]
    pr_url: str | None = None


def remote_code_files() -> dict[str, Path]:
    """The remote-code modules of the installed g2m_hf, by file name (flat, relative imports).

    The entry points plus their relative imports, recursively, found with transformers' own
    scanner so that the set is exactly what ``trust_remote_code`` loading fetches.
    """
    spec = find_spec("g2m_hf")
    if spec is None or not spec.submodule_search_locations:
        raise HubPushError("the g2m_hf package is not installed: it provides the remote-code files")
    package = Path(list(spec.submodule_search_locations)[0])
    files: dict[str, Path] = {}
    for name in REMOTE_CODE_ENTRY_POINTS:
        entry = package / name
        if not entry.is_file():
            raise HubPushError(f"{entry}: missing from the installed g2m_hf package (remote code)")
        for path in [entry, *map(Path, get_relative_import_files(entry))]:
            if path.parent != package or not path.is_file():
                raise HubPushError(f"{entry}: imports {path.name}, which is not a flat module of g2m_hf")
            files[path.name] = path
    return files


def _check_weights(model_dir: Path, kind: str) -> list[str]:
    """The weight files of the folder; raises when they are missing (or a listed shard is)."""
    if kind == "adapter":
        if not (model_dir / ADAPTER_WEIGHTS_NAME).is_file():
            raise HubPushError(f"{model_dir}: {ADAPTER_WEIGHTS_NAME} is missing (adapter_config.json is there)")
        return [ADAPTER_WEIGHTS_NAME]
    if (model_dir / WEIGHTS_NAME).is_file():
        return [WEIGHTS_NAME]
    if (model_dir / WEIGHTS_INDEX_NAME).is_file():
        shards = sorted(set(read_json_object(model_dir / WEIGHTS_INDEX_NAME).get("weight_map", {}).values()))
        missing = [s for s in shards if not (model_dir / s).is_file()]
        if missing or not shards:
            raise HubPushError(f"{model_dir}: {WEIGHTS_INDEX_NAME} lists missing shards: {', '.join(missing)}")
        return shards
    raise HubPushError(
        f"{model_dir}: no {WEIGHTS_NAME} (or {WEIGHTS_INDEX_NAME}); save the model with save_pretrained()"
    )


def plan_upload(
    model_dir: str | os.PathLike, repo_id: str | None = None, model_card: ModelCard | None = None
) -> UploadPlan:
    """Check ``model_dir`` and list what a push would write, without any network access.

    Args:
        model_dir: a folder written by ``save_pretrained`` (model + tokenizer) or a PEFT adapter
            folder (recognised by ``adapter_config.json``).
        repo_id: the target repository (used in the model card's snippets).
        model_card: the card to upload as README.md; by default `build_model_card(model_dir, repo_id)`.

    Raises:
        HubPushError: the folder is missing, holds pickled weights, lacks a required file, or its
            config is not a g2m model's.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise HubPushError(f"{model_dir}: no such model folder")
    kind: Literal["model", "adapter"] = "adapter" if (model_dir / ADAPTER_CONFIG).is_file() else "model"
    entries = sorted(p for p in model_dir.iterdir() if not p.name.startswith("."))

    pickled = [p.name for p in entries if p.is_file() and p.suffix in PICKLE_SUFFIXES]
    pickled_weights = [n for n in pickled if n not in PICKLED_STATE_FILES and not n.endswith((".pkl", ".pickle"))]
    if pickled_weights:
        raise HubPushError(
            f"{model_dir}: holds pickled weights ({', '.join(pickled_weights)}), which are never uploaded; "
            "save the model with save_pretrained() (safetensors) or convert it with g2m-convert, "
            "and move the pickle files out of the folder"
        )

    required = [ADAPTER_CONFIG] if kind == "adapter" else [CONFIG_NAME, TOKENIZER_CONFIG_NAME]
    for name in required:
        if not (model_dir / name).is_file():
            hint = "tokenizer.save_pretrained(folder)" if name == TOKENIZER_CONFIG_NAME else "save_pretrained(folder)"
            raise HubPushError(f"{model_dir}: {name} is missing; write it with {hint}")
    if (model_dir / CONFIG_NAME).is_file():
        model_type = read_json_object(model_dir / CONFIG_NAME).get("model_type")
        if model_type != "g2m":
            raise HubPushError(f"{model_dir / CONFIG_NAME}: model_type is {model_type!r}, not a g2m model")
    weights = _check_weights(model_dir, kind)

    files: dict[str, Path | bytes] = {}
    skipped: dict[str, str] = {}
    for path in entries:
        name = path.name
        if path.is_dir():
            report = path / Path(EVALUATION_REPORT).name
            if path.name == Path(EVALUATION_REPORT).parent.name and report.is_file():
                files[EVALUATION_REPORT] = report
                skipped.update({f"{name}/{p.name}": "evaluation outputs: only report.json is uploaded"
                                for p in sorted(path.iterdir()) if p != report})
            else:
                skipped[f"{name}/"] = "sub-folders are not uploaded"
        elif name in pickled:
            skipped[name] = "pickle file: never uploaded"
        elif name == "README.md":
            skipped[name] = "replaced by the generated model card (pass a card file to upload yours)"
        elif path.suffix == ".py":
            skipped[name] = "remote code is taken from the installed g2m_hf package"
        elif path.suffix == ".json" or name in weights:
            files[name] = path
        else:
            skipped[name] = "not part of a model repository"
    files.pop(MANIFEST_NAME, None)

    if CONFIG_NAME in files or TOKENIZER_CONFIG_NAME in files:
        files.update(remote_code_files())
        read_json_object(model_dir / TOKENIZER_CONFIG_NAME)  # a malformed file is refused, naming it
        files.update(declared_files(model_dir, remote_code=True))

    card = model_card if model_card is not None else build_model_card(model_dir, repo_id)
    files["README.md"] = str(card).encode()
    manifest = {"generator": "g2m-push (hub_upload)", "files": sorted([*files, MANIFEST_NAME])}
    files[MANIFEST_NAME] = (json.dumps(manifest, indent=2) + "\n").encode()
    return UploadPlan(model_dir=model_dir, kind=kind, files=dict(sorted(files.items())), skipped=skipped)


DEFAULT_TIMEOUT_SECONDS = 60.0
"""How long `push_to_hub` waits for the Hub to answer one request (huggingface_hub itself waits forever)."""


def _hub_error(repo_id: str, action: str, error: Exception, endpoint: str, timeout: float) -> HubPushError:
    """Our one-line error for a failed Hub call: what we were doing, where, why, and what to do."""
    if isinstance(error, OfflineModeIsEnabled):
        return HubPushError(f"{repo_id}: cannot {action}: HF_HUB_OFFLINE is set; unset it to push")
    no_answer = unreachable(endpoint, error, timeout, "--timeout")
    if no_answer is not None:
        return HubPushError(f"{repo_id}: cannot {action}: {no_answer}")
    reason = first_line(error)
    status = getattr(getattr(error, "response", None), "status_code", None)
    if status == 401:
        reason += " (the token is missing, invalid or expired: log in again with `hf auth login` or pass --token)"
    elif status == 403:
        reason += " (check that your token has write access to this namespace)"
    elif status == 404:
        reason += " (check the repository id, the branch and that your token can see the repository)"
    return HubPushError(f"{repo_id}: cannot {action}: {reason}")


@contextmanager
def _request_timeout(seconds: float) -> Iterator[None]:
    """Give huggingface_hub's shared HTTP client a per-request timeout for the duration of a push."""
    session = get_session()
    previous = session.timeout
    session.timeout = type(previous)(seconds)
    try:
        yield
    finally:
        session.timeout = previous


def _check_remote_is_g2m(api: HfApi, repo_id: str, branch: str, remote: dict[str, RepoFile]) -> None:
    """Refuse to push over a model of another kind (a repository whose config.json we did not write)."""
    if CONFIG_NAME not in remote or MANIFEST_NAME in remote:
        return
    try:
        model_type = read_json_object(Path(api.hf_hub_download(repo_id, CONFIG_NAME, revision=branch))).get(
            "model_type"
        )
    except HubPushError:
        model_type = None
    if model_type != "g2m":
        raise HubPushError(
            f"{repo_id}: holds a {model_type or 'non-G2M'} model (config.json model_type {model_type!r}), "
            "not a G2M model; push to another repository"
        )


def _same_file(remote: RepoFile | None, content: Path | bytes) -> bool:
    """Whether the repository already holds ``content`` at this path (LFS files: by sha256, others: git oid)."""
    if remote is None:
        return False
    if remote.lfs is not None:
        with io.BytesIO(content) if isinstance(content, bytes) else content.open("rb") as handle:
            return remote.lfs.sha256 == sha_fileobj(handle).hex()
    return remote.blob_id == git_hash(content if isinstance(content, bytes) else content.read_bytes())


def _previous_manifest(api: HfApi, repo_id: str, revision: str) -> list[str]:
    """Files the previous push wrote at ``revision`` (the manifest must exist there)."""
    path = api.hf_hub_download(repo_id, MANIFEST_NAME, revision=revision)
    try:
        files = json.loads(Path(path).read_text(encoding="utf-8")).get("files", [])
    except (OSError, ValueError, AttributeError):
        logger.warning("%s: unreadable %s, no stale file will be deleted", repo_id, MANIFEST_NAME)
        return []
    return [f for f in files if isinstance(f, str)]


def push_to_hub(
    model_dir: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    create_pr: bool = False,
    token: str | None = None,
    endpoint: str | None = None,
    model_card: ModelCard | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> PushResult:
    """Upload a g2m model or adapter folder to ``repo_id`` (created when missing) in one commit.

    Args:
        model_dir: the folder to upload (see `plan_upload` for what is uploaded and refused).
        repo_id: ``user/name`` (or ``organization/name``).
        private: create the repository private (an existing repository keeps its visibility).
        revision: the branch to commit to (created from main when missing); default main.
        commit_message: defaults to "Upload <model|adapter> with g2m-push".
        create_pr: open a pull request against main instead of committing to it.
        token: a Hub token with write access; default: the logged-in token or ``HF_TOKEN``.
        endpoint: the Hub URL; default ``HF_ENDPOINT`` or huggingface.co.
        model_card: a card to upload instead of the generated one.
        timeout: seconds to wait for each answer of the Hub.

    Raises:
        HubPushError: the folder is refused (see `plan_upload`), no token is available, the Hub cannot
            be reached or does not answer in time, refuses an operation, or the repository holds a
            model of another kind (the message names the repository or endpoint, the reason and what to do).
    """
    positive_float("timeout", timeout)
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise HubPushError(f"{repo_id!r}: not a valid repository id ({error})") from None
    if "/" not in repo_id:
        raise HubPushError(f"{repo_id!r}: give the repository as USER/NAME (or ORGANIZATION/NAME)")
    if create_pr and revision not in (None, "main"):
        raise HubPushError(f"{repo_id}: a pull request is opened against main; do not combine it with --revision")
    plan = plan_upload(model_dir, repo_id, model_card)
    branch = revision or "main"
    if token is None and get_token() is None:
        raise HubPushError(
            f"{repo_id}: no Hugging Face token: log in with `hf auth login`, set HF_TOKEN or pass --token"
        )
    api = HfApi(endpoint=endpoint, token=token)

    action = "create the repository"
    with _request_timeout(timeout):
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
            if private and not api.model_info(repo_id).private:
                logger.warning(
                    "%s already exists and is public: --private applies only to new repositories", repo_id
                )
            if branch != "main":
                action = f"create the branch {branch}"
                api.create_branch(repo_id, branch=branch, exist_ok=True)
            action = "read the repository"
            head = api.model_info(repo_id, revision=branch).sha
            remote = {
                f.path: f for f in api.list_repo_tree(repo_id, revision=branch, recursive=True) if isinstance(f, RepoFile)
            }
            _check_remote_is_g2m(api, repo_id, branch, remote)
            previous = _previous_manifest(api, repo_id, branch) if MANIFEST_NAME in remote else []
            stale = sorted(f for f in previous if f in remote and f not in plan.files)
            # Identical files are not sent, and an unchanged folder makes no commit.
            changed = [path for path, content in plan.files.items() if not _same_file(remote.get(path), content)]
            commit_url, commit_oid, pr_url = f"{api.endpoint}/{repo_id}/commit/{head}", head, None
            if changed or stale:
                action = "commit"
                commit = api.create_commit(
                    repo_id,
                    [CommitOperationAdd(path, plan.files[path]) for path in changed]
                    + [CommitOperationDelete(path) for path in stale],
                    commit_message=commit_message or f"Upload {plan.kind} with g2m-push",
                    revision=branch,
                    create_pr=create_pr,
                )
                commit_url, commit_oid, pr_url = commit.commit_url, commit.oid, commit.pr_url
        except (CLIENT_ERROR, OfflineModeIsEnabled) as error:
            raise _hub_error(repo_id, action, error, api.endpoint, timeout) from None

    return PushResult(
        repo_id=repo_id,
        commit_url=commit_url,
        commit_oid=commit_oid,
        changed=bool(changed or stale),
        uploaded=changed,
        deleted=stale,
        skipped=plan.skipped,
        pr_url=pr_url,
    )


__all__ = ["MANIFEST_NAME", "PushResult", "UploadPlan", "plan_upload", "push_to_hub", "remote_code_files"]
