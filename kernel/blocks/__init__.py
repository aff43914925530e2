"""Building blocks several components share: id alignment, masked sums, optimizers, link functions, payload checks, table streams."""
