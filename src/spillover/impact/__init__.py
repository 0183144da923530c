"""Downstream impact: what a gateway product (a device, a membership) causes elsewhere, per buyer.

The design (``cohorts``, ``covariates``, ``panel``, ``facts``, ``calendar``), the estimators with
confidence intervals and diagnostics (``estimators``, ``event_study``, ``diagnostics``), the naive
figures beside them (``naive``), what owners do with a device (``engagement``), unit economics
(``economics``), and the flat-table entry point the CLI calls (``flat_table``).
"""
