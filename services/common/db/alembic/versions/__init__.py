"""Alembic revisions of the scheduler's database, oldest first."""
