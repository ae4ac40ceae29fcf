"""A page on another origin calls SHMS from a real browser: allowed when ``SHMS_CORS_ORIGINS``
lists its origin (the ``shms`` fixture lists ``origins.allowed``), refused by the browser when
not. Chromium, not a hand-made ``Origin`` header, decides here, preflight included."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.browser.conftest import Network, Origin, Origins, sign_in
from tests.e2e.servers import Server

if TYPE_CHECKING:
    from playwright.sync_api import Page


def call(page: Page, origin: Origin, script: str, *args: str) -> dict[str, Any]:
    """Runs one of the caller page's functions (see ``CALLER_PAGE``) from ``origin``."""
    page.goto(origin.url)
    result: dict[str, Any] = page.evaluate(f"args => {script}(...args)", list(args))
    return result


def test_a_page_on_an_allowed_origin_signs_in_and_queries(
    page: Page, shms: Server, origins: Origins, network: Network
) -> None:
    signed_in = call(page, origins.allowed, "signIn", shms.url)
    assert signed_in["ok"], signed_in
    token = signed_in["body"]["access_token"]
    answer = call(page, origins.allowed, "whoAmI", shms.url, token)  # preflighted: JSON + token
    assert answer == {"ok": True, "body": {"data": {"viewer": {"roles": ["ADMIN_STAFF"]}}}}
    assert network.blocked == []


def test_a_page_on_another_origin_is_refused(
    page: Page, shms: Server, origins: Origins, network: Network
) -> None:
    refused = call(page, origins.refused, "signIn", shms.url)
    assert refused == {"ok": False, "error": "TypeError: Failed to fetch"}
    token = sign_in(shms, "frontdesk")  # a token does not open the door either
    refused = call(page, origins.refused, "whoAmI", shms.url, token)
    assert refused == {"ok": False, "error": "TypeError: Failed to fetch"}
    assert network.blocked == []
