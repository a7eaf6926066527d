#!/bin/sh
# Installs the system packages the test suite needs (Debian): redis-server, redis-sentinel,
# Chromium, wrk. The tests start their own redis-server (single, Cluster and Sentinel group) on
# free ports; Chromium is driven headless.
set -e
missing=""
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
command -v redis-sentinel >/dev/null 2>&1 || missing="$missing redis-sentinel"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing:$missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
else
  echo "Please install:$missing (e.g. sudo apt-get install$missing)" >&2
  exit 1
fi
