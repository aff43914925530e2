"""Constants of Distribution: metric names and the fixed point of its masked sums."""

from __future__ import annotations

from typing import Final

METRIC_NAMESPACE: Final = "distribution"
COMPONENT: Final = "Distribution"

# Fixed-point bits of the masked sums. Every summed value is a count or lies in [-1, 1]
# times a count (values are centred and scaled by the common edges first), so a member's
# rows times the number of members must stay below 2**(63 - bits): 2**35 rows at 28 bits.
MASK_PRECISION_BITS: Final = 28

# The one masked round of a Distribution.
ROUND_STATISTICS: Final = "statistics"

# Entries of a feature's block in the masked vector before its histogram counts.
SUMS_PER_FEATURE: Final = 4
