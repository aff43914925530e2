"""VertPearson: cross-member Pearson correlations under the promoter's Paillier key.

Every member standardises its own features over the common rows (z = (x - mean) / std,
population std, from co-moments merged across partitions), so corr(a, b) = mean(z_a * z_b).
Messages (docs/algorithms/credit.md):

1. `pubkey`, `alignment` (promoter -> providers); `alignment_ack` (provider -> promoter):
   both hold the same ids (a digest of the id set, in any order; run Intersection first).
2. `encrypted_features` (promoter -> providers), one message per row chunk
   (`kernel.blocks.row_chunks`): [[z_i]] of the chunk's rows for each promoter feature i.
3. `encrypted_products` (provider -> promoter): [[z_i^T Z_B]] for every pair, each
   partition multiplying its rows of every chunk into the ciphertexts and the partial
   products added, re-randomised; and the provider's feature names as it reveals them.
4. The promoter decrypts and divides by the row count: the p x q matrix.
5. `correlation` (promoter -> provider, when share_with_provider): that matrix.

Each member also logs the correlation matrix of its own features (merged co-moments).
What reaches a driver: the co-moments (p x p), one chunk of z-scores or ciphertexts at a
time, and the p x q encrypted products; no member collects its rows.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from kernel.blocks.row_chunks import (
    ChunkPlan,
    chunk_count,
    encrypted_chunk_sum,
    gather_chunk,
    id_digest,
    no_values,
    with_row_keys,
)
from kernel.components.vert_pearson.param import VertPearsonParam
from kernel.components.vert_pearson.variables import VertPearsonVariables
from kernel.computing import Table
from kernel.constants import PROVIDER
from kernel.errors import InvalidArgument
from kernel.features import feature_matrix
from kernel.model_base import LabeledTable, ModelBase
from kernel.security.paillier import EncryptedVector, PaillierPublicKey, generate_keypair
from kernel.stats.correlation import table_comoments

FloatArray = npt.NDArray[np.float64]

METRIC_NAMESPACE: Final = "pearson"
MODEL_KIND: Final = "vert_pearson"
WHAT: Final = "VertPearson"


@dataclass(frozen=True)
class Scaling:
    """A member's features with their mean and population std over the common rows."""

    features: tuple[str, ...]
    mean: FloatArray
    std: FloatArray

    def z(self, rows: pa.Table) -> FloatArray:
        """The rows' features as z-scores (a constant feature is all zeros)."""
        matrix = feature_matrix(rows, list(self.features), WHAT)
        result: FloatArray = (matrix - self.mean) / np.where(self.std > 0, self.std, 1.0)
        return result


@dataclass(frozen=True)
class Prepared:
    """The keyed rows, their count and id digest, and the scaling."""

    table: Table
    rows: int
    digest: str
    scaling: Scaling


def _products(scaling: Scaling, encrypted: list[EncryptedVector], bits: int, workers: int | None,
              rows: pa.Table, positions: npt.NDArray[np.int64]) -> EncryptedVector:
    """[[z_i]]^T Z_B over a partition's rows of a chunk, for every promoter feature i."""
    z = scaling.z(rows)
    return EncryptedVector.concatenate(
        [column[positions].rmatvec(z, precision_bits=bits, workers=workers) for column in encrypted])


