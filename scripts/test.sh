#!/usr/bin/env bash
# vizora-ops: the one test command (CI runs it through .ci/run).
#
#   bash scripts/test.sh                  install what is missing, start the local services, then
#                                         cargo fmt --check, cargo clippy -D warnings, cargo doc, cargo test; stop the
#                                         services it started. Arguments after `--` go to `cargo test`.
#   bash scripts/test.sh --services-only  install + start the services, write .ci-services/env.sh, leave them
#                                         running (then: source .ci-services/env.sh && cargo test ...)
#   bash scripts/test.sh --stop           stop the services recorded under .ci-services/
#
# Services (loopback only, non-default ports; pidfiles, data and logs under .ci-services/):
#   PostgreSQL 15 :55432 (trust auth)   Redis :6390   SMTP sink :8025 (stores messages as JSON)
#   SMTP sink requiring AUTH :8026       moto S3 :5055  and a local pm2 (no daemon started here).
# A service already running from an earlier run of this checkout is reused and left running.
# VIZORA_TEST_PORT_OFFSET=N adds N to every port (to run beside another checkout's services).
set -euo pipefail
umask 022

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SVC="$ROOT/.ci-services"
ENV_FILE="$SVC/env.sh"

PGBIN=/usr/lib/postgresql/15/bin
OFF="${VIZORA_TEST_PORT_OFFSET:-0}"
[[ "$OFF" =~ ^[0-9]+$ ]] || { echo "VIZORA_TEST_PORT_OFFSET must be a number" >&2; exit 2; }
PG_PORT=$((55432 + OFF))
PG_SOCK=/tmp/vizora-pgsock
REDIS_PORT=$((6390 + OFF))
SMTP_PORT=$((8025 + OFF))
SMTP_AUTH_PORT=$((8026 + OFF))
SMTP_AUTH_USER=ops-smtp
SMTP_AUTH_PASS=smtp-test-pass
S3_PORT=$((5055 + OFF))
PY_REQS=("aiosmtpd>=1.4.6,<2" "moto[server]>=5.1,<6")
PM2_SPEC="pm2@7"

VENV="$SVC/venv"
VPY="$VENV/bin/python"
NPM_PREFIX="$SVC/npm"
PM2_BIN="$NPM_PREFIX/node_modules/.bin/pm2"
REDIS_DIR="$SVC/redis"
SMTP_DIR="$SVC/smtp"
SMTP_AUTH_DIR="$SVC/smtp-auth"
S3_DIR="$SVC/s3"

usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

MODE=all
CARGO_TEST_ARGS=()
while (($#)); do
  case "$1" in
    --services-only) MODE=services ;;
    --stop) MODE=stop ;;
    -h | --help) usage; exit 0 ;;
    --) shift; CARGO_TEST_ARGS=("$@"); break ;;
    *) echo "scripts/test.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

