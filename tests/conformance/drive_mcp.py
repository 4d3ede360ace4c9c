"""Drive the ultravox-mcp 0.2.0 MCP server (stdio) against a voxcall server; print one JSON report.

    .venvs/mcp/bin/python tests/conformance/drive_mcp.py BASE_API_URL

BASE_API_URL is the server's `/api` URL; the API key comes from ULTRAVOX_API_KEY. The MCP server has
no base-URL setting, so it is launched with its module constant `ultravox_mcp.client.BASE_URL`
patched, as its own code reads it at request time. Two sessions run:

* `valid`: create_call, get_call, list_calls, list_call_messages, list_voices, get_account,
  delete_call, then get_call on the deleted id (`calls`); then create_tool, get_tool,
  list_tools, delete_tool and get_tool on the deleted id (`tool_calls`).
* `wrong_key`: get_account and create_call with a key the server does not know.

Runs inside the MCP virtualenv and imports nothing from voxcall. Each tool call is reported with
`is_error`, its text and that text parsed as JSON when it is JSON. Exit status 0 means the driver
ran; an exception in the driver itself is reported as `exception`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters, stdio_client

DEADLINE = float(os.environ.get("DRIVER_DEADLINE", "100"))
CALL_TIMEOUT = 30.0
SYSTEM_PROMPT = "You are a conformance-test agent created through ultravox-mcp."
TOOL_HOST = "tools.example.com"  # the client only creates tools on hosts listed in ULTRAVOX_ALLOWED_DESTINATION_HOSTS
TOOL = {
    "name": "mcpWeather",
    "description": "Current weather for a city (created through ultravox-mcp).",
    "parameters_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "http_config": {"baseUrlPattern": f"https://{TOOL_HOST}/weather", "httpMethod": "POST"},
}
LAUNCH = (
    "import sys, ultravox_mcp.client as c; c.BASE_URL = sys.argv[1]; "
    "from ultravox_mcp.server import main; main()"
)


def parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


async def call(session: ClientSession, name: str, args: dict[str, Any]) -> dict[str, Any]:
    t0 = time.monotonic()
    try:
        result = await asyncio.wait_for(session.call_tool(name, args), CALL_TIMEOUT)
    except Exception as exc:
        return {"tool": name, "args": args, "exception": f"{type(exc).__name__}: {exc}"}
    text = "".join(getattr(block, "text", "") for block in result.content)
    return {
        "tool": name,
        "args": args,
        "is_error": bool(result.is_error),
        "text": text,
        "json": parse(text),
        "elapsed_s": round(time.monotonic() - t0, 3),
    }


async def session_run(base_url: str, api_key: str, home: Path, body: Any) -> dict[str, Any]:
    """Start the MCP server with `api_key`, run `body(session, out)`, and return what happened."""
    out: dict[str, Any] = {"calls": []}
    stderr_path = home / f"mcp-stderr-{len(list(home.iterdir()))}.log"
    env = {"ULTRAVOX_API_KEY": api_key, "ULTRAVOX_MCP_USE_KEYRING": "0", "HOME": str(home),
           "ULTRAVOX_ALLOWED_DESTINATION_HOSTS": TOOL_HOST}
    params = StdioServerParameters(command=sys.executable, args=["-c", LAUNCH, base_url], env=env)
    try:
        with stderr_path.open("w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
                init = await asyncio.wait_for(session.initialize(), CALL_TIMEOUT)
                out["server_info"] = {"name": init.server_info.name, "version": init.server_info.version}
                tools = await asyncio.wait_for(session.list_tools(), CALL_TIMEOUT)
                out["tools"] = sorted(tool.name for tool in tools.tools)
                await body(session, out)
    except BaseException as exc:
        out["exception"] = "".join(traceback.format_exception(exc))[-3000:]
    out["stderr_tail"] = stderr_path.read_text(errors="replace")[-3000:] if stderr_path.exists() else ""
    return out


async def valid_key(session: ClientSession, out: dict[str, Any]) -> None:
    # The tool's own defaults, voice included (a hosted voice name the server does not have).
    created = await call(session, "create_call", {"system_prompt": SYSTEM_PROMPT})
    out["calls"].append(created)
    call_id = (created.get("json") or {}).get("callId")
    out["call_id"] = call_id
    if not call_id:
        return
    for name, args in [
        ("get_call", {"call_id": call_id}),
        ("list_calls", {"page_size": 2}),
        ("list_call_messages", {"call_id": call_id}),
        ("list_voices", {}),
        ("get_account", {}),
        ("delete_call", {"call_id": call_id}),
        ("get_call", {"call_id": call_id}),
    ]:
        out["calls"].append(await call(session, name, args))
    await tools_crud(session, out)


async def tools_crud(session: ClientSession, out: dict[str, Any]) -> None:
    """create_tool, get_tool, list_tools, delete_tool, then get_tool on the deleted id."""
    out["tool_calls"] = [created := await call(session, "create_tool", TOOL)]
    tool_id = (created.get("json") or {}).get("toolId")
    out["tool_id"] = tool_id
    if not tool_id:
        return
    for name, args in [("get_tool", {"tool_id": tool_id}), ("list_tools", {"page_size": 100}),
                       ("delete_tool", {"tool_id": tool_id}), ("get_tool", {"tool_id": tool_id})]:
        out["tool_calls"].append(await call(session, name, args))


async def wrong_key(session: ClientSession, out: dict[str, Any]) -> None:
    out["calls"].append(await call(session, "get_account", {}))
    out["calls"].append(await call(session, "create_call", {"system_prompt": SYSTEM_PROMPT}))


async def run(base_url: str, report: dict[str, Any]) -> None:
    api_key = os.environ["ULTRAVOX_API_KEY"]
    with tempfile.TemporaryDirectory(prefix="drive-mcp-") as home:
        report["valid"] = await session_run(base_url, api_key, Path(home), valid_key)
        report["wrong_key"] = await session_run(base_url, "wrong-" + api_key[::-1], Path(home), wrong_key)


def main() -> int:
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} BASE_API_URL", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    report: dict[str, Any] = {"base_url": sys.argv[1]}
    try:
        asyncio.run(asyncio.wait_for(run(sys.argv[1], report), DEADLINE))
    except BaseException as exc:
        report["exception"] = "".join(traceback.format_exception(exc))[-4000:]
    report["elapsed_s"] = round(time.monotonic() - t0, 3)
    print(json.dumps(report, default=repr))
    return 0


if __name__ == "__main__":
    sys.exit(main())
