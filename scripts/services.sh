#!/usr/bin/env bash
# Start, stop and check the real services LeviBot's tests need, on a plain Debian 12 machine (no Docker).
#
#   scripts/services.sh up     [kafka|postgres|redis|clickhouse|all]   # default: all; idempotent
#   scripts/services.sh down   [kafka|postgres|redis|clickhouse|all]
#   scripts/services.sh status [kafka|postgres|redis|clickhouse|all]   # exit 0 only if every named service answers
#
# Kafka: Apache Kafka 4.x (KRaft, one node) assembled from Maven Central jars, 127.0.0.1:$LEVIBOT_KAFKA_PORT.
# PostgreSQL: Debian's server binaries, the project's own cluster on 127.0.0.1:$LEVIBOT_PG_PORT.
# Redis: Debian's redis-server, the project's own instance on 127.0.0.1:$LEVIBOT_REDIS_PORT (the API's shared
#   rate-limit counters), append-only file under $LEVIBOT_VAR/redis.
# ClickHouse: embedded (chDB inside the Python process), nothing to start.
# State lives under $LEVIBOT_VAR (default <repo>/var). See docs/services.md.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRIPTS="$REPO/scripts"
VAR="${LEVIBOT_VAR:-$REPO/var}"
PY="$REPO/.venv/bin/python"

# --- Kafka settings --------------------------------------------------------------------------------------
KAFKA_PORT="${LEVIBOT_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${LEVIBOT_KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
KAFKA_LOCAL_BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
KAFKA_BOOTSTRAP="${LEVIBOT_KAFKA_BOOTSTRAP:-$KAFKA_LOCAL_BOOTSTRAP}"
KAFKA_VERSION="${LEVIBOT_KAFKA_VERSION:-4.4.0}"   # tried first; falls back to KAFKA_FALLBACK_VERSION
KAFKA_FALLBACK_VERSION="4.3.1"
KAFKA_HOME="$VAR/kafka"
KAFKA_LIBS="$KAFKA_HOME/libs"
KAFKA_DATA="$KAFKA_HOME/data"
KAFKA_LOGS="$KAFKA_HOME/logs"
KAFKA_CONF="$KAFKA_HOME/config/server.properties"
KAFKA_PID="$KAFKA_HOME/kafka.pid"
KAFKA_READY_TIMEOUT="${LEVIBOT_KAFKA_READY_TIMEOUT:-120}"   # seconds
KAFKA_STOP_TIMEOUT=60                                       # seconds before SIGKILL
KAFKA_HEAP_OPTS="-Xms256m -Xmx768m"
KAFKA_JVM_OPTS="-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true"

# --- PostgreSQL settings ---------------------------------------------------------------------------------
PG_PORT="${LEVIBOT_PG_PORT:-55432}"
PG_LOCAL_DSN="postgresql://levibot:levibot@127.0.0.1:$PG_PORT/levibot"
PG_DSN="${LEVIBOT_PG_DSN:-$PG_LOCAL_DSN}"
PG_HOME="$VAR/pg"           # owned by the postgres OS user when it can reach it (see pg_resolve_dirs)
PG_OS_USER="postgres"       # PostgreSQL refuses to run as root
PG_SOCKET_DIR="/tmp"        # short path: Unix socket paths are limited to ~107 bytes
PG_READY_TIMEOUT="${LEVIBOT_PG_READY_TIMEOUT:-60}"

# --- Redis settings --------------------------------------------------------------------------------------
REDIS_PORT="${LEVIBOT_REDIS_PORT:-56379}"   # not 6379: a distribution-started redis may hold that one
REDIS_HOME="$VAR/redis"
REDIS_PID="$REDIS_HOME/redis.pid"
REDIS_READY_TIMEOUT=30

# --- helpers ---------------------------------------------------------------------------------------------
log()  { printf '[services] %s\n' "$*"; }
err()  { printf '[services] ERROR: %s\n' "$*" >&2; }
die()  { err "$*"; exit 1; }

