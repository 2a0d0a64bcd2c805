"""The limit apps: the system's SQL without the framework (see app.py)."""
