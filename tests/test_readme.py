"""The README is the user's manual: every setting is in its configuration table, its first query
works for the role it names, its links stay inside the repository, and the set-up it promises
says what it is doing."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

import httpx

from app import create_app
from config import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
LINK = re.compile(
    r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|<(?:a|img)\s[^>]*?(?:href|src)=\"([^\"]+)\""
)
"""Markdown links and images, and HTML ``href``/``src``: the target."""


def section(title: str) -> str:
    """The text of the README section headed ``## title``, up to the next ``## ``."""
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_every_setting_is_documented() -> None:
    missing = [n.upper() for n in Settings.model_fields if f"| `{n.upper()}` |" not in README]
    assert not missing, f"add these to the README's configuration table: {missing}"


async def test_the_first_query_works_for_the_role_it_names(settings: Any) -> None:
    """The exact query of "A first query", signed in as the account it names with the password
    the README gives, against the seeded demo: data and no errors."""
    text = section("A first query")
    username = re.search(r"Sign in as `(\w+)`", text)
    query = re.search(r"```graphql\n(.*?)```", text, re.S)
    assert username and query, "the section must name an account and give a query"
    password = re.search(rf"\| `{username[1]}` \| `([^`]+)` \|", README)
    assert password, f"the sign-in table must give {username[1]}'s password"
    seeded = settings.model_copy(update={"shms_seed_demo": True, "shms_demo_patients": 40})
    app = create_app(seeded)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        signed_in = await http.post(
            "/oauth/token",
            data={"grant_type": "password", "username": username[1], "password": password[1]},
        )
        assert signed_in.status_code == 200, signed_in.text
        token = signed_in.json()["access_token"]
        answer = await http.post(
            "/graphql", json={"query": query[1]}, headers={"authorization": f"Bearer {token}"}
        )
    body = answer.json()
    assert "errors" not in body, body["errors"]
    patients = body["data"]["patients"]
    assert patients["totalCount"] > 0 and patients["nodes"], body


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    kept = "".join(
        c for c in heading.strip().lower() if c in " -_" or unicodedata.category(c)[0] in "LN"
    )
    return kept.replace(" ", "-")


def test_every_link_stays_inside_the_repository_and_resolves() -> None:
    anchors = {slug(h) for h in re.findall(r"^#+ (.+)$", README, re.M)}
    problems = []
    for match in LINK.finditer(README):
        target = match[1] or match[2]
        if re.match(r"https?://", target):
            continue  # a web address (the local server, a standard): not a file of ours
        path, _, anchor = target.partition("#")
        if not path:
            if anchor not in anchors:
                problems.append(f"{target}: no heading has this anchor")
            continue
        file = (ROOT / path).resolve()
        if not file.is_relative_to(ROOT):
            problems.append(f"{target}: points outside the repository")
        elif not file.exists():
            problems.append(f"{target}: no such file in the repository")
    assert not problems, problems


def test_set_up_says_what_it_is_doing() -> None:
    """``make serve`` and ``make test`` set up the virtualenv quietly (pip ``--quiet``): each
    step of it is announced first, so a first run does not look hung."""
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("$(STAMP): pyproject.toml\n", 1)[1].split("\n\n", 1)[0]
    lines = [line.strip() for line in recipe.splitlines()]
    steps = [n for n, line in enumerate(lines) if "venv" in line or "pip install" in line]
    assert steps
    for n in steps:
        assert "echo" in lines[n] or "echo" in lines[n - 1], f"announce this step: {lines[n]}"


def test_the_client_snippets_ask_what_the_schema_answers() -> None:
    """The GraphQL inside the client snippets (``gql`...```, ``query: `...```) and the first
    query validate against the schema: the snippets keep working as it changes."""
    from graphql import parse, validate

    from api.schema import schema

    snippets = re.findall(r"```js\n(.*?)```", section("Clients"), re.S)
    documents = [d for js in snippets for d in re.findall(r"(?:gql|query: )`(.*?)`", js, re.S)]
    documents += re.findall(r"```graphql\n(.*?)```", section("A first query"), re.S)
    assert len(documents) >= 4
    for document in documents:
        errors = validate(schema._schema, parse(document))
        assert not errors, (document, errors)
