#!/usr/bin/env bash
# Runs the whole suite (unit, contract, integration against real nats-server) and ends with the
# line `N passed, N failed[, N skipped]` computed from vitest's JSON report.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p .test-results
report=.test-results/vitest.json
rm -f "$report"
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
status=$?
node scripts/summary.mjs "$report"
summary_status=$?
[ $status -eq 0 ] && [ $summary_status -eq 0 ]
