#!/usr/bin/env bash
# start.sh DIR [N] — start N (default 1) independent real kube-apiserver+etcd
# pairs on 127.0.0.1, each with its own CA/serving cert, service-account key
# pair, static tokens, etcd and free ports; wait for /readyz; seed each with
# fake Ready nodes, namespaces, pods, a Secret; write kubeconfigs; then start
# one kube-controller-manager per cluster (rollouts, disruption budgets, GC).
#
# Layout written:
#   DIR/<name>/kubeconfig            admin (group system:masters), context <name>
#   DIR/<name>/kubeconfig-noperm     user "noperm" (authenticated, no RBAC grants)
#   DIR/<name>/kubeconfig-nskd       user "nskd" (group system:masters): for a
#                                    daemon whose requests the audit log must
#                                    tell apart from the test's own (admin)
#   DIR/<name>/audit.log             the apiserver's audit log (JSON lines, one
#                                    event per request at level Metadata: no
#                                    bodies; rotated at 50 MB, one backup kept)
#   DIR/<name>/audit-policy.yaml     its policy
#   DIR/<name>/kubeconfig-kcm        user "system:kube-controller-manager"
#                                    (group system:masters): the controller-manager's
#   DIR/<name>/pids                  "etcd PID" / "apiserver PID" /
#                                    "controller-manager PID" lines (stop.sh)
#   DIR/<name>/controller-manager.log
#   DIR/<name>/cluster.env           NAME SERVER PORT ETCD_PORT ADMIN_TOKEN NOPERM_TOKEN NSKD_TOKEN CA
#   DIR/<name>/{ca,server,sa}.{crt,key,pub}, tokens.csv, etcd.log, apiserver.log
#   DIR/kubeconfigs/<name>.yaml      one admin kubeconfig per cluster
#   DIR/kubeconfig-all.yaml          all clusters as contexts of one kubeconfig
#   DIR/clusters.tsv                 name, server, admin token, noperm token
#
# Env knobs:
#   KUBE_APISERVER   path of the binary (default: ask build.sh, which builds once)
#   NSKD_NAMES       space-separated cluster names (default c1-sv5 c1-dfw1 ...)
#   NSKD_SEED=0      skip seeding
#   NSKD_GOGC        GOGC for apiserver and etcd (default 25)
#   NSKD_GOMEMLIMIT  GOMEMLIMIT for the apiserver (default 256MiB, soft; "off" = none)
#   NSKD_READY_TIMEOUT seconds to wait for /readyz (default 90 + 15*N)
#   NSKD_APISERVER_ARGS extra kube-apiserver flags (word-split; last one wins)
#   NSKD_ETCD_TMPFS=1  etcd data on /dev/shm (+125 MB RAM per cluster, no fsync)
#   NSKD_LEAN=1      disable beta API versions that duplicate GA ones (-25 MB)
#   KUBE_CONTROLLER_MANAGER  path of that binary (default: beside kube-apiserver)
#   NSKD_KCM=0       start no kube-controller-manager
#   NSKD_KCM_CONTROLLERS  its --controllers (default: the ones rollouts, PDBs
#                    and GC need; see KCM_CONTROLLERS below)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
usage() { echo "usage: $0 DIR [N]" >&2; exit 2; }
[ $# -ge 1 ] || usage
DIR="$1"; N="${2:-1}"
case "$N" in '' | *[!0-9]*) usage ;; esac
[ "$N" -ge 1 ] || usage
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
log() { echo "[start.sh] $*" >&2; }

T0=$(date +%s.%N)
APISERVER="${KUBE_APISERVER:-}"
if [ -z "$APISERVER" ]; then
  APISERVER="$("$HERE/build.sh" | tail -n1)"
fi
[ -x "$APISERVER" ] || { log "kube-apiserver binary not found: $APISERVER"; exit 1; }
command -v etcd >/dev/null || { log "etcd not installed (run build.sh)"; exit 1; }
KCM_BIN=""
if [ "${NSKD_KCM:-1}" != 0 ]; then
  KCM_BIN="${KUBE_CONTROLLER_MANAGER:-$(dirname "$APISERVER")/kube-controller-manager}"
  [ -x "$KCM_BIN" ] || { log "kube-controller-manager binary not found: $KCM_BIN (run build.sh, or NSKD_KCM=0)"; exit 1; }
