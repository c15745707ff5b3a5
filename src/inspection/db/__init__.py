"""Engine and session configuration, the declarative base and the Alembic migrations."""
