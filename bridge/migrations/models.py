"""The product's whole schema: every module that declares tables, in one list.

Where it sits: under the migrations. `bridge/migrations/env.py` takes its target
metadata from `target_metadata()`, so `faxbridge db revision` (autogenerate) compares
the database with every flow's tables, not only those some earlier import happened to
load; the schema tests check the migrations against the same metadata. It lives here,
not in bridge.core, because it names the flows and bridge.core imports none of them.

A flow that adds a models module adds it to MODEL_MODULES; a test walks the packages
and fails while a mapped class lives in a module missing from this list.
"""

from __future__ import annotations

import importlib
from typing import Any

from sqlalchemy import Float, MetaData
from sqlalchemy.types import TypeEngine

# Spine first: the flows' tables point at `jobs` and at each other through
# `Base.metadata`, which resolves foreign keys only once every table is declared.
MODEL_MODULES: tuple[str, ...] = (
    "bridge.core.models",
    # Also the account holds and state changes (STYLE 13, migration 0005_account_holds).
    "bridge.accounts.models",
    "bridge.outbound.models",
    "bridge.money.models",
    "bridge.inbound.models",
    "bridge.abuse.models",
)


def target_metadata() -> MetaData:
    """`Base.metadata` with every module of MODEL_MODULES imported into it."""
    for module in MODEL_MODULES:
        importlib.import_module(module)
    from bridge.core.models import Base

    return Base.metadata


def compare_type(
    context: Any,
    inspected_column: Any,
    metadata_column: Any,
    inspected_type: TypeEngine[Any],
    metadata_type: TypeEngine[Any],
) -> bool | None:
    """Alembic's type comparison, less the names SQLite gives one storage class.

    SQLite stores FLOAT, REAL and DOUBLE alike as an 8-byte REAL, so a column made as
    `sa.Float()` (0003_inbound) and a model that says `Double` hold the same values;
    reporting that as a change would put a no-op rebuild of the table into every new
    migration. Anything else is left to Alembic (None).
    """
    if (
        context.dialect.name == "sqlite"
        and isinstance(inspected_type, Float)
        and isinstance(metadata_type, Float)
    ):
        return False
    return None


# How autogenerate and the schema tests compare the database with the models.
COMPARE_OPTIONS: dict[str, Any] = {"compare_type": compare_type}