fi
# Only what rollouts (Deployment -> ReplicaSet, StatefulSet/DaemonSet ->
# ControllerRevision), disruption budgets and garbage collection need.  Left
# out on purpose: nodelifecycle (the seeded nodes have no kubelet and would be
# tainted and evicted), podgc, ttl, serviceaccount, root-ca-cert-publisher,
# endpoint(slice): they would rewrite or add seeded objects the tests count.
KCM_CONTROLLERS="${NSKD_KCM_CONTROLLERS:-deployment,replicaset,statefulset,daemonset,disruption,garbagecollector}"

DEFAULT_NAMES=(c1-sv5 c1-dfw1 c1-lax1 c1-ord1 c1-iad1 c1-sea1 c1-nyc1 c1-ams1 c1-fra1 c1-lhr1
  c1-sin1 c1-syd1 c1-tyo1 c1-gru1 c1-yyz1 c1-mia1 c1-atl1 c1-den1 c1-phx1 c1-bos1)
if [ -n "${NSKD_NAMES:-}" ]; then read -r -a NAMES <<<"$NSKD_NAMES"; else NAMES=("${DEFAULT_NAMES[@]}"); fi
while [ "${#NAMES[@]}" -lt "$N" ]; do NAMES+=("c1-x$((${#NAMES[@]} + 1))"); done
NAMES=("${NAMES[@]:0:$N}")

for name in "${NAMES[@]}"; do
  if [ -f "$DIR/$name/pids" ]; then
    while read -r _ pid; do
      if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        log "$DIR/$name is already running (pid $pid); run stop.sh $DIR first"; exit 1
      fi
    done <"$DIR/$name/pids"
  fi
done

# Free ports, all allocated at once so they are distinct (3 per cluster).
read -r -a PORTS <<<"$(python3 - "$((3 * N))" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
)"

# etcd data goes under DIR by default.  On tmpfs each etcd costs ~125 MB of
# RAM just for its pre-allocated 64 MB WAL segments (0000.wal + 0.tmp), on a
# disk that is only reclaimable page cache, so disk is the default;
# NSKD_ETCD_TMPFS=1 puts it on /dev/shm (no fsync latency).
if [ "${NSKD_ETCD_TMPFS:-0}" = 1 ] && [ "$(stat -f -c %T "$DIR")" != tmpfs ]; then
  ETCD_ROOT="/dev/shm/nskd-etcd-$(id -u)/$(echo -n "$DIR" | md5sum | cut -c1-12)"
else
  ETCD_ROOT="$DIR"
fi

GOGC_V="${NSKD_GOGC:-25}"
MEMLIMIT_V="${NSKD_GOMEMLIMIT:-256MiB}"
LEAN_ARGS=""
if [ "${NSKD_LEAN:-0}" = 1 ]; then
  # Turn off beta API versions that duplicate a GA version (all removed in
  # Kubernetes 1.22+ anyway): ~25 MB less RSS per apiserver.  Keeps
  # batch/v1beta1 (CronJob) and policy/v1beta1 (PDB), which have no GA
  # version in 1.20.
  LEAN_ARGS="--runtime-config=admissionregistration.k8s.io/v1beta1=false,apiextensions.k8s.io/v1beta1=false,authentication.k8s.io/v1beta1=false,authorization.k8s.io/v1beta1=false,certificates.k8s.io/v1beta1=false,coordination.k8s.io/v1beta1=false,events.k8s.io/v1beta1=false,extensions/v1beta1=false,networking.k8s.io/v1beta1=false,rbac.authorization.k8s.io/v1beta1=false,scheduling.k8s.io/v1beta1=false,storage.k8s.io/v1beta1=false,apiregistration.k8s.io/v1beta1=false,autoscaling/v2beta1=false"
fi

gen_certs() { # $1 = cluster dir, $2 = name
  local d="$1" n="$2"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 -subj "/CN=nskd-test-ca-$n" \
    -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=kube-apiserver" \
    -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n' >"$d/server.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$d/server.ext" -out "$d/server.crt" 2>/dev/null
  openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
  openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
  rm -f "$d/server.csr" "$d/server.ext" "$d/ca.srl"
}

