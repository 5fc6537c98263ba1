#!/usr/bin/env bash
# A real single-node Apache Kafka 4.x broker (KRaft, combined broker+controller)
# on 127.0.0.1 for development and tests. Run `scripts/kafka.sh --help`.
#
# The broker jars come from Maven Central (no tarball download needed), so this
# works on machines that reach only package registries. Linux only (/proc, setsid,
# flock).
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/kafka.sh COMMAND [--all]

Runs a throwaway single-node Apache Kafka 4.x broker (KRaft combined mode) on
127.0.0.1. Only the KAFKA_BROKERS=... line (and with KAFKA_TLS=1 the TLS
listener's two) goes to stdout, so you can write:

    eval "$(scripts/kafka.sh start)"     # sets KAFKA_BROKERS=127.0.0.1:<port>
    # eval of an empty string succeeds: to stop on a failed start, use
    brokers=$(scripts/kafka.sh start) && eval "$brokers" && export KAFKA_BROKERS

Commands:
  fetch         Download the broker jars with mvn into the cache (once per version).
  start         Fetch if needed, (re)create the data dir, start the broker in the
                background and wait until it serves requests. If a broker from
                the same data dir is already running, just print its address.
  stop [--all]  Stop the broker of the data dir (SIGTERM, then SIGKILL after
                KAFKA_STOP_TIMEOUT s). --all: every broker this script started
                with this cache (any data dir).
  status        Say whether the broker runs (stderr) and print its
                KAFKA_BROKERS line (stdout). Exit 0 if running, 3 if not.
  -h, --help    Show this help.

Environment:
  KAFKA_VERSION        Kafka version to fetch and run (default 4.1.1)
  ORDERSAGA_CACHE      cache root (default ~/.cache/ordersaga); holds the jars
                       (kafka-<version>/libs), the Maven repo (m2) and run/
  KAFKA_PORT           wanted broker port (default 9092); if it is busy a free
                       port above it is used. The controller gets the next free one.
  KAFKA_DATA_DIR       data dir (default <cache>/run/<KAFKA_PORT>): server.properties,
                       kafka.log, kafka.pid, brokers.env and the log dirs. Keyed
                       by the *wanted* port, so start/stop/status agree even when
                       the broker had to move to another port.
  KAFKA_KEEP_DATA=1    keep the topics of the previous run (default: wipe on start)
  KAFKA_START_TIMEOUT  seconds to wait for the broker to come up (default 60)
  KAFKA_STOP_TIMEOUT   seconds between SIGTERM and SIGKILL (default 20)
  KAFKA_HEAP_OPTS      JVM heap flags (default "-Xms256m -Xmx768m")
  KAFKA_TLS=1          also open a SASL_SSL listener (TLS, SCRAM-SHA-512), as a
                       Strimzi cluster's TLS listener with SCRAM users is: its
                       certificate from a throwaway CA (scripts/tls.sh) in
                       <data dir>/tls. Prints two more lines: KAFKA_TLS_BROKERS=
                       127.0.0.1:<port> and KAFKA_TLS_CA_FILE=<the CA to trust>.
  KAFKA_SCRAM_USERS    with KAFKA_TLS=1: the SCRAM-SHA-512 users, "name:password,..."
                       (default ordersaga:ordersaga-dev); set when the storage
                       is formatted, so on a fresh data dir
EOF
}

KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
CACHE="${ORDERSAGA_CACHE:-$HOME/.cache/ordersaga}"
KAFKA_HOME="$CACHE/kafka-$KAFKA_VERSION"
LIBS="$KAFKA_HOME/libs"
RUN_ROOT="$CACHE/run"
WANTED_PORT="${KAFKA_PORT:-9092}"
DATA_DIR="$(realpath -m -- "${KAFKA_DATA_DIR:-$RUN_ROOT/$WANTED_PORT}")"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' not found on PATH ($2)"; }

