#!/bin/sh
# One-shot (docker-compose.yml, service temporal-schema): Temporal's two databases on
# Postgres, created when missing and brought to the schema of this server version. Safe
# at every `docker compose up`: an existing database is kept, and the schema tool only
# applies the versions a database does not have yet. The password comes in SQL_PASSWORD.
set -eu

sql() {
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" \
    -u "$POSTGRES_USER" "$@"
}

tries=0
until nc -z "$POSTGRES_SEEDS" "$DB_PORT"; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "Postgres at $POSTGRES_SEEDS:$DB_PORT did not answer" >&2
    exit 1
  fi
  sleep 2
done

for database in temporal temporal_visibility; do
  case "$database" in
    temporal) versions=/etc/temporal/schema/postgresql/v12/temporal/versioned ;;
    *) versions=/etc/temporal/schema/postgresql/v12/visibility/versioned ;;
  esac
  if ! out=$(sql --db "$database" create 2>&1); then
    if ! printf '%s' "$out" | grep -qi "already exists"; then
      printf '%s\n' "$out" >&2
      exit 1
    fi
  fi
  sql --db "$database" setup-schema -v 0.0
  sql --db "$database" update-schema -d "$versions"
  echo "database $database is at this server's schema"
done
