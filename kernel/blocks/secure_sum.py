"""Masked sums between the data members of a job and its arbiter, over a component's transfer variables.

Horizontal components (HorzLR, Distribution with an arbiter) share this protocol:

1. hello: every data member (promoter, providers) sends the arbiter its X25519 public key
   and component information (its features, say);
2. welcome: the arbiter relays the set of public keys to every member, with its own reply
   (common bin edges, say); each member derives a pairwise mask key with every other;
3. rounds: each member sends a vector masked by secure aggregation
   (`kernel.security.secure_aggregation`); the arbiter adds them, the masks cancel, and it
   learns only the sum; it answers every member (the new global model, say).

Every arbiter answer travels in an envelope: ``{"ok": True, "value": ...}`` or, when a
member dropped out or sent something malformed, ``{"ok": False, "error": "..."}`` naming
the member, so every member fails with the same message instead of waiting forever.

With a single data member there is nobody to mask against: the member sends its vector in
the clear. The arbiter then learns that member's sums, which are exactly the global sums it
is meant to learn; the components record this as ``masked: false``.

The pieces of the protocol are usable alone, for an exchange in which a data member (the
promoter, say) adds the others' vectors itself: `MemberMasks` (a member's key pair, its
peers' keys, masking per round), `public_key_problem` and `vector_problem` (the checks of
what a member receives) and `MaskedSum` (adding the masked vectors, the masks cancelling).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt

from kernel.blocks.constants import MODE_FIT, MODE_PREDICT, REPLY_TIMEOUT_FACTOR
from kernel.constants import PROMOTER, PROVIDER
from kernel.errors import (
    CryptoError,
    FederationError,
    FederationTimeout,
    InvalidArgument,
    WeftError,
)
from kernel.federation.base import Party, RoleTable
from kernel.federation.transfer_variable import Variable
from kernel.model_base import TaskContext
from kernel.security.constants import SECAGG_KEY_BYTES
from kernel.security.secure_aggregation import MaskingClient, SecureAggregator

FloatArray = npt.NDArray[np.float64]
U64Array = npt.NDArray[np.uint64]
Suffix = tuple[str, ...]


def data_parties(roles: RoleTable) -> list[Party]:
    """The parties that hold rows in a horizontal job: the promoter, then the providers."""
    return roles.parties(PROMOTER) + roles.parties(PROVIDER)


def _ok(value: Any) -> dict[str, Any]:
    return {"ok": True, "value": value}


def public_key_problem(key: Any) -> str | None:
    """What is wrong with a received masking public key (None: it is one)."""
    if isinstance(key, bytes) and len(key) == SECAGG_KEY_BYTES:
        return None
    return f"no {SECAGG_KEY_BYTES}-byte public key"


def vector_problem(vector: Any, length: int, masked: bool) -> str | None:
    """What is wrong with a received round vector (None: `length` uint64 when masked, float64 otherwise)."""
    expected = np.dtype(np.uint64 if masked else np.float64)
    if isinstance(vector, np.ndarray) and vector.dtype == expected and vector.shape == (length,):
        return None
    shown = f"{vector.dtype} {vector.shape}" if isinstance(vector, np.ndarray) else type(vector).__name__
    return f"sent {shown}, expected {length} {expected}"


class MemberMasks:
    """One data member's masks: its X25519 key pair, then its peers' keys, then one mask per round."""

    def __init__(self, name: str, precision_bits: int, component: str) -> None:
        self.component = component
        self.client = MaskingClient(name, precision_bits=precision_bits)

    def public_key(self) -> bytes:
        """The key to send to whoever relays the keys."""
        return self.client.public_key()

    def set_peer_keys(self, keys: Any, expected: Collection[str], relayed_by: str) -> None:
        """Take the relayed keys: one per member named in `expected` (this one included)."""
        if not isinstance(keys, dict) or set(keys) != set(expected):
            raise InvalidArgument(
                f"{self.component}: the {relayed_by} relayed keys of {sorted(keys) if isinstance(keys, dict) else keys}, "
                f"expected one per data member: {sorted(expected)}"
            )
        self.client.set_peer_keys({str(k): v for k, v in keys.items()})

    def mask(self, vector: Any, round_id: str) -> U64Array:
        """`vector` as fixed point plus this member's pairwise masks for `round_id`."""
        try:
            return self.client.mask(np.asarray(vector, dtype=np.float64), round_id)
        except CryptoError as exc:
            raise CryptoError(f"{self.component} round {round_id!r}: {exc}") from None


