"""VertFeatureBinning: every member bins its own features; providers' WOE and IV via encrypted labels.

Messages between the promoter and each provider (both hold the same ids, as after
Intersection; both sides check an order-free digest of the id set first):

1. `pubkey`, `alignment`      promoter -> providers: Paillier public key; row count and id digest
2. `alignment_ack`            provider -> promoter: whether the rows line up
3. `encrypted_labels`         promoter -> providers, one message per row chunk
                              (`kernel.blocks.row_chunks`): [[y_i]] of the chunk's rows
4. `encrypted_bin_sums`       provider -> promoter: per feature and bin the row count and the
                              encrypted sum of [[y]] (each partition sums its rows of every
                              chunk per bin, the partial sums are added; packed,
                              re-randomised); feature names are anonymous ids unless the
                              provider sets reveal_feature_names
5. `bin_woe`                  promoter -> provider: WOE per bin and IV per feature

Edges and counts come from aggregates (`bins.table_edges`, `bins.table_bin_counts`); what
reaches a driver beyond them is one chunk of labels or ciphertexts at a time.

The promoter learns, per provider feature, how many rows and events fall in each bin, never
the provider's split points or values; a provider never sees a label in the clear.
"""

from __future__ import annotations

import functools
import operator
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from kernel.blocks.row_chunks import (
    ChunkPlan,
    chunk_count,
    encrypted_chunk_sum,
    gather_chunk,
    id_digest,
    no_values,
    with_row_keys,
)
from kernel.components.vert_feature_binning.bins import (
    bin_indices,
    table_bin_counts,
    table_edges,
    woe_iv,
)
from kernel.components.vert_feature_binning.param import VertFeatureBinningParam
from kernel.components.vert_feature_binning.variables import VertFeatureBinningVariables
from kernel.computing import Table
from kernel.constants import PROVIDER
from kernel.errors import InvalidArgument
from kernel.model_base import LabeledTable, ModelBase
from kernel.security.paillier import EncryptedVector, PaillierPublicKey, generate_keypair

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

METRIC_NAMESPACE = "binning"
WHAT: Final = "VertFeatureBinning"


