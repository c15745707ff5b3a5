"""The organisation tree, people, their role grants and authentication."""
