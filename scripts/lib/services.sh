# shellcheck shell=bash
# Makes sure the services and tools the test suite needs are there: PostgreSQL and Redis
# running on 127.0.0.1, the mosquitto command-line clients, Python with venv.
# Started when installed but stopped; installed with apt-get when missing and running as
# root; otherwise a clear message says what to do.

PG_HOST=127.0.0.1
PG_PORT=5432
REDIS_PORT=6379

note() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }

APT_UPDATED=0
apt_install() {
    is_root || die "missing packages: $* — install them (sudo apt-get install -y $*) or run this script as root"
    command -v apt-get >/dev/null || die "missing packages: $* and no apt-get to install them"
    if [ "$APT_UPDATED" -eq 0 ]; then
        note "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        APT_UPDATED=1
    fi
    note "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

postgres_ready() {
    if command -v pg_isready >/dev/null; then
        pg_isready -q -h "$PG_HOST" -p "$PG_PORT"
    else
        (exec 3<>"/dev/tcp/$PG_HOST/$PG_PORT") 2>/dev/null
    fi
}

ensure_postgres() {
    postgres_ready && return 0
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
        apt_install postgresql
    fi
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    note "starting PostgreSQL $version"
    if is_root; then
        pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    else
        pg_ctlcluster "$version" main start 2>/dev/null || die "PostgreSQL is installed but stopped; start it (sudo pg_ctlcluster $version main start)"
    fi
    for _ in $(seq 1 30); do postgres_ready && break; sleep 1; done
    postgres_ready || die "PostgreSQL did not come up on $PG_HOST:$PG_PORT"
    # A fresh Debian install has no password for postgres over TCP; give it the one the test
    # URL uses. Harmless where trust authentication is configured.
    if is_root && command -v psql >/dev/null; then
        su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null 2>&1 || true
    fi
}

redis_ready() {
    if command -v redis-cli >/dev/null; then
        [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null
    fi
}

ensure_redis() {
    redis_ready && return 0
    command -v redis-server >/dev/null || apt_install redis-server
    note "starting Redis"
    local dir=/var/lib/redis log=/var/log/redis/tenantmq-test.log
    if ! is_root; then
        dir=$(mktemp -d) log="$dir/redis.log"
    fi
    mkdir -p "$dir" "$(dirname "$log")"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" \
        --appendonly no --dir "$dir" --logfile "$log"
    for _ in $(seq 1 30); do redis_ready && break; sleep 0.5; done
    redis_ready || die "Redis did not come up on 127.0.0.1:$REDIS_PORT"
}

ensure_tools() {
    local missing=()
    command -v mosquitto_pub >/dev/null || missing+=(mosquitto-clients)
    command -v python3 >/dev/null || missing+=(python3)
    if command -v python3 >/dev/null && ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        missing+=(python3-venv)
    fi
    command -v pg_isready >/dev/null || missing+=(postgresql-client)
    command -v redis-cli >/dev/null || missing+=(redis-tools)
    if [ "${#missing[@]}" -gt 0 ]; then
        apt_install "${missing[@]}"
    fi
}