class MaskedSum:
    """The adder's side: the plain sum of one round's masked vectors, one from every member."""

    def __init__(self, names: Collection[str], precision_bits: int) -> None:
        self.aggregator = SecureAggregator(sorted(names), precision_bits=precision_bits)

    def total(self, masked: Mapping[str, Any], round_id: str) -> FloatArray:
        """The sum (missing or foreign members raise: their masks cannot be removed)."""
        return self.aggregator.unmask_sum(masked, round_id)


class SecureSumMember:
    """A data member's side: hello, welcome, then one masked vector per round."""

    def __init__(
        self, ctx: TaskContext, hello: Variable, masked: Variable, precision_bits: int, component: str
    ) -> None:
        self.local = ctx.local
        self.members = data_parties(ctx.roles)
        if self.local not in self.members:
            raise InvalidArgument(f"{component}: {self.local} is not a data member of this job")
        self.component = component
        self.masked = len(self.members) > 1
        self.client = MemberMasks(str(self.local), precision_bits, component) if self.masked else None
        self._hello = hello
        self._masked = masked
        self.reply_timeout = ctx.get_timeout * REPLY_TIMEOUT_FACTOR

    def hello(self, info: dict[str, Any]) -> None:
        """Send the public key and `info` to the arbiter (the start of a fit)."""
        key = self.client.public_key() if self.client is not None else b""
        self._hello.remote({"mode": MODE_FIT, "public_key": key, "info": info})

    def announce_predict(self) -> None:
        """Tell the arbiter this task only predicts with a loaded model, so it has nothing to do."""
        self._hello.remote({"mode": MODE_PREDICT, "public_key": b"", "info": {}})

    def welcome(self, reply: Variable) -> Any:
        """Receive every member's public key and the arbiter's reply to the hello."""
        content = self.receive(reply)
        if not isinstance(content, dict) or set(content) != {"keys", "masked", "value"}:
            raise InvalidArgument(f"{self.component}: the arbiter's welcome must hold keys, masked and value")
        if content["masked"] is not self.masked:
            raise InvalidArgument(
                f"{self.component}: the arbiter says masked={content['masked']!r} for {len(self.members)} "
                "data member(s); both sides must agree"
            )
        if self.client is not None:
            self.client.set_peer_keys(content["keys"], {str(p) for p in self.members}, "arbiter")
        return content["value"]

    def send(self, vector: Any, round_id: str) -> None:
        """Send this round's vector: masked when there are peers, as float64 otherwise."""
        if self.client is None:
            self._masked.remote(np.asarray(vector, dtype=np.float64), suffix=(round_id,))
            return
        self._masked.remote(self.client.mask(vector, round_id), suffix=(round_id,))

    def receive(self, reply: Variable, suffix: Suffix = ()) -> Any:
        """The arbiter's answer; a failure envelope raises FederationError with its message."""
        envelope = reply.get(idx=0, suffix=suffix, timeout=self.reply_timeout)
        if not isinstance(envelope, dict) or not isinstance(envelope.get("ok"), bool):
            raise InvalidArgument(f"{self.component}: the arbiter's {reply.name} is not an answer envelope")
        if not envelope["ok"]:
            error = envelope.get("error")
            raise FederationError(error if isinstance(error, str) else f"{self.component}: the arbiter stopped the job")
        return envelope.get("value")


