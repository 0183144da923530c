"""Writing a synthetic dataset: the day loop that simulates the world and streams every file.

The world alone (no files) can be re-run with one device's effects switched off: the same draws give
the world without the device, which is how the counterfactual margins in truth/ are checked.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from spillover.errors import SpilloverInputError
from spillover.progress import NullProgress, Progress
from spillover.synth.catalog import DEVICES, build_catalog
from spillover.synth.clock import DEFAULT_START, PROPERTY_TIMEZONE, Calendar
from spillover.synth.ga4_json import EventRenderer
from spillover.synth.ga4_sessions import PageIndex, SessionBuilder
from spillover.synth.identity import crm_members
from spillover.synth.people import draw_population
from spillover.synth.tables import (
    IdentityWriter,
    OrderWriter,
    write_adopters,
    write_final_identities,
    write_members,
    write_people,
    write_products,
)
from spillover.synth.truth import HOLDOUT_WINDOWS, HORIZONS, Ledger
from spillover.synth.world import World

__all__ = ["generate", "simulate_truth", "FUTURE_DAYS", "PROPERTY_TIMEZONE"]

#: Days simulated after the written period, for the truth only: the longest horizon and holdout.
FUTURE_DAYS = max(max(HORIZONS), max(HOLDOUT_WINDOWS))
_STREAMS = ("population", "world", "ga4", "crm", *(f"effect:{d.key}" for d in DEVICES))
#: GA4 files are rendered and written by this many threads while later days are simulated.
_WRITERS = 2
#: Days whose GA4 file may be in the writers' hands at once (bounds memory).
_DAYS_IN_FLIGHT = 3


def _parse_start(start: str | dt.date | None) -> dt.date:
    if start is None:
        return DEFAULT_START
    if isinstance(start, dt.date):
        return start
    try:
        return dt.date.fromisoformat(start)
    except ValueError:
        raise SpilloverInputError(f"start date {start!r} is not a date; write it as YYYY-MM-DD, e.g. 2024-01-01") from None


def _prepare(out_dir: Path) -> None:
    for sub in ("ga4", "crm", "shop", "truth"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    # A previous run may have written other days: its export files would otherwise linger.
    for old in (out_dir / "ga4").glob("events_*.json"):
        old.unlink()


def _write_events(renderer: EventRenderer, events, date: str, transactions: np.ndarray, path: Path) -> None:
    with path.open("wb") as handle:
        for chunk in renderer.render(events, date, transactions):
            handle.write(chunk)
            del chunk


def random_streams(seed: int) -> dict[str, np.random.Generator]:
    """One independent generator per purpose, so that changing one never shifts the others."""
    children = np.random.SeedSequence(seed).spawn(len(_STREAMS))
    return {name: np.random.Generator(np.random.PCG64(child)) for name, child in zip(_STREAMS, children)}


def _setup(customers: int, days: int, seed: int, start: str | dt.date | None,
           without_effects_of: frozenset[str] = frozenset()):
    if customers < 1:
        raise SpilloverInputError(f"customers is {customers}; it must be at least 1")
    if days < 1:
        raise SpilloverInputError(f"days is {days}; it must be at least 1")
    unknown = set(without_effects_of) - {d.key for d in DEVICES}
    if unknown:
        raise SpilloverInputError(f"unknown device(s) {sorted(unknown)}; use {[d.key for d in DEVICES]}")
    start_date = _parse_start(start)
    streams = random_streams(seed)
    calendar = Calendar(start_date, days, FUTURE_DAYS)
    catalog = build_catalog()
    pop = draw_population(customers, days, streams["population"])
    world = World(pop, catalog, calendar, streams["world"], [streams[f"effect:{d.key}"] for d in DEVICES],
                  without_effects_of=frozenset(without_effects_of))
    ledger = Ledger(customers, days, catalog)
    return start_date, streams, calendar, catalog, pop, world, ledger


def simulate_truth(*, customers: int, days: int, seed: int, start: str | dt.date | None = None,
                   without_effects_of: frozenset[str] = frozenset()) -> tuple[World, Ledger]:
    """Simulate the world of ``generate`` (same arguments, same draws) without writing any file.

    With ``without_effects_of={"speaker"}`` people still buy speakers, but owning one changes
    nothing: each adopter's margin is then the margin the truth reports "without" the device.
    """
    *_, world, ledger = _setup(customers, days, seed, start, without_effects_of)
    for day in range(world.calendar.total_days):
        orders, counterfactual = world.simulate_day(day)
        ledger.record(day, orders, counterfactual, world.adoption_day, world.owners)
    return world, ledger


def generate(
    out_dir: Path | str,
    *,
    customers: int,
    days: int,
    seed: int,
    start: str | dt.date | None = None,
    ga4_days: int | None = None,
    progress: Progress | None = None,
) -> dict[str, object]:
    """Write ``ga4/``, ``crm/``, ``shop/`` and ``truth/`` under ``out_dir``; return a summary.

    The same arguments always write byte-identical files. Event dates are in the property time
    zone (America/New_York); timestamps are UTC microseconds.

    ``ga4_days``: write the GA4 export of the first that many days only (``None``: every day). The
    sessions of the other days are still simulated (online orders get their times and identities
    from them), so the CRM, shop and truth files are the same whatever ``ga4_days`` is; only the
    rendering and writing of the export, most of the time at scale, is skipped.
    """
    if ga4_days is not None and ga4_days < 0:
        raise SpilloverInputError(f"ga4_days is {ga4_days}; it must be 0 or more (0: no GA4 export)")
    start_date, streams, calendar, catalog, pop, world, ledger = _setup(customers, days, seed, start)
    ga4_days = days if ga4_days is None else min(ga4_days, days)
    progress = progress or NullProgress()
    out = Path(out_dir)
    _prepare(out)
    pages = PageIndex(catalog)
    sessions = SessionBuilder(pop, catalog, calendar, world, streams["ga4"], pages)
    renderer = EventRenderer(catalog, pages, pop.city)
    write_products(out / "shop" / "products.csv", catalog)
    order_writer = OrderWriter(out, pop, catalog)
    identities = IdentityWriter(out / "truth" / "identity.csv")

    task = progress.task("synthesising", total=calendar.total_days)
    ga4_events = ga4_duplicates = 0
    state_at_end: dict[str, np.ndarray] = {}
    # Rendering and writing the GA4 files (Arrow and file I/O release the GIL) overlaps with
    # simulating the next days; each file is written whole by one worker, so content is fixed.
    writer = ThreadPoolExecutor(max_workers=_WRITERS)
    in_flight: deque[Future] = deque()
    try:
        for day in range(calendar.total_days):
            orders, counterfactual = world.simulate_day(day)
            ledger.record(day, orders, counterfactual, world.adoption_day, world.owners)
            if day < days:
                events, order_time = sessions.build(day, orders)
                transactions = order_writer.write_day(orders, order_time)
                if day < ga4_days:
                    date = calendar.compact(day)
                    in_flight.append(writer.submit(_write_events, renderer, events, date, transactions,
                                                   out / "ga4" / f"events_{date}.json"))
                    while len(in_flight) > _DAYS_IN_FLIGHT:
                        in_flight.popleft().result()
                    ga4_events += events.size
                    ga4_duplicates += events.duplicates
                identities.clients(sessions.clients, *sessions.announcements(events))
                progress.advance(task, description=f"writing {calendar.iso(day)}")
            else:
                progress.advance(task, description="simulating the holdout (truth only)")
            if day == days - 1:
                state_at_end = {
                    "active_at_end": world.active.copy(),
                    "churn_day_at_end": world.churn_day.copy(),
                    "member_since": world.member_since.copy(),
                }
        crm = crm_members(pop, world.member_number, world.member_since, world.secondary_number,
                          world.secondary_day, days - 1, start_date, streams["crm"])
        members = write_members(out / "crm" / "members.csv", crm)
        write_final_identities(identities, crm, pop, sessions.user_id_seen, order_writer.guest_email_used)
        while in_flight:
            in_flight.popleft().result()
    finally:
        writer.shutdown(wait=True, cancel_futures=True)
        order_writer.close()
        identities.close()
    state_at_end["adoption_day"] = world.adoption_day
    write_people(out / "truth" / "people.csv", pop, state_at_end, ledger, start_date)
    adopters = write_adopters(out / "truth" / "adopters.csv", pop, world.adoption_day, ledger, start_date)
    impact = {
        "property_timezone": PROPERTY_TIMEZONE,
        "period": {"start": start_date.isoformat(), "end": calendar.iso(days - 1), "days": days},
        "seed": seed,
        "customers": customers,
        "currency": "USD",
        "margin": "revenue - unit_cost * quantity - discount; the device's own lines excluded",
        "horizons_days": list(HORIZONS),
        "devices": ledger.impact(world.adoption_day),
    }
    (out / "truth" / "impact.json").write_text(json.dumps(impact, indent=2) + "\n", encoding="utf-8")

    summary: dict[str, object] = {
        "out_dir": str(out),
        "customers": customers,
        "days": days,
        "seed": seed,
        "start": start_date.isoformat(),
        "property_timezone": PROPERTY_TIMEZONE,
        "ga4_files": ga4_days,
        "ga4_events": ga4_events,
        "ga4_duplicate_rows": ga4_duplicates,
        "crm_members": members,
        "duplicate_registrations": int(np.sum(crm["member_number"] == world.secondary_number[crm["person"]])),
        "orders": order_writer.counts["orders"],
        "online_orders": order_writer.counts["online_orders"],
        "order_items": order_writer.counts["order_items"],
        "identity_rows": identities.rows,
        "adopter_rows": adopters,
    }
    for device in DEVICES:
        figures = impact["devices"][device.key]
        summary[f"{device.key}_adopters"] = figures["adopters"]
        summary[f"{device.key}_true_att_365"] = figures["att"]["365"]["att"]
    return summary
