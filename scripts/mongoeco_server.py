"""A MongoDB wire-protocol server in this process: mongoeco's memory engine, for the wire pass.

Run by ``scripts/test-wire`` with the Python 3.13 of ``.venv-wire`` (mongoeco needs 3.13; SHMS's
own venv never imports this file). Prints the connection string once it listens, then serves
until killed. ``python scripts/mongoeco_server.py [port]`` (default: any free port).
"""

import asyncio
import sys

from mongoeco.engines import MemoryEngine
from mongoeco.wire.proxy import AsyncMongoEcoProxyServer


async def serve(port: int) -> None:
    server = AsyncMongoEcoProxyServer(engine=MemoryEngine(), port=port)
    address = await server.start()
    print(address.uri, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
