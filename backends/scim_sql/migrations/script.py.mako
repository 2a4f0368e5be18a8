"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op
${imports if imports else ""}

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}



def _prefix() -> str:
    """The table prefix (``SCIM_TABLE_PREFIX``, ``scim_`` by default) env.py hands the revisions.

    Name every table, index and constraint with it: ``f"{_prefix()}events"``, never a literal ``"scim_events"``
    (autogenerate writes literals: replace them), so a host's chosen prefix reaches the new table too.
    """
    return str(context.config.attributes.get("table_prefix") or "scim_")


def upgrade() -> None:
    """Apply this revision."""
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    """Revert this revision."""
    ${downgrades if downgrades else "pass"}