write_kubeconfig() { # file name server ca_file user token
  local f="$1" n="$2" srv="$3" ca="$4" user="$5" tok="$6"
  cat >"$f" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: $n
  cluster:
    server: $srv
    certificate-authority-data: $(base64 -w0 "$ca")
users:
- name: $user@$n
  user:
    token: $tok
contexts:
- name: $n
  context:
    cluster: $n
    user: $user@$n
    namespace: default
current-context: $n
EOF
  chmod 600 "$f"
}

# On any failure after this point, stop what was started (logs are kept).
STARTED_OK=0
cleanup_on_failure() {
  if [ "$STARTED_OK" != 1 ]; then
    log "start failed; stopping the processes started under $DIR (logs kept)"
    "$HERE/stop.sh" "$DIR" >&2 || true
  fi
}
trap cleanup_on_failure EXIT

i=0
declare -A APORT EPORT
for name in "${NAMES[@]}"; do
  d="$DIR/$name"
  mkdir -p "$d"
  rm -f "$d/pids"
  EPORT[$name]="${PORTS[$((3 * i))]}"; PPORT="${PORTS[$((3 * i + 1))]}"; APORT[$name]="${PORTS[$((3 * i + 2))]}"
  i=$((i + 1))
  [ -s "$d/ca.crt" ] && [ -s "$d/sa.key" ] && [ -s "$d/server.crt" ] || gen_certs "$d" "$name"
  if [ ! -s "$d/tokens.csv" ]; then
    ADMIN_TOKEN="admin-$(openssl rand -hex 16)"; NOPERM_TOKEN="noperm-$(openssl rand -hex 16)"
    printf '%s,admin,uid-admin,"system:masters"\n%s,noperm,uid-noperm\n' "$ADMIN_TOKEN" "$NOPERM_TOKEN" >"$d/tokens.csv"
    chmod 600 "$d/tokens.csv"
  fi
  # The "nskd" user: same rights as admin, its own name in the audit log.
  # Appended to a tokens.csv written by an older start.sh too.
  if [ -z "$(sed -n 3p "$d/tokens.csv")" ]; then
    printf '%s,nskd,uid-nskd,"system:masters"\n' "nskd-$(openssl rand -hex 16)" >>"$d/tokens.csv"
  fi
  # The controller-manager's own user (its requests are its own in the audit log).
  if [ -z "$(sed -n 4p "$d/tokens.csv")" ]; then
    printf '%s,system:kube-controller-manager,uid-kcm,"system:masters"\n' "kcm-$(openssl rand -hex 16)" >>"$d/tokens.csv"
  fi
  ADMIN_TOKEN="$(sed -n 1p "$d/tokens.csv" | cut -d, -f1)"
  NOPERM_TOKEN="$(sed -n 2p "$d/tokens.csv" | cut -d, -f1)"
  NSKD_TOKEN="$(sed -n 3p "$d/tokens.csv" | cut -d, -f1)"
  KCM_TOKEN="$(sed -n 4p "$d/tokens.csv" | cut -d, -f1)"
  # Every request at level Metadata (who, verb, URI, objectRef, status; never
  # a body, so no Secret value): the tests' independent witness of what a
  # daemon sent (nskd_e2e::apiserver_audit).
  printf '%s\n' 'apiVersion: audit.k8s.io/v1' 'kind: Policy' 'omitStages: ["RequestReceived"]' \
    'rules:' '  - level: Metadata' >"$d/audit-policy.yaml"

  edata="$ETCD_ROOT/$name/etcd-data"
  mkdir -p "$(dirname "$edata")"
  echo "$edata" >"$d/etcd-data-dir"
  # Fresh etcd each start (ports change, and the seed is recreated anyway).
  rm -rf "$edata"
  GOGC="$GOGC_V" setsid etcd --name "$name" --data-dir "$edata" \
    --listen-client-urls "http://127.0.0.1:${EPORT[$name]}" --advertise-client-urls "http://127.0.0.1:${EPORT[$name]}" \
    --listen-peer-urls "http://127.0.0.1:$PPORT" --initial-advertise-peer-urls "http://127.0.0.1:$PPORT" \
    --initial-cluster "$name=http://127.0.0.1:$PPORT" --initial-cluster-state new \
    --snapshot-count 5000 --quota-backend-bytes $((512 * 1024 * 1024)) \
    --auto-compaction-mode periodic --auto-compaction-retention 5m \
    --logger zap --log-level warn \
    </dev/null >"$d/etcd.log" 2>&1 &
  echo "etcd $!" >>"$d/pids"

  # The launch command lives in a script so that restart.sh can start the
  # same apiserver again (same port, same etcd, same data).
  {
    echo '#!/usr/bin/env bash'
    echo "export GOGC=$GOGC_V GOMEMLIMIT=$MEMLIMIT_V"
    printf 'exec %q' "$APISERVER"
    for a in --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="${APORT[$name]}" --insecure-port=0 \
      --etcd-servers="http://127.0.0.1:${EPORT[$name]}" \
      --tls-cert-file="$d/server.crt" --tls-private-key-file="$d/server.key" --client-ca-file="$d/ca.crt" \
      --token-auth-file="$d/tokens.csv" \
      --service-account-key-file="$d/sa.pub" --service-account-signing-key-file="$d/sa.key" \
      --service-account-issuer="https://kubernetes.default.svc.cluster.local" \
      --api-audiences="https://kubernetes.default.svc.cluster.local" \
      --authorization-mode=RBAC --disable-admission-plugins=ServiceAccount \
      --service-cluster-ip-range=10.96.0.0/16 --endpoint-reconciler-type=none \
      --kubelet-preferred-address-types=InternalIP \
      --watch-cache=false --enable-priority-and-fairness=false --profiling=false \
      --audit-policy-file="$d/audit-policy.yaml" --audit-log-path="$d/audit.log" \
      --audit-log-format=json --audit-log-mode=blocking \
      --audit-log-maxsize=50 --audit-log-maxbackup=1 \
      --logtostderr=true --v=0 $LEAN_ARGS ${NSKD_APISERVER_ARGS:-}; do
      printf ' %q' "$a"
    done
    echo
  } >"$d/apiserver.sh"
  chmod 700 "$d/apiserver.sh"
  setsid "$d/apiserver.sh" </dev/null >"$d/apiserver.log" 2>&1 &
  echo "apiserver $!" >>"$d/pids"

  cat >"$d/cluster.env" <<EOF
