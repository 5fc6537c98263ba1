#!/usr/bin/env bash
# A real Kubernetes test control plane (etcd + kube-apiserver on loopback), started the way
# controller-runtime's envtest does it: no controller-manager, no scheduler, no kubelet.
#
#   control-plane.sh start    start etcd and kube-apiserver, wait for /readyz;
#                             prints "KUBECONFIG=<run dir>/kubeconfig" as its only stdout line
#   control-plane.sh stop     stop both (SIGTERM, then SIGKILL); also cleans up after a crashed run
#   control-plane.sh stop-apiserver / start-apiserver
#                             an API server outage: stop only kube-apiserver, start it again as it was
#   control-plane.sh freeze-apiserver / thaw-apiserver
#                             a hung API server: SIGSTOP kube-apiserver (connections open, nothing
#                             answered), SIGCONT it
#   control-plane.sh status   show pids, ports and /readyz; exit 0 only if running and ready
#   control-plane.sh env      print shell exports for using it by hand: eval "$(control-plane.sh env)"
#
# Environment:
#   ORDERSAGA_K8S_RUN_DIR        run dir (certs, kubeconfig, logs, etcd data, pid files);
#                                default ${TMPDIR:-/tmp}/ordersaga-k8s-<uid>. Use one per parallel run.
#   ORDERSAGA_K8S_START_TIMEOUT  seconds to wait for /readyz (default 120)
#   ORDERSAGA_K8S_STOP_TIMEOUT   seconds between SIGTERM and SIGKILL (default 15)
#   ORDERSAGA_K8S_APISERVER_ARGS extra kube-apiserver flags (word-split), e.g. "--feature-gates=X=true"
#   ORDERSAGA_K8S_AUTHZ_MODE     --authorization-mode (default RBAC; e.g. Node,RBAC)
#   K8S_VERSION, ETCD_VERSION, KUBE_APISERVER_BIN, ETCD_BIN, KUBECTL_BIN: see versions.env
#
# Binaries come from build-tools.sh (same cache). Nothing is written to ~/.kube: the kubeconfig,
# kubectl's cache and helm's dirs all live in the run dir.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

RUN_DIR="${ORDERSAGA_K8S_RUN_DIR:-${TMPDIR:-/tmp}/ordersaga-k8s-$(id -u)}"
START_TIMEOUT="${ORDERSAGA_K8S_START_TIMEOUT:-120}"
STOP_TIMEOUT="${ORDERSAGA_K8S_STOP_TIMEOUT:-15}"
AUTHZ_MODE="${ORDERSAGA_K8S_AUTHZ_MODE:-RBAC}"
SERVICE_CIDR="10.0.0.0/24"          # as envtest; the "kubernetes" Service gets 10.0.0.1
MARKER=".ordersaga-k8s-run"         # only dirs holding this file are ever wiped
COMPONENTS="kube-apiserver etcd"    # stop order

log() { printf '[control-plane] %s\n' "$*" >&2; }
die() { printf '[control-plane] ERROR: %s\n' "$*" >&2; exit 1; }

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

mkdir -p "$(dirname "$RUN_DIR")"
RUN_DIR="$(cd "$(dirname "$RUN_DIR")" && pwd)/$(basename "$RUN_DIR")"
PKI="$RUN_DIR/pki"
KUBECONFIG_PATH="$RUN_DIR/kubeconfig"

