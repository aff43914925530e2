"""Statistics over Tables that merge across partitions: moments, order statistics, distinct counts, PSI."""