NAME=$name
SERVER=https://127.0.0.1:${APORT[$name]}
PORT=${APORT[$name]}
ETCD_PORT=${EPORT[$name]}
ADMIN_TOKEN=$ADMIN_TOKEN
NOPERM_TOKEN=$NOPERM_TOKEN
NSKD_TOKEN=$NSKD_TOKEN
CA=$d/ca.crt
EOF
  write_kubeconfig "$d/kubeconfig" "$name" "https://127.0.0.1:${APORT[$name]}" "$d/ca.crt" admin "$ADMIN_TOKEN"
  write_kubeconfig "$d/kubeconfig-noperm" "$name" "https://127.0.0.1:${APORT[$name]}" "$d/ca.crt" noperm "$NOPERM_TOKEN"
  write_kubeconfig "$d/kubeconfig-nskd" "$name" "https://127.0.0.1:${APORT[$name]}" "$d/ca.crt" nskd "$NSKD_TOKEN"
  write_kubeconfig "$d/kubeconfig-kcm" "$name" "https://127.0.0.1:${APORT[$name]}" "$d/ca.crt" system:kube-controller-manager "$KCM_TOKEN"
done
log "started ${#NAMES[@]} etcd+kube-apiserver pair(s); waiting for /readyz"

TIMEOUT="${NSKD_READY_TIMEOUT:-$((90 + 15 * N))}"
deadline=$(($(date +%s) + TIMEOUT))
for name in "${NAMES[@]}"; do
  d="$DIR/$name"
  . "$d/cluster.env"
  until [ "$(curl -s --max-time 3 --cacert "$CA" -H "Authorization: Bearer $ADMIN_TOKEN" "$SERVER/readyz" 2>/dev/null)" = ok ]; do
    for p in $(awk '{print $2}' "$d/pids"); do
      kill -0 "$p" 2>/dev/null || { log "$name: process $p died; see $d/*.log"; tail -n 20 "$d/apiserver.log" "$d/etcd.log" >&2; exit 1; }
    done
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "$name: /readyz not ok after ${TIMEOUT}s; see $d/apiserver.log"; exit 1
    fi
    sleep 0.25
  done