############################################################################ processes
# alive PID: the process exists and is not a zombie
alive() {
  local st
  [ -r "/proc/$1/stat" ] || return 1
  st="$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# ours PID: its command line refers to this run dir (guards against recycled pids)
ours() {
  { tr '\0' '\n' <"/proc/$1/cmdline"; } 2>/dev/null | grep -qF -- "$RUN_DIR/"
}

pid_of() { # component -> pid from its pid file, if that process is alive and ours
  local f="$RUN_DIR/$1.pid" pid
  [ -s "$f" ] || return 1
  pid="$(tr -dc '0-9' <"$f")"
  [ -n "$pid" ] && alive "$pid" && ours "$pid" && echo "$pid"
}

# Processes of this run dir that lost their pid file (e.g. run dir partly deleted): matched on
# flags only this run dir's processes have, never on a program name.
stray_pids() { # kube-apiserver ones first, then etcd (stop order)
  local p a args api="" etcd=""
  for p in /proc/[0-9]*; do
    p="${p#/proc/}"
    [ "$p" = "$$" ] && continue
    { mapfile -d '' -t args <"/proc/$p/cmdline"; } 2>/dev/null || continue
    for a in "${args[@]}"; do
      if [ "$a" = "--tls-cert-file=$PKI/apiserver.crt" ]; then
        alive "$p" && api+="$p "
        break
      elif [ "$a" = "--data-dir=$RUN_DIR/etcd-data" ]; then
        alive "$p" && etcd+="$p "
        break
      fi
    done
  done
  echo "$api$etcd"
}

kill_pid() { # name pid: SIGTERM, wait, SIGKILL
  local name="$1" pid="$2" i
  alive "$pid" || return 0
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  kill -CONT "$pid" 2>/dev/null || true # a frozen one (freeze-apiserver) gets its SIGTERM too
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  log "$name (pid $pid) still running after ${STOP_TIMEOUT}s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  log "WARNING: $name (pid $pid) did not exit"
  return 1
}

stop_all() {
  local c pid rc=0 found=0
  for c in $COMPONENTS; do
    if pid="$(pid_of "$c")"; then
      found=1
      kill_pid "$c" "$pid" || rc=1
    fi
    rm -f "$RUN_DIR/$c.pid"
  done
  for pid in $(stray_pids); do
    found=1
    kill_pid "stray process" "$pid" || rc=1
  done
  [ "$found" = 1 ] || log "not running ($RUN_DIR)"
  return "$rc"
}

# start_proc NAME BIN ARGS...: detached (own session, stdio to NAME.log), pid in NAME.pid
start_proc() {
  local name="$1" i pid; shift
  rm -f "$RUN_DIR/$name.pid"
  # The pid is written by the process itself right before exec: correct whether or not setsid forks.
  # shellcheck disable=SC2016
  setsid bash -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$RUN_DIR/$name.pid" "$@" \
    </dev/null >>"$RUN_DIR/$name.log" 2>&1 &
  for ((i = 0; i < 100; i++)); do
    [ -s "$RUN_DIR/$name.pid" ] && break
    sleep 0.05
  done
  pid="$(cat "$RUN_DIR/$name.pid" 2>/dev/null)" || { log "$name did not start"; return 1; }
  echo "$pid"
}

############################################################################ ports
port_in_use() { # any TCP socket (listening or not) on this local port, IPv4 or IPv6
  local hex; hex="$(printf ':%04X' "$1")"
  awk -v h="$hex" 'FNR > 1 && substr($2, length($2) - 4) == h { f = 1 } END { exit !f }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

TAKEN=" "
free_port() { # random free port below the ephemeral range, distinct from the ones already picked
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 12000))
    case "$TAKEN" in *" $p "*) continue ;; esac
    port_in_use "$p" && continue
    TAKEN+="$p "
    echo "$p"
    return 0
  done
  die "no free TCP port found"
}

