#!/usr/bin/env bash
# A real streaming replica of the local PostgreSQL cluster, for the read-replica tests
# (tests/core/test_replicas.py) and for trying DATABASE_REPLICA_URLS by hand:
#
#   bash scripts/replica.sh up     # a hot standby of 127.0.0.1:5432 on 127.0.0.1:5433
#   bash scripts/replica.sh down   # stop it and remove its cluster
#
# Runs as root on a Debian-style install (pg_createcluster, pg_ctlcluster). The standby is a
# second cluster "replica" of the same major version, filled by pg_basebackup from the
# primary and streaming from it with trust authentication over 127.0.0.1. Both commands can
# be repeated: `up` leaves a healthy standby alone and rebuilds a broken one, `down` does
# nothing when there is none. The primary is only ever given one pg_hba.conf line (host
# replication from 127.0.0.1, added once) and a reload; it is never restarted.
set -euo pipefail

PRIMARY_PORT="${PRIMARY_PORT:-5432}"
REPLICA_PORT="${REPLICA_PORT:-5433}"
CLUSTER=replica
HOST=127.0.0.1

say() { echo "replica.sh: $*"; }
die() { echo "replica.sh: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (it creates and removes a PostgreSQL cluster)"
command -v pg_createcluster >/dev/null || die "pg_createcluster not found (postgresql-common)"

# The major version of the primary cluster (the only one under /etc/postgresql, or the one
# whose main cluster listens on PRIMARY_PORT).
version() {
  local found
  found="$(pg_lsclusters --no-header | awk -v port="$PRIMARY_PORT" '$3 == port { print $1; exit }')"
  [ -n "$found" ] || found="$(ls /etc/postgresql | sort -V | tail -n 1)"
  [ -n "$found" ] || die "no PostgreSQL cluster found under /etc/postgresql"
  echo "$found"
}

exists() { pg_lsclusters --no-header | awk -v v="$1" -v c="$CLUSTER" '$1 == v && $2 == c' | grep -q .; }

psql_at() { psql -h "$HOST" -p "$1" -U postgres -d postgres -w -Atqc "$2"; }

down() {
  local v
  v="$(version)"
  if exists "$v"; then
    say "stopping and dropping cluster $v/$CLUSTER"
    pg_ctlcluster --skip-systemctl-redirect "$v" "$CLUSTER" stop -m fast 2>/dev/null || true
    pg_dropcluster "$v" "$CLUSTER"
  else
    say "no cluster $v/$CLUSTER, nothing to do"
  fi
  # pg_dropcluster keeps files it did not create (our conf.d file): the folder goes too.
  rm -rf "/etc/postgresql/$v/$CLUSTER"
}

# The primary must accept replication connections from 127.0.0.1 (trust, as its other
# local connections). A reload is enough for pg_hba.conf.
allow_replication() {
  local v="$1" hba
  hba="$(psql_at "$PRIMARY_PORT" "SHOW hba_file")"
  if ! grep -Eq '^[[:space:]]*host[[:space:]]+replication[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
    say "allowing replication connections from 127.0.0.1 in $hba"
    printf '\n# Streaming replica on this machine (scripts/replica.sh)\nhost replication all 127.0.0.1/32 trust\n' >>"$hba"
    psql_at "$PRIMARY_PORT" "SELECT pg_reload_conf()" >/dev/null
  fi
  local level senders
  level="$(psql_at "$PRIMARY_PORT" "SHOW wal_level")"
  senders="$(psql_at "$PRIMARY_PORT" "SHOW max_wal_senders")"
  [ "$level" != minimal ] || die "the primary has wal_level=minimal; set replica and restart it"
  [ "$senders" -ge 2 ] || die "the primary has max_wal_senders=$senders; 2 or more are needed"
}

healthy() {
  pg_isready -h "$HOST" -p "$REPLICA_PORT" -q 2>/dev/null \
    && [ "$(psql_at "$REPLICA_PORT" "SELECT pg_is_in_recovery()" 2>/dev/null)" = t ]
}

up() {
  local v
  v="$(version)"
  pg_isready -h "$HOST" -p "$PRIMARY_PORT" -q || die "no primary answering on $HOST:$PRIMARY_PORT"
  if exists "$v" && healthy; then
    say "standby $v/$CLUSTER already streaming on $HOST:$REPLICA_PORT"
    return
  fi
  if exists "$v"; then
    say "cluster $v/$CLUSTER exists but is not a running standby: rebuilding it"
    down
  fi
  if pg_isready -h "$HOST" -p "$REPLICA_PORT" -q 2>/dev/null; then
    die "something else already listens on $HOST:$REPLICA_PORT"
  fi
  allow_replication "$v"

  say "creating cluster $v/$CLUSTER on port $REPLICA_PORT"
  pg_createcluster "$v" "$CLUSTER" -p "$REPLICA_PORT" >/dev/null
  local conf="/etc/postgresql/$v/$CLUSTER" data
  data="$(awk -v v="$v" -v c="$CLUSTER" '$1 == v && $2 == c { print $6 }' <(pg_lsclusters --no-header))"
  [ -n "$data" ] && [ -d "$data" ] || die "cannot find the data directory of $v/$CLUSTER"

  # A hot standby needs at least the primary's value of these (it refuses to start else).
  mkdir -p "$conf/conf.d"
  {
    echo "# scripts/replica.sh: a hot standby of $HOST:$PRIMARY_PORT"
    echo "listen_addresses = '$HOST'"
    echo "port = $REPLICA_PORT"
    echo "hot_standby = on"
    # Long reads on the standby are not cancelled by the cleanup they would see replayed.
    echo "hot_standby_feedback = on"
    echo "shared_buffers = 64MB"
    for name in max_connections max_worker_processes max_wal_senders \
      max_prepared_transactions max_locks_per_transaction; do
      echo "$name = $(psql_at "$PRIMARY_PORT" "SHOW $name")"
    done
  } >"$conf/conf.d/90-replica.conf"
  # The same client authentication as the primary (the tests connect as it does).
  cp "$(psql_at "$PRIMARY_PORT" "SHOW hba_file")" "$conf/pg_hba.conf"
  chown postgres:postgres "$conf/pg_hba.conf"

  say "copying the primary with pg_basebackup (the whole cluster: $(psql_at "$PRIMARY_PORT" \
    "SELECT pg_size_pretty(sum(pg_database_size(datname))) FROM pg_database"))"
  find "$data" -mindepth 1 -delete
  # -R writes primary_conninfo and standby.signal; -X stream copies the WAL written meanwhile.
  pg_basebackup -h "$HOST" -p "$PRIMARY_PORT" -U postgres -D "$data" -R -X stream \
    --checkpoint=fast --no-password
  chown -R postgres:postgres "$data"
  chmod 700 "$data"

  say "starting the standby"
  pg_ctlcluster --skip-systemctl-redirect "$v" "$CLUSTER" start
  for _ in $(seq 1 60); do
    healthy && break
    sleep 1
  done
  healthy || die "the standby did not come up in recovery (see /var/log/postgresql/postgresql-$v-$CLUSTER.log)"
  say "standby streaming on $HOST:$REPLICA_PORT (RAPPORT_TEST_REPLICA_URL=postgres://postgres@$HOST:$REPLICA_PORT)"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
