"""The ``[impact]`` section of ``spillover.toml``: defaults, reading and the messages for bad values."""

from __future__ import annotations

import pytest

from spillover.config import load_config
from spillover.errors import SpilloverConfigError


def test_defaults_suit_the_synthetic_ecosystem(tmp_path):
    impact = load_config(tmp_path).impact
    assert impact.horizons_days == (90, 180, 365)
    assert impact.pre_period_days == 365
    assert impact.device_events["G002"]["monetisable"] == ("voice_shop",)
    assert (impact.discount_rate, impact.life_months, impact.confidence_level) == (0.10, 24, 0.95)


def test_the_section_is_read(tmp_path):
    (tmp_path / "spillover.toml").write_text(
        '[impact]\nhorizons_days = [180, 30]\npre_period_days = 120\nlife_months = 36\n'
        'monthly_persistence = 0.8\n'
        '[impact.exclude_products]\nG001 = ["P00040"]\n'
        '[impact.exclude_categories]\nG001 = ["accessories"]\n'
        '[impact.service_cost_per_month]\nG002 = 0.35\n'
        '[impact.device_events.T100]\nfree = ["tv_watch"]\nmonetisable = ["tv_rent"]\n',
        encoding="utf-8",
    )
    impact = load_config(tmp_path).impact
    assert impact.horizons_days == (30, 180)
    assert impact.pre_period_days == 120 and impact.life_months == 36 and impact.monthly_persistence == 0.8
    assert impact.exclude_products == {"G001": ("P00040",)}
    assert impact.exclude_categories == {"G001": ("accessories",)}
    assert impact.service_cost_per_month == {"G002": 0.35}
    assert impact.device_events == {"T100": {"free": ("tv_watch",), "monetisable": ("tv_rent",)}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("horizons_days = [0, 90]", "must list at least one horizon of 1 day or more"),
        ("discount_rate = 1.5", "impact.discount_rate"),
        ("monthly_persistence = 2", "impact.monthly_persistence"),
        ('[impact.device_events.G002]\nfree = ["voice_timer"]', "must have 'free'.*and 'monetisable' lists"),
    ],
)
def test_bad_values_name_the_field(tmp_path, text, message):
    (tmp_path / "spillover.toml").write_text(f"[impact]\n{text}\n", encoding="utf-8")
    with pytest.raises(SpilloverConfigError, match=message):
        load_config(tmp_path)
