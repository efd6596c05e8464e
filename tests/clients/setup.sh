#!/usr/bin/env bash
# Installs the MCP clients nobody here wrote, each pinned, for the e2e tests
# (module mcp_clients) and anyone else who needs them:
#   - the official Python MCP SDK (PyPI `mcp`) in a venv:
#       ${NSKD_CACHE:-~/.cache/nskd-test}/clients/venv/bin/python
#   - the official MCP Inspector CLI (npm `@modelcontextprotocol/inspector`):
#       ${NSKD_CACHE:-~/.cache/nskd-test}/clients/node_modules/.bin/mcp-inspector
# Idempotent: a stamp file names the pinned versions, so a cached run costs
# about a second. Needs python3 (with venv) and npm; says which one is missing.
set -euo pipefail

MCP_PY_VERSION="1.26.0"
INSPECTOR_VERSION="0.17.2"

CACHE="${NSKD_CACHE:-$HOME/.cache/nskd-test}/clients"
STAMP="$CACHE/.installed"
WANT="mcp==$MCP_PY_VERSION @modelcontextprotocol/inspector@$INSPECTOR_VERSION"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" \
      && -x "$CACHE/venv/bin/python" && -x "$CACHE/node_modules/.bin/mcp-inspector" ]]; then
    exit 0
fi

for tool in python3 npm; do
    if ! command -v "$tool" >/dev/null; then
        echo "tests/clients/setup.sh: $tool is not installed; install it (e.g. apt-get install python3-venv npm) and rerun" >&2
        exit 1
    fi
done

mkdir -p "$CACHE"
# One installer at a time (parallel test processes share the cache).
exec 9>"$CACHE/.lock"
flock 9
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
    exit 0
fi

if [[ ! -x "$CACHE/venv/bin/python" ]]; then
    python3 -m venv "$CACHE/venv" || {
        echo "tests/clients/setup.sh: python3 -m venv $CACHE/venv failed; install python3-venv and rerun" >&2
        exit 1
    }
fi
"$CACHE/venv/bin/python" -m pip install --quiet --disable-pip-version-check "mcp==$MCP_PY_VERSION" || {
    echo "tests/clients/setup.sh: pip install mcp==$MCP_PY_VERSION into $CACHE/venv failed (network? PyPI mirror via PIP_INDEX_URL)" >&2
    exit 1
}

if [[ ! -f "$CACHE/package.json" ]]; then
    echo '{"name": "nskd-test-clients", "private": true}' > "$CACHE/package.json"
fi
npm install --prefix "$CACHE" --no-audit --no-fund --loglevel=error --save-exact \
        "@modelcontextprotocol/inspector@$INSPECTOR_VERSION" >/dev/null || {
    echo "tests/clients/setup.sh: npm install @modelcontextprotocol/inspector@$INSPECTOR_VERSION into $CACHE failed (network? npm registry via npm_config_registry)" >&2
    exit 1
}

echo "$WANT" > "$STAMP"