class _BinningBase(ModelBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Per binned feature: edges, woe, iv, counts, events (events only where known).
        self.bins: dict[str, dict[str, Any]] = {}
        self.transform_method = "none"

    @property
    def param(self) -> VertFeatureBinningParam:
        assert isinstance(self.model_param, VertFeatureBinningParam)
        return self.model_param

    def _columns(self, data: LabeledTable) -> list[str]:
        wanted = self.param.cols if self.param.cols is not None else list(data.feature_columns)
        missing = [c for c in wanted if c not in data.feature_columns]
        if missing:
            raise InvalidArgument(f"VertFeatureBinningParam.cols: {', '.join(missing)} not among the data's features")
        return wanted

    def _bin_table(self, table: Table, features: list[str], label: str | None) -> dict[str, IntArray]:
        """Edges and row counts of every feature (kept in self.bins); the events per bin with a label."""
        self.transform_method = self.param.transform_method
        edges = table_edges(table, features, self.param.method, self.param.bin_num)
        counted = table_bin_counts(table, edges, label)
        events: dict[str, IntArray] = {}
        for name in features:
            counts, events[name] = counted[name]
            self.bins[name] = {"edges": edges[name].tolist(), "counts": counts.tolist(), "woe": [0.0] * len(counts),
                               "iv": 0.0}
        return events

    def _log_iv(self) -> None:
        self.tracker.log_metric("iv", METRIC_NAMESPACE, {name: b["iv"] for name, b in self.bins.items()},
                                metric_type="iv")

    def transform(self, data: LabeledTable) -> LabeledTable:
        # Fit uses this task's transform_method; a loaded model keeps the one it was trained with.
        method = self.transform_method
        if method == "none":
            return data
        missing = [name for name in self.bins if name not in data.table.schema.names]
        if missing:
            raise InvalidArgument(f"VertFeatureBinning: the data lacks the binned feature(s) {', '.join(missing)}")
        plan = {name: (np.asarray(b["edges"], dtype=np.float64), np.asarray(b["woe"], dtype=np.float64))
                for name, b in self.bins.items()}
        use_woe = method == "woe"

        def replace(block: pa.Table) -> pa.Table:
            for name, (edges, woe) in plan.items():
                index = bin_indices(_float_column(block, name), edges)
                values = woe[index] if use_woe else index.astype(np.float64)
                position = block.schema.get_field_index(name)
                block = block.set_column(position, pa.field(name, pa.float64()), pa.array(values))
            return block

        schema = data.table.schema
        for name in plan:
            schema = schema.set(schema.get_field_index(name), pa.field(name, pa.float64()))
        return data.with_table(data.table.map_partitions(replace, schema=schema))

    def _base_model(self) -> dict[str, Any]:
        return {"method": self.param.method, "bin_num": self.param.bin_num,
                "transform_method": self.transform_method, "bins": self.bins}

    def _load_base(self, model: dict[str, Any]) -> None:
        bins = model.get("bins")
        if not isinstance(bins, dict) or not all(isinstance(b, dict) and {"edges", "woe", "iv"} <= set(b)
                                                 for b in bins.values()):
            raise InvalidArgument("VertFeatureBinning: the model input is not a VertFeatureBinning model")
        self.bins = {str(name): dict(b) for name, b in bins.items()}
        self.transform_method = str(model.get("transform_method", "none"))


class VertFeatureBinningPromoter(_BinningBase):
    """Bins its own features with the label; computes every provider's WOE and IV."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Per provider: its features (anonymous ids or names) with their IV and WOE per bin.
        self.provider_bins: list[dict[str, dict[str, Any]]] = []

    def fit(self, data: LabeledTable, validate_data: LabeledTable | None = None) -> LabeledTable:
        param = self.param
        if data.label_column is None:
            raise InvalidArgument("VertFeatureBinning: the promoter's data has no label column")
        features = self._columns(data)
        label = data.label_column
        bad = data.table.select([label]).reduce(functools.partial(_not_binary, label), operator.add)
        if bad:
            raise InvalidArgument(f"VertFeatureBinning: label column {label!r} must hold 0 and 1 only")
        for name, events in self._bin_table(data.table, features, label).items():
            entry = self.bins[name]
            woe, iv = woe_iv(events, np.asarray(entry["counts"], dtype=np.int64), param.adjustment_factor)
            entry.update(events=events.tolist(), woe=woe.tolist(), iv=iv)
        self.tracker.set_progress(40, "promoter's features binned")
        if param.provider_iv and self.ctx.roles.parties(PROVIDER):
            self._provider_woe(data.table, label)
        self._log_iv()
        if self.provider_bins:
            self.tracker.log_metric(
                "provider_iv", METRIC_NAMESPACE,
                [{name: b["iv"] for name, b in features_of.items()} for features_of in self.provider_bins],
                metric_type="iv",
            )
        return self.transform(data)

    def _provider_woe(self, table: Table, label: str) -> None:
        param, tv = self.param, self.ctx.variables(VertFeatureBinningVariables)
        rows, digest = id_digest(table)
        public_key, private_key = generate_keypair(param.key_bits)
        tv.pubkey.remote(public_key)
        tv.alignment.remote({"rows": rows, "digest": digest, "send_woe": param.provider_woe})
        for k, ack in enumerate(tv.alignment_ack.get_all()):
            if ack.get("aligned") is not True:
                raise InvalidArgument(
                    f"VertFeatureBinning: provider {k}'s rows do not match the promoter's {rows} ids; "
                    "run Intersection on both members' data first"
                )
        keyed = with_row_keys(table, [label])
        chunks = chunk_count(rows)
        for chunk in range(chunks):
            _, labels = gather_chunk(keyed, ChunkPlan(chunks, chunk), functools.partial(_label_matrix, label), WHAT)
            tv.at(chunk).encrypted_labels.remote(
                EncryptedVector.encrypt(private_key, labels[:, 0].astype(np.int64), workers=param.workers))
        self.provider_bins = []
        for k, message in enumerate(tv.encrypted_bin_sums.get_all()):
            names, bins, counts, encrypted = _bin_sums(message, public_key, k)
            events = np.zeros(0, dtype=np.int64) if encrypted is None else np.asarray(
                encrypted.decrypt_integers(private_key, workers=param.workers), dtype=np.int64
            )
            # A vector packed after encryption decrypts to whole rows of slots: drop the padding.
            if len(events) >= len(counts) and not events[len(counts):].any():
                events = events[: len(counts)]
            if len(events) != len(counts) or (events < 0).any() or (events > counts).any():
                raise InvalidArgument(f"VertFeatureBinning: provider {k}'s bin sums are inconsistent with its counts")
            described: dict[str, dict[str, Any]] = {}
            woe_all, iv_all, start = [], [], 0
            for name, width in zip(names, bins, strict=True):
                woe, iv = woe_iv(events[start:start + width], counts[start:start + width], param.adjustment_factor)
                described[name] = {"woe": woe.tolist(), "iv": iv, "counts": counts[start:start + width].tolist(),
                                   "events": events[start:start + width].tolist()}
                woe_all.append(woe)
                iv_all.append(iv)
                start += width
            if param.provider_woe:
                tv.bin_woe.remote({"woe": np.concatenate(woe_all) if woe_all else np.zeros(0),
                                   "iv": np.asarray(iv_all, dtype=np.float64)}, idx=k)
            self.provider_bins.append(described)
        self.tracker.set_progress(90, "providers' WOE and IV computed")

    def export_model(self) -> dict[str, Any]:
        return {**self._base_model(), "role": "promoter", "provider_bins": self.provider_bins,
                "provider_woe": self.param.provider_woe}

    def load_model(self, model: dict[str, Any]) -> None:
        if model.get("role") != "promoter":
            raise InvalidArgument("VertFeatureBinning: the promoter needs the promoter's binning model")
        self._load_base(model)
        self.provider_bins = list(model.get("provider_bins", []))


class VertFeatureBinningProvider(_BinningBase):
    """Bins its own features; sums the promoter's encrypted labels per bin for WOE and IV."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The name the promoter knows each feature by (its own name only when revealed).
        self.public_names: dict[str, str] = {}
        self.woe_withheld = False

    def fit(self, data: LabeledTable, validate_data: LabeledTable | None = None) -> LabeledTable:
        param = self.param
        features = self._columns(data)
        self._bin_table(data.table, features, None)
        positions = {name: i for i, name in enumerate(data.feature_columns)}
        self.public_names = {name: name if param.reveal_feature_names else f"feature_{positions[name]}"
                             for name in features}
        if param.provider_iv:
            self._encrypted_woe(data.table, features)
        self._log_iv()
        return self.transform(data)

    def _encrypted_woe(self, table: Table, features: list[str]) -> None:
        param, tv = self.param, self.ctx.variables(VertFeatureBinningVariables)
        public_key = tv.pubkey.get()
        plan = tv.alignment.get()
        rows, digest = id_digest(table)
        aligned = isinstance(plan, dict) and plan.get("rows") == rows and plan.get("digest") == digest
        tv.alignment_ack.remote({"rows": rows, "aligned": aligned})
        if not aligned:
            raise InvalidArgument(
                f"VertFeatureBinning: this provider's {rows} rows do not match the promoter's ids; "
                "run Intersection on both members' data first"
            )
        edges = tuple((name, np.asarray(self.bins[name]["edges"], dtype=np.float64)) for name in features)
        keyed = with_row_keys(table, features)
        chunks = chunk_count(rows)
        total: EncryptedVector | None = None
        for chunk in range(chunks):
            chunk_plan = ChunkPlan(chunks, chunk)
            keys, _ = gather_chunk(keyed, chunk_plan, no_values, WHAT)
            labels = tv.at(chunk).encrypted_labels.get()
            if labels.public_key != public_key or len(labels) != len(keys):
                raise InvalidArgument(f"VertFeatureBinning: encrypted_labels of chunk {chunk} must be {len(keys)} "
                                      "ciphertexts under the key")
            if features:
                part = encrypted_chunk_sum(keyed, chunk_plan, keys,
                                           functools.partial(_bin_sums_of, edges, labels, param.workers))
                if part is not None:
                    total = part if total is None else total + part
        counts = np.concatenate([np.asarray(self.bins[name]["counts"], dtype=np.int64) for name in features]) \
            if features else np.zeros(0, dtype=np.int64)
        payload: dict[str, Any] = {
            "features": [self.public_names[name] for name in features],
            "bins": [len(self.bins[name]["counts"]) for name in features],
            "counts": counts,
        }
        if features:
            if total is None:  # no rows: every bin sums to 0
                total = EncryptedVector.encrypt(public_key, np.zeros(len(counts), dtype=np.int64))
            # Packed: fewer decryptions; re-randomised: empty bins would otherwise show as ciphertext 1.
            payload["events"] = total.pack(workers=param.workers).rerandomize(param.workers)
        tv.encrypted_bin_sums.remote(payload)
        if isinstance(plan, dict) and plan.get("send_woe") is False:
            # The promoter keeps this member's WOE and IV: no label statistic reaches it.
            self.woe_withheld = True
            return
        answer = tv.bin_woe.get()
        woe = np.asarray(answer.get("woe"), dtype=np.float64)
        iv = np.asarray(answer.get("iv"), dtype=np.float64)
        if woe.shape != (len(counts),) or iv.shape != (len(features),):
            raise InvalidArgument("VertFeatureBinning: bin_woe does not match this provider's bins")
        start = 0
        for name, value in zip(features, iv.tolist(), strict=True):
            width = len(self.bins[name]["counts"])
            self.bins[name].update(woe=woe[start:start + width].tolist(), iv=value)
            start += width

    def transform(self, data: LabeledTable) -> LabeledTable:
        if self.woe_withheld and self.transform_method == "woe":
            raise InvalidArgument(
                "VertFeatureBinning: the promoter kept this provider's WOE (provider_woe false); "
                "use transform_method bin_index or the WOE component's blinded mode"
            )
        return super().transform(data)

    def export_model(self) -> dict[str, Any]:
        return {**self._base_model(), "role": "provider", "public_names": self.public_names,
                "woe_withheld": self.woe_withheld}

    def load_model(self, model: dict[str, Any]) -> None:
        if model.get("role") != "provider":
            raise InvalidArgument("VertFeatureBinning: the provider needs the provider's binning model")
        self._load_base(model)
        self.public_names = {str(k): str(v) for k, v in dict(model.get("public_names", {})).items()}
        self.woe_withheld = bool(model.get("woe_withheld", False))


def _float_column(rows: pa.Table, name: str) -> FloatArray:
    return np.asarray(pc.cast(rows.column(name), pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def _not_binary(label: str, block: pa.Table) -> int:
    return int((~np.isin(_float_column(block, label), (0.0, 1.0))).sum())


def _label_matrix(label: str, rows: pa.Table) -> FloatArray:
    return _float_column(rows, label).reshape(-1, 1)


def _bin_sums_of(edges: tuple[tuple[str, FloatArray], ...], labels: EncryptedVector, workers: int | None,
                 rows: pa.Table, positions: IntArray) -> EncryptedVector:
    """Per feature and bin, the sum of [[y]] over a partition's rows of a chunk."""
    chosen = labels[positions]
    return EncryptedVector.concatenate([
        chosen.group_sum(bin_indices(_float_column(rows, name), inner), len(inner) + 2, workers=workers)
        for name, inner in edges])


def _bin_sums(
    message: Any, public_key: PaillierPublicKey, k: int
) -> tuple[list[str], list[int], IntArray, EncryptedVector | None]:
    """A provider's encrypted_bin_sums, checked."""
    where = f"VertFeatureBinning: provider {k}'s encrypted_bin_sums"
    if not isinstance(message, dict):
        raise InvalidArgument(f"{where} must be a dict")
    names, bins, counts = message.get("features"), message.get("bins"), message.get("counts")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise InvalidArgument(f"{where}: features must be distinct names")
    if not isinstance(bins, list) or len(bins) != len(names) or not all(isinstance(b, int) and b > 0 for b in bins):
        raise InvalidArgument(f"{where}: bins must be one positive integer per feature")
    if not isinstance(counts, np.ndarray) or counts.shape != (sum(bins),) or not np.issubdtype(counts.dtype, np.integer):
        raise InvalidArgument(f"{where}: counts must be {sum(bins)} integers")
    encrypted = message.get("events")
    if names and (not isinstance(encrypted, EncryptedVector) or encrypted.public_key != public_key):
        raise InvalidArgument(f"{where}: events must be a vector under the promoter's key")
    return names, bins, counts.astype(np.int64), encrypted if names else None
