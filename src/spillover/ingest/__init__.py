"""Ingestion: files the business already has → base/staging tables, with nothing lost.

Every input row ends loaded, quarantined (``ops_quarantine``, with file, line and reason) or counted
as a duplicate; ``ops_loads`` records each load.
"""
