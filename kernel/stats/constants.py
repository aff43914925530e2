"""Constants of the statistics package: refinement sizes, sketch precision, thresholds."""

from __future__ import annotations

from typing import Final

# Order statistics: buckets of each refinement pass, and the most values of one interval
# gathered as they are (the pass after which the answer is read off directly).
REFINE_BUCKETS: Final = 1024
REFINE_GATHER_LIMIT: Final = 4096
# A bound on refinement passes; each pass narrows an interval at least to one bucket of
# 1024 so float64 intervals are exhausted long before it.
REFINE_MAX_PASSES: Final = 64

# Distinct counts: exact up to this many values per column, then a HyperLogLog sketch.
DISTINCT_EXACT_LIMIT: Final = 10_000
# HyperLogLog registers are 2**HLL_PRECISION (16384: about 0.8% relative error).
HLL_PRECISION: Final = 14

# Population stability index: the readings users act on.
PSI_STABLE_BELOW: Final = 0.1
PSI_SHIFT_BELOW: Final = 0.25
# A bin holding no rows of one population counts as this share of it, so PSI stays finite.
PSI_EMPTY_SHARE: Final = 1e-4

# Split keys: strata beyond this many label values are refused (a label to stratify on is a
# class); the one stratum of an unstratified split; a threshold above every key in [0, 1).
MAX_STRATA: Final = 1000
ALL_ROWS: Final = "all"
ABOVE_ALL_KEYS: Final = 2.0

# Rows of one message of a stratified split's (id, part) stream: 1 MiB when an id takes 8 bytes.
ASSIGNMENT_STREAM_ROWS: Final = 65_536
