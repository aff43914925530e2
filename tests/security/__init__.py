"""Attacks on the member's listeners: each refused with a clear status, nothing stored."""
