"""Statistics: per-column count, missing rate, moments, quantiles and distinct count at each member."""
