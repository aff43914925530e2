"""Where project exceptions become gRPC statuses: one mapping, used at every service edge."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar, cast

import grpc

from kernel.errors import WeftError

log = logging.getLogger("weft.grpc")
F = TypeVar("F", bound=Callable[..., Any])


def status_code_of(exc: BaseException) -> grpc.StatusCode:
    if isinstance(exc, WeftError):
        return getattr(grpc.StatusCode, exc.grpc_status, grpc.StatusCode.INTERNAL)
    return grpc.StatusCode.INTERNAL


def retryable(exc: BaseException) -> bool:
    """True for gRPC errors worth another try (the peer is down or restarting)."""
    return isinstance(exc, grpc.aio.AioRpcError | grpc.RpcError) and cast(Any, exc).code() in (
        grpc.StatusCode.UNAVAILABLE,
    )


def grpc_method(fn: F) -> F:
    """Wrap a servicer method: WeftError -> its status and message; a bug -> INTERNAL, logged."""
    if inspect.isasyncgenfunction(fn):
        @functools.wraps(fn)
        async def stream_wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                async for item in fn(self, request, context):
                    yield item
            except WeftError as exc:
                await context.abort(status_code_of(exc), str(exc))
            except (grpc.aio.AbortError, GeneratorExit):
                raise
            except Exception as exc:
                log.exception("%s failed", fn.__qualname__)
                await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")

        return cast(F, stream_wrapper)

    @functools.wraps(fn)
    async def unary_wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await fn(self, request, context)
        except WeftError as exc:
            await context.abort(status_code_of(exc), str(exc))
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            log.exception("%s failed", fn.__qualname__)
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")

    return cast(F, unary_wrapper)
