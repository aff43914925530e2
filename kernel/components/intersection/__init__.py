"""Intersection: ECDH private set intersection of the members' ids (vertical federated learning)."""
