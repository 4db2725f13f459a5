"""Where an S3 special remote's objects are and how to sign for them, as git-annex decides.

Reads the remote's remote.log fields (git-annex's ``Remote/S3.hs`` rules, summarised in
`annexproxy.special.s3`) and finds its credentials where git-annex's ``Creds.hs`` looks:
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, then ``.git/annex/creds/<uuid>``, then
``s3creds=`` in remote.log; ``AWS_SESSION_TOKEN``, when set, goes with whichever pair
was found (git-annex's ``genCredentials``). What new objects are stored with, as
git-annex stores them: ``storageclass=`` (default ``STANDARD``, sent on every store),
the ``x-amz-meta-NAME=VALUE`` fields (user metadata ``NAME``), and ``public=yes`` (the
``public-read`` canned ACL, on single-request stores only: git-annex sets no ACL when it
starts a multipart upload). Reads files only (the creds file); talks to no server.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from annexproxy.errors import ConfigError
from annexproxy.keys import Key
from annexproxy.space.units import parse_size
from annexproxy.special.remote import SpecialRemote

DEFAULT_HOST = "s3.amazonaws.com"
META_PREFIX = "x-amz-meta-"


@dataclass(frozen=True, slots=True, kw_only=True)
class S3Settings:
    """Everything needed to reach one S3 special remote's objects."""

    remote: str
    bucket: str
    endpoint_url: str
    region: str
    signature: str
    """``v4``, ``v2`` or ``anonymous``."""
    path_style: bool
    fileprefix: str
    partsize: int | None
    credentials: tuple[str, str] | None
    """(access key id, secret key); None for anonymous access."""
    session_token: str | None = None
    """``AWS_SESSION_TOKEN`` sent with the credentials (temporary credentials)."""
    storage_class: str = "STANDARD"
    """``storageclass=``: the storage class objects are stored in."""
    metadata: tuple[tuple[str, str], ...] = ()
    """``x-amz-meta-NAME=VALUE`` fields, as (NAME, VALUE): user metadata of new objects."""
    public: bool = False
    """``public=yes``: objects stored in one request get the ``public-read`` ACL."""

    def object_name(self, key: Key) -> str:
        """The bucket object holding ``key`` (git-annex's ``getBucketObject``)."""
        return f"{self.fileprefix}{key}"


def s3_settings(
    remote: SpecialRemote, *, base: Path, environ: Mapping[str, str] | None = None
) -> S3Settings:
    """Resolve a remote's S3 settings from its remote.log fields and git-annex's creds.

    Args:
        remote: the special remote (``type=S3``).
        base: the gateway repository's top directory (for ``.git/annex/creds``).
        environ: the environment to read ``AWS_*`` from (default: ``os.environ``).

    Raises:
        ConfigError: a setting is malformed or no credentials can be found.
    """
    params = remote.params
    env = os.environ if environ is None else environ
    bucket = (params.get("bucket") or f"{remote.name}-{remote.uuid}").lower()
    signature = _signature(remote, params.get("host") or DEFAULT_HOST)
    style = params.get("requeststyle")
    if style not in (None, "path"):
        raise ConfigError(
            f"special remote {remote.name!r}: bad S3 requeststyle value {style!r} in "
            "remote.log (git-annex knows only 'path'); fix it with git annex enableremote"
        )
    partsize = None
    if params.get("partsize"):
        partsize = parse_size(params["partsize"])
        if partsize is None:
            raise ConfigError(
                f"special remote {remote.name!r}: bad partsize {params['partsize']!r} in "
                "remote.log (expected a size such as 1GiB)"
            )
    credentials = None if signature == "anonymous" else find_credentials(remote, base, env)
    return S3Settings(
        remote=remote.name,
        bucket=bucket,
        endpoint_url=_endpoint_url(remote),
        region=_region(params),
        signature=signature,
        path_style=style == "path",
        fileprefix=params.get("fileprefix", ""),
        partsize=partsize if partsize and partsize > 0 else None,
        credentials=credentials,
        session_token=env.get("AWS_SESSION_TOKEN") if credentials is not None else None,
        storage_class=params.get("storageclass") or "STANDARD",
        metadata=tuple(
            (field[len(META_PREFIX) :], value)
            for field, value in sorted(params.items())
            if field.startswith(META_PREFIX)
        ),
        public=_yes_no(remote, "public"),
    )


def _yes_no(remote: SpecialRemote, field: str) -> bool:
    """A ``yes``/``no`` field (git-annex's ``yesNoParser``; absent means no)."""
    value = remote.params.get(field)
    if value is None or value == "no":
        return False
    if value == "yes":
        return True
    raise ConfigError(
        f"special remote {remote.name!r}: bad {field} value {value!r} in remote.log "
        f"(expected yes or no); fix it with git annex enableremote {remote.name} {field}=no"
    )