class _PearsonBase(ModelBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.features: list[str] = []
        self.local: FloatArray = np.zeros((0, 0))
        self.cross: list[dict[str, Any]] = []

    @property
    def param(self) -> VertPearsonParam:
        assert isinstance(self.model_param, VertPearsonParam)
        return self.model_param

    def _prepare(self, data: LabeledTable) -> Scaling:
        """The features, their own correlation (logged) and their scaling."""
        wanted = self.param.cols if self.param.cols is not None else list(data.feature_columns)
        unknown = [c for c in wanted if c not in data.feature_columns]
        if unknown:
            raise InvalidArgument(f"VertPearsonParam.cols: {', '.join(unknown)} not among the data's features")
        self.features = list(wanted)
        moments = table_comoments(data.table, self.features, WHAT)
        self.local = moments.correlation()
        self.tracker.log_metric("local_correlation", METRIC_NAMESPACE,
                                {"features": self.features, "matrix": self.local.tolist()}, metric_type="correlation")
        std = np.sqrt(np.diag(moments.products) / max(moments.rows, 1))
        return Scaling(tuple(self.features), moments.mean, std)

    def _aligned(self, data: LabeledTable, scaling: Scaling) -> Prepared:
        """The rows keyed for chunks, with their count and id digest."""
        rows, digest = id_digest(data.table)
        return Prepared(with_row_keys(data.table, self.features), rows, digest, scaling)

    def _public_names(self) -> list[str]:
        return self.features if self.param.reveal_feature_names else [f"feature_{i}" for i in range(len(self.features))]

    def transform(self, data: LabeledTable) -> LabeledTable:
        result = self.fit(data)
        assert result is not None
        return result

    def export_model(self) -> dict[str, Any]:
        return {"kind": MODEL_KIND, "features": self.features, "local": self.local.tolist(), "cross": self.cross}

    def load_model(self, model: dict[str, Any]) -> None:
        if model.get("kind") != MODEL_KIND:
            raise InvalidArgument("VertPearson: the model input is not a VertPearson model")


class VertPearsonPromoter(_PearsonBase):
    """Holds the key; learns every cross-correlation and shares it when asked."""

    def fit(self, data: LabeledTable, validate_data: LabeledTable | None = None) -> LabeledTable:
        param, tv = self.param, self.ctx.variables(VertPearsonVariables)
        scaling = self._prepare(data)
        providers = self.ctx.roles.parties(PROVIDER)
        if not providers:
            return data
        prepared = self._aligned(data, scaling)
        n, p = prepared.rows, len(self.features)
        if p >= n:
            raise InvalidArgument(f"VertPearson: {p} features over {n} rows would let a provider's z-scores be solved "
                                  "for from the correlations; use fewer features or more rows")
        public_key, private_key = generate_keypair(param.key_bits)
        tv.pubkey.remote(public_key)
        tv.alignment.remote({"rows": n, "digest": prepared.digest, "features": p,
                             "share": param.share_with_provider,
                             "names": self._public_names()})
        for k, ack in enumerate(tv.alignment_ack.get_all()):
            if isinstance(ack.get("refused"), str):
                raise InvalidArgument(f"provider {k} refused: {ack['refused']}")
            if ack.get("aligned") is not True:
                raise InvalidArgument(f"VertPearson: provider {k}'s rows do not match the promoter's {n} ids; "
                                      "run Intersection on both members' data first")
        self.tracker.set_progress(30, "encrypting the promoter's z-scores")
        chunks = chunk_count(n, p)
        for chunk in range(chunks):
            _, z = gather_chunk(prepared.table, ChunkPlan(chunks, chunk), prepared.scaling.z, WHAT)
            encrypted = [EncryptedVector.encrypt(private_key, z[:, i], precision_bits=param.precision_bits,
                                                 workers=param.workers) for i in range(p)]
            tv.at(chunk).encrypted_features.remote(encrypted)
        self.cross = []
        for k, message in enumerate(tv.encrypted_products.get_all()):
            names, products = _checked_products(message, public_key, p, k)
            matrix = np.asarray(products.decrypt(private_key, workers=param.workers), dtype=np.float64)
            matrix = np.clip(matrix.reshape(p, len(names)) / n, -1.0, 1.0)
            if param.share_with_provider:
                tv.correlation.remote(matrix, idx=k)
            self.cross.append({"promoter_features": self.features, "provider_features": names,
                               "matrix": matrix.tolist()})
        self.tracker.log_metric("cross_correlation", METRIC_NAMESPACE, self.cross, metric_type="correlation")
        return data


class VertPearsonProvider(_PearsonBase):
    """Multiplies the promoter's encrypted z-scores by its own; sees no value of the promoter's."""

    def fit(self, data: LabeledTable, validate_data: LabeledTable | None = None) -> LabeledTable:
        param, tv = self.param, self.ctx.variables(VertPearsonVariables)
        prepared = self._aligned(data, self._prepare(data))
        n, q = prepared.rows, len(self.features)
        public_key = tv.pubkey.get()
        plan = tv.alignment.get()
        aligned = isinstance(plan, dict) and plan.get("rows") == n and plan.get("digest") == prepared.digest
        refused = None
        if q >= n:
            refused = (f"VertPearson: the provider's {q} features over {n} rows would let the promoter solve for "
                       "their z-scores; use fewer features or more rows")
        tv.alignment_ack.remote({"rows": n, "aligned": aligned, "refused": refused})
        if not aligned:
            raise InvalidArgument(f"VertPearson: this provider's {n} rows do not match the promoter's ids; "
                                  "run Intersection on both members' data first")
        if refused is not None:
            raise InvalidArgument(refused)
        assert isinstance(plan, dict)
        self.tracker.set_progress(40, "multiplying by this member's z-scores")
        total = self._chunk_products(prepared, public_key, plan.get("features"))
        if total is None:
            raise InvalidArgument("VertPearson: this provider has no rows")
        tv.encrypted_products.remote({"features": self._public_names(), "products": total.rerandomize(param.workers)})
        self.cross = []
        if plan.get("share") is True:
            matrix = tv.correlation.get()
            if matrix.shape != (plan.get("features"), q):
                raise InvalidArgument("VertPearson: the promoter's correlation does not fit this member's features")
            promoter_names = plan.get("names")
            self.cross = [{"promoter_features": promoter_names if isinstance(promoter_names, list) else [],
                           "provider_features": self.features, "matrix": matrix.tolist()}]
            self.tracker.log_metric("cross_correlation", METRIC_NAMESPACE, self.cross, metric_type="correlation")
        return data

    def _chunk_products(self, prepared: Prepared, public_key: PaillierPublicKey,
                        features: Any) -> EncryptedVector | None:
        """The sum over chunks of [[z_i]]^T Z_B, each chunk's products summed over partitions."""
        param, tv = self.param, self.ctx.variables(VertPearsonVariables)
        chunks = chunk_count(prepared.rows, features if isinstance(features, int) else 1)
        total: EncryptedVector | None = None
        for chunk in range(chunks):
            plan = ChunkPlan(chunks, chunk)
            keys, _ = gather_chunk(prepared.table, plan, no_values, WHAT)
            encrypted = tv.at(chunk).encrypted_features.get()
            if len(encrypted) != features or not all(
                    isinstance(v, EncryptedVector) and v.public_key == public_key and len(v) == len(keys)
                    for v in encrypted):
                raise InvalidArgument(f"VertPearson: encrypted_features of chunk {chunk} must be {features} vectors "
                                      f"of {len(keys)} values under the key")
            product = encrypted_chunk_sum(prepared.table, plan, keys, functools.partial(
                _products, prepared.scaling, encrypted, param.precision_bits, param.workers))
            if product is not None:
                total = product if total is None else total + product
        return total


def _checked_products(message: Any, public_key: PaillierPublicKey, p: int, k: int) -> tuple[list[str], EncryptedVector]:
    where = f"VertPearson: provider {k}'s encrypted_products"
    if not isinstance(message, dict):
        raise InvalidArgument(f"{where} must be a dict")
    names, products = message.get("features"), message.get("products")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InvalidArgument(f"{where}: features must be names")
    if not isinstance(products, EncryptedVector) or products.public_key != public_key \
            or len(products) != p * len(names):
        raise InvalidArgument(f"{where}: products must be {p * len(names)} ciphertexts under the promoter's key")
    return names, products
