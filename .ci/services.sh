#!/usr/bin/env bash
# Make sure Redis, MariaDB and PostgreSQL run on loopback, the test databases exist and Chromium is
# installed (for the browser tests). Idempotent.
set -euo pipefail

wait_for() {  # wait_for NAME CMD...: poll until CMD succeeds (30 s at most)
  local name=$1; shift
  for _ in $(seq 1 60); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "services: $name did not come up" >&2; return 1
}

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "services: starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
wait_for redis redis-cli -h 127.0.0.1 -p 6379 ping

if ! mariadb-admin -h 127.0.0.1 -uroot status >/dev/null 2>&1; then
  echo "services: starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
fi
wait_for mariadb mariadb-admin -h 127.0.0.1 -uroot status

if ! pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
  echo "services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
fi
wait_for postgresql pg_isready -h 127.0.0.1 -p 5432

# The browser tests (tests/research/test_report_browser.py) drive the system Chromium through
# Playwright, which cannot download its own browsers here.
if [ ! -x /usr/bin/chromium ]; then
  echo "services: installing chromium"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
    || { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
fi

mariadb -h 127.0.0.1 -uroot -e "CREATE DATABASE IF NOT EXISTS qp_test; CREATE DATABASE IF NOT EXISTS qp"
for db in qp_dagster_test qp_dagster; do
  if [ "$(psql -h 127.0.0.1 -U postgres -Atc "SELECT 1 FROM pg_database WHERE datname='$db'")" != "1" ]; then
    createdb -h 127.0.0.1 -U postgres "$db"
  fi
done
echo "services: redis, mariadb, postgresql up; databases ready; chromium installed"
