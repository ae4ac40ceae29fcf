"""Deterministic demo data: one hospital, the same records on every seed.

``seed_demo`` fills a Beanie-initialised database; ``demo.ids`` names its records
(``ids.patient_id(1)`` is always Zoë Lefèvre); ``demo.clock.ANCHOR`` is the demo's "now".
"""

from demo import ids
from demo.clock import ANCHOR
from demo.seed import SEEDED_MODELS, SeedSummary, drop_seeded_collections, is_empty, seed_demo

__all__ = [
    "ANCHOR",
    "SEEDED_MODELS",
    "SeedSummary",
    "drop_seeded_collections",
    "ids",
    "is_empty",
    "seed_demo",
]
