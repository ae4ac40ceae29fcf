"""GraphiQL in a real browser, with every host but SHMS's unreachable: it loads from SHMS's own
files, runs the README's first query with a token set in its Headers tab, and has the Explorer."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from tests.browser.conftest import Network, sign_in
from tests.e2e.servers import Server

if TYPE_CHECKING:
    from playwright.sync_api import Page

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def first_query() -> tuple[str, str]:
    """The README's "A first query": the role it says to sign in as, and its query."""
    section = README.split("## A first query", 1)[1].split("\n## ", 1)[0]
    role = re.search(r"Sign in as `(\w+)`", section)
    query = re.search(r"```graphql\n(.*?)```", section, re.DOTALL)
    assert role and query, "README's 'A first query' names a role and shows a graphql block"
    return role.group(1), query.group(1)


def editor_text(page: Page, selector: str) -> str:
    """What a GraphiQL editor (CodeMirror) shows."""
    text: str = page.locator(f"{selector} .CodeMirror").first.evaluate(
        "element => element.CodeMirror.getValue()"
    )
    return text


def replace_text(page: Page, selector: str, text: str) -> None:
    """Types over an editor's content as a user pasting it would."""
    page.locator(f"{selector} .CodeMirror").first.click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.insert_text(text)


def test_graphiql_runs_the_readme_first_query_from_local_files(
    page: Page, shms: Server, network: Network
) -> None:
    from playwright.sync_api import expect

    role, query = first_query()
    token = sign_in(shms, role)
    page.goto(f"{shms.url}/graphql")
    page.locator(".graphiql-query-editor .CodeMirror").wait_for()
    assert page.locator("#shms-assets-missing").count() == 0  # not the CDN fallback

    page.get_by_role("button", name="Headers", exact=True).click()
    headers = ".graphiql-editor-tool .graphiql-editor:not(.hidden)"
    replace_text(page, headers, json.dumps({"Authorization": f"Bearer {token}"}))
    assert json.loads(editor_text(page, headers)) == {"Authorization": f"Bearer {token}"}
    replace_text(page, ".graphiql-query-editor", query)
    # GraphiQL reads the operation's name from an edit 100 ms later (debounced), as it stores
    # the query: run only then, as a person would, or it asks for the previous operation.
    page.wait_for_function("query => localStorage.getItem('graphiql:query') === query", arg=query)
    page.locator(".graphiql-execute-button").click()

    expect(page.locator(".graphiql-response")).to_contain_text('"totalCount"')
    result = json.loads(editor_text(page, ".graphiql-response"))
    assert isinstance(result["data"]["patients"]["totalCount"], int), result

    page.get_by_role("button", name="Show GraphiQL Explorer").click()  # the Explorer plugin
    expect(page.locator(".graphiql-plugin")).to_contain_text("departmentEquipmentStatus")
    assert network.blocked == [], "GraphiQL needed other hosts: static/vendor is incomplete"
