"""Alembic migrations for the faxbridge schema (bridge.models); see bridge.schema."""
