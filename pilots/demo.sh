#!/bin/sh
# The riskreg demo: run from pilots/ on the embedded default database (riskreg.db here).
# `make demo` runs it with the project's virtual environment on PATH.
set -eu
cd "$(dirname "$0")"
rm -f riskreg.db riskreg.db-wal riskreg.db-shm
export RISKREG_ACTOR="${RISKREG_ACTOR:-demo-manager}"

step() { printf '\n== %s\n$ riskreg %s\n' "$1" "$(echo "$2" | cut -c1-200)"; }

step "Register the example two-sided register" "risk import risks.csv"
riskreg risk import risks.csv

step "A control that rests on citizens' own resources" "control add R-1 ..."
riskreg control add R-1 "Peer supervision circle for volunteer befrienders, fortnightly" --citizen --status in-place --owner "Volunteer coordinator"

step "The register, highest current score first" "risk list --sort score"
riskreg risk list --sort score

step "Risks above appetite" "risk list --above-appetite"
riskreg risk list --above-appetite

step "The audit trail is intact" "audit verify"
riskreg audit verify
