"""Routing to other members: member id -> endpoint from the config file, and one TLS channel each."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import grpc

from kernel.errors import ConfError, NotFound
from kernel.federation.direct import PEER_CHANNEL_OPTIONS
from services.common.config import MemberConfig, load_config
from services.transfer.constants import CHANNEL_CLOSE_GRACE_S

log = logging.getLogger("weft.transfer.routing")


def client_credentials(config: MemberConfig) -> grpc.ChannelCredentials:
    """This member's certificate as a TLS client, trusting only the federation CA."""
    tls = config.tls
    if not tls.enabled:
        raise ConfError("tls: ca_file, cert_file and key_file are required to talk to other members")
    return grpc.ssl_channel_credentials(
        root_certificates=_read(tls.ca_file, "tls.ca_file"),
        private_key=_read(tls.key_file, "tls.key_file"),
        certificate_chain=_read(tls.cert_file, "tls.cert_file"),
    )


def server_credentials(config: MemberConfig) -> grpc.ServerCredentials:
    """The external listener's TLS: this member's certificate; clients must show one from the CA."""
    tls = config.tls
    if not tls.enabled:
        raise ConfError("tls: ca_file, cert_file and key_file are required for the external listener")
    return grpc.ssl_server_credentials(
        [(_read(tls.key_file, "tls.key_file"), _read(tls.cert_file, "tls.cert_file"))],
        root_certificates=_read(tls.ca_file, "tls.ca_file"),
        require_client_auth=True,
    )


def _read(path: str, field: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfError(f"{field}: cannot read {path}: {exc.strerror or exc}") from None


class PeerRouter:
    """Finds a member's endpoint and keeps one long-lived channel per peer.

    The peers table comes from the member's config file. When the file changes (its
    modification time, checked on each lookup) or `reload()` is called, the table is read
    again; a peer whose endpoint changed gets a new channel.
    """

    def __init__(self, config: MemberConfig, config_path: str | Path | None = None) -> None:
        self.member_id = config.member_id
        self.config_path = Path(config_path) if config_path is not None else None
        self._peers = {member: peer.endpoint for member, peer in config.peers.items()}
        self._mtime = self._stat()
        self._credentials = client_credentials(config)
        self._channels: dict[str, tuple[str, grpc.aio.Channel]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def _stat(self) -> int | None:
        if self.config_path is None:
            return None
        try:
            return os.stat(self.config_path).st_mtime_ns
        except OSError:
            return None

    def reload(self) -> bool:
        """Read the peers table again; False (old table kept) when the file is unreadable."""
        if self.config_path is None:
            return False
        self._mtime = self._stat()
        try:
            config = load_config(self.config_path)
        except ConfError as exc:
            log.warning("keeping the old peers table: %s", exc)
            return False
        if config.member_id != self.member_id:
            log.warning("keeping the old peers table: %s now names member %s", self.config_path, config.member_id)
            return False
        self._peers = {member: peer.endpoint for member, peer in config.peers.items()}
        log.info("peers table reloaded from %s (%d peers)", self.config_path, len(self._peers))
        return True

    def endpoint(self, member_id: str) -> str:
        if self.config_path is not None and self._stat() != self._mtime:
            self.reload()
        endpoint = self._peers.get(member_id)
        if endpoint is None:
            raise NotFound(f"no route to member {member_id}: add it under `peers` in the member config")
        return endpoint

    def channel(self, member_id: str) -> grpc.aio.Channel:
        """The channel to a peer, opened on first use and replaced when its endpoint changes."""
        endpoint = self.endpoint(member_id)
        cached = self._channels.get(member_id)
        if cached is not None and cached[0] == endpoint:
            return cached[1]
        # The peer's certificate must name the member we mean to reach, whatever the host.
        options = [*PEER_CHANNEL_OPTIONS, ("grpc.ssl_target_name_override", member_id)]
        channel = grpc.aio.secure_channel(endpoint, self._credentials, options=options)
        self._channels[member_id] = (endpoint, channel)
        if cached is not None:
            # Calls still running on the old channel finish; new ones use the new endpoint.
            task = asyncio.get_running_loop().create_task(cached[1].close(grace=CHANNEL_CLOSE_GRACE_S))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return channel

    async def close(self) -> None:
        for _, channel in self._channels.values():
            await channel.close()
        self._channels.clear()
        for task in list(self._closing):
            await task

