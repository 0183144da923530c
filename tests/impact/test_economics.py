"""Unit economics against numbers worked out by hand (in the comments), and the verdict's rules."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from spillover.config import ImpactSettings
from spillover.errors import SpilloverInputError
from spillover.impact.economics import (
    DAYS_PER_MONTH,
    INCONCLUSIVE,
    VALUE_CREATOR,
    VALUE_DESTROYER,
    EffectCurve,
    discount_factors,
    horizon_loading,
    subscription_break_even,
    unit_economics,
    unit_economics_from_settings,
)

SIX_MONTHS = 6 * DAYS_PER_MONTH
Z95 = 1.959963984540054


def test_an_effect_accrues_evenly_inside_the_horizon_and_persists_after_it():
    # 6 months measured: 1/6 of the ATT a month; persistence 1 keeps that rate for months 7-12.
    assert horizon_loading(SIX_MONTHS, 12, 1.0) == pytest.approx([1 / 6] * 12)
    # Persistence 0: nothing after the horizon.
    assert horizon_loading(SIX_MONTHS, 8, 0.0) == pytest.approx([1 / 6] * 6 + [0, 0])
    # 3 months measured, persistence 0.5: month 4 gets (1/3) × ∫0..1 0.5^x dx = (1/3) × 0.5 / ln 2.
    loading = horizon_loading(3 * DAYS_PER_MONTH, 4, 0.5)
    assert loading == pytest.approx([1 / 3, 1 / 3, 1 / 3, (1 / 3) * 0.5 / math.log(2)])
    # A horizon ending mid-month: 45 days = 1.478 months; month 2 holds 45 - 30.4375 = 14.5625 days.
    assert horizon_loading(45, 2, 0.0) == pytest.approx([30.4375 / 45, 14.5625 / 45])


def test_discount_factors_fall_at_each_months_end():
    annual = 1.01**12 - 1  # 1% a month
    assert discount_factors(2, annual) == pytest.approx([1 / 1.01, 1 / 1.0201])
    assert discount_factors(3, 0.0) == pytest.approx([1, 1, 1])


def test_a_speaker_like_product_that_never_pays_back_is_a_value_destroyer():
    # Loss of 5 a unit; ATT 1.50 over 6 months (se 0.10), kept for 12 months, no discounting:
    # 0.25 a month, PV 3.00, net -2.00; se of PV = 0.10 × 2 = 0.20; 95% CI -2 ± 1.96 × 0.2.
    curve = EffectCurve.from_horizon(1.5, 0.1, horizon_days=SIX_MONTHS, life_months=12, monthly_persistence=1.0)
    result = unit_economics(hardware_margin=-5.0, curve=curve, annual_discount_rate=0.0)
    assert result.downstream_pv == pytest.approx(3.0)
    assert result.net_value == pytest.approx(-2.0)
    assert result.net_value_se == pytest.approx(0.2)
    assert (result.ci_low, result.ci_high) == pytest.approx((-2 - Z95 * 0.2, -2 + Z95 * 0.2))
    assert result.probability_positive == pytest.approx(NormalDist().cdf(-10.0))
    assert result.payback_month is None  # -5 + 0.25 × 12 = -2 < 0
    assert result.break_even_monthly_margin == pytest.approx(5 / 12)
    assert result.estimated_monthly_margin == pytest.approx(0.25)
    assert result.shortfall_monthly_margin == pytest.approx(5 / 12 - 0.25)
    assert result.extrapolated_share == pytest.approx(0.5)  # months 7-12 carry half the value
    assert result.verdict == VALUE_DESTROYER
    assert "lies below 0" in result.reasons[0]
    assert any("sold at a loss of 5.00" in reason for reason in result.reasons)
    assert result.cumulative_value[-1] == pytest.approx(-2.0)
    # Voice premium at 4.99 (cost 1.40) must close 1/6 a month: 0.1667 / 3.59 of owners subscribing,
    # or at 5% take-up a price of 1.40 + 0.1667 / 0.05.
    closing = subscription_break_even(result.shortfall_monthly_margin, price=4.99, unit_cost=1.40, take_up=0.05)
    assert closing["take_up_needed"] == pytest.approx((1 / 6) / 3.59)
    assert closing["price_needed"] == pytest.approx(1.40 + (1 / 6) / 0.05)


def test_discounting_and_payback_by_hand():
    # Loss of 15; 10 a month for 2 months at 1% a month: 10/1.01 + 10/1.0201 = 19.70395; net 4.70395.
    curve = EffectCurve(mean=np.array([10.0, 10.0]), covariance=np.zeros((2, 2)), measured_months=2.0)
    result = unit_economics(hardware_margin=-15.0, curve=curve, annual_discount_rate=1.01**12 - 1)
    assert result.downstream_pv == pytest.approx(10 / 1.01 + 10 / 1.0201)
    assert result.net_value == pytest.approx(10 / 1.01 + 10 / 1.0201 - 15)
    assert result.payback_month == 2  # -15 + 9.90 < 0 after month 1
    assert result.probability_positive == 1.0
    assert result.verdict == VALUE_CREATOR
    assert result.extrapolated_share == 0.0


def test_service_costs_reduce_the_value_and_a_profitable_unit_pays_back_at_once():
    # Margin 2 a unit, a service cost of 0.5 a month for 4 months, no effect: net 2 - 2 = 0.
    curve = EffectCurve(mean=np.zeros(4), covariance=np.zeros((4, 4)), measured_months=4.0)
    result = unit_economics(hardware_margin=2.0, curve=curve, annual_discount_rate=0.0, service_cost_per_month=0.5)
    assert result.service_cost_pv == pytest.approx(2.0)
    assert result.net_value == pytest.approx(0.0)
    assert result.payback_month == 0
    assert result.break_even_monthly_margin == pytest.approx(0.0)
    assert result.verdict == INCONCLUSIVE
    assert result.probability_positive == 0.5


def test_monthly_effects_carry_on_with_their_covariance():
    # Months 1-2 measured (1 ± 0.1, 2 ± 0.2, independent), persistence 0.5 over 4 months: 1, 2, 1, 0.5.
    # Months 3 and 4 load 0.5 and 0.25 on month 2: var = 0.01 + 0.04 × (1 + 0.5 + 0.25)².
    curve = EffectCurve.from_monthly([1.0, 2.0], np.diag([0.01, 0.04]), life_months=4, monthly_persistence=0.5)
    assert curve.mean == pytest.approx([1.0, 2.0, 1.0, 0.5])
    result = unit_economics(hardware_margin=-1.0, curve=curve, annual_discount_rate=0.0)
    assert result.downstream_pv == pytest.approx(4.5)
    assert result.net_value_se == pytest.approx(math.sqrt(0.01 + 0.04 * 1.75**2))
    assert result.verdict == VALUE_CREATOR
    assert result.payback_month == 1
    assert result.extrapolated_share == pytest.approx(1.5 / 4.5)


def test_an_interval_across_zero_or_a_failed_diagnostic_is_inconclusive():
    curve = EffectCurve.from_horizon(3.0, 2.0, horizon_days=SIX_MONTHS, life_months=6, monthly_persistence=1.0)
    straddling = unit_economics(hardware_margin=-2.0, curve=curve, annual_discount_rate=0.0)
    assert straddling.net_value == pytest.approx(1.0)
    assert straddling.verdict == INCONCLUSIVE
    assert "contains 0" in straddling.reasons[0]
    assert straddling.probability_positive == pytest.approx(NormalDist().cdf(0.5))
    confident = EffectCurve.from_horizon(30.0, 1.0, horizon_days=SIX_MONTHS, life_months=6, monthly_persistence=1.0)
    doubted = unit_economics(
        hardware_margin=-2.0, curve=confident, annual_discount_rate=0.0, diagnostics_failed=("poor overlap",)
    )
    assert doubted.ci_low > 0
    assert doubted.verdict == INCONCLUSIVE
    assert doubted.reasons[0] == "the effect estimate failed a diagnostic: poor overlap"


def test_settings_supply_life_discounting_persistence_and_service_cost():
    settings = ImpactSettings(
        life_months=12, discount_rate=0.0, monthly_persistence=1.0, service_cost_per_month={"G002": 0.1}
    )
    result = unit_economics_from_settings(
        settings, product_id="G002", hardware_margin=-5.0, att=1.5, att_se=0.1, horizon_days=round(SIX_MONTHS)
    )
    # 183 days measured: 1.5 × 12 × 30.4375 / 183 downstream, less 0.1 × 12 service.
    assert result.downstream_pv == pytest.approx(1.5 * 365.25 / 183)
    assert result.net_value == pytest.approx(-5.0 - 1.2 + 1.5 * 365.25 / 183)


def test_bad_inputs_say_what_to_fix():
    with pytest.raises(SpilloverInputError, match="monthly_persistence 1.5 must lie between 0 and 1"):
        horizon_loading(90, 12, 1.5)
    with pytest.raises(SpilloverInputError, match="discount rate 1.2 must lie in"):
        discount_factors(12, 1.2)
    with pytest.raises(SpilloverInputError, match="does not exceed its unit cost"):
        subscription_break_even(1.0, price=1.0, unit_cost=1.4)
    with pytest.raises(SpilloverInputError, match="covariance must be"):
        EffectCurve(mean=np.zeros(3), covariance=np.zeros((2, 2)), measured_months=1.0)
