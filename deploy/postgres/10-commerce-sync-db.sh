#!/bin/sh
# Creates commerce-sync's own role and database next to Temporal's databases.
#
# Mounted into /docker-entrypoint-initdb.d by docker-compose.yml, so the official
# postgres image runs it once, when the data volume is first initialised (a volume
# that already holds a cluster is left alone). Temporal's `temporal` and
# `temporal_visibility` databases are created by the temporal-schema job, not here.
#
# The password comes from COMMERCE_SYNC_DB_PASSWORD and reaches SQL as a psql
# variable (:'app_password'), so it is quoted by psql and never spliced into SQL text.
# No `set -e` here: the entrypoint sources .sh files that are not executable, and
# psql stops at the first error (ON_ERROR_STOP) and is the last command anyway.

: "${COMMERCE_SYNC_DB_PASSWORD:?COMMERCE_SYNC_DB_PASSWORD must be set}"

psql -v ON_ERROR_STOP=1 \
    --username "$POSTGRES_USER" \
    --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
    -v app_password="$COMMERCE_SYNC_DB_PASSWORD" <<'SQL'
CREATE ROLE commerce_sync LOGIN PASSWORD :'app_password';
CREATE DATABASE commerce_sync OWNER commerce_sync ENCODING 'UTF8';
REVOKE ALL ON DATABASE commerce_sync FROM PUBLIC;
GRANT ALL PRIVILEGES ON DATABASE commerce_sync TO commerce_sync;
SQL
