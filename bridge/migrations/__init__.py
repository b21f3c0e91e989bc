"""Alembic migrations for the faxbridge schema (bridge.core.models); see bridge.core.schema."""