# Cleaned up by the EXIT trap: a half-done fetch, or a broker that never came up
# (also when start is interrupted), so a failed start never leaves a stray java.
STAGING=""
STARTING_PID=""
cleanup() {
  if [[ -n $STARTING_PID ]]; then
    kill -KILL "$STARTING_PID" 2>/dev/null || true
    rm -f "$DATA_DIR/kafka.pid"
  fi
  if [[ -n $STAGING ]]; then rm -rf "$STAGING"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- fetch

cmd_fetch() {
  if [[ -d $LIBS ]]; then
    log "Kafka $KAFKA_VERSION jars already in $LIBS"
    return 0
  fi
  need mvn "install Maven 3.x"
  need "$JAVA" "install a JDK 17+ or set JAVA_HOME"
  mkdir -p "$KAFKA_HOME"
  # Concurrent fetches of one version queue here; the later ones then find libs/.
  exec 8>"$KAFKA_HOME/.fetch.lock"
  flock 8
  if [[ -d $LIBS ]]; then
    exec 8>&-
    log "Kafka $KAFKA_VERSION jars were fetched into $LIBS by a concurrent run"
    return 0
  fi
  log "fetching Kafka $KAFKA_VERSION jars into $LIBS (Maven repo: $CACHE/m2) ..."
  local t0=$SECONDS
  STAGING="$(mktemp -d "$KAFKA_HOME/.staging.XXXXXX")"
  # kafka_2.13 brings log4j but no SLF4J 1.7 provider, without which the broker
  # would log nothing; slf4j-simple writes INFO and up to stderr, i.e. kafka.log.
  cat >"$STAGING/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.ordersaga</groupId>
  <artifactId>kafka-broker-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-simple</artifactId>
      <version>1.7.36</version>
    </dependency>
  </dependencies>
</project>
EOF
  if ! mvn -B -ntp -Dstyle.color=never -f "$STAGING/pom.xml" -Dmaven.repo.local="$CACHE/m2" \
      org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$STAGING/libs" >"$STAGING/mvn.log" 2>&1; then
    tail -n 40 "$STAGING/mvn.log" >&2
    die "mvn could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION (see above)"
  fi
  [[ -f $STAGING/libs/kafka_2.13-$KAFKA_VERSION.jar ]] ||
    die "mvn finished but kafka_2.13-$KAFKA_VERSION.jar is missing from its output"
  # A rename is atomic: libs/ is either absent or complete, even if we are killed.
  mv -T "$STAGING/libs" "$LIBS"
  rm -rf "$STAGING"
  STAGING=""
  exec 8>&-
  log "fetched $(find "$LIBS" -name '*.jar' | wc -l) jars in $((SECONDS - t0))s"
}

# ---------------------------------------------------------------- helpers

# PIDs of live brokers started from data dir $1, matched on their exact
# `kafka.Kafka <dir>/server.properties` arguments: a recycled PID in a stale pid
# file is never signalled, and a broker whose pid file got lost is still found.
# Prints them space-separated on one line (nothing if none).
broker_pids() {
  local want="$1/server.properties" f i found=""
  local -a args
  for f in /proc/[0-9]*/cmdline; do
    { mapfile -d '' -t args <"$f"; } 2>/dev/null || continue
    for ((i = 0; i + 1 < ${#args[@]}; i++)); do
      if [[ ${args[i]} == kafka.Kafka && ${args[i + 1]} == "$want" ]]; then
        f=${f#/proc/}
        found+="${found:+ }${f%/cmdline}"
        break
      fi
    done
  done
  [[ -z $found ]] || echo "$found"
}

# True when something listens on, or accepts TCP connections on, 127.0.0.1:$1. Sockets in other
# states do not count: a broker just stopped leaves its clients' connections closing on its port,
# and the JVM listens with SO_REUSEADDR, so a restart gets the port its clients know.
port_in_use() {
  if command -v ss >/dev/null && [[ -n $(ss -Htln "sport = :$1" 2>/dev/null) ]]; then return 0; fi
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# First port above $1 that nothing listens on, skipping the ports in $2...
free_port_after() {
  local p=$1 taken=" ${*:2} "
  while ((++p < 65536)); do
    if [[ $taken != *" $p "* ]] && ! port_in_use "$p"; then
      echo "$p"
      return 0
    fi
  done
  die "no free port above $1"
}

# Serialises start and stop on this machine, so two starts never pick the same
# "free" port and stop never races a start of the same data dir.
lock_run_root() {
  mkdir -p "$RUN_ROOT"
  exec 9>"$RUN_ROOT/.lock"
  flock -w 180 9 || die "another kafka.sh start/stop holds $RUN_ROOT/.lock for 3 minutes"
}

# ---------------------------------------------------------------- start

write_server_properties() { # port controller_port [tls_port]
  local listeners="PLAINTEXT://127.0.0.1:$1,CONTROLLER://127.0.0.1:$2" advertised="PLAINTEXT://127.0.0.1:$1"
  if [[ -n ${3:-} ]]; then
    listeners+=",SASL_SSL://127.0.0.1:$3"
    advertised+=",SASL_SSL://127.0.0.1:$3"
  fi
  cat >"$DATA_DIR/server.properties" <<EOF
# Written by scripts/kafka.sh on each start; edits are overwritten.
process.roles=broker,controller
node.id=1
listeners=$listeners
advertised.listeners=$advertised
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=127.0.0.1:$2
log.dirs=$DATA_DIR/data

# Topics are created explicitly by the services, never by a typo in a consumer.
auto.create.topics.enable=false
num.partitions=3
default.replication.factor=1
min.insync.replicas=1

# Single node: every internal topic has one replica. Few partitions keep the
# first consumer-group and transaction requests fast.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=6
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0

# Dev-sized logs. The cleaner stays on for compacted topics, with a small
# dedupe buffer (the default takes 128 MiB of heap).
log.segment.bytes=16777216
log.retention.hours=24
log.retention.check.interval.ms=60000
log.cleaner.enable=true
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=16777216
log.cleaner.backoff.ms=5000
# Threads for a node that shares two cores with the services: one network thread and two
# request handlers did 1.1 times the sagas/s of 2 and 4, with a quarter lower p99 at 100/s
# (npm start's services on a fresh broker, two runs each, one after the other).
num.network.threads=1
num.io.threads=2
EOF
  if [[ -n ${3:-} ]]; then
    cat >>"$DATA_DIR/server.properties" <<EOF

# The TLS listener: SCRAM-SHA-512 over TLS, the broker's key and certificate in one PEM file.
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$DATA_DIR/tls/broker.pem
EOF
  fi
}

# The broker's TLS material, from the project's throwaway CA.
make_tls() {
  local dir=$DATA_DIR/tls
  need openssl "install openssl"
  bash "$(dirname "${BASH_SOURCE[0]}")/tls.sh" "$dir" broker IP:127.0.0.1 DNS:localhost
  cat "$dir/broker.key" "$dir/broker.crt" >"$dir/broker.pem"
}

# --add-scram arguments of the storage format, one per line, from KAFKA_SCRAM_USERS.
scram_args() {
  local users user
  IFS=, read -ra users <<<"${KAFKA_SCRAM_USERS:-ordersaga:ordersaga-dev}"
  for user in "${users[@]}"; do
    [[ $user == ?*:?* ]] || die "KAFKA_SCRAM_USERS: '$user' is not name:password"
    printf '%s\n' --add-scram "SCRAM-SHA-512=[name=${user%%:*},password=${user#*:}]"
  done
}

# Waits until the broker says it started and accepts connections. Returns 1 if
# the JVM died, 2 on timeout.
wait_ready() { # pid port
  local t0=$SECONDS deadline=$((SECONDS + ${KAFKA_START_TIMEOUT:-60})) next_note=$((SECONDS + 5))
  while :; do
    kill -0 "$1" 2>/dev/null || return 1
    if grep -q 'Kafka Server started' "$DATA_DIR/kafka.log" && port_in_use "$2"; then
      return 0
    fi
    ((SECONDS < deadline)) || return 2
    if ((SECONDS >= next_note)); then
      log "still waiting for the broker on 127.0.0.1:$2 ($((SECONDS - t0))s) ..."
      next_note=$((SECONDS + 5))
    fi
    sleep 0.5
  done
}

cmd_start() {
  if ! [[ $WANTED_PORT =~ ^[0-9]+$ ]] || ((WANTED_PORT < 1 || WANTED_PORT > 65535)); then
    die "KAFKA_PORT must be a TCP port number, not '$WANTED_PORT'"
  fi
  need "$JAVA" "install a JDK 17+ or set JAVA_HOME"
  need flock "install util-linux"
  need setsid "install util-linux"
  cmd_fetch
  lock_run_root

  if [[ -n $(broker_pids "$DATA_DIR") ]]; then
    if [[ -f $DATA_DIR/brokers.env ]]; then
      log "already running from $DATA_DIR"
      cat "$DATA_DIR/brokers.env"
      return 0
    fi
    log "a broker from $DATA_DIR runs but never reported ready (start killed?); replacing it"
    stop_dir "$DATA_DIR"
  fi

  if [[ ${KAFKA_KEEP_DATA:-0} == 1 && -f $DATA_DIR/data/meta.properties ]]; then
    log "keeping the data in $DATA_DIR (KAFKA_KEEP_DATA=1)"
  elif [[ -d $DATA_DIR ]]; then
    # Guard against KAFKA_DATA_DIR pointing at something precious.
    if [[ -n $(ls -A "$DATA_DIR") && ! -f $DATA_DIR/server.properties ]]; then
      die "refusing to wipe $DATA_DIR: it is not empty and has no server.properties"
    fi
    rm -rf "$DATA_DIR"
  fi
  mkdir -p "$DATA_DIR"
  # stop --all looks at the data dirs in $RUN_ROOT; one elsewhere gets a symlink.
  if [[ $(dirname "$DATA_DIR") != "$RUN_ROOT" ]]; then
    ln -sfn "$DATA_DIR" "$RUN_ROOT/ext-$(printf '%s' "$DATA_DIR" | cksum | cut -d' ' -f1)"
  fi

  local port=$WANTED_PORT controller_port
  if port_in_use "$port"; then
    port=$(free_port_after "$port")
    log "port $WANTED_PORT is busy, using $port"
  fi
  controller_port=$(free_port_after "$port")
  local tls_port=""
  if [[ ${KAFKA_TLS:-0} == 1 ]]; then
    tls_port=$(free_port_after "$controller_port")
    make_tls
  fi
  write_server_properties "$port" "$controller_port" "$tls_port"

  if [[ ! -f $DATA_DIR/data/meta.properties ]]; then
    local cluster_id
    cluster_id=$("$JAVA" -cp "$LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null)
    local scram=()
    if [[ -n $tls_port ]]; then mapfile -t scram < <(scram_args); fi
    "$JAVA" -cp "$LIBS/*" kafka.tools.StorageTool format --standalone -t "$cluster_id" \
      -c "$DATA_DIR/server.properties" "${scram[@]}" >"$DATA_DIR/format.log" 2>&1 || {
      cat "$DATA_DIR/format.log" >&2
      die "formatting the storage in $DATA_DIR/data failed"
    }
  fi

  log "starting Kafka $KAFKA_VERSION on 127.0.0.1:$port (controller :$controller_port), log: $DATA_DIR/kafka.log"
  local t0=$SECONDS
  : >"$DATA_DIR/kafka.log"
  # setsid: the broker outlives this script and the caller's terminal. The child
  # writes its own PID before exec-ing java, so the pid file is java's PID even
  # if setsid forks. No inherited stdout (eval "$(...)" would never return) and
  # no inherited lock fds (the next start would block on them).
  rm -f "$DATA_DIR/kafka.pid"
  # shellcheck disable=SC2016,SC2086 # $$ is the child's; KAFKA_HEAP_OPTS is a list of flags
  setsid bash -c 'echo $$ >"$0" && exec "$@"' "$DATA_DIR/kafka.pid" \
    "$JAVA" ${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m} -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true \
    -Dorg.slf4j.simpleLogger.showDateTime=true \
    -Dorg.slf4j.simpleLogger.dateTimeFormat='yyyy-MM-dd HH:mm:ss,SSS' \
    -cp "$LIBS/*" kafka.Kafka "$DATA_DIR/server.properties" \
    </dev/null >>"$DATA_DIR/kafka.log" 2>&1 8>&- 9>&- &
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -s $DATA_DIR/kafka.pid ]] && break
    sleep 0.05
  done
  [[ -s $DATA_DIR/kafka.pid ]] || die "the broker JVM did not start (no pid file)"
  STARTING_PID=$(<"$DATA_DIR/kafka.pid")

  local rc=0
  wait_ready "$STARTING_PID" "$port" || rc=$?
  if ((rc != 0)); then
    log "last 40 lines of $DATA_DIR/kafka.log:"
    tail -n 40 "$DATA_DIR/kafka.log" >&2
    if ((rc == 1)); then
      die "the broker exited during startup"
    fi
    die "the broker did not come up within ${KAFKA_START_TIMEOUT:-60}s (killed it)"
  fi
  STARTING_PID=""

  {
    printf 'KAFKA_BROKERS=127.0.0.1:%s\n' "$port"
    if [[ -n $tls_port ]]; then
      printf 'KAFKA_TLS_BROKERS=127.0.0.1:%s\nKAFKA_TLS_CA_FILE=%s\n' "$tls_port" "$DATA_DIR/tls/ca.crt"
    fi
  } >"$DATA_DIR/brokers.env.tmp"
  mv "$DATA_DIR/brokers.env.tmp" "$DATA_DIR/brokers.env"
  log "Kafka is up on 127.0.0.1:$port${tls_port:+ (TLS + SCRAM: 127.0.0.1:$tls_port)} after $((SECONDS - t0))s (pid $(<"$DATA_DIR/kafka.pid"))"
  cat "$DATA_DIR/brokers.env"
}

# ---------------------------------------------------------------- stop / status

stop_dir() { # data_dir
  local dir=$1 pids i
  pids=$(broker_pids "$dir")
  if [[ -z $pids ]]; then
    log "no broker running from $dir"
  else
    log "stopping the broker from $dir (pid $pids) ..."
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    for ((i = 0; i < ${KAFKA_STOP_TIMEOUT:-20} * 4; i++)); do
      [[ -z $(broker_pids "$dir") ]] && break
      sleep 0.25
    done
    pids=$(broker_pids "$dir")
    if [[ -n $pids ]]; then
      log "still alive after ${KAFKA_STOP_TIMEOUT:-20}s, sending SIGKILL"
      # shellcheck disable=SC2086
      kill -KILL $pids 2>/dev/null || true
      for ((i = 0; i < 40; i++)); do
        [[ -z $(broker_pids "$dir") ]] && break
        sleep 0.25
      done
      [[ -z $(broker_pids "$dir") ]] || die "could not kill pid $pids"
    fi
    log "stopped"
  fi
  rm -f "$dir/kafka.pid" "$dir/brokers.env"
}

cmd_stop() {
  lock_run_root
  if [[ ${1:-} != --all ]]; then
    stop_dir "$DATA_DIR"
    return 0
  fi
  # Every data dir under run/ (ext-* symlinks included), judged by its live
  # processes rather than its pid file, so a lost pid file leaves no stray java.
  local dir link
  for dir in "$RUN_ROOT"/*/; do
    dir=$(realpath -- "$dir")
    if [[ -n $(broker_pids "$dir") ]]; then stop_dir "$dir"; fi
  done
  # Forget data dirs outside the cache that are gone.
  for link in "$RUN_ROOT"/ext-*; do
    if [[ -L $link && ! -e $link ]]; then rm -f "$link"; fi
  done
  log "no broker started by kafka.sh is running any more"
}

cmd_status() {
  local pids
  pids=$(broker_pids "$DATA_DIR")
  if [[ -n $pids && -f $DATA_DIR/brokers.env ]]; then
    log "running (pid $pids, data dir $DATA_DIR)"
    cat "$DATA_DIR/brokers.env"
  elif [[ -n $pids ]]; then
    log "starting or broken (pid $pids, data dir $DATA_DIR): see $DATA_DIR/kafka.log"
    exit 3
  else
    log "not running (data dir $DATA_DIR)"
    exit 3
  fi
}

case "${1:-}" in
  fetch) cmd_fetch ;;
  start) cmd_start ;;
  stop)
    [[ $# -le 2 && ${2:---all} == --all ]] || die "usage: kafka.sh stop [--all]"
    cmd_stop "${2:-}"
    ;;
  status) cmd_status ;;
  -h | --help | help) usage ;;
  "") usage >&2; exit 2 ;;
  *) log "unknown command '$1'"; usage >&2; exit 2 ;;
esac
