"""VertPearson: cross-member Pearson correlations under the promoter's Paillier key.

Every member standardises its own features over the common rows (z = (x - mean) / std,
population std), so corr(a, b) = mean(z_a * z_b). Messages (docs/algorithms/credit.md):

1. `pubkey`, `alignment` (promoter -> providers); `alignment_ack` (provider -> promoter):
   the rows must be the same ids in the same sorted order (run Intersection first).
2. `encrypted_features` (promoter -> providers): [[z_i]] for each promoter feature i.
3. `encrypted_products` (provider -> promoter): [[z_i^T Z_B]] for every pair, computed
   homomorphically and re-randomised, and the provider's feature names as it reveals them.
4. The promoter decrypts and divides by the row count: the p x q matrix.
5. `correlation` (promoter -> provider, when share_with_provider): that matrix.

Each member also logs the correlation matrix of its own features (merged co-moments).
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from kernel.blocks.alignment import ids_digest, sorted_rows
from kernel.components.vert_pearson.param import VertPearsonParam
from kernel.components.vert_pearson.variables import VertPearsonVariables
from kernel.constants import PROVIDER
from kernel.errors import InvalidArgument
from kernel.features import feature_matrix
from kernel.model_base import LabeledTable, ModelBase
from kernel.security.paillier import EncryptedVector, PaillierPublicKey, generate_keypair
from kernel.stats.correlation import local_correlation

FloatArray = npt.NDArray[np.float64]

METRIC_NAMESPACE: Final = "pearson"
MODEL_KIND: Final = "vert_pearson"
WHAT: Final = "VertPearson"


def standardised(rows: pa.Table, features: list[str]) -> FloatArray:
    """The features as z-scores (a constant feature is all zeros)."""
    matrix = feature_matrix(rows, features, WHAT)
    std = matrix.std(axis=0)
    result: FloatArray = (matrix - matrix.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return result


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

    def _prepare(self, data: LabeledTable) -> tuple[pa.Table, FloatArray]:
        wanted = self.param.cols if self.param.cols is not None else list(data.feature_columns)
        unknown = [c for c in wanted if c not in data.feature_columns]
        if unknown:
            raise InvalidArgument(f"VertPearsonParam.cols: {', '.join(unknown)} not among the data's features")
        self.features = list(wanted)
        self.local = local_correlation(data.table, self.features, WHAT)
        self.tracker.log_metric("local_correlation", METRIC_NAMESPACE,
                                {"features": self.features, "matrix": self.local.tolist()}, metric_type="correlation")
        rows = sorted_rows(data, [data.id_column, *self.features])
        return rows, standardised(rows, self.features)

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
        rows, z = self._prepare(data)
        providers = self.ctx.roles.parties(PROVIDER)
        if not providers:
            return data
        n, p = z.shape
        if p >= n:
            raise InvalidArgument(f"VertPearson: {p} features over {n} rows would let a provider's z-scores be solved "
                                  "for from the correlations; use fewer features or more rows")
        ids = rows.column(data.id_column)
        public_key, private_key = generate_keypair(param.key_bits)
        tv.pubkey.remote(public_key)
        tv.alignment.remote({"rows": n, "digest": ids_digest(ids), "features": p,
                             "share": param.share_with_provider,
                             "names": self._public_names()})
        for k, ack in enumerate(tv.alignment_ack.get_all()):
            if isinstance(ack.get("refused"), str):
                raise InvalidArgument(f"provider {k} refused: {ack['refused']}")
            if ack.get("aligned") is not True:
                raise InvalidArgument(f"VertPearson: provider {k}'s rows do not match the promoter's {n} ids; "
                                      "run Intersection on both members' data first")
        self.tracker.set_progress(30, "encrypting the promoter's z-scores")
        encrypted = [EncryptedVector.encrypt(private_key, z[:, i], precision_bits=param.precision_bits,
                                             workers=param.workers) for i in range(p)]
        tv.encrypted_features.remote(encrypted)
        self.cross = []
        for k, message in enumerate(tv.encrypted_products.get_all()):
            names, products = _products(message, public_key, p, k)
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
        rows, z = self._prepare(data)
        n, q = z.shape
        public_key = tv.pubkey.get()
        plan = tv.alignment.get()
        aligned = isinstance(plan, dict) and plan.get("rows") == n and plan.get("digest") == ids_digest(
            rows.column(data.id_column))
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
        encrypted = tv.encrypted_features.get()
        if len(encrypted) != plan.get("features") or not all(
                isinstance(v, EncryptedVector) and v.public_key == public_key and len(v) == n for v in encrypted):
            raise InvalidArgument(f"VertPearson: encrypted_features must be vectors of {n} values under the key")
        self.tracker.set_progress(40, "multiplying by this member's z-scores")
        products = [column.rmatvec(z, precision_bits=param.precision_bits, workers=param.workers)
                    for column in encrypted]
        combined = EncryptedVector.concatenate(products).rerandomize(param.workers)
        tv.encrypted_products.remote({"features": self._public_names(), "products": combined})
        self.cross = []
        if plan.get("share") is True:
            matrix = tv.correlation.get()
            if matrix.shape != (len(encrypted), q):
                raise InvalidArgument("VertPearson: the promoter's correlation does not fit this member's features")
            promoter_names = plan.get("names")
            self.cross = [{"promoter_features": promoter_names if isinstance(promoter_names, list) else [],
                           "provider_features": self.features, "matrix": matrix.tolist()}]
            self.tracker.log_metric("cross_correlation", METRIC_NAMESPACE, self.cross, metric_type="correlation")
        return data


def _products(message: Any, public_key: PaillierPublicKey, p: int, k: int) -> tuple[list[str], EncryptedVector]:
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
