"""A synthetic retail ecosystem with known ground truth: GA4 export, CRM, shop orders and the truth.

``generate`` simulates people day by day (vectorised over people, streamed over days) and writes the
files spillover ingests, beside ``truth/`` holding what really happened; see docs/synthetic.md.
"""

from __future__ import annotations

from spillover.synth.clock import PROPERTY_TIMEZONE
from spillover.synth.dataset import FUTURE_DAYS, generate, simulate_truth

__all__ = ["generate", "simulate_truth", "FUTURE_DAYS", "PROPERTY_TIMEZONE"]
