#!/usr/bin/env bash
# Calls liveim's server API with curl, signing the request with openssl:
# what docs/serverapi.md describes, in shell.
#
#   LIVEIM_API=http://127.0.0.1:8081 APP_ID=demo APP_KEY=... \
#     examples/serverapi/call.sh POST /api/v1/groups '{"group_id":"room-1","group_name":"Room 1"}'
#   examples/serverapi/call.sh GET '/api/v1/groups?status=open&limit=10'
set -euo pipefail
method="$1" target="$2" body="${3:-}"
path="${target%%\?*}"
query=""
if [[ "$target" == *\?* ]]; then
  # Parameters sorted (by name=value, as sent: already URL-escaped), joined by &.
  query="$(printf '%s' "${target#*\?}" | tr '&' '\n' | LC_ALL=C sort | paste -sd '&' -)"
fi
timestamp="$(date +%s)"
nonce="$(openssl rand -hex 16)"
body_hash="$(printf '%s' "$body" | openssl dgst -sha256 -hex | sed 's/^.* //')"
signature="$(printf '%s\n%s\n%s\n%s\n%s\n%s' "$method" "$path" "$query" "$timestamp" "$nonce" "$body_hash" \
  | openssl dgst -sha256 -hmac "$APP_KEY" -hex | sed 's/^.* //')"
args=(-sS -X "$method" "${LIVEIM_API:-http://127.0.0.1:8081}$target"
  -H "X-Liveim-App: $APP_ID" -H "X-Liveim-Timestamp: $timestamp"
  -H "X-Liveim-Nonce: $nonce" -H "X-Liveim-Signature: $signature")
if [ -n "$body" ]; then args+=(-H 'Content-Type: application/json' --data-binary "$body"); fi
curl "${args[@]}"
