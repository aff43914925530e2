"""Per-feature statistics: blocks merged equal the whole, histogram quantiles, edge cases."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import reduce
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.errors import InvalidArgument
from kernel.stats.summary import (
    FeatureMoments,
    Moments,
    block_histogram,
    block_moments,
    common_edges,
    exact_quantiles,
    merge_histograms,
    merge_moments,
    moments_from_wire,
    moments_to_wire,
    quantiles_from_histogram,
    summarize,
)

QS = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]
# Relative tolerance of a merged std against numpy's two-pass std on all rows. Block means
# near 1e9 are stored to about 1.2e-7, a 1e-4 part of the "offset" column's std of 1e-3,
# and the merge carries that rounding into m2 (worst seen over 200 random splittings:
# 5e-6; a raw sum of squares would be wrong in every digit). Other columns agree to 1e-11.
LARGE_OFFSET_STD_RTOL = 2e-5
STD_RTOL = {"offset": LARGE_OFFSET_STD_RTOL}
DEFAULT_STD_RTOL = 1e-11

Columns = dict[str, np.ndarray]


@pytest.fixture(params=[0, 1, 2])
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    return np.random.default_rng(request.param)


@pytest.fixture()
def table(rng: np.random.Generator) -> Columns:
    """Four columns of different shapes, with missing values in two of them."""
    rows = 5000
    skewed = rng.exponential(2.0, size=rows)
    skewed[rng.random(rows) < 0.2] = np.nan
    offset = 1e9 + rng.normal(0.0, 1e-3, size=rows)
    offset[rng.random(rows) < 0.05] = np.nan
    return {
        "normal": rng.normal(5.0, 2.0, size=rows),
        "skewed": skewed,
        "offset": offset,
        "count": rng.integers(-50, 50, size=rows),
    }


def _split(columns: Columns, rng: np.random.Generator, parts: int) -> list[Columns]:
    """Cut the rows at random places into `parts` blocks (some may be empty)."""
    rows = len(next(iter(columns.values())))
    cuts = np.sort(rng.integers(0, rows + 1, size=parts - 1))
    bounds = [0, *cuts.tolist(), rows]
    return [
        {name: values[start:stop] for name, values in columns.items()}
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True)
    ]


def _merged_moments(blocks: list[Columns], rng: np.random.Generator) -> Moments:
    """Merge block moments in a random order and grouping, as partitions would arrive."""
    pending = [block_moments(block) for block in blocks]
    while len(pending) > 1:
        i, j = sorted(rng.choice(len(pending), size=2, replace=False).tolist())
        right = pending.pop(j)
        left = pending.pop(i)
        pending.append(merge_moments(left, right))
    return pending[0]


def _run_protocol(members: list[list[Columns]], bins: int) -> dict[str, dict[str, Any]]:
    """The four steps of the Distribution component with several members, arbiter in-line."""
    member_moments = [reduce(merge_moments, map(block_moments, blocks)) for blocks in members]
    wired = [moments_to_wire(moments) for moments in member_moments]
    received = [moments_from_wire(json.loads(json.dumps(message))) for message in wired]
    features = list(received[0])
    edges = common_edges(
        {f: [m[f].min for m in received] for f in features},
        {f: [m[f].max for m in received] for f in features},
        bins,
    )
    member_histograms = [
        reduce(merge_histograms, (block_histogram(block, edges) for block in blocks))
        for blocks in members
    ]
    return summarize(
        reduce(merge_moments, received), reduce(merge_histograms, member_histograms), edges, QS
    )


# ---------------------------------------------------------------- moments


def test_merged_block_moments_equal_numpy_on_all_rows(
    table: Columns, rng: np.random.Generator
) -> None:
    # Prepare
    blocks = _split(table, rng, parts=7)

    # Execute
    moments = _merged_moments(blocks, rng)

    # Assert
    for name, values in table.items():
        floats = values.astype(np.float64)
        feature = moments[name]
        assert feature.count == np.count_nonzero(~np.isnan(floats))
        assert feature.missing == np.count_nonzero(np.isnan(floats))
        assert feature.mean == pytest.approx(np.nanmean(floats), rel=1e-13)
        rtol = STD_RTOL.get(name, DEFAULT_STD_RTOL)
        assert feature.std() == pytest.approx(np.nanstd(floats, ddof=1), rel=rtol)
        assert feature.min == np.nanmin(floats)
        assert feature.max == np.nanmax(floats)
        assert feature.total == pytest.approx(np.nansum(floats), rel=1e-12)


def test_moments_stay_exact_for_a_large_offset(rng: np.random.Generator) -> None:
    # Prepare: std 1e-3 around 1e9; a raw sum of squares would lose every digit of it
    values = 1e9 + rng.normal(0.0, 1e-3, size=20_000)
    blocks = _split({"x": values}, rng, parts=16)

    # Execute
    moments = _merged_moments(blocks, rng)

    # Assert
    assert moments["x"].std() == pytest.approx(np.std(values, ddof=1), rel=LARGE_OFFSET_STD_RTOL)
    assert moments["x"].std(ddof=0) == pytest.approx(np.std(values), rel=LARGE_OFFSET_STD_RTOL)


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.just(float("nan"))),
        min_size=0,
        max_size=50,
    ),
    cuts=st.lists(st.integers(0, 50), max_size=4),
)
def test_merge_is_associative_and_matches_whole(values: list[float], cuts: list[int]) -> None:
    # Prepare
    column = np.array(values, dtype=np.float64)
    bounds = [0, *sorted(min(c, column.size) for c in cuts), column.size]
    parts = [
        block_moments({"x": column[a:b]}) for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]

    # Execute
    left_fold = reduce(merge_moments, parts)
    right_fold = reduce(lambda acc, part: merge_moments(part, acc), reversed(parts))
    whole = block_moments({"x": column})

    # Assert
    for merged in (left_fold, right_fold):
        got, want = merged["x"], whole["x"]
        assert (got.count, got.missing, got.min, got.max) == (
            want.count,
            want.missing,
            want.min,
            want.max,
        )
        assert got.mean == pytest.approx(want.mean, rel=1e-9, abs=1e-6)
        assert got.m2 == pytest.approx(want.m2, rel=1e-7, abs=1e-4)


def test_object_column_with_none_counts_as_missing() -> None:
    # Prepare
    as_objects = np.array([1, None, 2.5, True, None, np.int64(7)], dtype=object)
    as_floats = np.array([1.0, np.nan, 2.5, 1.0, np.nan, 7.0])

    # Execute
    from_objects = block_moments({"x": as_objects})["x"]
    from_floats = block_moments({"x": as_floats})["x"]

    # Assert
    assert from_objects == from_floats
    assert from_objects.missing == 2


@pytest.mark.parametrize(
    ("column", "fragment"),
    [
        (np.array(["a", "b"]), "column 'city' is not numeric"),
        (np.array([1.0, "b", None], dtype=object), "column 'city' is not numeric: row 1 holds str"),
        (np.array([1.0, np.inf]), "column 'city' holds infinite values"),
        (np.zeros((2, 2)), "column 'city' must be one-dimensional"),
    ],
)
def test_non_numeric_columns_are_refused_by_name(column: np.ndarray, fragment: str) -> None:
    with pytest.raises(InvalidArgument, match=fragment):
        block_moments({"city": column})


def test_merge_refuses_different_columns() -> None:
    # Prepare
    left = block_moments({"age": np.array([1.0]), "income": np.array([2.0])})
    right = block_moments({"age": np.array([3.0])})

    # Execute / Assert
    with pytest.raises(InvalidArgument, match="'income' is in only one"):
        merge_moments(left, right)


def test_moments_survive_the_wire_and_bad_messages_are_refused() -> None:
    # Prepare
    moments = block_moments({"x": np.array([1.0, np.nan, 4.0]), "empty": np.array([np.nan])})
    message = moments_to_wire(moments)

    # Execute
    rebuilt = moments_from_wire(message)

    # Assert
    assert rebuilt == moments
    for bad, fragment in [
        ({**message["x"], "count": -1}, "count must be a non-negative integer"),
        ({**message["x"], "count": True}, "count must be a non-negative integer"),
        ({**message["x"], "mean": "1"}, "mean must be a number"),
        ({**message["x"], "m2": float("nan")}, "m2 must be a number"),
        ({**message["x"], "m2": -1.0}, "inconsistent"),
        ({k: v for k, v in message["x"].items() if k != "max"}, "exactly the fields"),
    ]:
        with pytest.raises(InvalidArgument, match=fragment):
            moments_from_wire({"x": bad})


# ---------------------------------------------------------------- histograms and quantiles


def test_common_edges_span_every_member_and_ignore_empty_ones() -> None:
    # Prepare: the third member has no value of "a" (its min/max are the empty identities)
    mins = {"a": [2.0, -1.0, np.inf], "b": 4.0, "gone": [np.inf, np.inf]}
    maxs = {"a": [3.0, 1.0, -np.inf], "b": 4.0, "gone": [-np.inf, -np.inf]}

    # Execute
    edges = common_edges(mins, maxs, bins=4)

    # Assert
    np.testing.assert_allclose(edges["a"], [-1.0, 0.0, 1.0, 2.0, 3.0])
    np.testing.assert_array_equal(edges["b"], [4.0, 4.0])
    assert edges["gone"].size == 0


@pytest.mark.parametrize("bins", [0, -3, 2.5, True])
def test_common_edges_refuse_bad_bins(bins: object) -> None:
    with pytest.raises(InvalidArgument, match="bins must be an integer"):
        common_edges({"a": 0.0}, {"a": 1.0}, bins=bins)  # type: ignore[arg-type]


def test_merged_block_histograms_equal_numpy_histogram(
    table: Columns, rng: np.random.Generator
) -> None:
    # Prepare
    whole = block_moments(table)
    edges = common_edges(
        {f: m.min for f, m in whole.items()}, {f: m.max for f, m in whole.items()}, bins=32
    )
    blocks = _split(table, rng, parts=5)

    # Execute
    merged = reduce(merge_histograms, (block_histogram(block, edges) for block in blocks))

    # Assert
    for name, values in table.items():
        floats = values.astype(np.float64)
        expected, _ = np.histogram(floats[~np.isnan(floats)], bins=edges[name])
        np.testing.assert_array_equal(merged[name], expected)
        assert merged[name].dtype == np.int64


def test_histogram_quantiles_are_within_one_bin_of_numpy(rng: np.random.Generator) -> None:
    # Prepare
    values = np.concatenate([rng.normal(0.0, 1.0, 150_000), rng.exponential(3.0, 50_000)])
    moments = block_moments({"x": values})["x"]
    edges = common_edges({"x": moments.min}, {"x": moments.max}, bins=200)["x"]
    hist = block_histogram({"x": values}, {"x": edges})["x"]
    width = edges[1] - edges[0]

    # Execute
    estimated = quantiles_from_histogram(hist, edges, QS)

    # Assert
    exact = np.quantile(values, QS)
    assert np.all(np.abs(estimated - exact) <= width)
    assert estimated[0] == values.min()
    assert estimated[-1] == values.max()
    assert np.all(np.diff(estimated) >= 0)


def test_histogram_quantiles_interpolate_inside_a_bin() -> None:
    # Prepare: 4 values in [0, 1), none in [1, 2), 4 in [2, 3]
    hist = np.array([4, 0, 4])
    edges = np.array([0.0, 1.0, 2.0, 3.0])

    # Execute
    estimated = quantiles_from_histogram(hist, edges, [0.0, 0.25, 0.5, 0.625, 1.0])

    # Assert: rank 2 of 8 is half-way through the first bin; the median closes the first bin
    np.testing.assert_allclose(estimated, [0.0, 0.5, 1.0, 2.25, 3.0])


@pytest.mark.parametrize("qs", [[0.5, 1.5], [-0.1], [float("nan")]])
def test_quantile_levels_outside_zero_one_are_refused(qs: list[float]) -> None:
    with pytest.raises(InvalidArgument, match="qs must lie in"):
        quantiles_from_histogram(np.array([1]), np.array([0.0, 1.0]), qs)


def test_exact_quantiles_equal_numpy_ignoring_missing(table: Columns) -> None:
    # Execute
    result = exact_quantiles(table, QS)

    # Assert
    for name, values in table.items():
        np.testing.assert_allclose(result[name], np.nanquantile(values.astype(float), QS))


# ---------------------------------------------------------------- summaries


def test_members_and_blocks_summarize_like_numpy_on_all_rows(
    table: Columns, rng: np.random.Generator
) -> None:
    # Prepare: three members, each holding some rows cut into blocks
    member_rows = _split(table, rng, parts=3)
    members = [_split(rows, rng, parts=4) for rows in member_rows]

    # Execute
    summary = _run_protocol(members, bins=50)

    # Assert
    json.dumps(summary, allow_nan=False)
    for name, values in table.items():
        floats = values.astype(np.float64)
        present = floats[~np.isnan(floats)]
        feature = summary[name]
        assert feature["count"] == present.size
        assert feature["missing_ratio"] == pytest.approx(1 - present.size / floats.size)
        assert feature["mean"] == pytest.approx(present.mean(), rel=1e-13)
        rtol = STD_RTOL.get(name, DEFAULT_STD_RTOL)
        assert feature["std"] == pytest.approx(present.std(ddof=1), rel=rtol)
        assert (feature["min"], feature["max"]) == (present.min(), present.max())
        width = (present.max() - present.min()) / 50
        exact = np.quantile(present, QS)
        for q, want in zip(QS, exact, strict=True):
            assert abs(feature["quantiles"][str(q)] - want) <= width + 1e-9 * abs(want)
        assert feature["quantile_method"] == "histogram"
        assert sum(feature["histogram"]["counts"]) == present.size
        assert len(feature["histogram"]["edges"]) == 51


def _single_member_summary(
    columns: Mapping[str, np.ndarray], exact: bool
) -> dict[str, dict[str, Any]]:
    moments = block_moments(columns)
    edges = common_edges(
        {f: m.min for f, m in moments.items()}, {f: m.max for f, m in moments.items()}, bins=10
    )
    hist = block_histogram(columns, edges)
    quantiles = exact_quantiles(columns, QS) if exact else None
    return summarize(moments, hist, edges, QS, exact_quantiles=quantiles)


@pytest.mark.parametrize("exact", [False, True])
def test_edge_cases_summarize_to_defined_json(exact: bool) -> None:
    # Prepare
    columns = {
        "constant": np.full(6, 3.5),
        "all_missing": np.full(4, np.nan),
        "one_row": np.array([np.nan, 7.0, np.nan]),
        "no_rows": np.array([], dtype=np.float64),
    }

    # Execute
    summary = _single_member_summary(columns, exact)

    # Assert
    json.dumps(summary, allow_nan=False)
    constant = summary["constant"]
    assert (constant["count"], constant["mean"], constant["std"]) == (6, 3.5, 0.0)
    assert set(constant["quantiles"].values()) == {3.5}
    assert constant["histogram"] == {"edges": [3.5, 3.5], "counts": [6]}

    missing = summary["all_missing"]
    assert (missing["count"], missing["missing"], missing["missing_ratio"]) == (0, 4, 1.0)
    assert missing["mean"] is missing["std"] is missing["min"] is missing["max"] is None
    assert set(missing["quantiles"].values()) == {None}
    assert missing["histogram"] == {"edges": [], "counts": []}

    one = summary["one_row"]
    assert (one["count"], one["mean"], one["min"], one["max"]) == (1, 7.0, 7.0, 7.0)
    assert one["std"] is None
    assert one["missing_ratio"] == pytest.approx(2 / 3)
    assert set(one["quantiles"].values()) == {7.0}

    assert summary["no_rows"]["missing_ratio"] is None
    assert summary["no_rows"]["count"] == 0


def test_single_member_exact_quantiles_are_used_when_given(table: Columns) -> None:
    # Execute
    summary = _single_member_summary(table, exact=True)

    # Assert
    for name, values in table.items():
        feature = summary[name]
        assert feature["quantile_method"] == "exact"
        want = np.nanquantile(values.astype(float), QS)
        np.testing.assert_allclose([feature["quantiles"][str(q)] for q in QS], want)


def test_summarize_refuses_histogram_of_other_rows() -> None:
    # Prepare
    moments = block_moments({"x": np.array([1.0, 2.0, 3.0])})
    edges = {"x": np.array([1.0, 2.0, 3.0])}
    hist = block_histogram({"x": np.array([1.0, 2.0])}, edges)

    # Execute / Assert
    with pytest.raises(InvalidArgument, match="histogram counts 2 values but the moments count 3"):
        summarize(moments, hist, edges, QS)


def test_block_histogram_needs_edges_for_each_column() -> None:
    with pytest.raises(InvalidArgument, match="column 'y' has no bin edges"):
        block_histogram({"y": np.array([1.0])}, {"x": np.array([0.0, 1.0])})


def test_merge_histograms_refuses_different_bins() -> None:
    with pytest.raises(InvalidArgument, match="column 'x' have 2 and 3 bins"):
        merge_histograms({"x": np.array([1, 2])}, {"x": np.array([1, 2, 3])})


def test_feature_moments_sums_are_consistent() -> None:
    # Prepare
    values = np.array([1.0, 2.0, 4.0, np.nan])

    # Execute
    feature = FeatureMoments.of_values(values)

    # Assert
    assert feature.total == 7.0
    assert feature.sum_squares == pytest.approx(21.0)
    assert feature.variance() == pytest.approx(np.var(values[:3], ddof=1))
