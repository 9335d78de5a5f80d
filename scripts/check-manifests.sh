#!/usr/bin/env bash
# Checks deploy/kubernetes/ offline: no cluster, no kubectl. Debian's
# kubernetes-client (kubectl 1.20) cannot: `kubectl create --dry-run=client`
# still asks a server for the API's resources, and `kubectl set env --local`
# type-checks only workloads and drops unknown fields without a word. So the
# manifests are checked against the Kubernetes API's schemas as npm packages
# carry them (deploy/kubernetes/check/validate.js: types, required fields,
# enums, and fields the API does not have), and the check is itself checked
# on known-bad manifests (check/bad.yaml), each of whose problems it must
# report.
#   scripts/check-manifests.sh
# Needs node and npm (scripts/setup-deps.sh installs them) and the npm
# registry once (check/package-lock.json).
set -euo pipefail
cd "$(dirname "$0")/../deploy/kubernetes/check"
for tool in node npm; do
  command -v "$tool" >/dev/null || {
    echo "check-manifests: $tool not found (run scripts/setup-deps.sh)" >&2
    exit 1
  }
done
[ -d node_modules/kubernetes-models ] && [ -d node_modules/@kubernetes/client-node ] ||
  npm ci --no-audit --no-fund --silent

node validate.js ../*.yaml

out=$(node validate.js bad.yaml) && {
  echo "check-manifests: bad.yaml passed the check" >&2
  exit 1
}
for expected in "wrong-type: data/spec/replicas must be integer" \
  "misspelt-field.spec.template.spec.containers[0].imagePullPolcy: no such field" \
  "misplaced-field.maxUnavailable: no such field" \
  "missing-selector: data/spec must have required property selector" \
  "unknown-kind: unknown kind"; do
  grep -qF -- "$expected" <<<"$out" || {
    echo "check-manifests: the check missed a known problem: $expected" >&2
    echo "$out" >&2
    exit 1
  }
done
echo "check-manifests: deploy/kubernetes passes; the 5 known problems of bad.yaml were found"
