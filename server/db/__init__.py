"""Storage: SQLModel tables, engines, Alembic migrations."""
