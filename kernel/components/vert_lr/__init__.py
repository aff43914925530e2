"""VertLR: vertical logistic regression; the promoter holds the label and the Paillier key."""
