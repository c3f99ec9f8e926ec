#!/usr/bin/env bash
# Peers the two example instances (docs/interledger.md): creates USD on both, a random pair of
# tokens, and a peer on each side pointing at the other's ILP endpoint.
set -euo pipefail
cd "$(dirname "$0")/../.."
key() { node -p "require('./data/$1/secrets.json').ADMIN_API_KEY"; }
token() { node -p "require('crypto').randomBytes(24).toString('base64url')"; }
A_TO_B=$(token)
B_TO_A=$(token)
admin() { curl -sf -H "authorization: Bearer $1" -H 'content-type: application/json' "${@:2}"; echo; }
for side in a b; do
  port=$([ $side = a ] && echo 4002 || echo 5002)
  admin "$(key ase-$side)" -X POST "localhost:$port/assets" -d '{"code":"USD","scale":2}' || true
done
admin "$(key ase-a)" -X POST localhost:4002/peers -d "{\"name\":\"bank-b\",\"assetCode\":\"USD\",\"assetScale\":2,\"ilpAddress\":\"test.ase-b\",\"httpEndpoint\":\"http://127.0.0.1:5003/ilp\",\"outgoingToken\":\"$A_TO_B\",\"incomingTokens\":[\"$B_TO_A\"],\"creditLimit\":\"1000000\"}"
admin "$(key ase-b)" -X POST localhost:5002/peers -d "{\"name\":\"bank-a\",\"assetCode\":\"USD\",\"assetScale\":2,\"ilpAddress\":\"test.ase-a\",\"httpEndpoint\":\"http://127.0.0.1:4003/ilp\",\"outgoingToken\":\"$B_TO_A\",\"incomingTokens\":[\"$A_TO_B\"],\"creditLimit\":\"1000000\"}"
