"""The append-only, hash-chained change log."""
