"""Parameters of Intersection: the PSI method and how many processes blind the ids."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kernel.base_param import BaseParam


class IntersectionParam(BaseParam):
    """Restricts every member's rows to the ids all members hold, revealing no other id."""

    need_run: bool = Field(True, description="false passes the data through untouched")
    intersect_method: Literal["ecdh"] = Field(
        "ecdh", description="ecdh: Diffie-Hellman PSI on Curve25519 (X25519)"
    )
    workers: int | None = Field(
        None, ge=1, le=256, description="processes that blind ids (default: one per core)"
    )