# show_log_tail FILE...: print the last lines of the first existing log file, to stderr.
show_log_tail() {
  local f
  for f in "$@"; do
    if [[ -s "$f" ]]; then
      printf '[services] ---- last 40 lines of %s ----\n' "$f" >&2
      tail -n 40 "$f" >&2 || true
      printf '[services] ---- end of %s ----\n' "$f" >&2
    fi
  done
}

# Serialise up/down of concurrent callers (e.g. two test sessions) on one lock file.
# The daemons are started with fd 9 closed (9>&-), or they would hold the lock for as long as they run.
take_lock() {
  mkdir -p "$VAR"
  exec 9>"$VAR/.services.lock"
  if ! flock -n 9; then
    log "waiting for another scripts/services.sh to finish (lock $VAR/.services.lock) ..."
    flock -w 300 9 || die "another scripts/services.sh has held $VAR/.services.lock for 5 minutes"
  fi
}

# True if something accepts TCP connections on HOST:PORT.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# =========================================================================================================
# Kafka
# =========================================================================================================

kafka_is_external() { [[ "$KAFKA_BOOTSTRAP" != "$KAFKA_LOCAL_BOOTSTRAP" && "$KAFKA_BOOTSTRAP" != "localhost:$KAFKA_PORT" ]]; }

# PID of our broker if it is alive (pid file present and the process is kafka.Kafka), else nothing.
kafka_pid() {
  [[ -f "$KAFKA_PID" ]] || return 1
  local pid; pid="$(cat "$KAFKA_PID" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka' || return 1
  echo "$pid"
}

# kafka_answers BOOTSTRAP: one metadata request (needs the venv's confluent-kafka). Exit 0 if a broker answered.
# Without the venv: returns 2 (unknown) so callers fall back to other checks.
kafka_answers() {
  [[ -x "$PY" ]] || return 2
  timeout 20 "$PY" - "$1" 2>/dev/null <<'PYEOF'
import sys
try:
    from confluent_kafka.admin import AdminClient
except ImportError:
    sys.exit(2)
admin = AdminClient({"bootstrap.servers": sys.argv[1], "log_level": 0, "socket.connection.setup.timeout.ms": 3000})
try:
    md = admin.list_topics(timeout=5)
except Exception:
    sys.exit(1)
sys.exit(0 if md.brokers else 1)
PYEOF
}

