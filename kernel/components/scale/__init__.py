"""Scale: standard or min-max scaling of each member's own columns, fitted once and reused."""
