"""The kernel's exceptions: each carries the message a user reads."""

from __future__ import annotations


class WeftError(Exception):
    """Base of every error Weft raises on purpose; `str(err)` is the user-facing message."""

    #: gRPC status name that fits this error when it reaches a service edge.
    grpc_status: str = "INTERNAL"


class InvalidArgument(WeftError):
    """The caller handed us something malformed (a spec, a conf, a parameter)."""

    grpc_status = "INVALID_ARGUMENT"


class ParamError(InvalidArgument):
    """A component parameter failed validation; the message names the parameter."""


class ConfError(InvalidArgument):
    """A task runtime conf or job spec is missing a key or holds a bad value."""


class ComponentNotFound(InvalidArgument):
    """No component folder declares this module name."""


class RoleNotSupported(InvalidArgument):
    """The component has no class for the requested role."""


class NotFound(WeftError):
    """A named thing (data set, job, task, model) does not exist."""

    grpc_status = "NOT_FOUND"


class FailedPrecondition(WeftError):
    """The request is well formed but the system is not in a state to serve it."""

    grpc_status = "FAILED_PRECONDITION"


class CodecError(InvalidArgument):
    """Bytes or objects the typed codec refuses to encode or decode."""


class FederationError(WeftError):
    """A transfer variable was misused or a peer message could not be exchanged."""

    grpc_status = "FAILED_PRECONDITION"


class PermissionDenied(FederationError):
    """A role or member tried to send or receive what the definitions do not allow."""

    grpc_status = "PERMISSION_DENIED"


class FederationTimeout(FederationError):
    """A `get` waited past its timeout; the message names variable, tag and peer."""

    grpc_status = "DEADLINE_EXCEEDED"


class Unavailable(WeftError):
    """A peer or service could not be reached."""

    grpc_status = "UNAVAILABLE"


class CryptoError(WeftError):
    """A homomorphic or key-agreement operation would be wrong (overflow, key mismatch)."""

    grpc_status = "INVALID_ARGUMENT"


class ChecksumMismatch(FederationError):
    """A message's bytes do not match the checksum (XXH3-128) its sender declared."""

    grpc_status = "DATA_LOSS"


class AlreadyExists(WeftError):
    """Something with the same name or id exists and may not be replaced."""

    grpc_status = "ALREADY_EXISTS"


class Unauthenticated(WeftError):
    """A call came without a credential this service accepts (missing, forged, expired)."""

    grpc_status = "UNAUTHENTICATED"


class ResourceExhausted(WeftError):
    """A quota or a cap was reached; the message names it."""

    grpc_status = "RESOURCE_EXHAUSTED"
