"""The serving preprocessing chain without services: OneHot's indicators as the component writes them, what is refused."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from kernel.components.one_hot.one_hot import _indicators
from kernel.errors import InvalidArgument
from services.serving.preprocessing import Preprocessor, Step

ENCODING = {"kind": "number", "categories": [3.0, 1.0], "names": ["c_3", "c_1"], "other": "c_other",
            "missing": "c_missing"}


def test_one_hot_before_dataio_reads_the_source_column_and_writes_the_components_indicators() -> None:
    # Prepare
    one_hot = Step("onehot_0", "OneHot", {"kind": "one_hot", "encodings": {"c": ENCODING}})
    dataio = Step("dataio_0", "DataIO", {"features": ["x", "c_3", "c_1", "c_other", "c_missing"],
                                         "fill_values": {}, "drop_missing": False})
    values = [3.0, 1.0, 7.0, None, 1.0]

    # Execute
    chain = Preprocessor([one_hot, dataio], ["c_1", "c_other", "x", "c_missing", "c_3"], "vert_lr_0")
    raw = np.column_stack([np.arange(5.0), np.array(values, dtype=np.float64)])  # x, c (None -> NaN)
    online = chain.apply(raw, [str(i) for i in range(5)])

    # Assert
    assert chain.raw_columns == ["x", "c"]
    batch = dict(zip(["c_3", "c_1", "c_other", "c_missing"],
                     (a.to_numpy() for a in _indicators(pa.chunked_array([pa.array(values)]), ENCODING)), strict=True))
    expected = np.column_stack([batch["c_1"], batch["c_other"], np.arange(5.0), batch["c_missing"], batch["c_3"]])
    assert np.array_equal(online, expected)


def test_a_text_category_is_refused_naming_the_column() -> None:
    text = {**ENCODING, "kind": "text", "categories": ["a", "b"]}
    with pytest.raises(InvalidArgument, match="text column.*c"):
        Preprocessor([Step("onehot_0", "OneHot", {"kind": "one_hot", "encodings": {"c": text}})], ["c_a"], "m")
