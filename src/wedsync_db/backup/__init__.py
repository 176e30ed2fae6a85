"""Backups and point-in-time recovery: repository, tools and use-cases."""
