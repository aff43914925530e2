"""HorzLR: horizontal logistic regression; members train locally, an arbiter averages masked updates."""
