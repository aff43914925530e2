"""With default parameters, VertLR and VertSecureBoost come within 0.005 AUC of their scikit-learn twins.

Two data sets, split by columns between a promoter (the label and the first columns) and
one provider: scikit-learn's breast cancer rows, and a synthetic 30,000-row credit-default
set (`tests.synthetic_credit`). The twins are scikit-learn's defaults on the pooled
columns: LogisticRegression on standardised features (VertLR standardises its own) and
HistGradientBoostingClassifier. Only the key size is lowered (1024 bits) to keep the run
short; it changes the security margin, not the arithmetic. VertSecureBoost on the credit-like
set is the longest case: 30 trees, each encrypting the gradients of 21,000 rows (about two
thirds of its time) and building encrypted histograms of 13 provider features.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from kernel.computing import ComputingSession, local_session
from kernel.security.paillier import WeakKeyWarning
from tests.synthetic_credit import credit_like_split
from tests.test_vert_kit import VerticalJob

TOLERANCE = 0.005
FAST_KEYS = {"key_bits": 1024}
TRAIN_INPUTS = {"data": {"train_data": ["args.train"], "validate_data": ["args.test"]}}
TRAIN_OUTPUTS = {"data": ["train"], "model": ["model"]}
PROMOTER_COLUMNS = 10


@pytest.fixture(autouse=True)
def quiet_weak_keys() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeakKeyWarning)
        yield


@pytest.fixture(scope="module")
def computing() -> Iterator[ComputingSession]:
    session = local_session(num_partitions=2)
    yield session
    session.stop()


def breast() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    data = load_breast_cancer()
    x_train, x_test, y_train, y_test = train_test_split(data.data, data.target, test_size=0.3, random_state=0,
                                                        stratify=data.target)
    return x_train, y_train, x_test, y_test


def credit() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x_train, y_train, x_test, y_test, _ = credit_like_split()
    return x_train, y_train, x_test, y_test


DATA = {"breast_cancer": breast, "credit_like": credit}


def member_frames(x: np.ndarray, y: np.ndarray, prefix: str) -> list[pd.DataFrame]:
    """The promoter's frame (id, y, the first columns) and the provider's (id, the rest)."""
    ids = [f"{prefix}{i:06d}" for i in range(len(y))]
    promoter = pd.DataFrame({"id": ids, "y": y})
    provider = pd.DataFrame({"id": ids})
    for c in range(x.shape[1]):
        (promoter if c < PROMOTER_COLUMNS else provider)[f"x{c}"] = x[:, c]
    return [promoter, provider]


def federated_auc(tmp_path: Path, computing: ComputingSession, module: str, data: str) -> float:
    x_train, y_train, x_test, y_test = DATA[data]()
    job = VerticalJob(tmp_path, providers=1)
    job.upload("train", member_frames(x_train, y_train, "a"))
    job.upload("test", member_frames(x_test, y_test, "b"))
    job.run("model_0", module, computing, TRAIN_INPUTS, TRAIN_OUTPUTS, params=dict(FAST_KEYS),
            data_args=("train", "test"), timeout=1200)
    predictions = job.output(job.promoter, computing, "model_0", "train")
    rows = predictions[predictions["type"] == "validate"]
    return float(roc_auc_score(rows["y"], rows["predict_score"]))


def twin_auc(module: str, data: str) -> float:
    x_train, y_train, x_test, y_test = DATA[data]()
    if module == "VertLR":
        scaler = StandardScaler().fit(x_train)
        model = LogisticRegression().fit(scaler.transform(x_train), y_train)
        return float(roc_auc_score(y_test, model.predict_proba(scaler.transform(x_test))[:, 1]))
    boosted = HistGradientBoostingClassifier(random_state=0).fit(x_train, y_train)
    return float(roc_auc_score(y_test, boosted.predict_proba(x_test)[:, 1]))


@pytest.mark.parametrize(("module", "data"), [
    ("VertLR", "breast_cancer"), ("VertLR", "credit_like"), ("VertSecureBoost", "breast_cancer"),
    ("VertSecureBoost", "credit_like"),
])
def test_defaults_reach_the_plaintext_twin(tmp_path: Path, computing: ComputingSession, module: str,
                                           data: str) -> None:
    # Execute
    auc = federated_auc(tmp_path, computing, module, data)

    # Assert
    twin = twin_auc(module, data)
    assert auc >= twin - TOLERANCE, f"{module} on {data}: AUC {auc:.4f}, scikit-learn {twin:.4f}"
