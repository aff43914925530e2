"""FillMissing: fills missing values per column with a fitted mean, median, mode or a constant."""
