"""Downstream impact: what a gateway product (a device, a membership) causes elsewhere, per buyer.

Estimators with confidence intervals and diagnostics (``estimators``, ``event_study``,
``diagnostics``), and the flat-table entry point the CLI calls (``flat_table``).
"""