# Copy the broker's runtime classpath from Maven Central into var/kafka/libs (once).
kafka_install() {
  if [[ -f "$KAFKA_LIBS/.complete" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found: install it with 'apt-get install -y maven' (and openjdk-17-jdk-headless)"
  command -v java >/dev/null || die "java not found: install it with 'apt-get install -y openjdk-17-jre-headless'"
  local tmp="$KAFKA_HOME/libs.tmp" mvnlog="$KAFKA_HOME/mvn.log" v
  mkdir -p "$KAFKA_HOME"
  for v in "$KAFKA_VERSION" "$KAFKA_FALLBACK_VERSION"; do
    log "kafka: fetching Apache Kafka $v and log4j2 from Maven Central into $KAFKA_LIBS ..."
    rm -rf "$tmp"
    if mvn -B -q -f "$SCRIPTS/kafka/pom.xml" -Dkafka.version="$v" -Dlibs.dir="$tmp" \
         dependency:copy-dependencies >"$mvnlog" 2>&1 \
       && compgen -G "$tmp/kafka_2.13-$v.jar" >/dev/null; then
      echo "$v" >"$tmp/.complete"
      rm -rf "$KAFKA_LIBS"
      mv "$tmp" "$KAFKA_LIBS"          # appears only when complete
      log "kafka: installed Kafka $v ($(ls "$KAFKA_LIBS" | wc -l) jars)"
      return 0
    fi
    err "kafka: Maven could not assemble Kafka $v"
    [[ "$v" == "$KAFKA_FALLBACK_VERSION" ]] || log "kafka: falling back to $KAFKA_FALLBACK_VERSION"
  done
  show_log_tail "$mvnlog"
  die "kafka: could not fetch the broker from Maven Central (see $mvnlog)"
}

kafka_java() {  # run a Kafka main class on the installed classpath
  java -cp "$KAFKA_LIBS/*" -Dlog4j2.configurationFile="$SCRIPTS/kafka/log4j2.properties" \
       -Dkafka.logs.dir="$KAFKA_LOGS" "$@"
}

# Render server.properties from the template (every start, so port changes apply).
kafka_render_config() {
  mkdir -p "$(dirname "$KAFKA_CONF")" "$KAFKA_DATA" "$KAFKA_LOGS"
  sed -e "s#@PORT@#$KAFKA_PORT#g" -e "s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" -e "s#@DATA_DIR@#$KAFKA_DATA#g" \
      "$SCRIPTS/kafka/server.properties.template" >"$KAFKA_CONF"
}

# Format the KRaft storage once; the cluster id is kept in var/kafka/cluster.id so restarts reuse the data.
kafka_format() {
  [[ -f "$KAFKA_DATA/meta.properties" ]] && return 0
  local id_file="$KAFKA_HOME/cluster.id" id
  if [[ ! -s "$id_file" ]]; then
    kafka_java kafka.tools.StorageTool random-uuid 2>>"$KAFKA_LOGS/format.log" | tail -n 1 >"$id_file"
  fi
  id="$(cat "$id_file")"
  [[ -n "$id" ]] || die "kafka: StorageTool random-uuid printed no cluster id (see $KAFKA_LOGS/format.log)"
  log "kafka: formatting storage $KAFKA_DATA (cluster id $id)"
  if ! kafka_java kafka.tools.StorageTool format -t "$id" -c "$KAFKA_CONF" -g >>"$KAFKA_LOGS/format.log" 2>&1; then
    show_log_tail "$KAFKA_LOGS/format.log"
    die "kafka: storage format failed"
  fi
}

# Wait until the broker answers a metadata request. Without the venv: until the log written since LOG_OFFSET
# (bytes of server.log before this start) says "Kafka Server started" and the client port accepts connections.
kafka_wait_ready() {
  local pid="$1" log_offset="${2:-0}" deadline=$((SECONDS + KAFKA_READY_TIMEOUT)) rc
  while (( SECONDS < deadline )); do
    if ! kill -0 "$pid" 2>/dev/null; then
      show_log_tail "$KAFKA_LOGS/server.log" "$KAFKA_LOGS/kafka.out"
      die "kafka: the broker (pid $pid) exited during startup"
    fi
    rc=0; kafka_answers "$KAFKA_LOCAL_BOOTSTRAP" || rc=$?
    if (( rc == 0 )); then return 0; fi
    if (( rc == 2 )) && port_open 127.0.0.1 "$KAFKA_PORT" \
       && tail -c +"$((log_offset + 1))" "$KAFKA_LOGS/server.log" 2>/dev/null | grep -q 'Kafka Server started'; then
      return 0
    fi
    sleep 1
  done
  show_log_tail "$KAFKA_LOGS/server.log" "$KAFKA_LOGS/kafka.out"
  die "kafka: the broker (pid $pid) did not become ready within ${KAFKA_READY_TIMEOUT}s"
}

kafka_up() {
  if kafka_is_external; then
    local rc=0; kafka_answers "$KAFKA_BOOTSTRAP" || rc=$?
    case $rc in
      0) log "kafka: using the external broker at $KAFKA_BOOTSTRAP (LEVIBOT_KAFKA_BOOTSTRAP); it answers" ;;
      2) local first="${KAFKA_BOOTSTRAP%%,*}"   # no venv: only check that the first address accepts TCP
         port_open "${first%:*}" "${first##*:}" \
           || die "kafka: the external broker LEVIBOT_KAFKA_BOOTSTRAP=$KAFKA_BOOTSTRAP does not accept connections"
         log "kafka: external broker port $first is open (no venv: metadata not checked)" ;;
      *) die "kafka: the external broker LEVIBOT_KAFKA_BOOTSTRAP=$KAFKA_BOOTSTRAP does not answer" ;;
    esac
    return 0
  fi

  local pid
  if pid="$(kafka_pid)"; then
    kafka_wait_ready "$pid"   # returns at once if it already answers
    log "kafka: already running (pid $pid) at $KAFKA_LOCAL_BOOTSTRAP"
    return 0
  fi
  rm -f "$KAFKA_PID"
  if port_open 127.0.0.1 "$KAFKA_PORT" || port_open 127.0.0.1 "$KAFKA_CONTROLLER_PORT"; then
    if kafka_answers "$KAFKA_LOCAL_BOOTSTRAP"; then
      log "kafka: a broker not started from $VAR already answers at $KAFKA_LOCAL_BOOTSTRAP; using it"
      return 0
    fi
    die "kafka: port $KAFKA_PORT or $KAFKA_CONTROLLER_PORT on 127.0.0.1 is taken by another program (set LEVIBOT_KAFKA_PORT)"
  fi

  kafka_install
  kafka_render_config
  kafka_format

  log "kafka: starting Kafka $(cat "$KAFKA_LIBS/.complete") at $KAFKA_LOCAL_BOOTSTRAP (log: $KAFKA_LOGS/server.log)"
  : >"$KAFKA_LOGS/kafka.out"
  local log_offset; log_offset="$(stat -c %s "$KAFKA_LOGS/server.log" 2>/dev/null || echo 0)"
  # setsid + nohup: the broker outlives this script and the terminal; $! is the java process itself.
  # shellcheck disable=SC2086
  setsid nohup java $KAFKA_HEAP_OPTS $KAFKA_JVM_OPTS -cp "$KAFKA_LIBS/*" \
    -Dlog4j2.configurationFile="$SCRIPTS/kafka/log4j2.properties" -Dkafka.logs.dir="$KAFKA_LOGS" \
    kafka.Kafka "$KAFKA_CONF" >>"$KAFKA_LOGS/kafka.out" 2>&1 </dev/null 9>&- &
  pid=$!
  echo "$pid" >"$KAFKA_PID"
  local t0=$SECONDS
  kafka_wait_ready "$pid" "$log_offset"
  log "kafka: ready after $((SECONDS - t0))s (pid $pid)"
}