section() { printf '\n========== %s ==========\n' "$*"; }
log() { printf '[test.sh] %s\n' "$*"; }
die() { printf '[test.sh] ERROR: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }

# ---------------------------------------------------------------------------------------------------------------------
# small process helpers

read_pid() { [ -s "$1" ] && head -n1 "$1" | tr -dc '0-9' || true; }
pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
# pid_matches PID TEXT: the process's command line contains TEXT
pid_matches() { [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$2"; }
port_busy() {
  if command -v ss >/dev/null 2>&1; then
    ss -ltnH "sport = :$1" 2>/dev/null | grep -q .
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}
who_listens() { command -v ss >/dev/null 2>&1 && ss -ltnpH "sport = :$1" 2>/dev/null | sed 's/  */ /g' | head -n3 || true; }
show_log() { [ -f "$1" ] && { echo "----- last lines of $1 -----" >&2; tail -n 25 "$1" >&2; echo "-----" >&2; } || true; }
port_taken() { # name port
  die "$1: port $2 on 127.0.0.1 is taken by a process this checkout did not start: $(who_listens "$2")
  Stop it, or run beside it with VIZORA_TEST_PORT_OFFSET=<n> (adds n to every port)."
}
fail_service() { # name log message
  show_log "$2"
  die "$1: $3 (log: $2)"
}
# kill_pid PID NAME: TERM, wait up to 10 s, then KILL
kill_pid() {
  local pid=$1 i
  pid_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do pid_alive "$pid" || return 0; sleep 0.1; done
  log "$2 (pid $pid) ignored SIGTERM; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for i in $(seq 1 20); do pid_alive "$pid" || return 0; sleep 0.1; done
}
# wait_for NAME LOG SECONDS PID CHECK...: poll CHECK until it succeeds; fail if PID dies or time runs out
wait_for() {
  local name=$1 logf=$2 secs=$3 pid=$4 t0=$SECONDS
  shift 4
  until "$@" >/dev/null 2>&1; do
    if [ -n "$pid" ] && ! pid_alive "$pid"; then fail_service "$name" "$logf" "process $pid exited during startup"; fi
    ((SECONDS - t0 < secs)) || fail_service "$name" "$logf" "not accepting connections after ${secs}s"
    sleep 0.2
  done
}

# ---------------------------------------------------------------------------------------------------------------------
# install

apt_install() {
  is_root || die "missing Debian packages: $*; install them as root: apt-get install -y $*"
  log "apt-get install -y $*"
  # Keep package scripts from starting system services (e.g. redis on 6379) while installing.
  local policy=/usr/sbin/policy-rc.d created=0 rc=0 try
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && created=1; fi
  for try in 1 2; do
    rc=0
    DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold --no-install-recommends "$@" \
      </dev/null || rc=$?
    ((rc == 0)) && break
    log "apt-get failed (exit $rc), attempt $try"
    sleep 3
  done
  ((created)) && rm -f "$policy"
  ((rc == 0)) || die "apt-get install $* failed"
}

install_debian_packages() {
  local pkgs=()
  command -v redis-server >/dev/null 2>&1 || pkgs+=(redis-server)
  command -v redis-cli >/dev/null 2>&1 || pkgs+=(redis-tools)
  [ -x "$PGBIN/initdb" ] && [ -x "$PGBIN/pg_ctl" ] || pkgs+=(postgresql-15)
  [ -x "$PGBIN/pg_isready" ] || pkgs+=(postgresql-client-15)
  command -v openssl >/dev/null 2>&1 || pkgs+=(openssl)
  command -v runuser >/dev/null 2>&1 || ! is_root || pkgs+=(util-linux)
  if ((${#pkgs[@]})); then apt_install "${pkgs[@]}"; else log "Debian packages present (redis-server, postgresql-15)"; fi
}

install_python_venv() {
  local want="${PY_REQS[*]}" stamp="$VENV/.vizora-reqs"
  if [ -x "$VPY" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] &&
    "$VPY" -c 'import aiosmtpd.smtp, moto.server' >/dev/null 2>&1; then
    log "Python venv present: $VENV"
    return
  fi
  command -v python3 >/dev/null 2>&1 || die "python3 not found (needed for the SMTP sinks and moto)"
  if [ ! -x "$VPY" ] || ! "$VPY" -c 'import sys' >/dev/null 2>&1; then
    rm -rf "$VENV"
    if ! python3 -m venv "$VENV"; then
      rm -rf "$VENV"
      apt_install python3-venv
      /usr/bin/python3 -m venv "$VENV" || die "cannot create a Python venv at $VENV"
    fi
  fi
  log "pip install ${PY_REQS[*]} (into $VENV)"
  "$VPY" -m pip install -q --disable-pip-version-check "${PY_REQS[@]}" </dev/null ||
    die "pip install ${PY_REQS[*]} failed"
  "$VPY" -c 'import aiosmtpd.smtp, moto.server' || die "aiosmtpd/moto not importable after pip install"
  printf '%s\n' "$want" >"$stamp"
}

pm2_check() { # prints pm2's version; uses a throwaway PM2_HOME and leaves no daemon behind
  local home v rc=0 pid
  home="$(mktemp -d "${TMPDIR:-/tmp}/vizora-pm2-check.XXXXXX")"
  # `pm2 --version` spawns a daemon in PM2_HOME: kill it afterwards.
  v="$(PM2_HOME="$home" "$PM2_BIN" --version </dev/null 2>/dev/null | tail -n1)" || rc=$?
  if [ -e "$home/pm2.pid" ]; then
    pid="$(read_pid "$home/pm2.pid")"
    PM2_HOME="$home" "$PM2_BIN" kill </dev/null >/dev/null 2>&1 || true
    if pid_alive "$pid" && pid_matches "$pid" "$home"; then kill_pid "$pid" "pm2 daemon"; fi
  fi
  rm -rf "$home"
  ((rc == 0)) && [[ "$v" =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]] && printf '%s\n' "$v"
}

install_pm2() {
  local v
  if [ -x "$PM2_BIN" ] && v="$(pm2_check)"; then
    log "pm2 $v present: $PM2_BIN"
    return
  fi
  command -v npm >/dev/null 2>&1 || die "npm not found (needed to install pm2)"
  log "npm install --prefix $NPM_PREFIX $PM2_SPEC"
  mkdir -p "$NPM_PREFIX"
  npm install --prefix "$NPM_PREFIX" --no-audit --no-fund --loglevel=error "$PM2_SPEC" </dev/null ||
    die "npm install $PM2_SPEC failed"
  v="$(pm2_check)" || die "pm2 installed at $PM2_BIN but '$PM2_BIN --version' failed"
  log "pm2 $v installed: $PM2_BIN"
}

# ---------------------------------------------------------------------------------------------------------------------
# PostgreSQL 15: initdb/pg_ctl as the postgres user (initdb refuses root)

as_pg() { (cd / && if is_root; then runuser -u postgres -- "$@"; else "$@"; fi); }

pg_home() { # the directory holding data/ and postgres.log, owned by postgres
  if ! is_root; then echo "$SVC/pg"; return; fi
  if runuser -u postgres -- test -x "$SVC" 2>/dev/null; then
    echo "$SVC/pg"
  else # the checkout is not traversable by postgres (e.g. under /root): keep the cluster in /tmp
    echo "${TMPDIR:-/tmp}/vizora-ops-pg-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)"
  fi
}

pg_ready() { "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -t 2; }
pg_running() { [ -s "$PGDATA/PG_VERSION" ] && as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; }
pg_running_port() { sed -n 4p "$PGDATA/postmaster.pid" 2>/dev/null || true; }
pg_stop() {
  pg_running || return 0
  log "stopping PostgreSQL ($PGDATA)"
  as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t 30 stop >/dev/null ||
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w -t 30 stop >/dev/null || true
}

pg_ssl_on() { [ "$("$PGBIN/psql" -X -Atq -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c 'SHOW ssl' 2>/dev/null)" = on ]; }

# A self-signed server certificate for the test cluster (sslmode=require/prefer tests; libpq does not verify it).
pg_make_cert() {
  [ -s "$PGDATA/server.crt" ] && [ -s "$PGDATA/server.key" ] && return 0
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=127.0.0.1" \
    -keyout "$PGDATA/server.key" -out "$PGDATA/server.crt" >"$PG_HOME/openssl.log" 2>&1 ||
    fail_service PostgreSQL "$PG_HOME/openssl.log" "openssl could not make the test server certificate"
  if is_root; then chown postgres:postgres "$PGDATA/server.key" "$PGDATA/server.crt"; fi
  chmod 600 "$PGDATA/server.key"
}

start_postgres() {
  if pg_running; then
    if [ "$(pg_running_port)" = "$PG_PORT" ] && pg_ready && pg_ssl_on; then
      REUSED+=("PostgreSQL :$PG_PORT")
      return
    fi
    log "PostgreSQL in $PGDATA runs but does not answer on :$PG_PORT with ssl=on; restarting it"
    pg_stop
  fi
  port_busy "$PG_PORT" && port_taken PostgreSQL "$PG_PORT"
  mkdir -p "$PG_HOME" "$PG_SOCK"
  if is_root; then chown postgres:postgres "$PG_HOME" "$PG_SOCK"; fi
  chmod 700 "$PG_HOME"
  chmod 755 "$PG_SOCK"
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    rm -rf "$PGDATA"
    log "initdb $PGDATA"
    as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust --encoding=UTF8 --locale=C --no-sync \
      >"$PG_HOME/initdb.log" 2>&1 || fail_service PostgreSQL "$PG_HOME/initdb.log" "initdb failed"
  fi
  pg_make_cert
  # fsync off etc.: a throwaway test cluster, durability is not needed and tests run faster.
  as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PG_LOG" -w -t 60 -o "-p $PG_PORT -k $PG_SOCK \
-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c ssl=on" start >/dev/null ||
    fail_service PostgreSQL "$PG_LOG" "pg_ctl start failed"
  STARTED+=(postgres)
  wait_for PostgreSQL "$PG_LOG" 60 "" pg_ready
}

# ---------------------------------------------------------------------------------------------------------------------
# Redis

redis_ok() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }
redis_stop() {
  local pid
  pid="$(read_pid "$REDIS_DIR/redis.pid")"
  if pid_alive "$pid" && pid_matches "$pid" "redis-server"; then
    local port
    port="$(tr '\0' ' ' <"/proc/$pid/cmdline" | sed -n 's/.*127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p')"
    log "stopping Redis (pid $pid)"
    [ -n "$port" ] && redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
    local i
    for i in $(seq 1 50); do pid_alive "$pid" || break; sleep 0.1; done
    kill_pid "$pid" Redis
  fi
  rm -f "$REDIS_DIR/redis.pid"
}

start_redis() {
  local pid
  pid="$(read_pid "$REDIS_DIR/redis.pid")"
  if pid_alive "$pid" && pid_matches "$pid" "redis-server" && pid_matches "$pid" "127.0.0.1:$REDIS_PORT"; then
    if redis_ok; then
      REUSED+=("Redis :$REDIS_PORT (pid $pid)")
      return
    fi
    log "Redis (pid $pid) does not answer PING; restarting it"
  fi
  redis_stop
  port_busy "$REDIS_PORT" && port_taken Redis "$REDIS_PORT"
  mkdir -p "$REDIS_DIR"
  : >"$REDIS_DIR/redis.log"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" --dir "$REDIS_DIR" </dev/null ||
    fail_service Redis "$REDIS_DIR/redis.log" "redis-server failed to start"
  STARTED+=(redis)
  wait_for Redis "$REDIS_DIR/redis.log" 30 "" redis_ok
}

# ---------------------------------------------------------------------------------------------------------------------
# background processes of the venv: SMTP sinks, moto

# bg_stop NAME DIR MARKER: stop the process recorded in DIR/pid if its command line contains MARKER
bg_stop() {
  local pid
  pid="$(read_pid "$2/pid")"
  if pid_alive "$pid" && pid_matches "$pid" "$3"; then
    log "stopping $1 (pid $pid)"
    kill_pid "$pid" "$1"
  fi
  rm -f "$2/pid"
}

# bg_start NAME KEY DIR MARKER CHECK_FN PORT -- CMD...: reuse a healthy earlier instance on PORT, else start CMD
# detached. MARKER (part of the command line naming this checkout) identifies the process behind DIR/pid.
bg_start() {
  local name=$1 key=$2 dir=$3 marker=$4 check=$5 port=$6 pid
  shift 7
  pid="$(read_pid "$dir/pid")"
  if pid_alive "$pid" && pid_matches "$pid" "$marker" && pid_matches "$pid" " $port "; then
    if "$check" >/dev/null 2>&1; then
      REUSED+=("$name :$port (pid $pid)")
      return
    fi
    log "$name (pid $pid) does not answer; restarting it"
  fi
  bg_stop "$name" "$dir" "$marker"
  port_busy "$port" && port_taken "$name" "$port"
  rm -rf "$dir/messages" # a fresh sink starts with no stored messages
  mkdir -p "$dir"
  : >"$dir/log"
  setsid "$@" </dev/null >>"$dir/log" 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >"$dir/pid"
  STARTED+=("$key")
  wait_for "$name" "$dir/log" 60 "$pid" "$check"
}

smtp_check() { "$VPY" - "$SMTP_PORT" <<'EOF'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=3)
s.ehlo("startup-check")
s.quit()
EOF
}
smtp_auth_check() { "$VPY" - "$SMTP_AUTH_PORT" "$SMTP_AUTH_USER" "$SMTP_AUTH_PASS" <<'EOF'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=3)
s.ehlo("startup-check")
s.login(sys.argv[2], sys.argv[3])
s.quit()
EOF
}
s3_check() { "$VPY" - "$S3_PORT" <<'EOF'
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
opener.open("http://127.0.0.1:%s/" % sys.argv[1], timeout=3).read()
EOF
}

start_smtp() {
  bg_start "SMTP sink" smtp "$SMTP_DIR" "$SMTP_DIR/messages" smtp_check "$SMTP_PORT" -- \
    "$VPY" "$ROOT/scripts/smtp_sink.py" 127.0.0.1 "$SMTP_PORT" "$SMTP_DIR/messages"
}
start_smtp_auth() {
  bg_start "SMTP sink with AUTH" smtp-auth "$SMTP_AUTH_DIR" "$SMTP_AUTH_DIR/messages" \
    smtp_auth_check "$SMTP_AUTH_PORT" -- \
    "$VPY" "$ROOT/scripts/smtp_sink.py" 127.0.0.1 "$SMTP_AUTH_PORT" "$SMTP_AUTH_DIR/messages" \
    --auth-user "$SMTP_AUTH_USER" --auth-pass "$SMTP_AUTH_PASS"
}
start_s3() {
  bg_start "moto S3" s3 "$S3_DIR" "$VENV/bin/moto_server" s3_check "$S3_PORT" -- \
    "$VENV/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT"
}

stop_service() {
  case "$1" in
    postgres) pg_stop ;;
    redis) redis_stop ;;
    smtp) bg_stop "SMTP sink" "$SMTP_DIR" "$SMTP_DIR/messages" ;;
    smtp-auth) bg_stop "SMTP sink with AUTH" "$SMTP_AUTH_DIR" "$SMTP_AUTH_DIR/messages" ;;
    s3) bg_stop "moto S3" "$S3_DIR" "$VENV/bin/moto_server" ;;
  esac
}

