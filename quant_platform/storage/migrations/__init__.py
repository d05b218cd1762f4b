"""Alembic environment of the warm tier; a package so that wheels ship the revisions."""