def _signature(remote: SpecialRemote, host: str) -> str:
    value = remote.params.get("signature")
    if value in (None, ""):
        return "v4" if host == DEFAULT_HOST else "v2"
    if value in ("v2", "v4", "anonymous"):
        return value
    raise ConfigError(
        f"special remote {remote.name!r}: bad S3 signature value {value!r} in remote.log "
        "(expected v2, v4 or anonymous)"
    )


def _endpoint_url(remote: SpecialRemote) -> str:
    params = remote.params
    host = params.get("host") or DEFAULT_HOST
    if host == DEFAULT_HOST:
        host = _aws_host(params.get("datacenter") or "US")
    protocol = params.get("protocol")
    if protocol not in (None, "http", "https"):
        raise ConfigError(
            f"special remote {remote.name!r}: bad S3 protocol value {protocol!r} in "
            "remote.log (expected http or https)"
        )
    text = params.get("port")
    if text is None:
        port = 443 if protocol == "https" else 80
    elif text.isdigit():
        port = int(text)
        if port == 80 and protocol == "https":
            port = 443
    else:
        raise ConfigError(
            f"special remote {remote.name!r}: bad S3 port value {text!r} in remote.log"
        )
    scheme = protocol or ("https" if port == 443 else "http")
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


def _aws_host(datacenter: str) -> str:
    if datacenter == "US":
        return DEFAULT_HOST
    if datacenter == "EU":
        return "s3-eu-west-1.amazonaws.com"
    if datacenter == "cn-north-1":
        return "s3.cn-north-1.amazonaws.com.cn"
    return f"s3-{datacenter}.amazonaws.com"


def _region(params: Mapping[str, str]) -> str:
    # git-annex signs v4 requests for the ``region`` field; without one, for the region
    # of the datacenter on Amazon's host, and for the host name itself on other hosts
    # (its credential scope reads ``KEYID/DATE/127.0.0.1/s3/aws4_request``). Other hosts
    # get us-east-1 here, the region such servers (SeaweedFS, MinIO) assume and the one
    # AWS's own tools send; set ``region=`` to choose another.
    if params.get("region"):
        return params["region"]
    host = params.get("host") or DEFAULT_HOST
    datacenter = params.get("datacenter") or "US"
    if host != DEFAULT_HOST or datacenter in ("US", ""):
        return "us-east-1"
    return {"EU": "eu-west-1"}.get(datacenter, datacenter)


def find_credentials(
    remote: SpecialRemote, base: Path, environ: Mapping[str, str]
) -> tuple[str, str]:
    """Find the remote's credentials where git-annex looks for them, in its order.

    Args:
        remote: the special remote.
        base: the repository's top directory.
        environ: the environment.

    Returns:
        (access key id, secret access key).

    Raises:
        ConfigError: none found, or the stored ones are unreadable.
    """
    key_id, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    if key_id is not None and secret is not None:
        return key_id, secret
    credsfile = _git_dir(base) / "annex" / "creds" / str(remote.uuid)
    try:
        text = credsfile.read_text("utf-8")
    except FileNotFoundError:
        text = None
    except OSError as exc:
        raise ConfigError(f"cannot read S3 credentials from {credsfile}: {exc}") from exc
    if text is not None:
        return _decode_pair(text, f"the file {credsfile}")
    embedded = remote.params.get("s3creds")
    if embedded is not None:
        if remote.params.get("cipher"):
            raise ConfigError(
                f"special remote {remote.name!r} has gpg-encrypted embedded S3 credentials, "
                "which annexproxy cannot decrypt; set AWS_ACCESS_KEY_ID and "
                f"AWS_SECRET_ACCESS_KEY, or write them to {credsfile}"
            )
        try:
            decoded = base64.b64decode(embedded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"special remote {remote.name!r}: s3creds in remote.log is not base64 text"
            ) from exc
        return _decode_pair(decoded, "s3creds in remote.log")
    raise ConfigError(
        f"no S3 credentials for special remote {remote.name!r}: set both AWS_ACCESS_KEY_ID "
        f"and AWS_SECRET_ACCESS_KEY, or store them with git annex enableremote "
        f"{remote.name} (they go to {credsfile})"
    )


def _decode_pair(text: str, where: str) -> tuple[str, str]:
    lines = text.splitlines()
    if len(lines) != 2:
        raise ConfigError(
            f"S3 credentials in {where} are malformed: expected two lines (access key id, "
            f"secret access key), found {len(lines)}"
        )
    return lines[0], lines[1]


def _git_dir(base: Path) -> Path:
    dotgit = base / ".git"
    if dotgit.is_dir():
        return dotgit
    if dotgit.is_file():
        # A gitfile (worktrees, submodules): "gitdir: PATH".
        line = dotgit.read_text("utf-8").strip()
        if line.startswith("gitdir:"):
            target = Path(line[len("gitdir:") :].strip())
            return target if target.is_absolute() else base / target
    return base
