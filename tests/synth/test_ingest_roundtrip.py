"""A generated dataset loads through spillover's own ingestion with nothing quarantined."""

from __future__ import annotations

import pytest

from spillover.config import Config, GA4Config
from spillover.synth import PROPERTY_TIMEZONE, generate

ga4 = pytest.importorskip("spillover.ingest.ga4", reason="GA4 ingestion (spillover.ingest.ga4) is not written yet")
tabular = pytest.importorskip("spillover.ingest.tabular", reason="tabular ingestion is not written yet")

TABULAR = (("products", "shop/products.csv"), ("crm", "crm/members.csv"), ("orders", "shop/orders.csv"),
           ("order_items", "shop/order_items.csv"))


def test_a_generated_dataset_loads_with_zero_quarantined_rows(tmp_path, duck):
    data = tmp_path / "data"
    summary = generate(data, customers=150, days=2, seed=21)
    config = Config(project_dir=tmp_path, ga4=GA4Config(property_timezone=PROPERTY_TIMEZONE))

    loads = [ga4.ingest_ga4(duck, [data / "ga4"], config=config)]
    for source, relative in TABULAR:
        loads.append(tabular.ingest_source(duck, source, data / relative, config=config))

    problems = {load.source: load.rows_quarantined for load in loads if load.rows_quarantined}
    if problems:
        reasons = duck.sql("select source, reason, column_name, min(message) as message, count(*) as n "
                           "from ops_quarantine group by all").to_pandas()
        pytest.fail(f"quarantined rows {problems}:\n{reasons.to_string()}")
    ga4_load, *tables = loads
    assert ga4_load.rows_read == summary["ga4_events"]
    # The export's exact duplicate rows are dropped and counted, nothing else.
    assert ga4_load.duplicates_dropped == summary["ga4_duplicate_rows"]
    assert ga4_load.rows_loaded == summary["ga4_events"] - summary["ga4_duplicate_rows"]
    by_source = {load.source: load for load in tables}
    assert by_source["orders"].rows_loaded == summary["orders"]
    assert by_source["order_items"].rows_loaded == summary["order_items"]
    assert by_source["crm"].rows_loaded == summary["crm_members"]
