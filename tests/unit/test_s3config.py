"""S3 remote settings resolved as git-annex's Remote/S3.hs and Creds.hs resolve them."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from annexproxy.errors import ConfigError
from annexproxy.keys import Key
from annexproxy.special.remote import SpecialRemote
from annexproxy.special.s3config import find_credentials, s3_settings
from annexproxy.uuids import RepoUUID

UUID = "0e8a6ac6-35c2-4dc1-8b4b-4f5b8c2a9d10"
ENV = {"AWS_ACCESS_KEY_ID": "envid", "AWS_SECRET_ACCESS_KEY": "envsecret"}


def remote(**params: str) -> SpecialRemote:
    return SpecialRemote(
        uuid=RepoUUID(UUID), name="Cloud", type="S3", params={"type": "S3", **params}
    )


@pytest.mark.parametrize(
    ("params", "url"),
    [
        ({}, "http://s3.amazonaws.com:80"),
        ({"port": "80"}, "http://s3.amazonaws.com:80"),
        ({"protocol": "https"}, "https://s3.amazonaws.com:443"),
        ({"protocol": "https", "port": "80"}, "https://s3.amazonaws.com:443"),
        ({"port": "443"}, "https://s3.amazonaws.com:443"),
        ({"datacenter": "EU"}, "http://s3-eu-west-1.amazonaws.com:80"),
        ({"datacenter": "us-west-2"}, "http://s3-us-west-2.amazonaws.com:80"),
        ({"host": "127.0.0.1", "port": "8333"}, "http://127.0.0.1:8333"),
        ({"host": "::1", "port": "9000", "protocol": "http"}, "http://[::1]:9000"),
        (
            {"host": "minio.example", "port": "9000", "protocol": "https"},
            "https://minio.example:9000",
        ),
    ],
)
def test_endpoint(params: dict[str, str], url: str) -> None:
    assert s3_settings(remote(**params), base=Path("/nonexistent"), environ=ENV).endpoint_url == url


def test_defaults_and_object_names() -> None:
    settings = s3_settings(remote(), base=Path("/nonexistent"), environ=ENV)
    assert settings.bucket == f"cloud-{UUID}"  # name-uuid, lowercased like getBucketName
    assert settings.signature == "v4"  # Amazon's own host
    assert settings.region == "us-east-1"
    assert not settings.path_style
    assert settings.partsize is None
    key = Key.parse("SHA256E-s3--abc.txt")
    assert settings.object_name(key) == "SHA256E-s3--abc.txt"
    other = s3_settings(
        remote(host="h", bucket="MyBucket", fileprefix="pre/", partsize="1GiB", region="eu-x"),
        base=Path("/nonexistent"),
        environ=ENV,
    )
    assert other.bucket == "mybucket"
    assert other.signature == "v2"  # other hosts: v2 unless signature=v4
    assert other.region == "eu-x"
    scoped = s3_settings(remote(host="127.0.0.1"), base=Path("/nonexistent"), environ=ENV)
    assert scoped.region == "us-east-1"  # (git-annex signs for "127.0.0.1"; botocore cannot)
    assert other.partsize == 1 << 30
    assert other.object_name(key) == "pre/SHA256E-s3--abc.txt"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"requeststyle": "virtual"}, "bad S3 requeststyle value 'virtual'"),
        ({"port": "http"}, "bad S3 port value 'http'"),
        ({"protocol": "ftp"}, "bad S3 protocol value 'ftp'"),
        ({"signature": "v3"}, "bad S3 signature value 'v3'"),
        ({"partsize": "lots"}, "bad partsize 'lots'"),
        ({"public": "true"}, "bad public value 'true'"),  # yesNoParser: yes or no only
    ],
)
def test_bad_settings(params: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        s3_settings(remote(**params), base=Path("/nonexistent"), environ=ENV)


def test_anonymous_needs_no_credentials() -> None:
    settings = s3_settings(remote(signature="anonymous"), base=Path("/nonexistent"), environ={})
    assert settings.credentials is None


def test_credentials_in_git_annex_order(tmp_path: Path) -> None:
    embedded = base64.b64encode(b"logid\nlogsecret\n").decode()
    r = remote(s3creds=embedded)
    assert find_credentials(r, tmp_path, {}) == ("logid", "logsecret")
    creds = tmp_path / ".git" / "annex" / "creds"
    creds.mkdir(parents=True)
    (creds / UUID).write_text("fileid\nfilesecret\n")
    assert find_credentials(r, tmp_path, {}) == ("fileid", "filesecret")
    assert find_credentials(r, tmp_path, ENV) == ("envid", "envsecret")
    # Only one of the two variables: git-annex ignores the environment.
    assert find_credentials(r, tmp_path, {"AWS_ACCESS_KEY_ID": "x"}) == ("fileid", "filesecret")


def test_bare_repository_creds(tmp_path: Path) -> None:
    (tmp_path / "annex" / "creds").mkdir(parents=True)
    (tmp_path / "annex" / "creds" / UUID).write_text("bareid\nbaresecret\n")
    assert find_credentials(remote(), tmp_path, {}) == ("bareid", "baresecret")


def test_missing_or_unusable_credentials(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="set both AWS_ACCESS_KEY_ID and AWS_SECRET"):
        find_credentials(remote(), tmp_path, {})
    with pytest.raises(ConfigError, match="gpg-encrypted embedded S3 credentials"):
        find_credentials(remote(s3creds="abcd", cipher="xyz"), tmp_path, {})
    with pytest.raises(ConfigError, match="not base64"):
        find_credentials(remote(s3creds="!!"), tmp_path, {})
    (tmp_path / ".git" / "annex" / "creds").mkdir(parents=True)
    (tmp_path / ".git" / "annex" / "creds" / UUID).write_text("onlyone\n")
    with pytest.raises(ConfigError, match="expected two lines"):
        find_credentials(remote(), tmp_path, {})


def test_store_settings_as_git_annex_sends_them() -> None:
    plain = s3_settings(remote(), base=Path("/nonexistent"), environ=ENV)
    assert plain.storage_class == "STANDARD"  # git-annex always sends one
    assert plain.metadata == ()
    assert not plain.public
    assert plain.session_token is None
    configured = s3_settings(
        remote(
            storageclass="STANDARD_IA",
            public="yes",
            **{"x-amz-meta-project": "survey", "x-amz-meta-owner": "lab 2"},
        ),
        base=Path("/nonexistent"),
        environ={**ENV, "AWS_SESSION_TOKEN": "tok"},
    )
    assert configured.storage_class == "STANDARD_IA"
    assert configured.metadata == (("owner", "lab 2"), ("project", "survey"))
    assert configured.public
    assert configured.session_token == "tok"


def test_a_session_token_goes_with_stored_credentials_too(tmp_path: Path) -> None:
    creds = tmp_path / ".git" / "annex" / "creds"
    creds.mkdir(parents=True)
    (creds / UUID).write_text("fileid\nfilesecret\n")
    settings = s3_settings(remote(), base=tmp_path, environ={"AWS_SESSION_TOKEN": "tok"})
    assert settings.credentials == ("fileid", "filesecret")
    assert settings.session_token == "tok"
    anonymous = s3_settings(
        remote(signature="anonymous"), base=tmp_path, environ={"AWS_SESSION_TOKEN": "tok"}
    )
    assert anonymous.session_token is None
