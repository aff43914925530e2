"""The Weft Board: a member's web pages over its scheduler's client API."""