class SecureSumArbiter:
    """The arbiter's side: gathers hellos, relays keys, sums masked vectors, answers or aborts."""

    def __init__(
        self, ctx: TaskContext, hello: Variable, masked: Variable, precision_bits: int, component: str
    ) -> None:
        self.members = data_parties(ctx.roles)
        if not self.members:
            raise InvalidArgument(f"{component}: the job has an arbiter but no promoter or provider holding rows")
        self.component = component
        self.names = {party: str(party) for party in self.members}
        self.masked = len(self.members) > 1
        self.aggregator = MaskedSum(self.names.values(), precision_bits) if self.masked else None
        self.timeout = ctx.get_timeout
        self._roles = ctx.roles
        self._hello = hello
        self._masked = masked
        self._keys: dict[str, bytes] = {}

    def gather_hellos(self, reply: Variable) -> dict[Party, tuple[str, dict[str, Any]]]:
        """Every member's (mode, info); the public keys are kept for `welcome`."""
        messages = self._gather(self._hello, (), "hello", reply, ())
        hellos: dict[Party, tuple[str, dict[str, Any]]] = {}
        for party, message in messages.items():
            if not isinstance(message, dict) or message.get("mode") not in (MODE_FIT, MODE_PREDICT) \
                    or not isinstance(message.get("info"), dict):
                self.abort(reply, (), f"member {party} sent a malformed hello")
            key = message.get("public_key")
            problem = public_key_problem(key)
            if message["mode"] == MODE_FIT and self.masked and problem is not None:
                self.abort(reply, (), f"member {party} sent {problem}")
            self._keys[self.names[party]] = key if isinstance(key, bytes) else b""
            hellos[party] = (str(message["mode"]), message["info"])
        return hellos

    def welcome(self, reply: Variable, value: Any) -> None:
        """Relay the public keys (with `value`) to every member."""
        keys = dict(self._keys) if self.masked else {}
        self.reply(reply, {"keys": keys, "masked": self.masked, "value": value})

    def collect(self, round_id: str, length: int, reply: Variable, suffix: Suffix) -> FloatArray:
        """The sum of every member's vector of this round; aborts naming any member missing."""
        vectors = self._gather(self._masked, (round_id,), f"round {round_id!r}", reply, suffix)
        for party, vector in vectors.items():
            problem = vector_problem(vector, length, self.masked)
            if problem is not None:
                self.abort(reply, suffix, f"round {round_id!r}: member {party} {problem}")
        if self.aggregator is None:
            only: FloatArray = next(iter(vectors.values())).astype(np.float64)
            if not np.all(np.isfinite(only)):
                self.abort(reply, suffix, f"round {round_id!r}: the member's vector holds NaN or infinity")
            return only
        return self.aggregator.total({self.names[p]: v for p, v in vectors.items()}, round_id)

    def reply(self, reply: Variable, value: Any, suffix: Suffix = ()) -> None:
        """Answer every member."""
        reply.remote(_ok(value), suffix=suffix)

    def abort(self, reply: Variable, suffix: Suffix, problem: str) -> NoReturn:
        """Tell every member the job failed and why (they are waiting on `reply`), then raise."""
        message = f"{self.component} failed at the arbiter: {problem}"
        try:
            reply.remote({"ok": False, "error": message}, suffix=suffix)
        except WeftError as exc:
            message += f" (the members could not be told: {exc})"
        raise FederationError(message)

    def _gather(
        self, variable: Variable, suffix: Suffix, what: str, reply: Variable, reply_suffix: Suffix
    ) -> dict[Party, Any]:
        """One message from every member within one get timeout; missing members abort the round."""
        deadline = time.monotonic() + self.timeout
        received: dict[Party, Any] = {}
        missing: list[Party] = []
        waited: list[str] = []
        for party in self.members:
            index = self._roles.parties(party.role).index(party)
            try:
                received[party] = variable.get(
                    idx=index, role=party.role, suffix=suffix, timeout=max(0.0, deadline - time.monotonic())
                )
            except FederationTimeout as exc:
                missing.append(party)
                waited.append(str(exc).split(" (get timeout")[0])  # the get's "waiting on member ..." sentence
        if missing:
            names = ", ".join(str(p) for p in missing)
            self.abort(
                reply, reply_suffix,
                f"{what}: no message from member(s) {names} within {self.timeout:g}s (dropped out; "
                f"{'; '.join(waited)}); their masks cannot be removed, so the round is not released",
            )
        return received
