"""Staging: base tables → typed, keyed staging tables and facts (``stg_*``, ``fct_*``)."""
