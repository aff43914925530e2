"""VertSecureBoost: vertical gradient-boosted trees; the promoter holds the label and the Paillier key."""