kafka_down() {
  if kafka_is_external; then
    log "kafka: LEVIBOT_KAFKA_BOOTSTRAP=$KAFKA_BOOTSTRAP is external; nothing to stop"
    return 0
  fi
  local pid
  if ! pid="$(kafka_pid)"; then
    rm -f "$KAFKA_PID"
    log "kafka: not running"
    return 0
  fi
  log "kafka: stopping pid $pid (SIGTERM, up to ${KAFKA_STOP_TIMEOUT}s)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then
    err "kafka: pid $pid still alive after ${KAFKA_STOP_TIMEOUT}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  fi
  rm -f "$KAFKA_PID"
  log "kafka: stopped"
}

kafka_status() {
  local rc=0
  if kafka_is_external; then
    kafka_answers "$KAFKA_BOOTSTRAP" || rc=$?
    if (( rc == 0 )); then log "kafka: external broker $KAFKA_BOOTSTRAP answers"; return 0; fi
    err "kafka: external broker LEVIBOT_KAFKA_BOOTSTRAP=$KAFKA_BOOTSTRAP does not answer"; return 1
  fi
  local pid
  if pid="$(kafka_pid)"; then
    kafka_answers "$KAFKA_LOCAL_BOOTSTRAP" || rc=$?
    case $rc in
      0) log "kafka: running (pid $pid, Kafka $(cat "$KAFKA_LIBS/.complete" 2>/dev/null)) at $KAFKA_LOCAL_BOOTSTRAP; answers"; return 0 ;;
      2) log "kafka: running (pid $pid) at $KAFKA_LOCAL_BOOTSTRAP (no venv: metadata not checked)"; return 0 ;;
      *) err "kafka: process $pid is alive but $KAFKA_LOCAL_BOOTSTRAP does not answer yet (log: $KAFKA_LOGS/server.log)"; return 1 ;;
    esac
  fi
  if kafka_answers "$KAFKA_LOCAL_BOOTSTRAP"; then
    log "kafka: a broker not started from $VAR answers at $KAFKA_LOCAL_BOOTSTRAP"; return 0
  fi
  err "kafka: not running (nothing answers at $KAFKA_LOCAL_BOOTSTRAP; start it with: scripts/services.sh up kafka)"
  return 1
}

# =========================================================================================================
# PostgreSQL
# =========================================================================================================

