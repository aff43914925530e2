"""FeatureStability: population stability index per feature (and of a score) between two data sets."""
