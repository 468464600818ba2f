"""A loopback Hugging Face Hub for the test suite (standard library only).

It speaks the subset of the Hub HTTP API that ``huggingface_hub`` (2.x) and ``transformers``
use to push and load a model, so that uploads and ``from_pretrained`` are tested over a
real socket without the internet:

==========================================  ================================================
``GET  /api/whoami-v2``                     the user of the Bearer token
``POST /api/repos/create`` / ``delete``     create (with a ``.gitattributes`` commit) / delete
``POST /api/validate-yaml``                 accepts any card with a closed front matter
``GET  /api/models/{id}[/revision/{rev}]``  model info (``sha``, ``private``, ``siblings``)
``GET  /api/models/{id}/tree/{rev}[/path]`` file listing (``recursive``)
``POST /api/models/{id}/paths-info/{rev}``  information on some paths
``GET  /api/models/{id}/refs``              branches and pull-request refs
``GET  /api/models/{id}/commits/{rev}``     history, newest first
``POST /api/models/{id}/branch/{name}``     create a branch (``startingPoint``)
``POST /api/models/{id}/preupload/{rev}``   answers ``"regular"`` for every file (no LFS/Xet)
``POST /api/models/{id}/commit/{rev}``      NDJSON commit: inline base64 files, deletions,
                                            ``create_pr=1`` opens ``refs/pr/N``
``HEAD|GET /{id}/resolve/{rev}/{path}``     download with ``ETag``, ``X-Repo-Commit``,
                                            ``Content-Length``
==========================================  ================================================

Every file travels inline (base64) and is stored as is, but files that ``.gitattributes`` tracks
with LFS (``*.safetensors`` in a new repository) are *listed* as the Hub lists them: the git oid
of their pointer file plus ``lfs.sha256``, and ``ETag``/``X-Linked-Etag`` = sha256 on download.

Errors carry the ``X-Error-Code`` header (``RepoNotFound``, ``RevisionNotFound``,
``EntryNotFound``) that the client turns into its typed exceptions. A private repository is
invisible (401 ``RepoNotFound``) without its owner's token; writing needs the owner's token.

State lives under ``--root``: ``blobs/<git sha1>`` holds file contents and ``state.json``
the repositories (refs and commits, each commit a full ``path -> blob`` map), so a
restarted server keeps its repositories. Run it with::

    python tests/hub_server.py --port 0 --root /tmp/hub --user alice:hf_alice_token

It prints ``listening on http://127.0.0.1:PORT`` once it accepts connections (``--port 0``
picks a free port).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import fnmatch
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

DEFAULT_USER = ("g2m-user", "hf_loopback_token")
"""The account served when no ``--user`` is given (name, token)."""

GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
"""Content of the initial commit of a new repository, as on the Hub."""


def git_blob_id(content: bytes) -> str:
    """The git object id of a file (what the Hub reports as a regular file's ``oid``/``ETag``)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class HubError(Exception):
    """An HTTP error answer: status, ``X-Error-Code`` and message."""

    def __init__(self, status: int, message: str, code: str | None = None, commit: str | None = None, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.code, self.commit, self.extra = status, message, code, commit, extra


class Store:
    """Repositories, refs, commits and blobs, persisted under ``root``. One lock guards all of it."""

    def __init__(self, root: Path):
        self.root = root
        self.blobs = root / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.state_file = root / "state.json"
        self.lock = threading.RLock()
        self.sha256: dict[str, str] = {}  # blob id -> content sha256, for LFS listings
        self.repos: dict[str, dict[str, Any]] = (
            json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
        )

    def save(self) -> None:
        """Write the state atomically (a crash never leaves a half-written file)."""
        fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(self.repos, f)
        os.replace(tmp, self.state_file)

    def put_blob(self, content: bytes) -> str:
        oid = git_blob_id(content)
        path = self.blobs / oid
        if not path.exists():
            path.write_bytes(content)
        return oid

    def blob(self, oid: str) -> bytes:
        return (self.blobs / oid).read_bytes()

    def blob_size(self, oid: str) -> int:
        return (self.blobs / oid).stat().st_size

    def lfs_info(self, files: dict[str, str], path: str) -> dict[str, Any] | None:
        """How the Hub lists a file that ``.gitattributes`` tracks with LFS, else None.

        Such files are stored inline like any other, but listed as on the Hub: the git oid is the
        pointer file's and ``lfs`` carries the content's sha256 (what clients compare to skip uploads).
        """
        attributes = self.blob(files[".gitattributes"]).decode() if ".gitattributes" in files else ""
        patterns = [line.split()[0] for line in attributes.splitlines() if "filter=lfs" in line.split()[1:]]
        if not any(fnmatch.fnmatch(path.rsplit("/", 1)[-1], p) or fnmatch.fnmatch(path, p) for p in patterns):
            return None
        blob = files[path]
        if blob not in self.sha256:
            self.sha256[blob] = hashlib.sha256(self.blob(blob)).hexdigest()
        size = self.blob_size(blob)
        pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256[blob]}\nsize {size}\n"
        return {"oid": self.sha256[blob], "size": size, "pointerSize": len(pointer),
                "pointerOid": git_blob_id(pointer.encode())}

    # --- repositories ------------------------------------------------------------------

    def repo(self, repo_id: str, user: str | None, *, write: bool = False) -> dict[str, Any]:
        """The repository, if ``user`` may see it (and write to it when ``write``)."""
        repo = self.repos.get(repo_id)
        if repo is None or (repo["private"] and user != repo["owner"]):
            # The Hub does not reveal that a private repository exists.
            raise HubError(401 if user is None else 404, f"Repository {repo_id} not found", "RepoNotFound")
        if write and user != repo["owner"]:
            if user is None:
                raise HubError(401, "You must be authenticated to write to this repository")
            raise HubError(403, f"You don't have the rights to write to {repo_id}")
        return repo

    def create_repo(self, repo_id: str, owner: str, private: bool, url: str) -> None:
        if repo_id in self.repos:
            # The client reads the url of the existing repository from this answer (exist_ok=True).
            raise HubError(409, f"You already created this model repo: {repo_id}", url=url)
        repo = {"owner": owner, "private": private, "created": now(), "refs": {}, "commits": {}, "prs": 0}
        self.repos[repo_id] = repo
        files = {".gitattributes": self.put_blob(GITATTRIBUTES)}
        repo["refs"]["main"] = self.commit(repo, None, files, "initial commit", "", owner)

    def commit(
        self, repo: dict, parent: str | None, files: dict[str, str], title: str, message: str, author: str
    ) -> str:
        """Store a commit whose tree is ``files`` (path -> blob id); returns its 40-hex id (refs move elsewhere)."""
        body = {"parents": [parent] if parent else [], "files": files, "title": title, "message": message,
                "author": author, "date": now()}
        oid = hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()
        repo["commits"][oid] = body
        return oid

    @staticmethod
    def resolve(repo: dict, revision: str) -> str:
        """A branch, a ``refs/pr/N`` ref, ``refs/heads/X`` or a full commit id -> commit id."""
        revision = revision.removeprefix("refs/heads/")
        if revision in repo["refs"]:
            return repo["refs"][revision]
        if revision in repo["commits"]:
            return revision
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")


class HubHandler(BaseHTTPRequestHandler):
    """Routes one request to a ``_api_*`` / ``_resolve`` method; answers JSON or bytes."""

    protocol_version = "HTTP/1.1"  # keep-alive: every answer carries a Content-Length
    server: HubServer

    # --- plumbing ----------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write("hub %s\n" % (format % args))

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{self.headers.get('Host', f'{host}:{port}')}"

    @property
    def user(self) -> str | None:
        """The user of the Bearer token; an unknown token is refused (401) like on the Hub."""
        auth = self.headers.get("Authorization", "")
        if not auth:
            return None
        token = auth.removeprefix("Bearer ").strip()
        if token not in self.server.tokens:
            raise HubError(401, "Invalid credentials in Authorization header")
        return self.server.tokens[token]

    def body(self) -> bytes:
        return self._body

    def send(self, status: int, payload: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def send_json(self, value: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.send(status, json.dumps(value).encode(), "application/json", headers)

    def dispatch(self) -> None:
        # Read the whole body first: on a keep-alive connection an unread body would be
        # taken for the next request when this one is refused early.
        length = int(self.headers.get("Content-Length") or 0)
        self._body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        self.query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        # Split before unquoting: a quoted revision ("refs%2Fpr%2F1") stays one segment.
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        with self.server.store.lock:
            try:
                self.route(parts)
            except HubError as e:
                headers = {"X-Error-Message": e.message}
                if e.code:
                    headers["X-Error-Code"] = e.code
                if e.commit:
                    headers["X-Repo-Commit"] = e.commit
                self.send_json({"error": e.message, **e.extra}, e.status, headers)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = dispatch

    def route(self, parts: list[str]) -> None:
        method = self.command
        if parts[:2] == ["api", "whoami-v2"] and method == "GET":
            return self._api_whoami()
        if parts[:2] == ["api", "repos"] and len(parts) == 3 and method == "POST":
            return {"create": self._api_create_repo, "delete": self._api_delete_repo}.get(
                parts[2], self._not_found)()
        if parts[:2] == ["api", "validate-yaml"] and method == "POST":
            return self._api_validate_yaml()
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            repo_id, action, rest = "/".join(parts[2:4]), (parts[4] if len(parts) > 4 else ""), parts[5:]
            handler = {
                ("GET", ""): self._api_model_info, ("GET", "revision"): self._api_model_info,
                ("GET", "tree"): self._api_tree, ("POST", "paths-info"): self._api_paths_info,
                ("GET", "refs"): self._api_refs, ("GET", "commits"): self._api_commits,
                ("POST", "branch"): self._api_branch, ("POST", "preupload"): self._api_preupload,
                ("POST", "commit"): self._api_commit,
            }.get((method, action))
            if handler is not None:
                return handler(repo_id, rest)
        if len(parts) >= 5 and parts[2] == "resolve" and method in ("GET", "HEAD"):
            return self._resolve("/".join(parts[:2]), parts[3], "/".join(parts[4:]))
        self._not_found()

    def _not_found(self, *_: Any) -> None:
        raise HubError(404, f"{self.command} {self.path} is not served by the loopback hub")

    # --- account and repositories ------------------------------------------------------

    def _api_whoami(self) -> None:
        user = self.user
        if user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        self.send_json({"type": "user", "id": user, "name": user, "fullname": user, "orgs": [],
                        "auth": {"type": "access_token", "accessToken": {"role": "write"}}})

    def _api_create_repo(self) -> None:
        request = json.loads(self.body() or b"{}")
        user = self.user
        if user is None:
            raise HubError(401, "You must be authenticated to create a repository")
        if request.get("type", "model") != "model":
            raise HubError(400, "The loopback hub only serves model repositories")
        namespace = request.get("organization") or user
        if namespace != user:
            raise HubError(403, f"You don't have the rights to create a repository under {namespace}")
        repo_id = f"{namespace}/{request['name']}"
        private = request.get("visibility") == "private" or bool(request.get("private"))
        self.server.store.create_repo(repo_id, user, private, f"{self.endpoint}/{repo_id}")
        self.server.store.save()
        self.send_json({"url": f"{self.endpoint}/{repo_id}", "name": repo_id, "id": repo_id})

    def _api_delete_repo(self) -> None:
        request = json.loads(self.body() or b"{}")
        user = self.user
        repo_id = f"{request.get('organization') or user}/{request['name']}"
        self.server.store.repo(repo_id, user, write=True)
        del self.server.store.repos[repo_id]
        self.server.store.save()
        self.send_json({})

    def _api_validate_yaml(self) -> None:
        content = json.loads(self.body() or b"{}").get("content", "")
        lines = content.splitlines()
        if lines and lines[0].strip() == "---" and "---" not in (line.strip() for line in lines[1:]):
            self.send_json({"errors": [{"message": "metadata block is not closed by '---'"}]}, 400)
        else:
            self.send_json({"errors": [], "warnings": []})

    # --- reading -------------------------------------------------------------------------

    def _files_at(self, repo_id: str, revision: str) -> tuple[dict, str, dict[str, str]]:
        repo = self.server.store.repo(repo_id, self.user)
        oid = Store.resolve(repo, revision)
        return repo, oid, repo["commits"][oid]["files"]

    def _file_entry(self, repo: dict, commit: str, path: str, blob: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": "file", "oid": blob, "size": self.server.store.blob_size(blob), "path": path}
        lfs = self.server.store.lfs_info(repo["commits"][commit]["files"], path)
        if lfs:
            entry["oid"] = lfs.pop("pointerOid")
            entry["lfs"] = lfs
        if self.query.get("expand", "").lower() == "true":
            entry["lastCommit"] = self._last_commit(repo, commit, path)
        return entry

    @staticmethod
    def _last_commit(repo: dict, commit: str, path: str) -> dict[str, str]:
        """The newest commit in ``commit``'s first-parent history that changed ``path``."""
        while True:
            body = repo["commits"][commit]
            parent = body["parents"][0] if body["parents"] else None
            if parent is None or repo["commits"][parent]["files"].get(path) != body["files"].get(path):
                return {"id": commit, "title": body["title"], "date": body["date"]}
            commit = parent

    def _api_model_info(self, repo_id: str, rest: list[str]) -> None:
        repo, oid, files = self._files_at(repo_id, rest[0] if rest else "main")
        siblings = []
        for path in sorted(files):
            sibling: dict[str, Any] = {"rfilename": path}
            if self.query.get("blobs", "").lower() == "true":
                entry = self._file_entry(repo, oid, path, files[path])
                sibling.update(size=entry["size"], blobId=entry["oid"])
                if "lfs" in entry:
                    lfs = entry["lfs"]
                    sibling["lfs"] = {"size": lfs["size"], "sha256": lfs["oid"], "pointerSize": lfs["pointerSize"]}
            siblings.append(sibling)
        self.send_json({
            "_id": repo_id, "id": repo_id, "modelId": repo_id, "author": repo_id.split("/")[0], "sha": oid,
            "lastModified": repo["commits"][oid]["date"], "createdAt": repo["created"],
            "private": repo["private"], "gated": False, "disabled": False, "downloads": 0, "likes": 0,
            "tags": [], "siblings": siblings,
        })

    def _api_tree(self, repo_id: str, rest: list[str]) -> None:
        repo, oid, files = self._files_at(repo_id, rest[0] if rest else "main")
        prefix = "/".join(rest[1:]).strip("/")
        recursive = self.query.get("recursive", "").lower() == "true"
        below = {p: b for p, b in files.items() if not prefix or p.startswith(prefix + "/")}
        if prefix and not below:
            raise HubError(404, f"{prefix} does not exist at {oid}", "EntryNotFound", oid)
        entries, folders = [], set()
        for path, blob in sorted(below.items()):
            dirs = (path[len(prefix) + 1:] if prefix else path).split("/")[:-1]
            # Non-recursive listings show a file's first folder below the prefix instead of the file.
            depths = range(1, len(dirs) + 1) if recursive else range(1, min(len(dirs), 1) + 1)
            folders.update("/".join(filter(None, [prefix, *dirs[:d]])) for d in depths)
            if recursive or not dirs:
                entries.append(self._file_entry(repo, oid, path, blob))
        entries += [{"type": "directory", "oid": hashlib.sha1(f.encode()).hexdigest(), "path": f}
                    for f in sorted(folders)]
        self.send_json(entries)

    def _api_paths_info(self, repo_id: str, rest: list[str]) -> None:
        repo, oid, files = self._files_at(repo_id, rest[0] if rest else "main")
        form = parse_qs(self.body().decode())
        self.query["expand"] = form.get("expand", ["false"])[-1]
        entries = []
        for path in form.get("paths", []):
            path = path.strip("/")
            if path in files:
                entries.append(self._file_entry(repo, oid, path, files[path]))
            elif any(p.startswith(path + "/") for p in files):
                entries.append({"type": "directory", "oid": hashlib.sha1(path.encode()).hexdigest(), "path": path})
        self.send_json(entries)

    def _api_refs(self, repo_id: str, rest: list[str]) -> None:
        repo = self.server.store.repo(repo_id, self.user)
        branches = [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": c}
                    for n, c in sorted(repo["refs"].items()) if not n.startswith("refs/")]
        prs = [{"name": n, "ref": n, "targetCommit": c}
               for n, c in sorted(repo["refs"].items()) if n.startswith("refs/pr/")]
        answer = {"branches": branches, "tags": [], "converts": []}
        if self.query.get("include_prs"):
            answer["pullRequests"] = prs
        self.send_json(answer)

    def _api_commits(self, repo_id: str, rest: list[str]) -> None:
        repo, oid, _ = self._files_at(repo_id, rest[0] if rest else "main")
        history = []
        while oid is not None:
            body = repo["commits"][oid]
            history.append({"id": oid, "title": body["title"], "message": body["message"], "date": body["date"],
                            "authors": [{"user": body["author"]}]})
            oid = body["parents"][0] if body["parents"] else None
        self.send_json(history)

    def _resolve(self, repo_id: str, revision: str, path: str) -> None:
        _, oid, files = self._files_at(repo_id, revision)
        if path not in files:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", oid)
        blob = files[path]
        content = self.server.store.blob(blob)
        headers = {"ETag": f'"{blob}"', "X-Repo-Commit": oid, "Accept-Ranges": "none",
                   "Content-Disposition": f"inline; filename*=UTF-8''{quote(path.rsplit('/', 1)[-1])}"}
        lfs = self.server.store.lfs_info(files, path)
        if lfs:  # the Hub names LFS content by its sha256 (and would redirect to a CDN; we serve it here)
            headers.update({"ETag": f'"{lfs["oid"]}"', "X-Linked-Etag": f'"{lfs["oid"]}"',
                            "X-Linked-Size": str(lfs["size"])})
        self.send(200, content, "application/octet-stream", headers)

    # --- writing -------------------------------------------------------------------------

    def _api_branch(self, repo_id: str, rest: list[str]) -> None:
        repo = self.server.store.repo(repo_id, self.user, write=True)
        branch = "/".join(rest)
        if branch in repo["refs"]:
            raise HubError(409, f"Reference refs/heads/{branch} already exists")
        start = json.loads(self.body() or b"{}").get("startingPoint") or "main"
        repo["refs"][branch] = Store.resolve(repo, start)
        self.server.store.save()
        self.send_json({})

    def _api_preupload(self, repo_id: str, rest: list[str]) -> None:
        repo = self.server.store.repo(repo_id, self.user, write=True)
        files = repo["commits"][Store.resolve(repo, rest[0] if rest else "main")]["files"]
        request = json.loads(self.body() or b"{}")
        # "regular" for every file: contents come inline in the commit, never through LFS/Xet.
        self.send_json({"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                                   "oid": files.get(f["path"])} for f in request.get("files", [])]})

    def _api_commit(self, repo_id: str, rest: list[str]) -> None:
        store = self.server.store
        user = self.user
        repo = store.repo(repo_id, user, write=True)
        revision = (rest[0] if rest else "main").removeprefix("refs/heads/")
        parent = Store.resolve(repo, revision)
        if revision not in repo["refs"]:  # a commit id
            raise HubError(400, f"Can only commit to a branch or a pull request, not {revision}")
        files = dict(repo["commits"][parent]["files"])
        header: dict[str, Any] = {}
        for line in self.body().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                header = value
            elif key == "file":
                if value.get("encoding", "base64") != "base64":
                    raise HubError(400, f"Unsupported encoding {value.get('encoding')}")
                files[value["path"]] = store.put_blob(base64.b64decode(value["content"]))
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    raise HubError(404, f"A file with this name doesn't exist: {value['path']}", "EntryNotFound")
            elif key == "deletedFolder":
                folder = value["path"].rstrip("/") + "/"
                files = {p: b for p, b in files.items() if not p.startswith(folder)}
            else:  # "lfsFile": preupload never asks for LFS, so a client sending it is misbehaving
                raise HubError(400, f"The loopback hub does not accept '{key}' operations")
        if header.get("parentCommit") and header["parentCommit"] != parent:
            raise HubError(412, "A commit has happened since the parent commit; rebase and retry")
        oid = store.commit(repo, parent, files, header.get("summary", ""), header.get("description", ""), user)
        pr_url = None
        if self.query.get("create_pr") == "1":
            repo["prs"] += 1
            repo["refs"][f"refs/pr/{repo['prs']}"] = oid
            pr_url = f"{self.endpoint}/{repo_id}/discussions/{repo['prs']}"
        else:
            repo["refs"][revision] = oid
        store.save()
        self.send_json({"success": True, "commitOid": oid, "commitUrl": f"{self.endpoint}/{repo_id}/commit/{oid}",
                        "pullRequestUrl": pr_url, "hookOutput": ""})


class LoopbackHub:
    """This server running in a subprocess, for test fixtures: ``LoopbackHub.start(root)`` ... ``stop()``."""

    USERS = {"alice": "hf_alice_write_token", "bob": "hf_bob_write_token"}
    """Accounts of the fixture server (name -> token)."""

    def __init__(self, process: subprocess.Popen, url: str, root: Path):
        self.process, self.url, self.root = process, url, root

    @classmethod
    def start(cls, root: Path) -> LoopbackHub:
        """Start on a free port (the server picks it and prints it); its log goes to ``root/server.log``."""
        root.mkdir(parents=True, exist_ok=True)
        users = [f"--user={name}:{token}" for name, token in cls.USERS.items()]
        with open(root / "server.log", "wb") as log:
            process = subprocess.Popen(
                [sys.executable, __file__, "--port", "0", "--root", str(root / "data"), *users],
                stdout=subprocess.PIPE, stderr=log, text=True,
            )
        line = process.stdout.readline()  # the server prints its URL once it accepts connections
        if not line.startswith("listening on "):
            process.kill()
            raise RuntimeError(f"loopback hub did not start: {(root / 'server.log').read_text()}")
        return cls(process, line.split()[-1], root)

    def stop(self) -> None:
        """Stop the server by its process id (SIGTERM; every write is already on disk)."""
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process.stdout.close()


class HubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, root: Path, users: dict[str, str]):
        super().__init__(("127.0.0.1", port), HubHandler)
        self.store = Store(root)
        self.tokens = {token: name for name, token in users.items()}


def parse_user(text: str) -> tuple[str, str]:
    name, sep, token = text.partition(":")
    if not (sep and name and token):
        raise argparse.ArgumentTypeError(f"expected NAME:TOKEN, got {text!r}")
    return name, token


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--root", type=Path, required=True, help="folder holding the repositories")
    parser.add_argument("--user", type=parse_user, action="append", metavar="NAME:TOKEN",
                        help=f"an account (repeatable; default {DEFAULT_USER[0]}:{DEFAULT_USER[1]})")
    args = parser.parse_args(argv)
    server = HubServer(args.port, args.root, dict(args.user or [DEFAULT_USER]))
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