pg_is_external() { [[ "$PG_DSN" != "$PG_LOCAL_DSN" ]]; }

# The newest installed server's bin dir, e.g. /usr/lib/postgresql/15/bin (nothing if none).
pg_bindir() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  [[ -n "$d" && -x "$d/postgres" && -x "$d/initdb" ]] && echo "$d"
}

pg_install() {
  PG_BIN="$(pg_bindir || true)"
  [[ -n "$PG_BIN" ]] && return 0
  (( EUID == 0 )) || die "postgres: no server binaries under /usr/lib/postgresql/*/bin and not root: run 'apt-get install -y postgresql' as root"
  log "postgres: installing Debian's postgresql package (apt-get) ..."
  local aptlog="$VAR/apt-postgresql.log"
  mkdir -p "$VAR"
  if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql; } >"$aptlog" 2>&1; then
    show_log_tail "$aptlog"
    die "postgres: apt-get install postgresql failed (see $aptlog)"
  fi
  PG_BIN="$(pg_bindir || true)"
  [[ -n "$PG_BIN" ]] || die "postgres: installed postgresql but found no server under /usr/lib/postgresql/*/bin"
}

# Run a command as the OS user that owns the cluster (postgres when we are root, else ourselves).
as_pg() {
  # cd /: the postgres user may not be allowed into the caller's working directory.
  if (( EUID == 0 )); then (cd / && runuser -u "$PG_OS_USER" -- "$@"); else "$@"; fi
}

# Choose the data dir. Preferred: $VAR/pg/data, owned by postgres. The postgres user must be able to traverse
# every parent directory of $VAR; a checkout under /root (mode 700) is not, and chmod-ing someone's home is
# not ours to do, so then the cluster goes to /var/tmp/levibot-pg-<port> instead. LEVIBOT_PG_DATA overrides.
pg_resolve_dirs() {
  if [[ -n "${LEVIBOT_PG_DATA:-}" ]]; then
    PG_DATA="$LEVIBOT_PG_DATA"
  else
    mkdir -p "$PG_HOME"
    if (( EUID == 0 )); then
      chown "$PG_OS_USER:$PG_OS_USER" "$PG_HOME"
      chmod 700 "$PG_HOME"
    fi
    if as_pg test -w "$PG_HOME" -a -x "$PG_HOME" 2>/dev/null; then
      PG_DATA="$PG_HOME/data"
    else
      PG_DATA="/var/tmp/levibot-pg-$PG_PORT/data"
    fi
  fi
  PG_LOG="$(dirname "$PG_DATA")/postgresql.log"
}

pg_prepare_dirs() {
  local parent; parent="$(dirname "$PG_DATA")"
  mkdir -p "$parent"
  if (( EUID == 0 )); then chown "$PG_OS_USER:$PG_OS_USER" "$parent"; chmod 700 "$parent"; fi
}

# Does the cluster answer as the levibot role? (TCP + password, exactly as the tests connect.)
pg_answers() {
  local dsn="$1" bin; bin="$(pg_bindir || true)"
  # Bounded: something that is not PostgreSQL on the port would otherwise keep psql waiting forever.
  if [[ -n "$bin" ]]; then
    PGCONNECT_TIMEOUT=5 timeout 15 "$bin/psql" "$dsn" -XAtqc 'select 1' >/dev/null 2>&1
  elif [[ -x "$PY" ]]; then
    timeout 15 "$PY" -c 'import sys, psycopg; psycopg.connect(sys.argv[1], connect_timeout=5).close()' "$dsn" >/dev/null 2>&1
  elif command -v psql >/dev/null; then
    PGCONNECT_TIMEOUT=5 timeout 15 psql "$dsn" -XAtqc 'select 1' >/dev/null 2>&1
  else
    return 2
  fi
}

pg_running() { [[ -f "$PG_DATA/postmaster.pid" ]] && as_pg "$PG_BIN/pg_ctl" status -D "$PG_DATA" >/dev/null 2>&1; }

