"""Project configuration and key handling."""

from __future__ import annotations

import stat

import pytest

from spillover.config import init_project, load_config, project_key
from spillover.errors import SpilloverConfigError


def test_defaults_without_a_file(tmp_path):
    config = load_config(tmp_path)
    assert config.db == "duckdb:///spillover.duckdb"
    assert config.ga4.max_timestamp_skew_hours == 14.0


def test_init_writes_config_and_a_private_key_and_never_replaces_it(tmp_path, monkeypatch):
    monkeypatch.delenv("SPILLOVER_KEY")
    first = init_project(tmp_path)
    key_path = tmp_path / ".spillover" / "key"
    assert first["config_written"] and first["key_written"]
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    key = key_path.read_text()
    second = init_project(tmp_path)
    assert not second["config_written"] and not second["key_written"]
    assert key_path.read_text() == key
    assert project_key(load_config(tmp_path)) == key.strip().encode()


def test_key_from_environment_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("SPILLOVER_KEY", "k" * 40)
    done = init_project(tmp_path)
    assert done["key_source"] == "environment" and not (tmp_path / ".spillover" / "key").exists()
    assert project_key(load_config(tmp_path)) == b"k" * 40


def test_missing_key_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("SPILLOVER_KEY")
    with pytest.raises(SpilloverConfigError, match=r"no project key: .* run `spillover init`"):
        project_key(load_config(tmp_path))


def test_invalid_toml_names_the_file(tmp_path):
    (tmp_path / "spillover.toml").write_text("db = \n")
    with pytest.raises(SpilloverConfigError, match=r"spillover.toml: not valid TOML"):
        load_config(tmp_path)


def test_invalid_values_are_listed_by_field(tmp_path):
    (tmp_path / "spillover.toml").write_text('db = "no-scheme"\n[ga4]\nmax_timestamp_skew_hours = -1\n')
    with pytest.raises(SpilloverConfigError, match=r"db: .*no scheme.*ga4.max_timestamp_skew_hours"):
        load_config(tmp_path)


def test_column_mapping_is_read(tmp_path):
    (tmp_path / "spillover.toml").write_text('[columns.crm]\nmember_id = "CustomerNumber"\n')
    assert load_config(tmp_path).columns.crm == {"member_id": "CustomerNumber"}


def test_unknown_time_zone_is_refused(tmp_path):
    (tmp_path / "spillover.toml").write_text('[ga4]\nproperty_timezone = "Mars/Olympus"\n')
    with pytest.raises(SpilloverConfigError, match=r"ga4.property_timezone: .*unknown time zone 'Mars/Olympus'"):
        load_config(tmp_path)


def test_init_writes_the_property_time_zone(tmp_path):
    init_project(tmp_path, timezone="America/New_York")
    assert load_config(tmp_path).ga4.property_timezone == "America/New_York"
