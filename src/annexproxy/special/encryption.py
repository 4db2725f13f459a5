"""git-annex's special-remote encryption, as a layer over any `RemoteBackend`.

What is stored on an encrypted special remote (branch.md 5, git-annex ``Crypto``):

* the remote.log field ``cipher=`` holds base64 of the cipher: for ``encryption=shared``
  the cipher itself; for ``hybrid`` and ``pubkey`` the cipher encrypted with gpg to the
  keys in ``cipherkeys=``; for ``sharedpubkey`` the MAC secret, with ``pubkeys=``;
* object names are ``GPG<MAC>--<hex>``: the HMAC (``mac=``, default ``HMACSHA1``) of the
  serialised key (chunk keys included) under the cipher's first 256 bytes (the whole
  cipher for public-key schemes);
* content is gpg-encrypted: symmetrically with the rest of the cipher as passphrase
  (``shared``, ``hybrid``), or to the public keys (``pubkey``, ``sharedpubkey``).

`EncryptedBackend` maps names and streams content through a ``gpg`` process each way,
so nothing is spooled; `cipher_of` reads a remote's configuration (decrypting the
cipher with the local gpg keyring where the scheme needs it).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from annexproxy.errors import ConfigError, StorageError
from annexproxy.keys import Key
from annexproxy.special.backend import RemoteBackend, StoreSession
from annexproxy.special.remote import SpecialRemote

MAC_KEY_BYTES = 256
"""The cipher's leading bytes that key the HMAC of object names (git-annex
``cipherBeginning``); the rest is the symmetric passphrase."""

_MACS = {
    "HMACSHA1": hashlib.sha1,
    "HMACSHA224": hashlib.sha224,
    "HMACSHA256": hashlib.sha256,
    "HMACSHA384": hashlib.sha384,
    "HMACSHA512": hashlib.sha512,
}
_GPG_BASE = ("--quiet", "--trust-model", "always", "--batch")
_PIPE_CHUNK = 1 << 18


@dataclass(frozen=True, slots=True, kw_only=True)
class Cipher:
    """What encrypts one remote's names and content."""

    mac: str
    mac_key: bytes
    passphrase: bytes | None
    """The symmetric passphrase; None for public-key schemes."""
    recipients: tuple[str, ...] = ()
    """gpg key ids content is encrypted to (public-key schemes)."""

    def encrypted_key(self, key: Key) -> Key:
        """The name git-annex gives ``key`` on the remote: ``GPG<MAC>--<hex>``."""
        digest = hmac.new(
            self.mac_key, str(key).encode("utf-8", "surrogateescape"), _MACS[self.mac]
        )
        return Key.parse(f"GPG{self.mac}--{digest.hexdigest()}")


def cipher_of(remote: SpecialRemote, *, gpg: str = "gpg") -> Cipher | None:
    """The remote's cipher, or None when it is not encrypted.

    Raises:
        ConfigError: an unknown scheme or MAC, a missing or undecodable cipher, or a
            cipher the local gpg keyring cannot decrypt.
    """
    scheme = remote.params.get("encryption", "none")
    if scheme == "none":
        return None
    mac = remote.params.get("mac", "HMACSHA1")
    if mac not in _MACS:
        raise ConfigError(f"special remote {remote.name!r}: unknown mac={mac}")
    text = remote.params.get("cipher")
    if not text:
        raise ConfigError(
            f"special remote {remote.name!r} has encryption={scheme} but no cipher in "
            "remote.log; run git annex enableremote"
        )
    try:
        stored = base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise ConfigError(f"special remote {remote.name!r}: cipher is not base64") from exc
    if scheme == "shared":
        return Cipher(mac=mac, mac_key=stored[:MAC_KEY_BYTES], passphrase=stored[MAC_KEY_BYTES:])
    if scheme == "sharedpubkey":
        keys = tuple(remote.params.get("pubkeys", "").split(","))
        return Cipher(mac=mac, mac_key=stored, passphrase=None, recipients=keys)
    if scheme in ("hybrid", "pubkey"):
        plain = _gpg_decrypt_cipher(remote, stored, gpg)
        if scheme == "hybrid":
            return Cipher(mac=mac, mac_key=plain[:MAC_KEY_BYTES], passphrase=plain[MAC_KEY_BYTES:])
        keys = tuple(remote.params.get("cipherkeys", "").split(","))
        return Cipher(mac=mac, mac_key=plain, passphrase=None, recipients=keys)
    raise ConfigError(f"special remote {remote.name!r}: unknown encryption={scheme}")


def _gpg_decrypt_cipher(remote: SpecialRemote, stored: bytes, gpg: str) -> bytes:
    try:
        done = subprocess.run(
            [gpg, *_GPG_BASE, "--decrypt"], input=stored, capture_output=True, check=False
        )
    except OSError as exc:
        raise ConfigError(f"cannot run {gpg} to decrypt the cipher of {remote.name!r}") from exc
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip()
        raise ConfigError(
            f"cannot decrypt the cipher of special remote {remote.name!r} (is one of its "
            f"keys {remote.params.get('cipherkeys', '?')} in this gpg keyring?): {why}"
        )
    return done.stdout