# Settings we own, rewritten on every start (so LEVIBOT_PG_PORT changes apply). postgresql.conf includes it.
pg_write_conf() {
  local preload="" extdir
  extdir="$("$PG_BIN/pg_config" --sharedir 2>/dev/null || echo /nonexistent)/extension"
  if [[ -f "$extdir/timescaledb.control" ]]; then
    preload="shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off"
    log "postgres: timescaledb extension found; preloading it"
  fi
  as_pg tee "$PG_DATA/levibot.conf" >/dev/null <<EOF
# Written by scripts/services.sh on every start; edits are lost.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCKET_DIR'
max_connections = 100
shared_buffers = 128MB
work_mem = 8MB
maintenance_work_mem = 64MB
effective_cache_size = 512MB
max_wal_size = 1GB
timezone = 'UTC'
log_timezone = 'UTC'
logging_collector = off
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
$preload
EOF
}

pg_initdb() {
  [[ -f "$PG_DATA/PG_VERSION" ]] && return 0
  log "postgres: initdb $PG_DATA"
  local initlog; initlog="$(dirname "$PG_DATA")/initdb.log"
  if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --encoding=UTF8 --no-locale \
        --auth-local=peer --auth-host=scram-sha-256 >"$initlog" 2>&1; then
    show_log_tail "$initlog"
    die "postgres: initdb failed"
  fi
  # Only local peer (for the postgres admin) and password logins over loopback.
  as_pg tee "$PG_DATA/pg_hba.conf" >/dev/null <<'EOF'
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 peer
host    all       all   127.0.0.1/32  scram-sha-256
host    all       all   ::1/128       scram-sha-256
EOF
  echo "include_if_exists = 'levibot.conf'" | as_pg tee -a "$PG_DATA/postgresql.conf" >/dev/null
}

# Create the levibot role and database if missing (idempotent), as the postgres superuser over the socket.
pg_bootstrap_role() {
  local psql=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$PG_PORT" -U postgres)
  as_pg "${psql[@]}" -d postgres >/dev/null <<'SQL'
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'levibot') THEN
    CREATE ROLE levibot LOGIN CREATEDB PASSWORD 'levibot';
  END IF;
END $$;
-- lets the test fixtures drop their databases even while an autovacuum worker is still in them
GRANT pg_signal_backend TO levibot;
SELECT 'CREATE DATABASE levibot OWNER levibot' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'levibot')
\gexec
SQL
  # Only when Debian ever ships timescaledb (it does not in Debian 12): create it for the project's database.
  if grep -q "^shared_preload_libraries = 'timescaledb'" "$PG_DATA/levibot.conf" 2>/dev/null; then
    as_pg "${psql[@]}" -d levibot -c 'CREATE EXTENSION IF NOT EXISTS timescaledb' >/dev/null
  fi
}

pg_wait_ready() {
  local deadline=$((SECONDS + PG_READY_TIMEOUT))
  while (( SECONDS < deadline )); do
    if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then return 0; fi
    if ! pg_running; then
      show_log_tail "$PG_LOG"
      die "postgres: the server exited during startup"
    fi
    sleep 0.5
  done
  show_log_tail "$PG_LOG"
  die "postgres: not ready within ${PG_READY_TIMEOUT}s"
}

pg_up() {
  if pg_is_external; then
    pg_answers "$PG_DSN" || die "postgres: LEVIBOT_PG_DSN does not answer (a query as its user failed)"
    log "postgres: using the external server from LEVIBOT_PG_DSN; it answers"
    return 0
  fi
  pg_install
  pg_resolve_dirs
  if pg_running && pg_answers "$PG_LOCAL_DSN"; then
    log "postgres: already running at 127.0.0.1:$PG_PORT (data: $PG_DATA)"
    return 0
  fi
  if ! pg_running; then
    if port_open 127.0.0.1 "$PG_PORT"; then
      if pg_answers "$PG_LOCAL_DSN"; then
        log "postgres: a server not started from $PG_DATA already answers at 127.0.0.1:$PG_PORT; using it"
        return 0
      fi
      die "postgres: port $PG_PORT on 127.0.0.1 is taken by another program (set LEVIBOT_PG_PORT)"
    fi
    pg_prepare_dirs
    pg_initdb
    pg_write_conf
    log "postgres: starting PostgreSQL $(basename "$(dirname "$PG_BIN")") at 127.0.0.1:$PG_PORT (data: $PG_DATA, log: $PG_LOG)"
    if ! as_pg "$PG_BIN/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -w -t "$PG_READY_TIMEOUT" >/dev/null 2>&1 9>&-; then
      show_log_tail "$PG_LOG"
      die "postgres: pg_ctl start failed"
    fi
  fi
  pg_wait_ready
  pg_bootstrap_role
  pg_answers "$PG_LOCAL_DSN" || { show_log_tail "$PG_LOG"; die "postgres: up, but login as levibot failed"; }
  log "postgres: ready at $PG_LOCAL_DSN"
}

