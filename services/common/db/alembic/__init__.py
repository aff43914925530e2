"""Alembic environment and revisions of the scheduler's database."""
