"""The floor of ``bench.peers``: bare Starlette answering each known POST with SHMS's own bytes.

    .venv/bin/python -m bench.peer_starlette --answers answers.json --port 8002

No GraphQL at all: the request body is read and parsed as JSON, its ``query`` looked up among
the answers ``bench.peers`` recorded, and those bytes returned. What is left is the cost of the
server, the framework and the JSON body, which no GraphQL server can go below.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route


def create_app(answers: dict[str, bytes]) -> Starlette:
    """``answers`` maps a query's text to the exact response body to send for it."""

    async def graphql(request: Request) -> Response:
        body = await request.json()
        query = body.get("query") if isinstance(body, dict) else None
        answer = answers.get(query) if isinstance(query, str) else None
        if answer is None:
            return PlainTextResponse("unknown query", status_code=400)
        return Response(answer, media_type="application/json")

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[Route("/graphql", graphql, methods=["POST"]), Route("/health", health)]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--answers", type=Path, required=True, help="query -> body, as JSON")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    recorded = json.loads(args.answers.read_text(encoding="utf-8"))
    answers = {query: text.encode("utf-8") for query, text in recorded.items()}
    uvicorn.run(
        create_app(answers),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