pg_down() {
  if pg_is_external; then log "postgres: LEVIBOT_PG_DSN is external; nothing to stop"; return 0; fi
  PG_BIN="$(pg_bindir || true)"
  if [[ -z "$PG_BIN" ]]; then log "postgres: not installed"; return 0; fi
  pg_resolve_dirs
  if ! pg_running; then log "postgres: not running"; return 0; fi
  log "postgres: stopping (pg_ctl stop -m fast)"
  if ! as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w -t 60 >/dev/null 2>&1; then
    show_log_tail "$PG_LOG"
    die "postgres: pg_ctl stop failed"
  fi
  log "postgres: stopped"
}

pg_status() {
  if pg_is_external; then
    if pg_answers "$PG_DSN"; then log "postgres: external server (LEVIBOT_PG_DSN) answers"; return 0; fi
    err "postgres: external server LEVIBOT_PG_DSN does not answer"; return 1
  fi
  PG_BIN="$(pg_bindir || true)"
  if [[ -z "$PG_BIN" ]]; then
    err "postgres: not installed (no /usr/lib/postgresql/*/bin; scripts/services.sh up postgres installs it)"; return 1
  fi
  # Do not create or chown anything from status: look at the dirs as they are.
  if [[ -n "${LEVIBOT_PG_DATA:-}" ]]; then PG_DATA="$LEVIBOT_PG_DATA"
  elif [[ -d "$PG_HOME/data" ]]; then PG_DATA="$PG_HOME/data"
  else PG_DATA="/var/tmp/levibot-pg-$PG_PORT/data"; fi
  if pg_answers "$PG_LOCAL_DSN"; then
    log "postgres: running at $PG_LOCAL_DSN; answers (data: $PG_DATA)"; return 0
  fi
  err "postgres: not running (no login as levibot at 127.0.0.1:$PG_PORT; start it with: scripts/services.sh up postgres)"
  return 1
}

# =========================================================================================================
# Redis (Debian's redis-server): shared rate-limit state of the API replicas
# =========================================================================================================

redis_install() {
  command -v redis-server >/dev/null && return 0
  (( EUID == 0 )) || die "redis: redis-server not found and not root: run 'apt-get install -y redis-server' as root"
  log "redis: installing Debian's redis-server package (apt-get) ..."
  local aptlog="$VAR/apt-redis.log"
  mkdir -p "$VAR"
  if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server; } >"$aptlog" 2>&1; then
    show_log_tail "$aptlog"
    die "redis: apt-get install redis-server failed (see $aptlog)"
  fi
  command -v redis-server >/dev/null || die "redis: installed redis-server but it is not on PATH"
}

