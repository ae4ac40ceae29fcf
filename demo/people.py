"""Names, e-mail addresses and phone numbers for demo people, drawn from a seeded RNG."""

from __future__ import annotations

import random

from demo import catalog
from models.patients import Sex, fold

# Letters NFKD does not decompose; e-mail local parts stay plain ASCII.
_ASCII = str.maketrans({"ł": "l", "ø": "o", "æ": "ae", "ß": "ss", "đ": "d", "\u0131": "i"})


def ascii_word(text: str) -> str:
    return "".join(c for c in fold(text).translate(_ASCII) if c.isascii() and c.isalnum())


def first_name(rng: random.Random, sex: Sex) -> str:
    if sex == Sex.FEMALE:
        return rng.choice(catalog.FEMALE_NAMES)
    if sex == Sex.MALE:
        return rng.choice(catalog.MALE_NAMES)
    return rng.choice(catalog.FEMALE_NAMES + catalog.MALE_NAMES)


def last_name(rng: random.Random) -> str:
    return rng.choice(catalog.LAST_NAMES)


def mobile_phone(rng: random.Random) -> str:
    return f"+49 1{rng.choice('567')}{rng.randrange(10)} {rng.randrange(1_000_000, 10_000_000)}"


def landline(rng: random.Random, area_code: str) -> str:
    return f"+49 {area_code} {rng.randrange(100_000, 10_000_000)}"


def email(first: str, last: str, domain: str, suffix: str = "") -> str:
    return f"{ascii_word(first)}.{ascii_word(last)}{suffix}@{domain}"
