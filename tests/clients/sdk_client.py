"""Drives an MCP server over stdio with the official Python MCP SDK (PyPI
`mcp`, installed by tests/clients/setup.sh) and prints one JSON object per
line for the e2e tests (tests/tests/e2e/mcp_clients.rs) to check.

    sdk_client.py session VERSION TOOL ARGS_JSON -- SERVER_ARGV...
        initialize asking for protocol revision VERSION, then list tools,
        call TOOL, list and get prompts, list and read resources.
    sdk_client.py subscribe URI[,URI...] SECONDS -- SERVER_ARGV...
        subscribe to the URIs, print {"subscribed": ...}, then print each
        notifications/resources/updated until every URI was updated or
        SECONDS passed.
"""

import asyncio
import json
import sys

import mcp.types as types
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def emit(**fields):
    print(json.dumps(fields), flush=True)


def texts(content):
    return "\n".join(c.text for c in content if getattr(c, "type", "") == "text")


async def session(version, tool, args, server):
    # The SDK always asks for its newest revision: ask for VERSION instead.
    types.LATEST_PROTOCOL_VERSION = version
    params = StdioServerParameters(command=server[0], args=server[1:])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as s:
            init = await s.initialize()
            emit(
                step="initialize",
                protocol=init.protocolVersion,
                server=init.serverInfo.name,
                instructions=init.instructions or "",
                prompts=init.capabilities.prompts is not None,
                resources=init.capabilities.resources is not None,
                subscribe=bool(init.capabilities.resources and init.capabilities.resources.subscribe),
                tools_list_changed=bool(init.capabilities.tools and init.capabilities.tools.listChanged),
            )
            tools = await s.list_tools()
            emit(step="tools/list", names=[t.name for t in tools.tools])
            result = await s.call_tool(tool, json.loads(args))
            emit(step="tools/call", is_error=bool(result.isError), text=texts(result.content))
            prompts = await s.list_prompts()
            emit(step="prompts/list", names=[p.name for p in prompts.prompts])
            prompt = await s.get_prompt("debug_pod", {"name": "web-1", "namespace": "shop"})
            emit(step="prompts/get", text=" ".join(m.content.text for m in prompt.messages))
            resources = await s.list_resources()
            templates = await s.list_resource_templates()
            emit(
                step="resources/list",
                uris=[str(r.uri) for r in resources.resources],
                templates=[t.uriTemplate for t in templates.resourceTemplates],
            )
            read_result = await s.read_resource("nskd://clusters")
            emit(step="resources/read", text=read_result.contents[0].text)


async def subscribe(uris, seconds, server):
    updated = asyncio.Queue()

    async def on_message(message):
        if isinstance(message, types.ServerNotification) and isinstance(
            message.root, types.ResourceUpdatedNotification
        ):
            await updated.put(str(message.root.params.uri))

    params = StdioServerParameters(command=server[0], args=server[1:])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, message_handler=on_message) as s:
            await s.initialize()
            for uri in uris:
                await s.subscribe_resource(uri)
            emit(step="subscribed", uris=uris)
            waiting = set(uris)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + seconds
            while waiting and loop.time() < deadline:
                try:
                    uri = await asyncio.wait_for(updated.get(), deadline - loop.time())
                except asyncio.TimeoutError:
                    break
                waiting.discard(uri)
                emit(step="updated", uri=uri)
            emit(step="done", missing=sorted(waiting))


def main(argv):
    split = argv.index("--")
    mine, server = argv[1:split], argv[split + 1 :]
    if mine[0] == "session":
        asyncio.run(session(mine[1], mine[2], mine[3], server))
    elif mine[0] == "subscribe":
        asyncio.run(subscribe(mine[1].split(","), float(mine[2]), server))
    else:
        sys.exit(f"sdk_client.py: unknown mode {mine[0]!r} (session or subscribe)")


if __name__ == "__main__":
    main(sys.argv)
