"""The yardstick of the HTTP benchmark: a bare Flask + SQLAlchemy route that reads one row by primary key.

``GET /bare/users/<id>`` selects one ``scim_users`` row by its primary key through a plain SQLAlchemy
engine (default pool, no authentication, no log, no schemas) and answers it as JSON. It is served by
gunicorn with the same settings as the service, on the same database, in the same rounds, so the
service's figures can be read as fractions of "the cost of one row read over HTTP" on this machine.

    BENCH_DATABASE_URL=sqlite:///... gunicorn --chdir tests/benchmarks bare_app:app
"""

from __future__ import annotations

import json
import os

import sqlalchemy as sa
from flask import Flask, Response, abort

engine = sa.create_engine(os.environ["BENCH_DATABASE_URL"])
app = Flask(__name__)

_ONE_ROW = sa.text("SELECT id, user_name, active, data FROM scim_users WHERE id = :id")


@app.get("/bare/users/<user_id>")
def one_row(user_id: str) -> Response:
    """The row with this primary key as JSON, or 404."""
    with engine.connect() as conn:
        row = conn.execute(_ONE_ROW, {"id": user_id}).first()
    if row is None:
        abort(404)
    data = row.data if isinstance(row.data, dict) else json.loads(row.data)
    body = {"id": row.id, "userName": row.user_name, "active": bool(row.active), "data": data}
    return Response(json.dumps(body), mimetype="application/json")
