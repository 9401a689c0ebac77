#!/bin/sh
# The riskreg demo: run from pilots/ on the embedded default database (riskreg.db here).
# `make demo` runs it with the project's virtual environment on PATH.
set -eu
cd "$(dirname "$0")"
rm -f riskreg.db riskreg.db-wal riskreg.db-shm
export RISKREG_ACTOR="${RISKREG_ACTOR:-demo-manager}"

step() { printf '\n== %s\n$ riskreg %s\n' "$1" "$2"; }

step "Create a new register here (riskreg.db, and a starter riskreg.toml unless there is one)" "init"
riskreg init

step "Register the example two-sided register" "risk import risks.csv"
riskreg risk import risks.csv

step "A control that rests on citizens' own resources" "control add R-1 ..."
riskreg control add R-1 "Peer supervision circle for volunteer befrienders, fortnightly" --citizen --status in-place --owner "Volunteer coordinator"

step "The register, highest current score first" "risk list --sort score"
riskreg risk list --sort score

step "Register the two example pilots (their protocols are frozen by SHA-256)" "pilot register ..."
riskreg pilot register hospital-befriending.toml
riskreg pilot register housing-repairs.toml
riskreg pilot link P-1 R-1 R-2 R-7 R-12
riskreg pilot link P-2 R-5 R-6 R-8

step "Befriending, feasibility stage: outcomes (long form) and resources" "pilot data P-1 ... --stage feasibility"
riskreg pilot data P-1 data/hospital-befriending-feasibility.csv --stage feasibility
riskreg pilot resources P-1 data/hospital-befriending-resources.csv

step "Analyse the feasibility stage: planned n in, criteria green, no harm, not futile, so 'proceed'" "pilot analyse P-1"
riskreg pilot analyse P-1

step "The board proceeds to the extended stage, as recommended" "pilot gate P-1 --decision proceed ..."
riskreg --actor "Board chair" pilot gate P-1 --decision proceed \
  --reason "Board 12 May: recruitment and retention green; efficacy is for the extended stage"

step "Befriending, extended stage: non-inferiority shown at the final look, so 'proceed'" "pilot data P-1 ... --stage extended; pilot analyse P-1"
riskreg pilot data P-1 data/hospital-befriending-extended.csv --stage extended
riskreg pilot analyse P-1
riskreg --actor "Board chair" pilot gate P-1 --decision proceed --reason "Board 8 Sept: non-inferior wellbeing, no harm; roll out"

step "Housing repairs, feasibility: wide form (semicolons, BOM) plus complaints with exposure (an Excel workbook)" "pilot data P-2 ..."
riskreg pilot data P-2 data/housing-repairs-feasibility.csv --stage feasibility
riskreg pilot data P-2 data/housing-repairs-feasibility-complaints.xlsx --stage feasibility
riskreg pilot resources P-2 data/housing-repairs-resources.csv

step "Analyse housing repairs: complaints show harm and retention is red, so 'stop'" "pilot analyse P-2"
riskreg pilot analyse P-2
riskreg --actor "Head of Housing" pilot gate P-2 --decision stop --reason "Complaints rose in the co-assessed arm; redesign before another pilot"

step "A cluster-randomised pilot: 14 community hubs allocated whole, 7 to each arm" "pilot register community-hubs.toml"
riskreg pilot register community-hubs.toml
riskreg pilot data P-3 data/community-hubs-feasibility.csv --stage feasibility
riskreg --actor "Head of Financial Inclusion" pilot gate P-3 --decision proceed \
  --reason "Programme board 3 June: all 14 hubs recruiting; efficacy is for the main stage"

step "Community hubs, main stage: the hubs are compared (not the residents), adjusted for the score at referral" "pilot analyse P-3"
riskreg pilot data P-3 data/community-hubs-main.csv --stage main
riskreg pilot analyse P-3
riskreg --actor "Head of Financial Inclusion" pilot gate P-3 --decision proceed \
  --reason "Programme board 9 Dec: superior at the hub level; extend to every hub"

step "Pilots now" "pilot list"
riskreg pilot list

step "QA: re-score the safeguarding risk on the befriending pilot's safety metric, and review another" "risk rescore R-2 --evidence P-1 --metric safeguarding_incidents; review record R-1"
riskreg risk rescore R-2 --likelihood 2 --impact 5 --evidence P-1 --metric safeguarding_incidents \
  --reason "Befriending pilot: incident rate ratio 0.90 (95% CI 0.53 to 1.51), no sign of harm"
riskreg --actor "QA reviewer" review record R-1 --outcome confirmed --note "Peer supervision minutes seen for three months"
riskreg risk show R-2

step "Reviews due in the next 60 days" "review due --within 60"
riskreg review due --within 60

step "QA check of the register and the pilots (the examples leave a few findings on purpose)" "check"
riskreg check

step "Reports for the board pack and QA review (self-contained HTML)" "report board | pilot P-1 | pilot P-2 | qa"
riskreg report board -o ../build/reports/board.html --meeting "Health and Wellbeing Board" \
  --lead "Director of Adult Services" --marking OFFICIAL
riskreg report pilot P-1 -o ../build/reports/pilot-P-1.html
riskreg report pilot P-2 -o ../build/reports/pilot-P-2.html
riskreg report pilot P-3 -o ../build/reports/pilot-P-3.html
riskreg report qa -o ../build/reports/qa.html
if command -v chromium >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1; then
  riskreg report board --pdf -o ../build/reports/board.pdf --meeting "Health and Wellbeing Board" \
    --lead "Director of Adult Services" --marking OFFICIAL
else
  echo "(no Chromium or Chrome here: skipping the PDF board pack; see README, Reports)"
fi

step "The audit trail is intact" "audit verify"
riskreg audit verify
