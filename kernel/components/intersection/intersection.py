"""Intersection: each member keeps the rows whose ids every member holds (ECDH PSI on X25519).

The promoter runs the protocol with every provider (message names are the transfer
variables; a is the promoter's secret scalar, b_k provider k's, H hashes an id to a point):

1. `provider_blinded_ids`        provider k -> promoter: b_k*H(y) for its ids, sorted by point
2. `promoter_blinded_ids`        promoter -> providers:  a*H(x) for its ids, sorted by point
3. `promoter_double_blinded_ids` provider k -> promoter: pairs (a*H(x), b_k*a*H(x))
4. the promoter computes a*b_k*H(y) and matches: an id both hold gives the same point
5. `intersection_points`         promoter -> provider k: the points b_k*H(y) of step 1 whose
   ids every member holds

Each member learns the ids of the intersection (its own rows that every member holds) and
the number of rows of the others; no other id, and no blinded point it could test a guess
against, leaves a member (the points of step 1 and 2 are blinded with a secret scalar).
Points travel sorted by value, an order the secret scalar makes random, so the order says
nothing about how a member stores its rows.

The work is per row and runs where the rows are (the Spark executors, or the LOCAL
threads): hashing and blinding are `map_partitions` steps, matching is a join. Steps 3
and 4 overlap: the promoter re-blinds every provider's points (step 4) while the providers
re-blind its own (step 3), so every member's cores work at once, as they must on a cluster
where each member's application holds only its share of the cores. Each list travels
as a stream of messages of at most `STREAM_POINTS` points, one partition at a time,
ended by an empty message; a receiver writes each message to its task's scratch area
and reads the stream back as a table. No member's driver holds a whole list of ids
or points, and the result stays a distributed table.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from kernel.components.intersection.param import IntersectionParam
from kernel.components.intersection.variables import IntersectionVariables
from kernel.computing import Table
from kernel.constants import BACKEND_LOCAL, PROVIDER
from kernel.errors import InvalidArgument
from kernel.federation.variables import BoundChannel
from kernel.model_base import LabeledTable, ModelBase
from kernel.security.constants import PSI_POINT_BYTES
from kernel.security.psi import PsiBlinder

METRIC_NAME = "intersection"
METRIC_NAMESPACE = "intersection"

# The most points one message of a stream carries (3 MiB of points, 6 MiB of pairs).
STREAM_POINTS = 100_000

# Column names of the intermediate tables.
POINT = "point"  # a member's own blinded point, or the peer's as received
TWICE = "twice"  # the doubly blinded point both members can compute

PointArray = npt.NDArray[np.uint8]
POINT_TYPE = pa.binary()


def points_to_array(points: PointArray) -> pa.Array:
    """An (n, width) uint8 array as a binary Arrow array of n values."""
    rows, width = points.shape
    raw = pa.py_buffer(np.ascontiguousarray(points).tobytes())
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), rows, [None, raw])
    return fixed.cast(POINT_TYPE)


def array_to_points(values: pa.Array | pa.ChunkedArray, width: int = PSI_POINT_BYTES) -> PointArray:
    """A binary Arrow array of `width`-byte values as an (n, width) uint8 array."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if len(values) == 0:
        return np.zeros((0, width), dtype=np.uint8)
    fixed = values.cast(pa.binary(width))
    data = np.frombuffer(fixed.buffers()[1], dtype=np.uint8)
    start = fixed.offset * width
    return data[start : start + len(values) * width].reshape(len(values), width)


def _blind_ids_block(blinder: PsiBlinder, id_column: str, workers: int | None, block: pa.Table) -> pa.Table:
    ids = block.column(id_column).to_numpy(zero_copy_only=False)
    points = blinder.blind_ids(ids, workers) if len(ids) else np.zeros((0, PSI_POINT_BYTES), np.uint8)
    return pa.table({id_column: block.column(id_column), POINT: points_to_array(points)})


def _reblind_block(blinder: PsiBlinder, workers: int | None, block: pa.Table) -> pa.Table:
    column = block.column(POINT)
    points = array_to_points(column)
    twice = blinder.blind(points, workers) if len(points) else points
    return pa.table({POINT: column, TWICE: points_to_array(twice)})


