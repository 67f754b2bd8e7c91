"""Django's PostgreSQL backend with psycopg's compiled timestamptz loader (see base.py)."""
