"""Intersection: each member keeps the rows whose ids every member holds (ECDH PSI on X25519).

The promoter runs the protocol with every provider (message names are the transfer
variables; a is the promoter's secret scalar, b_k provider k's, H hashes an id to a point):

1. `provider_blinded_ids`        provider k -> promoter: b_k*H(y) for its ids, shuffled
2. `promoter_blinded_ids`        promoter -> providers:  a*H(x) for its ids, shuffled
3. `promoter_double_blinded_ids` provider k -> promoter: b_k*a*H(x), same order as in 2
4. the promoter computes a*b_k*H(y) and matches: an id both hold gives the same point
5. `intersection_positions`      promoter -> provider k: the positions, in provider k's
   list of step 1, of the ids every member holds

Each member learns the ids of the intersection (its own rows that every member holds) and
the number of rows of the others; no other id, and no blinded point it could test a guess
against, leaves a member (the points of step 1 and 2 are blinded with a secret scalar).
"""

from __future__ import annotations

import secrets
from functools import reduce
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from kernel.components.intersection.param import IntersectionParam
from kernel.components.intersection.variables import IntersectionVariables
from kernel.constants import PROVIDER
from kernel.errors import InvalidArgument
from kernel.model_base import LabeledTable, ModelBase
from kernel.security.constants import PSI_POINT_BYTES
from kernel.security.psi import PsiBlinder, intersect_indices

METRIC_NAME = "intersection"
METRIC_NAMESPACE = "intersection"

IntArray = npt.NDArray[np.int64]


class _IntersectionBase(ModelBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.blinder = PsiBlinder()
        self.intersect_count = 0

    @property
    def param(self) -> IntersectionParam:
        assert isinstance(self.model_param, IntersectionParam)
        return self.model_param

    def _shuffled_ids(self, data: LabeledTable) -> pa.Array:
        """This member's ids in a secret random order (positions sent later reveal no layout)."""
        column = data.table.select([data.id_column]).collect().column(data.id_column).combine_chunks()
        order = np.random.default_rng(secrets.randbits(64)).permutation(len(column))
        return column.take(pa.array(order))

    def _blind_own(self, ids: pa.Array) -> npt.NDArray[np.uint8]:
        return self.blinder.blind_ids(ids.to_numpy(zero_copy_only=False), self.param.workers)

    def _restrict(self, data: LabeledTable, kept: pa.Array, own_rows: int) -> LabeledTable:
        id_column = data.id_column

        def member_of_intersection(block: pa.Table) -> np.ndarray:
            mask = pc.is_in(block.column(id_column), value_set=kept)
            return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=np.bool_)

        self.intersect_count = len(kept)
        rate = len(kept) / own_rows if own_rows else 0.0
        self.tracker.log_metric(
            METRIC_NAME, METRIC_NAMESPACE,
            {"intersect_count": len(kept), "own_count": own_rows, "intersect_rate": rate},
            metric_type="intersection",
        )
        # Rebalanced: the filter can leave partitions empty, and later steps work per partition.
        table = data.table.filter(member_of_intersection)
        return data.with_table(table.repartition(table.num_partitions))

    def export_model(self) -> dict[str, Any] | None:
        return None


class IntersectionPromoter(_IntersectionBase):
    """Matches its blinded ids with every provider's and tells each provider what to keep."""

    def fit(self, data: LabeledTable, validate_data: LabeledTable | None = None) -> LabeledTable:
        tv = self.ctx.variables(IntersectionVariables)
        if not self.ctx.roles.parties(PROVIDER):
            raise InvalidArgument("Intersection: the job has no provider to intersect with")
        ids = self._shuffled_ids(data)
        own_blinded = self._blind_own(ids)
        tv.promoter_blinded_ids.remote(own_blinded)
        self.tracker.set_progress(30, "own ids blinded")
        provider_points = [_points(p, "provider_blinded_ids") for p in tv.provider_blinded_ids.get_all()]
        # The providers re-blind our points while we re-blind theirs.
        peer_double = [self.blinder.blind(points, self.param.workers) for points in provider_points]
        own_double = [_points(p, "promoter_double_blinded_ids") for p in tv.promoter_double_blinded_ids.get_all()]
        for k, points in enumerate(own_double):
            if len(points) != len(ids):
                raise InvalidArgument(
                    f"Intersection: provider {k} returned {len(points)} re-blinded ids for the promoter's {len(ids)}"
                )
        self.tracker.set_progress(70, "ids re-blinded")
        matched = [intersect_indices(own, peer) for own, peer in zip(own_double, peer_double, strict=True)]
        common: IntArray = reduce(np.intersect1d, matched).astype(np.int64)
        for k, (own, peer) in enumerate(zip(own_double, peer_double, strict=True)):
            tv.intersection_positions.remote(intersect_indices(peer, own[common]), idx=k)
        self.tracker.log_metric(
            "provider_matches", METRIC_NAMESPACE, [int(len(m)) for m in matched], metric_type="intersection"
        )
        return self._restrict(data, ids.take(pa.array(common)), len(ids))


class IntersectionProvider(_IntersectionBase):
    """Blinds its ids, re-blinds the promoter's, and keeps the rows the promoter names."""

    def fit(self, data: LabeledTable, validate_data: LabeledTable | None = None) -> LabeledTable:
        tv = self.ctx.variables(IntersectionVariables)
        ids = self._shuffled_ids(data)
        tv.provider_blinded_ids.remote(self._blind_own(ids))
        self.tracker.set_progress(30, "own ids blinded")
        promoter_points = _points(tv.promoter_blinded_ids.get(), "promoter_blinded_ids")
        tv.promoter_double_blinded_ids.remote(self.blinder.blind(promoter_points, self.param.workers))
        self.tracker.set_progress(70, "promoter's ids re-blinded")
        positions = _positions(tv.intersection_positions.get(), len(ids))
        return self._restrict(data, ids.take(pa.array(positions)), len(ids))


def _points(value: Any, what: str) -> npt.NDArray[np.uint8]:
    """A peer's blinded ids, checked: a uint8 array of shape (n, 32)."""
    if not isinstance(value, np.ndarray) or value.dtype != np.uint8 or value.ndim != 2 \
            or value.shape[1] != PSI_POINT_BYTES:
        shape = getattr(value, "shape", None)
        raise InvalidArgument(
            f"Intersection: {what} must be a uint8 array of shape (n, {PSI_POINT_BYTES}), "
            f"got {type(value).__name__} {shape}"
        )
    return value


def _positions(value: Any, rows: int) -> IntArray:
    """The promoter's answer, checked: distinct positions into our list of `rows` ids."""
    if not isinstance(value, np.ndarray) or value.ndim != 1 or not np.issubdtype(value.dtype, np.integer):
        raise InvalidArgument("Intersection: intersection_positions must be a 1-D integer array")
    positions = value.astype(np.int64)
    if positions.size and (positions.min() < 0 or positions.max() >= rows):
        raise InvalidArgument(f"Intersection: intersection_positions must lie in [0, {rows})")
    if np.unique(positions).size != positions.size:
        raise InvalidArgument("Intersection: intersection_positions repeats a position")
    return positions
