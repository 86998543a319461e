"""predictionservice/audit.py: a capped Redis list, newest first, shared by whoever writes it."""

from __future__ import annotations

from predictionservice.audit import AuditTrail


def test_newest_first_and_capped(redis_db):
    trail = AuditTrail(redis_db, "p:", max_entries=5)
    for n in range(8):
        trail.record({"n": n})
    assert [e["n"] for e in trail.entries(100)] == [7, 6, 5, 4, 3]
    assert [e["n"] for e in AuditTrail(redis_db, "p:").entries(2)] == [7, 6]
    assert AuditTrail(redis_db, "other:").entries() == []
