"""Password hashing: argon2id with secure defaults, and upgrades of weaker hashes."""

from __future__ import annotations

from auth import passwords


def test_a_hash_verifies_its_password_only() -> None:
    stored = passwords.hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert passwords.verify(stored, "correct horse battery")
    assert not passwords.verify(stored, "Correct horse battery")
    assert not passwords.verify(stored, "")


def test_salts_differ_between_hashes() -> None:
    assert passwords.hash_password("same") != passwords.hash_password("same")


def test_malformed_hashes_and_huge_passwords_never_match() -> None:
    assert not passwords.verify("not-a-hash", "anything")
    stored = passwords.hash_password("x" * 10, passwords.DEMO_HASHER)
    assert not passwords.verify(stored, "x" * (passwords.MAX_PASSWORD_LENGTH + 1))


def test_weaker_hashes_need_a_rehash() -> None:
    assert passwords.needs_rehash(passwords.hash_password("demo", passwords.DEMO_HASHER))
    assert not passwords.needs_rehash(passwords.hash_password("real"))
    assert passwords.needs_rehash("garbage")


def test_burning_time_for_unknown_users_does_not_raise() -> None:
    passwords.burn_time("whatever")