class _Gpg:
    """One gpg process filtering a stream, with its passphrase on a private pipe."""

    def __init__(self, proc: asyncio.subprocess.Process, what: str) -> None:
        self.proc = proc
        self.what = what
        assert proc.stderr is not None
        self._stderr = asyncio.ensure_future(proc.stderr.read())

    @classmethod
    async def start(cls, gpg: str, cipher: Cipher, mode: str, what: str) -> _Gpg:
        args = [gpg, *_GPG_BASE]
        read_fd = write_fd = -1
        if cipher.passphrase is not None:
            read_fd, write_fd = os.pipe()
            os.write(write_fd, cipher.passphrase + b"\n")  # small: fits the pipe
            os.close(write_fd)
            args += ["--passphrase-fd", str(read_fd)]
        if mode == "encrypt" and cipher.passphrase is not None:
            args += ["--symmetric", "--force-mdc", "--no-textmode"]
        elif mode == "encrypt":
            args += ["--encrypt", "--no-encrypt-to", "--no-default-recipient"]
            args += [arg for key in cipher.recipients for arg in ("--recipient", key)]
            args += ["--force-mdc", "--no-textmode"]
        else:
            args += ["--decrypt"]
        try:
            proc = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=(read_fd,) if read_fd >= 0 else (),
            )
        except OSError as exc:
            raise StorageError(f"cannot run {gpg} to {mode} {what}: {exc}") from exc
        finally:
            if read_fd >= 0:
                os.close(read_fd)
        return cls(proc, what)

    async def finish(self) -> None:
        """Wait for gpg to exit.

        Raises:
            StorageError: gpg failed (wrong key, corrupt or truncated data).
        """
        status = await self.proc.wait()
        errors = (await self._stderr).decode(errors="replace").strip()
        if status != 0:
            raise StorageError(f"gpg failed on {self.what} (exit {status}): {errors}")

    async def kill(self) -> None:
        """Stop gpg now (an abandoned transfer)."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        await self.proc.wait()
        self._stderr.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await self._stderr


class _EncryptingSession:
    def __init__(self, gpg: _Gpg, pump: asyncio.Task[None], inner: StoreSession) -> None:
        self._gpg = gpg
        self._pump = pump
        self._inner = inner
        self.committed = False

    async def write(self, data: bytes) -> None:
        stdin = self._gpg.proc.stdin
        assert stdin is not None
        if self._pump.done():
            await self._pump  # raises what stopped it
            raise StorageError(f"gpg stopped taking {self._gpg.what}")
        try:
            stdin.write(data)
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise StorageError(f"gpg stopped taking {self._gpg.what}: {exc}") from exc

    async def commit(self) -> None:
        stdin = self._gpg.proc.stdin
        assert stdin is not None
        stdin.close()
        await self._pump
        await self._gpg.finish()
        await self._inner.commit()
        self.committed = True


class EncryptedBackend:
    """A `RemoteBackend` that stores through ``inner`` under encrypted names and content."""

    def __init__(self, inner: RemoteBackend, cipher: Cipher, *, gpg: str = "gpg") -> None:
        """Encrypt for ``inner`` with ``cipher``, running ``gpg``."""
        self._inner = inner
        self._cipher = cipher
        self._gpg = gpg

    @asynccontextmanager
    async def store(self, name: Key, size: int | None) -> AsyncIterator[StoreSession]:
        """Encrypt while storing; the stored size is not known in advance."""
        what = f"{name} (stored as {self._cipher.encrypted_key(name)})"
        async with self._inner.store(self._cipher.encrypted_key(name), None) as inner:
            gpg = await _Gpg.start(self._gpg, self._cipher, "encrypt", what)

            async def pump() -> None:
                stdout = gpg.proc.stdout
                assert stdout is not None
                while chunk := await stdout.read(_PIPE_CHUNK):
                    await inner.write(chunk)

            task = asyncio.ensure_future(pump())
            session = _EncryptingSession(gpg, task, inner)
            try:
                yield session
            finally:
                if not session.committed:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StorageError):
                        await task
                    await gpg.kill()

    async def retrieve(self, name: Key, offset: int = 0) -> AsyncIterator[bytes]:
        """Decrypt while reading (from the start: gpg cannot seek), dropping ``offset``."""
        encrypted = self._inner.retrieve(self._cipher.encrypted_key(name))
        first = await anext(encrypted, b"")  # KeyNotPresent surfaces before gpg starts
        gpg = await _Gpg.start(self._gpg, self._cipher, "decrypt", str(name))

        async def feed() -> None:
            stdin = gpg.proc.stdin
            assert stdin is not None
            try:
                stdin.write(first)
                await stdin.drain()
                async for chunk in encrypted:
                    stdin.write(chunk)
                    await stdin.drain()
            finally:
                stdin.close()

        feeder = asyncio.ensure_future(feed())
        finished = False
        try:
            stdout = gpg.proc.stdout
            assert stdout is not None
            skip = offset
            while chunk := await stdout.read(_PIPE_CHUNK):
                if skip:
                    dropped = min(skip, len(chunk))
                    chunk, skip = chunk[dropped:], skip - dropped
                if chunk:
                    yield chunk
            await feeder
            await gpg.finish()
            finished = True
        finally:
            if not finished:
                feeder.cancel()
                with contextlib.suppress(asyncio.CancelledError, StorageError, OSError):
                    await feeder
                await gpg.kill()

    def local_path(self, name: Key) -> Path | None:
        """Never: what is on disk is encrypted."""
        return None

    async def present(self, name: Key) -> bool:
        """Whether the encrypted object is stored."""
        return await self._inner.present(self._cipher.encrypted_key(name))

    async def remove(self, name: Key) -> None:
        """Remove the encrypted object."""
        await self._inner.remove(self._cipher.encrypted_key(name))

    async def aclose(self) -> None:
        """Close the inner backend."""
        await self._inner.aclose()
