"""Talks to a stateless nskd HTTP endpoint (mcp-shim --http --stateless)
with the official Python MCP SDK (PyPI `mcp`, installed by
tests/clients/setup.sh), opening a new connection for every request so that
a round-robin proxy in front of several replicas spreads them (as a
Kubernetes Service spreads connections). For tests/tests/e2e/http_replicas.rs.

    http_replicas_client.py URL CLUSTER NAMESPACE

Bearer token from $NSKD_SHIM_TOKEN. Prints one JSON object on its last line:
{"initialized": true, "tools": N, "results": [{"isError", "text"}...],
 "cluster_use": {"isError", "text"}}.
"""

import asyncio
import json
import os
import sys

import httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client


def texts(content):
    return "\n".join(c.text for c in content if getattr(c, "type", "") == "text")


async def main(url, cluster, namespace):
    client = httpx.AsyncClient(
        headers={"Authorization": f"Bearer {os.environ['NSKD_SHIM_TOKEN']}"},
        # No keep-alive: every request is a new connection, so the proxy
        # sends consecutive requests to different replicas.
        limits=httpx.Limits(max_keepalive_connections=0),
        timeout=httpx.Timeout(30, read=60),
    )
    out = {"initialized": False, "results": []}
    async with client:
        async with streamable_http_client(url, http_client=client) as (read, write, _):
            async with ClientSession(read, write) as s:
                await s.initialize()
                out["initialized"] = True
                out["tools"] = len((await s.list_tools()).tools)
                for _ in range(3):
                    for tool, args in [
                        ("namespaces_list", {"cluster": cluster}),
                        (
                            "resources_list",
                            {"cluster": cluster, "apiVersion": "v1", "kind": "ConfigMap",
                             "namespace": namespace},
                        ),
                    ]:
                        r = await s.call_tool(tool, args)
                        out["results"].append({"isError": bool(r.isError), "text": texts(r.content)})
                r = await s.call_tool("cluster_use", {"cluster": cluster})
                out["cluster_use"] = {"isError": bool(r.isError), "text": texts(r.content)}
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
