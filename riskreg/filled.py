"""Units whose missing value one import recorded and a later import supplied: counted present, not missing too.

A unit whose value was missing may get it later (``pilot data --append``, or a later
stage): the import check lets that one row in (``riskreg.ingest``). Each import keeps its
own counts, so summed as they are the unit would be counted twice, once present and once
missing. These are the units to take off the missing counts. The observations are read
only where such a unit can exist: a metric with missing values in one import and values in
a later one of those read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from riskreg.models import observations

# (import id, metric code, arm index, units with a value, units missing): an import_counts row
CountRow = tuple[int, int, int, int, int]


def filled_later(session: Session, counts: Iterable[CountRow]) -> Counter[tuple[int, int]]:
    """Return {(metric code, arm index): units} missing in one of these imports and present in a later one.

    The arm is the missing row's: it is that arm's missing count the unit was added to. The
    import check refuses a unit's value after its value or missing row, and its missing row
    after its value, so the value that fills a missing one is always in a later import.
    """
    missing_in: dict[int, set[int]] = {}
    present_in: dict[int, set[int]] = {}
    for import_id, metric, _arm, n, missing in counts:
        if missing:
            missing_in.setdefault(metric, set()).add(import_id)
        if n:
            present_in.setdefault(metric, set()).add(import_id)
    metrics, earlier, later = [], set(), set()
    for metric, with_missing in sorted(missing_in.items()):
        after = {i for i in present_in.get(metric, ()) if i > min(with_missing)}
        if after:
            metrics.append(metric)
            earlier |= with_missing
            later |= after
    if not metrics:
        return Counter()
    o = observations.c
    missing = (o.import_id.in_(sorted(earlier)), o.metric.in_(metrics), o.value.is_(None))
    missing_rows = select(o.metric, o.unit_id).where(*missing)
    # one pass over the later imports' rows, matched to the (few) missing ones
    matched = session.execute(
        select(o.metric, o.unit_id).where(
            o.import_id.in_(sorted(later)),
            o.metric.in_(metrics),
            o.value.is_not(None),
            tuple_(o.metric, o.unit_id).in_(missing_rows),
        )
    )
    supplied = {(metric, unit) for metric, unit in matched}
    if not supplied:
        return Counter()
    arms = session.execute(select(o.metric, o.unit_id, o.arm).where(*missing))
    return Counter((metric, arm) for metric, unit, arm in arms if (metric, unit) in supplied)
