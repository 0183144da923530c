"""Downstream impact: what a gateway product causes elsewhere, per buyer, with its uncertainty."""