############################################################################ certificates
gen_pki() {
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  local o=(-days 7 -sha256)
  (
    cd "$PKI"
    set -e
    ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
    serial() { echo "0x$(openssl rand -hex 16)"; }

    # CA (signs the serving cert and the client certs; --client-ca-file)
    ec ca.key
    openssl req -x509 -new -key ca.key -subj "/CN=ordersaga-test-ca" "${o[@]}" -out ca.crt \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -addext "subjectKeyIdentifier=hash" 2>/dev/null

    sign() { # name subject extensions
      ec "$1.key"
      openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
      printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
        "authorityKeyIdentifier=keyid" "$3" >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -set_serial "$(serial)" "${o[@]}" \
        -extfile "$1.ext" -out "$1.crt" 2>/dev/null
      rm -f "$1.csr" "$1.ext"
    }
    # kube-apiserver serving cert
    sign apiserver "/CN=kube-apiserver" "$(printf '%s\n%s' "extendedKeyUsage=serverAuth" \
      "subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:::1,IP:10.0.0.1")"
    # admin user (group system:masters: bypasses RBAC, like envtest's admin user)
    sign admin "/O=system:masters/CN=ordersaga-admin" "extendedKeyUsage=clientAuth"

    # service-account token signing key pair (RS256)
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
    openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
    chmod 600 ./*.key
  ) || die "openssl failed to generate the certificates in $PKI"
}

write_kubeconfig() { # port
  local b64="base64 -w0"
  umask 077
  cat >"$KUBECONFIG_PATH.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ordersaga-test
  cluster:
    server: https://127.0.0.1:$1
    certificate-authority-data: $($b64 "$PKI/ca.crt")
users:
- name: ordersaga-admin
  user:
    client-certificate-data: $($b64 "$PKI/admin.crt")
    client-key-data: $($b64 "$PKI/admin.key")
contexts:
- name: ordersaga-test
  context:
    cluster: ordersaga-test
    user: ordersaga-admin
    namespace: default
current-context: ordersaga-test
EOF
  mv "$KUBECONFIG_PATH.tmp" "$KUBECONFIG_PATH"
}

write_env() { # for `source <run dir>/env.sh` and `control-plane.sh env`
  cat >"$RUN_DIR/env.sh" <<EOF
export KUBECONFIG='$KUBECONFIG_PATH'
export KUBECACHEDIR='$RUN_DIR/kube-cache'
export HELM_CACHE_HOME='$RUN_DIR/helm/cache'
export HELM_CONFIG_HOME='$RUN_DIR/helm/config'
export HELM_DATA_HOME='$RUN_DIR/helm/data'
export PATH='$(dirname "$KUBECTL_BIN"):$(dirname "$HELM_BIN")':"\$PATH"
EOF
}

############################################################################ health
http_ok() { # url [curl args...]: body is "ok"/contains "true"
  local url="$1"; shift
  curl -s --max-time 2 "$@" "$url" 2>/dev/null
}

readyz() { # port -> prints the body of /readyz
  http_ok "https://127.0.0.1:$1/readyz" --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key"
}

log_tail() { # component
  [ -f "$RUN_DIR/$1.log" ] || return 0
  printf '[control-plane] ---- last lines of %s ----\n' "$RUN_DIR/$1.log" >&2
  tail -n 25 "$RUN_DIR/$1.log" | sed 's/^/    /' >&2
}

############################################################################ start
prepare_run_dir() {
  if [ -d "$RUN_DIR" ] && [ -n "$(ls -A "$RUN_DIR" 2>/dev/null)" ]; then
    [ -f "$RUN_DIR/$MARKER" ] || die "$RUN_DIR exists and is not a control-plane run dir: refusing to wipe it"
    rm -rf "$RUN_DIR"
  fi
  mkdir -p "$RUN_DIR"
  chmod 700 "$RUN_DIR"
  touch "$RUN_DIR/$MARKER"
  mkdir -p "$RUN_DIR/kube-cache" "$RUN_DIR/helm"
}

# start_apiserver API_PORT ETCD_PORT: 0 ready, 1 fatal (message printed), 2 port clash
start_apiserver() {
  local api_port="$1" etcd_port="$2" pid i body
  # shellcheck disable=SC2206
  local extra=(${ORDERSAGA_K8S_APISERVER_ARGS:-})
  log "starting kube-apiserver v$K8S_VERSION on https://127.0.0.1:$api_port (authorization: $AUTHZ_MODE)"
  pid="$(start_proc kube-apiserver "$KUBE_APISERVER_BIN" \
    --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 \
    --secure-port="$api_port" \
    --cert-dir="$PKI" \
    --tls-cert-file="$PKI/apiserver.crt" \
    --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --service-account-issuer="https://127.0.0.1:$api_port" \
    --service-account-key-file="$PKI/sa.pub" \
    --service-account-signing-key-file="$PKI/sa.key" \
    --authorization-mode="$AUTHZ_MODE" \
    --allow-privileged=true \
    --disable-admission-plugins=ServiceAccount \
    --endpoint-reconciler-type=none \
    "${extra[@]}")" || return 1
  local last=0 elapsed
  for ((i = 0; ; i++)); do
    body="$(readyz "$api_port")" || true
    [ "$body" = ok ] && break
    if ! alive "$pid"; then
      if grep -q 'address already in use' "$RUN_DIR/kube-apiserver.log"; then return 2; fi
      log_tail kube-apiserver; log "kube-apiserver exited during start"; return 1
    fi
    elapsed=$(($(date +%s) - T0))
    if ((elapsed >= START_TIMEOUT)); then
      log_tail kube-apiserver
      log "kube-apiserver not ready after ${START_TIMEOUT}s; /readyz said: ${body:-<no answer>}"
      return 1
    fi
    if ((elapsed - last >= 5)); then
      last=$elapsed
      log "waiting for kube-apiserver /readyz (${elapsed}s/${START_TIMEOUT}s)"
    fi
    sleep 0.25
  done
  log "kube-apiserver ready (pid $pid)"
}

# try_start: 0 ready, 1 fatal (message printed), 2 port clash (retry with new ports)
try_start() {
  local etcd_port peer_port api_port pid i body
  etcd_port="$(free_port)"; peer_port="$(free_port)"; api_port="$(free_port)"
  : >"$RUN_DIR/etcd.log"; : >"$RUN_DIR/kube-apiserver.log"

  log "starting etcd v$ETCD_VERSION on 127.0.0.1:$etcd_port (peer $peer_port)"
  pid="$(start_proc etcd "$ETCD_BIN" \
    --name=ordersaga \
    --data-dir="$RUN_DIR/etcd-data" \
    --listen-client-urls="http://127.0.0.1:$etcd_port" \
    --advertise-client-urls="http://127.0.0.1:$etcd_port" \
    --listen-peer-urls="http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
    --initial-cluster="ordersaga=http://127.0.0.1:$peer_port" \
    --unsafe-no-fsync=true \
    --log-level=warn)" || return 1
  for ((i = 0; ; i++)); do
    body="$(http_ok "http://127.0.0.1:$etcd_port/health")" || true
    case "$body" in *'"health":"true"'*) break ;; esac
    if ! alive "$pid"; then
      if grep -q 'address already in use' "$RUN_DIR/etcd.log"; then return 2; fi
      log_tail etcd; log "etcd exited during start"; return 1
    fi
    if ((i >= 300)); then log_tail etcd; log "etcd not healthy after 30s"; return 1; fi
    sleep 0.1
  done
  log "etcd healthy (pid $pid)"

  write_kubeconfig "$api_port"
  local rc=0
  start_apiserver "$api_port" "$etcd_port" || rc=$?
  [ "$rc" = 0 ] || return "$rc"
  printf 'etcd_port=%s\netcd_peer_port=%s\napiserver_port=%s\nserver=https://127.0.0.1:%s\nk8s_version=%s\netcd_version=%s\n' \
    "$etcd_port" "$peer_port" "$api_port" "$api_port" "$K8S_VERSION" "$ETCD_VERSION" >"$RUN_DIR/ports"
  return 0
}

cmd_start() {
  local b
  for b in "$ETCD_BIN" "$KUBE_APISERVER_BIN"; do
    [ -x "$b" ] || die "$b not found: run k8s-tests/scripts/build-tools.sh first"
  done
  for b in openssl curl setsid base64 awk; do
    command -v "$b" >/dev/null 2>&1 || die "'$b' not found on PATH"
  done

  local c
  for c in $COMPONENTS; do
    if pid_of "$c" >/dev/null; then
      die "already running in $RUN_DIR ($c pid $(pid_of "$c")); KUBECONFIG=$KUBECONFIG_PATH; run '$0 stop' first"
    fi
  done
  # leftovers of a crashed run (stale pid files, orphans)
  if [ -d "$RUN_DIR" ]; then stop_all >/dev/null 2>&1 || true; fi

  T0=$(date +%s)
  prepare_run_dir
  gen_pki
  write_env

  local attempt rc
  START_OK=0
  trap '[ "$START_OK" = 1 ] || stop_all >/dev/null 2>&1 || true' EXIT
  trap 'exit 130' INT TERM HUP
  for attempt in 1 2 3; do
    rc=0; try_start || rc=$?
    [ "$rc" = 0 ] && break
    stop_all >/dev/null 2>&1 || true
    [ "$rc" = 2 ] || die "control plane did not start (logs in $RUN_DIR)"
    log "port already in use, retrying with other ports (attempt $attempt)"
    rm -rf "$RUN_DIR/etcd-data"
  done
  [ "$rc" = 0 ] || die "control plane did not start after 3 attempts (logs in $RUN_DIR)"
  START_OK=1
  log "control plane ready in $(($(date +%s) - T0))s: $(sed -n 's/^server=//p' "$RUN_DIR/ports"), run dir $RUN_DIR"
  echo "KUBECONFIG=$KUBECONFIG_PATH"
}

# An API server outage, for tests: stop kube-apiserver only (etcd and its data stay), then
# start it again on the same port with the same certificates, so clients reconnect unchanged.
cmd_stop_apiserver() {
  local pid
  pid="$(pid_of kube-apiserver)" || die "kube-apiserver is not running in $RUN_DIR"
  kill_pid kube-apiserver "$pid"
  rm -f "$RUN_DIR/kube-apiserver.pid"
}

cmd_start_apiserver() {
  [ -f "$RUN_DIR/ports" ] || die "no control plane in $RUN_DIR: run '$0 start' first"
  pid_of etcd >/dev/null || die "etcd is not running in $RUN_DIR"
  if pid_of kube-apiserver >/dev/null; then die "kube-apiserver is already running in $RUN_DIR"; fi
  T0=$(date +%s)
  start_apiserver "$(sed -n 's/^apiserver_port=//p' "$RUN_DIR/ports")" "$(sed -n 's/^etcd_port=//p' "$RUN_DIR/ports")" ||
    die "kube-apiserver did not start again (log: $RUN_DIR/kube-apiserver.log)"
}

cmd_signal_apiserver() { # SIGSTOP or SIGCONT
  local pid
  pid="$(pid_of kube-apiserver)" || die "kube-apiserver is not running in $RUN_DIR"
  kill "-$1" "$pid"
}

cmd_status() {
  local c pid ready=1 port=""
  [ -f "$RUN_DIR/ports" ] && port="$(sed -n 's/^apiserver_port=//p' "$RUN_DIR/ports")"
  echo "run dir: $RUN_DIR"
  for c in etcd kube-apiserver; do
    if pid="$(pid_of "$c")"; then echo "$c: running (pid $pid)"; else echo "$c: not running"; ready=0; fi
  done
  if [ "$ready" = 1 ] && [ -n "$port" ]; then
    local body; body="$(readyz "$port")" || true
    echo "readyz: ${body:-<no answer>} (https://127.0.0.1:$port)"
    [ "$body" = ok ] || ready=0
  fi
  [ "$ready" = 1 ] && echo "KUBECONFIG=$KUBECONFIG_PATH"
  [ "$ready" = 1 ]
}

case "${1:-}" in
  start) cmd_start ;;
  stop) stop_all ;;
  stop-apiserver) cmd_stop_apiserver ;;
  start-apiserver) cmd_start_apiserver ;;
  freeze-apiserver) cmd_signal_apiserver STOP ;;
  thaw-apiserver) cmd_signal_apiserver CONT ;;
  status) cmd_status ;;
  env)
    cmd_status >/dev/null || die "not running (run dir $RUN_DIR)"
    cat "$RUN_DIR/env.sh" ;;
  *) usage ;;
esac
