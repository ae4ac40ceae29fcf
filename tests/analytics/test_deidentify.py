"""Small-cell suppression rules."""

from __future__ import annotations

from services.deidentify import Disclosure, count_suppressed, suppress


def test_groups_under_the_threshold_lose_their_measures_not_their_keys() -> None:
    rows = [{"key": k, "n": 10 * k, "patients": k} for k in (0, 1, 4, 5, 6)]
    shown = suppress(rows, ("n",), Disclosure(5))
    assert [(r["key"], r["n"], r["patients"], r["suppressed"]) for r in shown] == [
        (0, 0, 0, False),  # nobody to protect
        (1, None, None, True),
        (4, None, None, True),
        (5, 50, 5, False),
        (6, 60, 6, False),
    ]
    assert count_suppressed(shown) == 2
    assert all(not r["suppressed"] for r in suppress(rows, ("n",), Disclosure.full()))


def test_scopes_keep_viewers_apart() -> None:
    assert Disclosure.full().scope == "full"
    assert Disclosure(5).scope == "deidentified:5" != Disclosure(10).scope
    assert Disclosure(5).header(2) == {
        "deidentified": True,
        "suppression_threshold": 5,
        "suppressed_groups": 2,
    }
    assert Disclosure.full().header(0)["suppression_threshold"] is None
