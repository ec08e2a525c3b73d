#!/usr/bin/env bash
# Run the Autobahn|Testsuite against websockets_lite: the echo server
# (fuzzingclient mode), the fuzzing client (fuzzingserver mode), and a
# Starlette echo app on uvicorn with our WebSocket protocol (fuzzingclient).
#
# usage: compliance/run.sh [CASES] [PYTHON]
#   CASES   default (everything but 9.*, 12.*, 13.*; ~15 s a side), all (adds
#           12.*/13.*; ~10 min a side), perf (9.*), or patterns ("1.*,12.1.*")
#   PYTHON  the interpreter with websockets_lite installed (default: python3)
# env: AUTOBAHN_REPORTS (default: reports/) for the HTML and JSON reports.
#
# wstest is Python 2 only: compliance/autobahn/setup.sh installs it under
# /opt/wstest (needs root, apt and PyPI; about a minute the first time).
# Exit status: 0 when no case FAILED on either side, 1 when some did, 2 when
# the suite could not run, 3 when wstest cannot be installed here.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SEL="${1:-default}"
PY="${2:-python3}"
OUT="${AUTOBAHN_REPORTS:-$HERE/../reports}"

if ! /opt/wstest/py2/bin/python -c 'import autobahntestsuite' 2>/dev/null; then
  if [ "$(id -u)" != 0 ] || ! WSTEST_PEERS=0 bash "$HERE/autobahn/setup.sh" >&2; then
    echo "cannot install wstest here (it needs root, apt and PyPI)" >&2
    exit 3
  fi
fi

mkdir -p "$OUT"
PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$PY" "$HERE/echo_server.py" "$PORT" > "$OUT/echo_server.log" 2>&1 &
ECHO=$!
trap 'kill $ECHO 2>/dev/null' EXIT
for _ in $(seq 1 100); do
  grep -q LISTENING "$OUT/echo_server.log" 2>/dev/null && break
  sleep 0.1
done

"$HERE/autobahn/run_server_suite.sh" "ws://127.0.0.1:$PORT" "$OUT/server" "$SEL"
SERVER=$?
"$HERE/autobahn/run_client_suite.sh" "$PY $HERE/fuzzing_client.py" "$OUT/client" "$SEL"
CLIENT=$?

# The third testee: a Starlette echo app on uvicorn with our WebSocket protocol.
UVICORN=0
if "$PY" -c 'import uvicorn, starlette' 2>/dev/null; then
  UPORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  "$PY" "$HERE/uvicorn_echo.py" "$UPORT" > "$OUT/uvicorn_echo.log" 2>&1 &
  UECHO=$!
  trap 'kill $ECHO $UECHO 2>/dev/null' EXIT
  for _ in $(seq 1 100); do
    grep -q LISTENING "$OUT/uvicorn_echo.log" 2>/dev/null && break
    sleep 0.1
  done
  AUTOBAHN_AGENT=uvicorn "$HERE/autobahn/run_server_suite.sh" "ws://127.0.0.1:$UPORT" "$OUT/uvicorn" "$SEL"
  UVICORN=$?
else
  echo "uvicorn or starlette missing: the uvicorn testee is skipped" >&2
fi
worst=$SERVER
[ "$CLIENT" -gt "$worst" ] && worst=$CLIENT
[ "$UVICORN" -gt "$worst" ] && worst=$UVICORN
exit "$worst"
