#!/usr/bin/env bash
# Provision a local PostgreSQL for the tests that run the store on both databases.
# Prints only the database URL on stdout (everything else goes to stderr);
# any failure leaves those tests to skip.
set -euo pipefail
{
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
  fi
  version=$(ls /usr/lib/postgresql | sort -n | tail -1)
  if ! pg_lsclusters -h | grep -q online; then
    pg_lsclusters -h | grep -q "^$version main" || pg_createcluster "$version" main
    pg_ctlcluster "$version" main start
  fi
  su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='lifecycle'\"" | grep -q 1 \
    || su postgres -c "psql -qc \"CREATE ROLE lifecycle LOGIN PASSWORD 'lifecycle'\""
  su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='lifecycle_test'\"" | grep -q 1 \
    || su postgres -c "createdb -O lifecycle lifecycle_test"
} >&2
echo "postgresql+psycopg://lifecycle:lifecycle@127.0.0.1:5432/lifecycle_test"
