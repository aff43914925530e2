"""ScoreCard: a VertLR model on WOE features as points per bin at each member and a score per row."""
