# shellcheck shell=bash disable=SC2034  # variables are used by the scripts that source this
# Shared helpers for localstack/up, localstack/down and localstack/bench-instances.
# Sourced, not executed. Everything here writes progress to stderr only: up's stdout is
# reserved for `export NAME=value` lines.

STACK_SRC_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Where the stack keeps its data, logs and PID files. Not under a home directory by default:
# the PostgreSQL servers run as the `postgres` OS user, which must be able to traverse it.
STACK_DIR="${TENANTD_STACK_DIR:-/var/tmp/tenantd-stack}"

CONTROL_PG_PORT="${TENANTD_CONTROL_PG_PORT:-55432}"
TENANT_PG_PORT="${LOCAL_RDS_PG_PORT:-55433}"
LOCALSTACK_PORT="${LOCALSTACK_PORT:-4566}"
LOCAL_RDS_CREATING_SECS="${LOCAL_RDS_CREATING_SECS:-5}"
LOCAL_RDS_MODIFYING_SECS="${LOCAL_RDS_MODIFYING_SECS:-2}"
LOCAL_RDS_STOPPING_SECS="${LOCAL_RDS_STOPPING_SECS:-2}"
LOCAL_RDS_STARTING_SECS="${LOCAL_RDS_STARTING_SECS:-2}"
LOCAL_RDS_SECRET_DELETION_DELAY_SECS="${LOCAL_RDS_SECRET_DELETION_DELAY_SECS:-0}"
LOCAL_RDS_ENGINE_VERSIONS_FILE="${LOCAL_RDS_ENGINE_VERSIONS_FILE:-}"
LOCAL_RDS_PG_MAX_CONNECTIONS="${LOCAL_RDS_PG_MAX_CONNECTIONS:-500}"

# Fixed test credentials: both servers listen on loopback only.
CONTROL_PG_USER=tenantd
CONTROL_PG_PASSWORD=tenantd
CONTROL_PG_DB=tenantd
TENANT_PG_SUPERUSER_PASSWORD=localrds

log() { printf '[stack] %s\n' "$*" >&2; }
die() {
  printf '[stack] ERROR: %s\n' "$*" >&2
  exit 1
}

# --- PostgreSQL --------------------------------------------------------------------------

# Prints the directory holding initdb/pg_ctl/postgres. Prefers PostgreSQL 15, else the newest.
find_pg_bindir() {
  if [[ -n "${PG_BINDIR:-}" && -x "$PG_BINDIR/initdb" ]]; then
    echo "$PG_BINDIR"
    return 0
  fi
  if [[ -x /usr/lib/postgresql/15/bin/initdb ]]; then
    echo /usr/lib/postgresql/15/bin
    return 0
  fi
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [[ -n "$d" && -x "$d/initdb" ]]; then
    echo "$d"
    return 0
  fi
  return 1
}

ensure_pg_installed() {
  if PG_BIN="$(find_pg_bindir)"; then
    return 0
  fi
  [[ $EUID -eq 0 ]] || die "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin; install the 'postgresql' package (needs root)"
  log "PostgreSQL server not found: installing it with apt-get (takes a minute)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  PG_BIN="$(find_pg_bindir)" || die "installed postgresql, but still no initdb under /usr/lib/postgresql/*/bin"
}

# Run a command as the OS user that owns the PostgreSQL data dirs. initdb and postgres refuse
# to run as root, so as root that is the `postgres` user; otherwise the current user.
as_pg() {
  if [[ $EUID -eq 0 ]]; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}

pg_owner() {
  if [[ $EUID -eq 0 ]]; then echo postgres; else id -un; fi
}

ensure_pg_os_user() {
  [[ $EUID -eq 0 ]] || return 0
  if ! id postgres >/dev/null 2>&1; then
    log "creating the 'postgres' OS user to run the PostgreSQL servers"
    useradd --system --no-create-home --home-dir /var/lib/postgresql --shell /bin/sh postgres
  fi
}

# pg_running DATADIR: true when the postmaster of DATADIR is alive.
pg_running() {
  local datadir="$1" pid
  [[ -f "$datadir/postmaster.pid" ]] || return 1
  pid="$(head -n 1 "$datadir/postmaster.pid" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ "$(readlink "/proc/$pid/exe" 2>/dev/null || true)" == */postgres* ]]
}

# pg_running_port DATADIR: the port the running postmaster listens on (postmaster.pid line 4).
pg_running_port() {
  sed -n 4p "$1/postmaster.pid"
}

# pg_stop NAME DATADIR
pg_stop() {
  local name="$1" datadir="$2"
  if pg_running "$datadir"; then
    local bindir
    bindir="$(cat "$datadir/../bindir" 2>/dev/null || find_pg_bindir)"
    log "stopping $name PostgreSQL (pid $(head -n 1 "$datadir/postmaster.pid"))"
    as_pg "$bindir/pg_ctl" -D "$datadir" -m fast -w -t 60 stop >/dev/null 2>&1 || {
      local pid
      pid="$(head -n 1 "$datadir/postmaster.pid" 2>/dev/null || true)"
      if [[ -n "$pid" ]]; then kill -QUIT "$pid" 2>/dev/null || true; fi
    }
  fi
}

# --- LocalStack --------------------------------------------------------------------------

LOCALSTACK_PID_FILE="$STACK_DIR/localstack/localstack.pid"

localstack_running() {
  local pid
  [[ -f "$LOCALSTACK_PID_FILE" ]] || return 1
  pid="$(cat "$LOCALSTACK_PID_FILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'localstack.runtime.main'
}

localstack_stop() {
  localstack_running || {
    rm -f "$LOCALSTACK_PID_FILE"
    return 0
  }
  local pid i
  pid="$(cat "$LOCALSTACK_PID_FILE")"
  log "stopping LocalStack (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "LocalStack did not stop within 10 s: killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  # It was started in a session of its own: end whatever it left in its process group.
  kill -TERM -- "-$pid" 2>/dev/null || true
  rm -f "$LOCALSTACK_PID_FILE"
}
