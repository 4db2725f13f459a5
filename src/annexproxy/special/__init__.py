"""Special remotes behind the gateway (issue 7): directory, S3, external programs.

Each kind of special remote is a `backend.RemoteBackend` (store, retrieve, check and
remove whole stored objects by name); `storage.SpecialRemoteStorage` turns one into a
`annexproxy.storage.base.Storage` by adding what git-annex layers on top of every
special remote: hash verification of uploads, chunking and its chunk log, encryption.
`remote.SpecialRemote` is a remote's configuration (remote.log + git config) and
`registry.open_backend` picks the backend for its ``type``.
"""
