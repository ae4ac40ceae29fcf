"""The README is the user's manual: every setting must be in its configuration table."""

from __future__ import annotations

from pathlib import Path

from config import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [n.upper() for n in Settings.model_fields if f"| `{n.upper()}` |" not in README]
    assert not missing, f"add these to the README's configuration table: {missing}"
