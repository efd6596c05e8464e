"""An MCP client (the official Python SDK) that drives mcp-shim and answers
its elicitation requests as told: the e2e tests' stand-in for a user.

Usage: python elicit_client.py CONFIG_JSON
CONFIG_JSON: {"shim": PATH, "socket": PATH, "answer": "accept"|"decline"|"cancel"|"refuse",
              "calls": [[TOOL, ARGS], ...]}
"refuse" answers accept with confirm=false. Prints one JSON object:
{"asked": [messages], "results": [{"tool", "isError", "text"}]}.
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client


async def main() -> None:
    cfg = json.loads(sys.argv[1])
    answer = cfg["answer"]
    asked: list[str] = []

    async def on_elicit(context, params):
        asked.append(params.message)
        if answer == "accept":
            return types.ElicitResult(action="accept", content={"confirm": True})
        if answer == "refuse":
            return types.ElicitResult(action="accept", content={"confirm": False})
        if answer == "decline":
            return types.ElicitResult(action="decline")
        return types.ElicitResult(action="cancel")

    env = {k: v for k, v in os.environ.items() if k != "NSKD_ENV"}
    server = StdioServerParameters(
        command=cfg["shim"], args=["--socket", cfg["socket"]], env=env
    )
    results = []
    async with stdio_client(server) as (read, write):
        async with ClientSession(read, write, elicitation_callback=on_elicit) as session:
            await session.initialize()
            for tool, args in cfg["calls"]:
                res = await session.call_tool(tool, args)
                text = "\n".join(
                    c.text for c in res.content if getattr(c, "type", "") == "text"
                )
                results.append({"tool": tool, "isError": bool(res.isError), "text": text})
    print(json.dumps({"asked": asked, "results": results}))


if __name__ == "__main__":
    asyncio.run(main())
