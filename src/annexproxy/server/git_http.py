"""The git side of ``annexproxy serve``: git's smart HTTP protocol and annex discovery.

So that ``git clone http://HOST:PORT/<repo>`` followed by ``git annex get`` works with no
other set-up, the server that answers the P2P-over-HTTP API below ``/git-annex/`` also
serves each repository's git objects and the ``config`` file git-annex reads to find the
API (wire.md 6.1).

URL layout (a repository's *URL names*):

- one repository (``annexproxy serve`` run inside it): ``/``, ``/<name>`` and
  ``/<name>.git`` (a bare ``name.git`` is also ``/name``); a non-bare repository is also
  ``/<name>/.git``.
- ``--directory DIR``: each repository at its path relative to DIR, nested folders
  included, with the same ``.git`` aliases; DIR itself, if it is a repository, at ``/``.
  A real name wins over an alias of another repository. ``/git-annex/`` is the API's.

Below a repository URL: ``config`` (GET, the discovery text), the smart-HTTP services
(``info/refs?service=...``, POST ``git-upload-pack`` and ``git-receive-pack``) and the
read-only files of the dumb protocol, all run by ``git http-backend`` (one CGI process
per request, `annexproxy.transports.cgi`). Anything else is 404.

Rules this module keeps: a URL is never turned into a file-system path, only looked up
among the URL names of the served repositories, so ``..``, encoded slashes, absolute
paths and symlinks cannot reach anything else (404). Access is the API's `AuthPolicy`:
fetches, clones and ``config`` are decided as the read endpoint ``checkpresent``, pushes
(``git-receive-pack``) as the write endpoint ``put``.

A push that moves the tracking branch of a proxied export remote is exported before its
response ends (git-annex's post-receive hook, `annexproxy.server.export_hook`); the
report goes to the client as side-band progress lines.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs, quote, unquote

from aiohttp import web

from annexproxy.cluster.gateway import GatewayTargets
from annexproxy.errors import AnnexProxyError, ConfigError
from annexproxy.p2phttp.api import HttpError
from annexproxy.p2phttp.auth import AuthPolicy
from annexproxy.server.export_hook import export_pushed, moved, watch
from annexproxy.server.served import ServedRepositories, ServedRepository
from annexproxy.transports.cgi import respond_with_cgi

Segments = tuple[str, ...]
READ_METHODS: Final = frozenset({"GET", "HEAD"})
# The files git http-backend serves to dumb-protocol clients (its route table); SHA-1 or
# SHA-256 object names.
_DUMB: Final = re.compile(
    r"HEAD|info/refs|objects/info/(?:packs|alternates|http-alternates)"
    r"|objects/[0-9a-f]{2}/(?:[0-9a-f]{38}|[0-9a-f]{62})"
    r"|objects/pack/pack-(?:[0-9a-f]{40}|[0-9a-f]{64})\.(?:pack|idx)"
)
log = logging.getLogger("annexproxy.export")
_MAX_BAND_PAYLOAD: Final = 1000
_SERVICES: Final = frozenset({"git-upload-pack", "git-receive-pack"})
# host = IP-literal / reg-name, then an optional port (RFC 3986 3.2.2, restricted so that
# the value is safe inside the git-config text it goes into).
_HOST: Final = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::[0-9]{1,5})?")
_GIT_PROTOCOL: Final = re.compile(r"[A-Za-z0-9=:._-]{1,256}")
_CLEARED_ENV: Final = frozenset(
    {
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_COMMON_DIR",
        "GIT_INDEX_FILE",
        "GIT_NAMESPACE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_PROTOCOL",
        "REMOTE_USER",
        "REMOTE_ADDR",
        "CONTENT_TYPE",
        "CONTENT_LENGTH",
        "QUERY_STRING",
        "PATH_INFO",
        "PATH_TRANSLATED",
        "REQUEST_METHOD",
    }
)
# Content codings aiohttp decodes before the handler reads the body; git http-backend
# must then not decode again. Others (x-gzip) pass through for http-backend to handle.
_DECODED_BY_AIOHTTP: Final = frozenset({"gzip", "deflate", "br", "zstd"})


@dataclass(frozen=True, slots=True, kw_only=True)
class GitRequest:
    """What a request below a repository URL asks for."""

    kind: str  # "config" or "cgi"
    write: bool  # git-receive-pack (a push) rather than a read
    path_info: str  # for the CGI program: "/" + the path below the repository URL


def classify(rest: Segments, method: str, query: Mapping[str, list[str]]) -> GitRequest:
    """Route the path below a repository URL.

    Raises:
        HttpError: 404 for a path git does not use, 405 for a wrong method.
    """
    joined = "/".join(rest)
    service = (query.get("service") or [""])[0]
    if joined == "config":
        kind, methods, write = "config", READ_METHODS, False
    elif joined in _SERVICES:
        kind, methods, write = "cgi", frozenset({"POST"}), joined == "git-receive-pack"
    elif _DUMB.fullmatch(joined):
        kind, methods = "cgi", READ_METHODS
        write = joined == "info/refs" and service == "git-receive-pack"
    else:
        raise HttpError(404)
    if method not in methods:
        raise HttpError(405, headers={"Allow": ", ".join(sorted(methods))})
    return GitRequest(kind=kind, write=write, path_info="/" + joined)


def is_git_path(rest: Segments) -> bool:
    """Whether ``rest`` is a path git or git-annex asks for below a repository URL."""
    joined = "/".join(rest)
    return joined == "config" or joined in _SERVICES or _DUMB.fullmatch(joined) is not None


def split_path(raw_path: str) -> Segments:
    """The decoded segments of a raw request path, empty segments dropped.

    Raises:
        HttpError: 404 for a segment that is ``.`` or ``..`` or decodes to something
            containing a slash, a backslash or NUL, or for a path that is not absolute.
    """
    path = raw_path.split("?", 1)[0]
    if not path.startswith("/"):
        raise HttpError(404)
    segments: list[str] = []
    for raw in path.split("/"):
        try:
            segment = unquote(raw, errors="strict")
        except UnicodeDecodeError as exc:
            raise HttpError(404) from exc
        if segment in (".", "..") or any(c in segment for c in "/\\\0"):
            raise HttpError(404)
        if segment:
            segments.append(segment)
    return tuple(segments)


def url_names(relative: Segments, *, bare: bool, at_root: bool) -> list[Segments]:
    """The URL names of a repository at ``relative``: the real one first, then aliases."""
    names = [relative]
    if relative:
        *parent, last = relative
        if last.endswith(".git") and len(last) > len(".git"):
            names.append((*parent, last[: -len(".git")]))
        else:
            names.append((*parent, last + ".git"))
        if not bare:
            names.append((*relative, ".git"))
    if at_root and relative:
        names.append(())
    return names


def discovery_config(uuid: str, annex_url: str) -> str:
    """The ``config`` text git-annex reads after a clone over HTTP (wire.md 6.1)."""
    return f"[annex]\n\tuuid = {uuid}\n\turl = {annex_url}\n"


class GitUrlMap:
    """The served repositories by URL name."""

    def __init__(
        self,
        repositories: ServedRepositories,
        *,
        singles: Sequence[Path],
        directories: Sequence[Path],
    ) -> None:
        """Name the repositories given one by one and those found below ``directories``."""
        self._repositories = repositories
        self._singles = {Path(p).resolve() for p in singles}
        self._directories = [Path(d).resolve() for d in directories]
        self._names: dict[Segments, ServedRepository] = {}
        self._named: set[Path] = set()

    def _rebuild(self) -> None:
        served = self._repositories.all()
        if {r.path for r in served} == self._named:
            return
        real: dict[Segments, ServedRepository] = {}
        aliases: dict[Segments, ServedRepository] = {}
        for repo in served:
            names = self.names_of(repo.path)
            if names:
                real.setdefault(names[0], repo)
                for alias in names[1:]:
                    aliases.setdefault(alias, repo)
        self._names = {**aliases, **real}
        self._named = {r.path for r in served}

    def names_of(self, path: Path) -> list[Segments]:
        """The URL names of the repository at ``path`` (empty if it is not served)."""
        bare = not (path / ".git").exists()
        if path in self._singles:
            return url_names((path.name,), bare=bare, at_root=len(self._singles) == 1)
        for top in self._directories:
            if path.is_relative_to(top):
                relative = path.relative_to(top).parts
                return url_names(tuple(relative), bare=bare, at_root=False)
        return []

    def gateway(self, path: Path) -> GatewayTargets | None:
        """The routing of the repository at ``path`` (exports after pushes need it)."""
        return self._repositories.gateway(path)

    def clone_urls(self, base: str) -> list[str]:
        """The URL of every repository served so far (its real name), below ``base``."""
        self._rebuild()
        return sorted(
            f"{base}/{'/'.join(quote(s) for s in names[0])}"
            for repo in self._repositories.all()
            if (names := self.names_of(repo.path))
        )

    async def resolve(self, segments: Segments) -> tuple[ServedRepository, Segments] | None:
        """The repository a request path is below, and the rest of the path."""
        for attempt in range(2):
            self._rebuild()
            # The longest name followed by a path git uses wins (a repository named
            # "info" at / must not hide /info/refs of the repository at /); git's paths
            # are at most three segments long.
            for cut in range(len(segments) - 1, max(-1, len(segments) - 4), -1):
                found = self._names.get(segments[:cut])
                if found is not None and is_git_path(segments[cut:]):
                    return found, segments[cut:]
            if attempt == 0:
                await self._repositories.refresh()
        return None


@dataclass(slots=True)
class GitHttp:
    """The handler for every request that is not the API's."""

    urls: GitUrlMap
    policy: AuthPolicy
    annex_url: str | None = None
    program: Sequence[str] = ("git", "http-backend")
    base_env: Mapping[str, str] | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Serve a git or discovery request, or refuse it.

        Raises:
            ConfigError: ``git http-backend`` cannot be started.
        """
        try:
            resolved = await self.urls.resolve(split_path(request.raw_path))
            if resolved is None:
                raise HttpError(404)
            served, rest = resolved
            query = parse_qs(request.raw_path.partition("?")[2])
            wanted = classify(rest, request.method, query)
            authorization = request.headers.get("Authorization")
            self.policy.decide(
                "put" if wanted.write else "checkpresent", authorization, tls=request.secure
            )
            if wanted.kind == "config":
                return self._config(request, served)
            env = self._cgi_env(request, served, wanted)
            targets = self.urls.gateway(served.path)
            if request.method == "POST" and wanted.write and targets is not None:
                return await self._receive_pack(request, env, targets)
            return await respond_with_cgi(request, self.program, env)
        except HttpError as exc:
            return web.Response(status=exc.status, text=exc.body or None, headers=exc.headers)

    async def _receive_pack(
        self, request: web.Request, env: dict[str, str], targets: GatewayTargets
    ) -> web.StreamResponse:
        """A push; tracking branches it moved are exported before the response ends.

        What the export reports reaches the client as ``remote:`` lines, as a hook's
        output would, when the client asked for side-band (git always does).
        """
        local = targets.local
        try:
            before = await watch(local, targets)
        except AnnexProxyError as exc:
            log.warning("cannot read the tracking branches of %s: %s", local.path, exc)
            before = {}

        async def export(first: bytes, last: bytes) -> bytes:
            pushed = moved(local, before)
            if not pushed:
                return last
            lines: list[str] = []
            try:
                failed = await export_pushed(local, targets, pushed, lines.append)
            except AnnexProxyError as exc:
                log.warning("export after a push to %s failed: %s", local.path, exc)
                lines.append(f"post-receive: export failed: {exc}")
                failed = 0
            if failed:
                lines.append(f"post-receive: {failed} failed")
            for line in lines:
                log.info("%s", line)
            return sideband_messages(first, last, lines)

        return await respond_with_cgi(request, self.program, env, before_eof=export)

    def clone_urls(self, base: str) -> list[str]:
        """The URL of every repository served so far, below ``base`` (for the log)."""
        return self.urls.clone_urls(base)

    def _config(self, request: web.Request, served: ServedRepository) -> web.Response:
        annex_url = self.annex_url
        if annex_url is None:
            host = request.headers.get("Host", "")
            if not _HOST.fullmatch(host):
                raise HttpError(400, "bad or missing Host header; start with --annex-url")
            annex_url = f"annex+{'https' if request.secure else 'http'}://{host}/git-annex/"
        return web.Response(
            text=discovery_config(served.storage.uuid, annex_url),
            content_type="text/plain",
            headers={"Cache-Control": "no-cache"},
        )

    def _cgi_env(
        self, request: web.Request, served: ServedRepository, wanted: GitRequest
    ) -> dict[str, str]:
        base = self.base_env if self.base_env is not None else os.environ
        env = {k: v for k, v in base.items() if k not in _CLEARED_ENV and k[:5] != "HTTP_"}
        env.update(
            GATEWAY_INTERFACE="CGI/1.1",
            SERVER_PROTOCOL=f"HTTP/{request.version.major}.{request.version.minor}",
            REQUEST_METHOD=request.method,
            GIT_PROJECT_ROOT=str(served.path),
            PATH_INFO=wanted.path_info,
            QUERY_STRING=request.raw_path.partition("?")[2],
            GIT_HTTP_EXPORT_ALL="1",
            REMOTE_ADDR=request.remote or "",
        )
        if "Content-Type" in request.headers:
            env["CONTENT_TYPE"] = request.headers["Content-Type"]
        encoding = request.headers.get("Content-Encoding", "").strip().lower()
        if encoding in _DECODED_BY_AIOHTTP:
            pass  # the body we stream is already decoded; its length is unknown
        elif encoding:
            env["HTTP_CONTENT_ENCODING"] = encoding
        elif request.content_length is not None:
            env["CONTENT_LENGTH"] = str(request.content_length)
        protocol = request.headers.get("Git-Protocol", "")
        if _GIT_PROTOCOL.fullmatch(protocol):
            env["HTTP_GIT_PROTOCOL"] = protocol
        user = _user_name(self.policy, request.headers.get("Authorization"), request.secure)
        if user is not None:
            env["REMOTE_USER"] = user
        # The policy allowed this request; say so to http-backend, which would otherwise
        # refuse receive-pack without REMOTE_USER (and allow it with one).
        _add_git_config(env, "http.receivepack", "true" if wanted.write else "false")
        return env


def sideband_messages(first: bytes, last: bytes, lines: Sequence[str]) -> bytes:
    """The end of a receive-pack response with ``lines`` sent as progress messages.

    A side-band response (its first pkt-line's payload starts with band 1) ends with a
    flush-pkt; band-2 pkt-lines put before it are shown by git as ``remote: LINE``.
    Anything else is left as it was.
    """
    if not lines or last != b"0000" or first[4:5] != b"\x01":
        return last
    out = []
    for line in lines:
        payload = b"\x02" + line.encode("utf-8", "replace")[:_MAX_BAND_PAYLOAD] + b"\n"
        out.append(b"%04x" % (len(payload) + 4) + payload)
    return b"".join(out) + last


def _user_name(policy: AuthPolicy, authorization: str | None, tls: bool) -> str | None:
    """The user a Basic ``Authorization`` header authenticates under ``policy``, if any."""
    if authorization is None or not (policy.authenv_http or (policy.authenv and tls)):
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    name, _, password = decoded.partition(":")
    user = policy.users.get(name)
    if user is None or not hmac.compare_digest(user.password.encode(), password.encode()):
        return None
    return user.name


def _add_git_config(env: dict[str, str], key: str, value: str) -> None:
    """Add one ``git -c`` setting through GIT_CONFIG_COUNT, after any inherited ones."""
    count = env.get("GIT_CONFIG_COUNT", "0")
    index = int(count) if re.fullmatch(r"[0-9]{1,4}", count) else 0
    env[f"GIT_CONFIG_KEY_{index}"] = key
    env[f"GIT_CONFIG_VALUE_{index}"] = value
    env["GIT_CONFIG_COUNT"] = str(index + 1)


def validate_annex_url(url: str) -> str:
    """Check an ``--annex-url`` value: an ``annex+http(s)://`` URL, advertised verbatim.

    Raises:
        ConfigError: it is not one, or it contains characters unsafe in git-config text.
    """
    if not re.fullmatch(r"annex\+https?://[^\s\"\\;#]+", url):
        raise ConfigError(
            f"--annex-url must be an annex+http:// or annex+https:// URL, not {url!r}"
        )
    return url


def add_git_routes(
    app: web.Application,
    repositories: ServedRepositories,
    policy: AuthPolicy,
    *,
    singles: Sequence[Path] = (),
    directories: Sequence[Path] = (),
    annex_url: str | None = None,
) -> GitHttp:
    """Serve the git side of ``repositories`` from ``app``, below every path but the API's.

    Args:
        app: the application `make_app` built (its ``/git-annex/`` route keeps priority).
        repositories: the served repositories.
        policy: the API's access policy, applied to git requests too.
        singles: repositories served one by one (named by their directory name).
        directories: ``--directory`` values (repositories named by their relative path).
        annex_url: advertise this in ``config`` instead of one built from ``Host``.

    Returns:
        The handler object (tests may inspect it).

    Raises:
        ConfigError: ``annex_url`` is not an annex+http(s) URL.
    """
    if annex_url is not None:
        validate_annex_url(annex_url)
    urls = GitUrlMap(repositories, singles=singles, directories=directories)
    handler = GitHttp(urls, policy, annex_url)
    app.router.add_route("*", "/{tail:.*}", handler.handle)
    return handler
