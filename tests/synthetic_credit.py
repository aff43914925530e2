"""A synthetic credit-default data set (this module holds no tests).

30,000 rows shaped like public credit-card default data: 23 features of very different
scales (credit limit, sex, education, marriage, age, six months of repayment status, bill
amounts and payments) and an imbalanced label (about 22% defaults) that depends on them
non-linearly. Seeded: every call returns the same rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ROWS = 30_000
SEED = 2024
TEST_FRACTION = 0.3


def credit_like(rows: int = ROWS, seed: int = SEED) -> tuple[pd.DataFrame, np.ndarray]:
    """Features (23 columns) and labels (0/1)."""
    rng = np.random.default_rng(seed)
    limit = np.round(np.exp(rng.normal(11.8, 0.8, rows)), -3)
    sex = rng.integers(1, 3, rows)
    education = rng.choice([1, 2, 3, 4], rows, p=[0.35, 0.47, 0.16, 0.02])
    marriage = rng.choice([1, 2, 3], rows, p=[0.45, 0.53, 0.02])
    age = np.clip(np.round(rng.gamma(9.0, 4.0, rows) + 2), 21, 79)
    risk = rng.normal(0, 1, rows) - 0.25 * np.log(limit / 1e5)
    pay = np.stack([np.clip(np.round(risk * 1.1 + rng.normal(-0.3, 0.9, rows)), -2, 8) for _ in range(6)], axis=1)
    usage = 1 / (1 + np.exp(-(risk + rng.normal(0, 0.7, rows))))
    bills = np.stack([np.round(limit * usage * rng.uniform(0.8, 1.1, rows)) for _ in range(6)], axis=1)
    paid_share = 1 / (1 + np.exp(risk * 1.2 + rng.normal(0, 0.8, rows) + 1))
    payments = np.stack([np.round(bills[:, k] * paid_share * rng.lognormal(0, 0.5, rows)) for k in range(6)], axis=1)
    logit = (-1.5 + 0.55 * np.maximum(pay[:, 0], 0) + 0.25 * np.maximum(pay[:, 1], 0) - 0.25 * np.log(limit / 1e5)
             + 0.9 * (pay[:, 0] >= 2) - 1.5 * paid_share + 0.3 * (age < 26) + 0.15 * (education == 3)
             + 0.4 * usage * (pay[:, 0] > 0) + rng.normal(0, 0.3, rows))
    label = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    columns = {"limit_bal": limit, "sex": sex, "education": education, "marriage": marriage, "age": age}
    columns |= {f"pay_{k}": pay[:, k] for k in range(6)}
    columns |= {f"bill_amt{k + 1}": bills[:, k] for k in range(6)}
    columns |= {f"pay_amt{k + 1}": payments[:, k] for k in range(6)}
    return pd.DataFrame(columns), label


def credit_like_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """x_train, y_train, x_test, y_test (a seeded stratified split) and the feature names."""
    from sklearn.model_selection import train_test_split

    frame, label = credit_like()
    x_train, x_test, y_train, y_test = train_test_split(frame.to_numpy(float), label, test_size=TEST_FRACTION,
                                                        random_state=SEED, stratify=label)
    return x_train, y_train, x_test, y_test, list(frame.columns)