STARTED=()
REUSED=()
stop_started() {
  local i
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do stop_service "${STARTED[$i]}" || true; done
  STARTED=()
}
on_exit() {
  local rc=$?
  trap - EXIT
  if ((${#STARTED[@]})); then
    section "Stopping services started by this run"
    stop_started
    rm -f "$ENV_FILE"
  fi
  exit "$rc"
}

write_env() {
  {
    echo "# Written by scripts/test.sh: locations of the local test services. Source it, then run cargo test."
    printf 'export VIZORA_TEST_PG_URL=%q\n' "postgres://postgres@127.0.0.1:$PG_PORT/postgres"
    printf 'export VIZORA_TEST_REDIS_URL=%q\n' "redis://127.0.0.1:$REDIS_PORT"
    printf 'export VIZORA_TEST_SMTP_HOST=%q\n' "127.0.0.1"
    printf 'export VIZORA_TEST_SMTP_PORT=%q\n' "$SMTP_PORT"
    printf 'export VIZORA_TEST_SMTP_DIR=%q\n' "$SMTP_DIR/messages"
    printf 'export VIZORA_TEST_SMTP_AUTH_PORT=%q\n' "$SMTP_AUTH_PORT"
    printf 'export VIZORA_TEST_SMTP_AUTH_DIR=%q\n' "$SMTP_AUTH_DIR/messages"
    printf 'export VIZORA_TEST_SMTP_AUTH_USER=%q\n' "$SMTP_AUTH_USER"
    printf 'export VIZORA_TEST_SMTP_AUTH_PASS=%q\n' "$SMTP_AUTH_PASS"
    printf 'export VIZORA_TEST_S3_ENDPOINT=%q\n' "http://127.0.0.1:$S3_PORT"
    printf 'export VIZORA_TEST_PM2_BIN=%q\n' "$PM2_BIN"
  } >"$ENV_FILE.tmp"
  mv -f "$ENV_FILE.tmp" "$ENV_FILE"
}

# ---------------------------------------------------------------------------------------------------------------------

PG_HOME=""
PGDATA=""
PG_LOG=""
set_pg_paths() {
  PG_HOME="$(pg_home)"
  PGDATA="$PG_HOME/data"
  PG_LOG="$PG_HOME/postgres.log"
}

if [ "$MODE" = stop ]; then
  section "Stopping local test services"
  mkdir -p "$SVC"
  set_pg_paths
  for s in s3 smtp-auth smtp redis postgres; do stop_service "$s"; done
  rm -f "$ENV_FILE"
  log "stopped"
  exit 0
fi

trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
T_START=$SECONDS

section "Installing test dependencies (Debian packages, Python venv, pm2)"
mkdir -p "$SVC"
chmod 755 "$SVC"
install_debian_packages
install_python_venv
install_pm2
T_INSTALL=$((SECONDS - T_START))
log "install step: ${T_INSTALL}s"

section "Starting local test services on 127.0.0.1"
T0=$SECONDS
set_pg_paths
start_postgres
log "PostgreSQL 15  127.0.0.1:$PG_PORT  (data $PGDATA, log $PG_LOG)"
start_redis
log "Redis          127.0.0.1:$REDIS_PORT   (log $REDIS_DIR/redis.log)"
start_smtp
log "SMTP sink      127.0.0.1:$SMTP_PORT   (messages $SMTP_DIR/messages, log $SMTP_DIR/log)"
start_smtp_auth
log "SMTP AUTH sink 127.0.0.1:$SMTP_AUTH_PORT   (user $SMTP_AUTH_USER; messages $SMTP_AUTH_DIR/messages)"
start_s3
log "moto S3        127.0.0.1:$S3_PORT   (log $S3_DIR/log)"
log "pm2            $PM2_BIN"
for r in ${REUSED[@]+"${REUSED[@]}"}; do log "reused, left running afterwards: $r"; done
write_env
# shellcheck source=/dev/null
source "$ENV_FILE"
log "services up in $((SECONDS - T0))s; environment: $ENV_FILE"

if [ "$MODE" = services ]; then
  STARTED=() # leave them running
  section "Services are running"
  echo "  source .ci-services/env.sh && cargo test"
  echo "  bash scripts/test.sh --stop      # to stop them"
  exit 0
fi

section "cargo fmt --all -- --check"
cargo fmt --all -- --check

section "cargo clippy --all-targets -- -D warnings"
T0=$SECONDS
cargo clippy --all-targets -- -D warnings
log "clippy: $((SECONDS - T0))s"

section "cargo doc --no-deps --lib (rustdoc warnings denied: broken links; missing docs are a lint in lib.rs)"
T0=$SECONDS
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --lib --quiet
log "doc: $((SECONDS - T0))s"

# The test output is also kept in a log so that a total over all test binaries can close the run.
TEST_LOG="$SVC/cargo-test.log"
: >"$TEST_LOG"
run_tests() { # cargo test ARGS...: prints, appends to TEST_LOG, returns cargo's status
  local rc
  set +e
  cargo test "$@" 2>&1 | tee -a "$TEST_LOG"
  rc=${PIPESTATUS[0]}
  set -e
  return "$rc"
}
print_totals() {
  awk '/^test result: /{
      for (i = 1; i <= NF; i++) {
        n = $(i - 1) + 0
        if ($i ~ /^passed/) p += n; else if ($i ~ /^failed/) f += n; else if ($i ~ /^ignored/) g += n
      }
      seen = 1
    }
    END { if (seen) printf "\nTotal: %d passed, %d failed, %d skipped\n", p, f, g }' "$TEST_LOG"
}

section "cargo test --all-targets --no-fail-fast${CARGO_TEST_ARGS[*]:+ ${CARGO_TEST_ARGS[*]}}"
T0=$SECONDS
RC=0
run_tests --all-targets --no-fail-fast ${CARGO_TEST_ARGS[@]+"${CARGO_TEST_ARGS[@]}"} || RC=$?
if ((RC == 0)) && ((${#CARGO_TEST_ARGS[@]} == 0)); then
  section "cargo test --doc"
  run_tests --doc || RC=$?
fi
log "tests: $((SECONDS - T0))s, whole run: $((SECONDS - T_START))s"
if ((${#STARTED[@]})); then
  section "Stopping services started by this run"
  stop_started
  rm -f "$ENV_FILE"
fi
print_totals # last line of the run: the total over all test binaries
exit "$RC"
