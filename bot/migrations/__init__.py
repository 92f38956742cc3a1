"""Alembic migrations, shipped inside the package so `bot db upgrade` works from anywhere."""
