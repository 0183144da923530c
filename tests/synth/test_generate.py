"""generate(): arguments, determinism, progress reporting, and a clean output folder."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from spillover.errors import SpilloverInputError
from spillover.synth import FUTURE_DAYS, generate

TINY = {"customers": 150, "days": 20}


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_same_seed_writes_byte_identical_files(tmp_path):
    first = generate(tmp_path / "a", seed=7, **TINY)
    second = generate(tmp_path / "b", seed=7, **TINY)
    other = generate(tmp_path / "c", seed=8, **TINY)
    a, b, c = _digests(tmp_path / "a"), _digests(tmp_path / "b"), _digests(tmp_path / "c")
    assert len(a) == TINY["days"] + 9  # the daily GA4 files, eight CSV files and impact.json
    assert a == b
    assert {k: v for k, v in first.items() if k != "out_dir"} == {k: v for k, v in second.items() if k != "out_dir"}
    assert a["ga4/events_20240101.json"] != c["ga4/events_20240101.json"]
    assert a["shop/products.csv"] == c["shop/products.csv"]  # the catalog is the same for every seed
    assert other["ga4_events"] != first["ga4_events"]


def test_ga4_days_writes_fewer_export_files_and_the_same_shop_crm_and_truth(tmp_path):
    full = generate(tmp_path / "all", seed=3, **TINY)
    some = generate(tmp_path / "some", seed=3, ga4_days=4, **TINY)
    none = generate(tmp_path / "none", seed=3, ga4_days=0, **TINY)
    a, s, n = _digests(tmp_path / "all"), _digests(tmp_path / "some"), _digests(tmp_path / "none")
    assert sorted(k for k in s if k.startswith("ga4/")) == [f"ga4/events_2024010{d}.json" for d in range(1, 5)]
    assert not [k for k in n if k.startswith("ga4/")]
    assert {k: v for k, v in s.items() if k.startswith("ga4/")} == {k: a[k] for k in s if k.startswith("ga4/")}
    not_ga4 = {k: v for k, v in a.items() if not k.startswith("ga4/")}
    assert {k: v for k, v in s.items() if not k.startswith("ga4/")} == not_ga4
    assert {k: v for k, v in n.items() if not k.startswith("ga4/")} == not_ga4
    assert (some["ga4_files"], none["ga4_files"], full["ga4_files"]) == (4, 0, TINY["days"])
    assert 0 == none["ga4_events"] < some["ga4_events"] < full["ga4_events"]
    assert some["orders"] == none["orders"] == full["orders"]
    with pytest.raises(SpilloverInputError, match="ga4_days"):
        generate(tmp_path / "bad", seed=3, ga4_days=-1, **TINY)


def test_a_rerun_replaces_the_export_files_of_an_earlier_run(tmp_path):
    generate(tmp_path, seed=1, customers=50, days=12)
    generate(tmp_path, seed=1, customers=50, days=5, start="2024-03-01")
    names = sorted(p.name for p in (tmp_path / "ga4").iterdir())
    assert names == [f"events_2024030{d}.json" for d in range(1, 6)]


class RecordingProgress:
    def __init__(self):
        self.tasks: list[tuple[str, float | None]] = []
        self.advanced = 0

    def task(self, description, total=None):
        self.tasks.append((description, total))
        return len(self.tasks)

    def advance(self, task, amount=1, description=None):
        assert task == 1
        self.advanced += amount


def test_progress_reports_one_task_advanced_once_per_simulated_day(tmp_path):
    progress = RecordingProgress()
    summary = generate(tmp_path, seed=0, customers=40, days=9, progress=progress)
    assert progress.tasks == [("synthesising", 9 + FUTURE_DAYS)]
    assert progress.advanced == 9 + FUTURE_DAYS
    assert summary["ga4_files"] == 9 and summary["days"] == 9


def test_summary_reports_what_was_written(tmp_path):
    summary = generate(tmp_path, seed=2, **TINY)
    lines = sum(1 for p in (tmp_path / "ga4").iterdir() for _ in p.open())
    assert summary["ga4_events"] == lines
    assert summary["orders"] == sum(1 for _ in (tmp_path / "shop" / "orders.csv").open()) - 1
    assert summary["property_timezone"] == "America/New_York"
    assert {"ereader_true_att_365", "speaker_adopters", "ga4_duplicate_rows"} <= set(summary)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"customers": 0, "days": 5}, r"customers is 0; it must be at least 1"),
        ({"customers": 5, "days": 0}, r"days is 0; it must be at least 1"),
        ({"customers": 5, "days": 5, "start": "01/02/2024"}, r"start date '01/02/2024' is not a date; write it as YYYY-MM-DD"),
    ],
)
def test_bad_arguments_are_input_errors(tmp_path, arguments, message):
    with pytest.raises(SpilloverInputError, match=message):
        generate(tmp_path, seed=0, **arguments)


def test_the_cli_writes_a_dataset(tmp_path):
    from typer.testing import CliRunner

    from spillover.cli import app

    result = CliRunner().invoke(app, ["synth", str(tmp_path / "out"), "--customers", "30", "--days", "3",
                                      "--seed", "4", "--json"])
    assert result.exit_code == 0, result.output
    assert '"ga4_files": 3' in result.output
    assert (tmp_path / "out" / "truth" / "impact.json").exists()