redis_answers() { [[ "$(timeout 5 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == "PONG" ]]; }

# PID of our redis-server if alive (pid file present and the process is redis-server on our port).
redis_pid() {
  [[ -f "$REDIS_PID" ]] || return 1
  local pid; pid="$(cat "$REDIS_PID" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "redis-server.*:$REDIS_PORT" || return 1
  echo "$pid"
}

redis_up() {
  local pid
  if pid="$(redis_pid)" && redis_answers; then
    log "redis: already running (pid $pid) at 127.0.0.1:$REDIS_PORT"; return 0
  fi
  if port_open 127.0.0.1 "$REDIS_PORT"; then
    redis_answers && { log "redis: a server not started from $VAR answers at 127.0.0.1:$REDIS_PORT; using it"; return 0; }
    die "redis: port $REDIS_PORT on 127.0.0.1 is taken by another program (set LEVIBOT_REDIS_PORT)"
  fi
  redis_install
  mkdir -p "$REDIS_HOME"
  log "redis: starting $(redis-server --version | awk '{print $3}') at 127.0.0.1:$REDIS_PORT (data: $REDIS_HOME)"
  # no daemonize: $! is the server itself; setsid + nohup keep it alive after this script
  setsid nohup redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$REDIS_HOME" --appendonly yes \
    --save "" --protected-mode yes --logfile "$REDIS_HOME/redis.log" --daemonize no \
    >>"$REDIS_HOME/redis.out" 2>&1 </dev/null 9>&- &
  pid=$!
  echo "$pid" >"$REDIS_PID"
  local deadline=$((SECONDS + REDIS_READY_TIMEOUT))
  until redis_answers; do
    kill -0 "$pid" 2>/dev/null || { show_log_tail "$REDIS_HOME/redis.log" "$REDIS_HOME/redis.out"; die "redis: exited during startup"; }
    (( SECONDS < deadline )) || { show_log_tail "$REDIS_HOME/redis.log"; die "redis: not ready within ${REDIS_READY_TIMEOUT}s"; }
    sleep 0.2
  done
  log "redis: ready at redis://127.0.0.1:$REDIS_PORT/0 (pid $pid)"
}

redis_down() {
  local pid
  if ! pid="$(redis_pid)"; then rm -f "$REDIS_PID"; log "redis: not running"; return 0; fi
  log "redis: stopping pid $pid (SIGTERM)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.2; done
  kill -0 "$pid" 2>/dev/null && { err "redis: pid $pid still alive after 30s; SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
  rm -f "$REDIS_PID"
  log "redis: stopped"
}

redis_status() {
  if redis_answers; then
    local pid; pid="$(redis_pid || echo "not ours")"
    log "redis: running at redis://127.0.0.1:$REDIS_PORT/0 (pid $pid); answers"; return 0
  fi
  err "redis: not running (nothing answers at 127.0.0.1:$REDIS_PORT; start it with: scripts/services.sh up redis)"
  return 1
}

# =========================================================================================================
# ClickHouse: embedded chDB, nothing to run
# =========================================================================================================

clickhouse_status() {
  if [[ -x "$PY" ]] && "$PY" -c 'import chdb, clickhouse_connect' 2>/dev/null; then
    log "clickhouse: embedded (chDB via clickhouse-connect in .venv); no server needed"
  else
    log "clickhouse: embedded (chDB via clickhouse-connect); no server needed (chdb is not importable from $PY yet)"
  fi
}

# =========================================================================================================
# main
# =========================================================================================================

usage() {
  echo "usage: $0 up|down|status [kafka|postgres|redis|clickhouse|all]" >&2
  exit 2
}

main() {
  local action="${1:-}" target="${2:-all}" services=()
  case "$target" in
    all) services=(kafka postgres redis clickhouse) ;;
    kafka|postgres|redis|clickhouse) services=("$target") ;;
    pg|postgresql) services=(postgres) ;;
    *) usage ;;
  esac
  case "$action" in
    up)
      take_lock
      for s in "${services[@]}"; do
        case $s in kafka) kafka_up ;; postgres) pg_up ;; redis) redis_up ;; clickhouse) clickhouse_status ;; esac
      done ;;
    down)
      take_lock
      # Stop in reverse order of start.
      for (( i=${#services[@]}-1; i>=0; i-- )); do
        case ${services[i]} in kafka) kafka_down ;; postgres) pg_down ;; redis) redis_down ;; clickhouse) : ;; esac
      done ;;
    status)
      local failed=()
      for s in "${services[@]}"; do
        case $s in
          kafka) kafka_status || failed+=(kafka) ;;
          postgres) pg_status || failed+=(postgres) ;;
          redis) redis_status || failed+=(redis) ;;
          clickhouse) clickhouse_status ;;
        esac
      done
      if (( ${#failed[@]} )); then
        err "not up: ${failed[*]} (start with: scripts/services.sh up ${target})"
        exit 1
      fi ;;
    *) usage ;;
  esac
}

main "$@"