class _IntersectionBase(ModelBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.blinder = PsiBlinder()
        self.intersect_count = 0

    @property
    def param(self) -> IntersectionParam:
        assert isinstance(self.model_param, IntersectionParam)
        return self.model_param

    @property
    def _workers(self) -> int | None:
        # LOCAL blocks run on threads of one process: blind on its worker processes. On
        # Spark every executor core already runs a block of its own.
        return self.param.workers if self.ctx.computing.backend == BACKEND_LOCAL else 1

    def _blinded_own(self, data: LabeledTable) -> Table:
        """(id, point = secret * H(id)) for every own row, computed where the rows are."""
        id_column = data.id_column
        id_type = data.table.schema.field(id_column).type
        schema = pa.schema([pa.field(id_column, id_type), pa.field(POINT, POINT_TYPE)])
        fn = functools.partial(_blind_ids_block, self.blinder, id_column, self._workers)
        return data.table.select([id_column]).map_partitions(fn, schema=schema).cache()

    def _reblinded(self, received: Table) -> Table:
        """(point, twice = secret * point) for a table of a peer's points."""
        schema = pa.schema([pa.field(POINT, POINT_TYPE), pa.field(TWICE, POINT_TYPE)])
        fn = functools.partial(_reblind_block, self.blinder, self._workers)
        return received.map_partitions(fn, schema=schema)

    def _receive_points(self, name: str, channel: Callable[[int], np.ndarray],
                        width: int = PSI_POINT_BYTES) -> Table:
        """A peer's stream of points (or pairs, width 64) as a table of point [, twice]."""
        def blocks() -> Iterator[pa.Table]:
            for part in receive_stream(channel, width):
                if width == PSI_POINT_BYTES:
                    yield pa.table({POINT: points_to_array(part)})
                else:
                    half = width // 2
                    yield pa.table({POINT: points_to_array(part[:, :half]),
                                    TWICE: points_to_array(part[:, half:])})

        columns = [POINT] if width == PSI_POINT_BYTES else [POINT, TWICE]
        schema = pa.schema([pa.field(column, POINT_TYPE) for column in columns])
        scratch = self.ctx.scratch()
        scratch.write(name, schema, blocks())
        return scratch.read(self.ctx.computing, name, POINT)

    def _restrict(self, data: LabeledTable, common: Table, own_rows: int) -> LabeledTable:
        """The member's rows whose ids are in `common` (a table of ids), as a distributed join."""
        table = data.table.join(common)
        # Rebalanced: the join decides its own partitions, and later steps work per partition.
        table = table.repartition(data.table.num_partitions).cache()
        kept = table.count()
        self.intersect_count = kept
        rate = kept / own_rows if own_rows else 0.0
        self.tracker.log_metric(
            METRIC_NAME, METRIC_NAMESPACE,
            {"intersect_count": kept, "own_count": own_rows, "intersect_rate": rate},
            metric_type="intersection",
        )
        return data.with_table(table)

    def export_model(self) -> dict[str, Any] | None:
        return None


class IntersectionPromoter(_IntersectionBase):
    """Matches its blinded ids with every provider's and tells each provider what to keep."""

    def fit(self, data: LabeledTable, validate_data: LabeledTable | None = None) -> LabeledTable:
        tv = self.ctx.variables(IntersectionVariables)
        providers = self.ctx.roles.parties(PROVIDER)
        if not providers:
            raise InvalidArgument("Intersection: the job has no provider to intersect with")
        id_column = data.id_column
        own = self._blinded_own(data)
        own_rows = own.count()
        send_stream(_putter(tv, _promoter_blinded), own.sort_by(POINT))
        self.tracker.set_progress(30, "own ids blinded")
        # (point, id) of our rows, keyed by point: where a returned pair leads back to an id.
        by_point = own.with_id_column(POINT).select([POINT, id_column])
        # Every provider's points are re-blinded before any pairs are awaited: that is when
        # the providers re-blind ours, so both members' halves of the work run at once. (A
        # Spark table is lazy: left to the join below, the re-blinding would start only
        # once provider k had sent its last pair, each member's core idle while the other's
        # works.)
        peers: list[Table] = []
        for k in range(len(providers)):
            peer = self._reblinded(self._receive_points(f"provider-{k}", _getter(tv, _provider_blinded, k)))
            peer = peer.cache()
            peer.count()
            peers.append(peer)
        matched: list[Table] = []
        for k, peer in enumerate(peers):
            pairs = self._receive_points(f"pairs-{k}", _getter(tv, _double_blinded, k), width=2 * PSI_POINT_BYTES)
            returned = pairs.count()
            if returned != own_rows:
                raise InvalidArgument(
                    f"Intersection: provider {k} returned {returned} re-blinded ids for the promoter's {own_rows}"
                )
            ours = by_point.join(pairs).with_id_column(TWICE).select([TWICE, id_column])
            theirs = peer.with_id_column(TWICE).select([TWICE, POINT])
            # (id, the provider's point) of every id we share with provider k.
            matched.append(ours.join(theirs).with_id_column(id_column).select([id_column, POINT]).cache())
        self.tracker.set_progress(70, "ids re-blinded")
        common = functools.reduce(lambda a, b: a.join(b.select([id_column])), [m.select([id_column]) for m in matched])
        common = common.cache()
        for k, pairs_k in enumerate(matched):
            answer = pairs_k.join(common).select([POINT, id_column]).with_id_column(POINT).select([POINT])
            send_stream(_putter(tv, _intersection_points, k), answer.sort_by(POINT))
        self.tracker.log_metric(
            "provider_matches", METRIC_NAMESPACE, [m.count() for m in matched], metric_type="intersection"
        )
        return self._restrict(data, common, own_rows)


class IntersectionProvider(_IntersectionBase):
    """Blinds its ids, re-blinds the promoter's, and keeps the rows the promoter names."""

    def fit(self, data: LabeledTable, validate_data: LabeledTable | None = None) -> LabeledTable:
        tv = self.ctx.variables(IntersectionVariables)
        id_column = data.id_column
        own = self._blinded_own(data)
        own_rows = own.count()
        send_stream(_putter(tv, _provider_blinded), own.sort_by(POINT))
        self.tracker.set_progress(30, "own ids blinded")
        promoter = self._reblinded(self._receive_points("promoter", _getter(tv, _promoter_blinded)))
        send_stream(_putter(tv, _double_blinded), promoter, columns=(POINT, TWICE))
        self.tracker.set_progress(70, "promoter's ids re-blinded")
        named = self._receive_points("intersection", _getter(tv, _intersection_points))
        common = named.join(own.with_id_column(POINT)).with_id_column(id_column).select([id_column]).cache()
        if common.count() != named.count() or common.duplicate_ids(1):
            raise InvalidArgument(
                "Intersection: intersection_points must be distinct points of this member's list"
            )
        return self._restrict(data, common, own_rows)


Select = Callable[[IntersectionVariables], BoundChannel[np.ndarray]]


def _provider_blinded(tv: IntersectionVariables) -> BoundChannel[np.ndarray]:
    return tv.provider_blinded_ids


def _promoter_blinded(tv: IntersectionVariables) -> BoundChannel[np.ndarray]:
    return tv.promoter_blinded_ids


def _double_blinded(tv: IntersectionVariables) -> BoundChannel[np.ndarray]:
    return tv.promoter_double_blinded_ids


def _intersection_points(tv: IntersectionVariables) -> BoundChannel[np.ndarray]:
    return tv.intersection_points


def _getter(tv: IntersectionVariables, select: Select, idx: int = 0) -> Callable[[int], np.ndarray]:
    """Receives message n of a stream from the idx-th sender (the variable in scope n)."""
    def get(index: int) -> np.ndarray:
        return select(tv.at(index)).get(idx=idx)

    return get


def _putter(tv: IntersectionVariables, select: Select, idx: int = -1) -> Callable[[int, np.ndarray], None]:
    """Sends message n of a stream to every receiver (or the idx-th one)."""
    def put(index: int, value: np.ndarray) -> None:
        select(tv.at(index)).remote(value, idx=idx)

    return put


def send_stream(put: Callable[[int, np.ndarray], None], table: Table, columns: tuple[str, ...] = (POINT,)) -> int:
    """Send `columns` of `table` (points, side by side) as messages of at most STREAM_POINTS
    rows, one partition at a time, then an empty message; returns how many were sent."""
    index = 0
    width = PSI_POINT_BYTES * len(columns)
    for block in table.iter_blocks():
        for start in range(0, block.num_rows, STREAM_POINTS):
            part = block.slice(start, STREAM_POINTS)
            points = np.hstack([array_to_points(part.column(name)) for name in columns])
            put(index, points)
            index += 1
    put(index, np.zeros((0, width), dtype=np.uint8))
    return index


def receive_stream(channel: Callable[[int], np.ndarray], width: int = PSI_POINT_BYTES) -> Iterator[PointArray]:
    """The messages of a stream sent with `send_stream`, checked, up to its empty message."""
    index = 0
    while True:
        part = _points(channel(index), f"message {index} of the stream", width)
        if not len(part):
            return
        yield part
        index += 1


def _points(value: Any, what: str, width: int = PSI_POINT_BYTES) -> PointArray:
    """A peer's blinded ids, checked: a uint8 array of shape (n, width)."""
    if not isinstance(value, np.ndarray) or value.dtype != np.uint8 or value.ndim != 2 \
            or value.shape[1] != width:
        shape = getattr(value, "shape", None)
        raise InvalidArgument(
            f"Intersection: {what} must be a uint8 array of shape (n, {width}), "
            f"got {type(value).__name__} {shape}"
        )
    return value