done
T1=$(date +%s.%N)
log "all ready after $(python3 -c "print(round($T1-$T0,1))")s"

if [ "${NSKD_SEED:-1}" != 0 ]; then
  SEEDERS=()
  for name in "${NAMES[@]}"; do
    . "$DIR/$name/cluster.env"
    python3 "$HERE/seed.py" "$SERVER" "$CA" "$ADMIN_TOKEN" "$NAME" >&2 &
    SEEDERS+=("$!")
  done
  fail=0
  for p in "${SEEDERS[@]}"; do wait "$p" || fail=1; done
  [ "$fail" = 0 ] || { log "seeding failed"; exit 1; }
fi

# After seeding, so that the controllers find the seed in place.  No serving
# ports (--port=0 --secure-port=0: nothing to collide on), no leader election
# (one instance; no lease writes every 2 s in the audit log).
if [ -n "$KCM_BIN" ]; then
  for name in "${NAMES[@]}"; do
    d="$DIR/$name"
    {
      echo '#!/usr/bin/env bash'
      echo "export GOGC=$GOGC_V GOMEMLIMIT=$MEMLIMIT_V"
      printf 'exec %q' "$KCM_BIN"
      for a in --kubeconfig="$d/kubeconfig-kcm" --controllers="$KCM_CONTROLLERS" \
        --leader-elect=false --port=0 --secure-port=0 --use-service-account-credentials=false \
        --concurrent-gc-syncs=5 --profiling=false --logtostderr=true --v=0; do
        printf ' %q' "$a"
      done
      echo
    } >"$d/controller-manager.sh"
    chmod 700 "$d/controller-manager.sh"
    setsid "$d/controller-manager.sh" </dev/null >"$d/controller-manager.log" 2>&1 &
    echo "controller-manager $!" >>"$d/pids"
  done
  log "started ${#NAMES[@]} kube-controller-manager(s) ($KCM_CONTROLLERS)"
fi

mkdir -p "$DIR/kubeconfigs"
rm -f "$DIR"/kubeconfigs/*.yaml
: >"$DIR/clusters.tsv"
{
  echo "apiVersion: v1"
  echo "kind: Config"
  echo "current-context: ${NAMES[0]}"
  echo "clusters:"
  for name in "${NAMES[@]}"; do
    . "$DIR/$name/cluster.env"
    printf -- '- name: %s\n  cluster:\n    server: %s\n    certificate-authority-data: %s\n' "$NAME" "$SERVER" "$(base64 -w0 "$CA")"
  done
  echo "users:"
  for name in "${NAMES[@]}"; do
    . "$DIR/$name/cluster.env"
    printf -- '- name: admin@%s\n  user:\n    token: %s\n' "$NAME" "$ADMIN_TOKEN"
  done
  echo "contexts:"
  for name in "${NAMES[@]}"; do
    printf -- '- name: %s\n  context:\n    cluster: %s\n    user: admin@%s\n    namespace: default\n' "$name" "$name" "$name"
  done
} >"$DIR/kubeconfig-all.yaml"
chmod 600 "$DIR/kubeconfig-all.yaml"
for name in "${NAMES[@]}"; do
  . "$DIR/$name/cluster.env"
  cp "$DIR/$name/kubeconfig" "$DIR/kubeconfigs/$name.yaml"
  printf '%s\t%s\t%s\t%s\n' "$NAME" "$SERVER" "$ADMIN_TOKEN" "$NOPERM_TOKEN" >>"$DIR/clusters.tsv"
done
STARTED_OK=1
T2=$(date +%s.%N)
log "done in $(python3 -c "print(round($T2-$T0,1))")s: ${NAMES[*]}"
echo "$DIR/kubeconfigs"
