#!/usr/bin/env bash
# Make sure PostgreSQL, Redis and NATS (JetStream) answer on their loopback ports,
# starting them, or installing them from Debian's packages, when they do not.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local name=$1 port=$2
  for _ in $(seq 1 60); do
    port_open "$port" && { echo "$name is up on 127.0.0.1:$port"; return 0; }
    sleep 0.5
  done
  echo "$name did not come up on 127.0.0.1:$port" >&2
  return 1
}

apt_updated=0
install_pkg() {
  if [ "$apt_updated" = 0 ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! port_open 5432; then
  command -v pg_ctlcluster >/dev/null || install_pkg postgresql
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_port PostgreSQL 5432
  # Tests connect as postgres over TCP without a password.
  hba=/etc/postgresql/$version/main/pg_hba.conf
  if ! psql -h 127.0.0.1 -U postgres -c 'select 1' >/dev/null 2>&1 && [ -f "$hba" ]; then
    sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  fi
else
  echo "PostgreSQL is up on 127.0.0.1:5432"
fi

if ! port_open 6379; then
  command -v redis-server >/dev/null || install_pkg redis-server
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_port Redis 6379
else
  echo "Redis is up on 127.0.0.1:6379"
fi

if ! port_open 4222; then
  command -v nats-server >/dev/null || install_pkg nats-server
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec "$(command -v nats-server)" -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_port NATS 4222
else
  echo "NATS is up on 127.0.0.1:4222"
fi

# Report tests render PDF pages to images with pdftoppm.
if ! command -v pdftoppm >/dev/null; then
  install_pkg poppler-utils
fi
echo "pdftoppm: $(command -v pdftoppm)"

# The web dashboard's browser tests drive Debian's Chromium (Playwright never downloads a browser here).
if [ ! -x /usr/bin/chromium ]; then
  install_pkg chromium
fi
echo "chromium: $(/usr/bin/chromium --version 2>/dev/null)"

# Monitoring tests run a real Prometheus and promtool (tests/e2e/test_prometheus.py, tests/deploy/).
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  install_pkg --no-install-recommends prometheus
fi
echo "prometheus: $(command -v prometheus)"
