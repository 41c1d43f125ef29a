#!/usr/bin/env bash
# The example organisation, Riverside District: two schools, two coaches, a principal
# at each school, a grade-3 team at North Elementary, the principals' supervisor and
# an admin. Imports the roster, puts the team in a group and records the two
# coaching relationships; prints each relationship's id.
#
#   bash examples/district/setup.sh [DATA_DIR]    # default ./coachsync-data
#
# Works with the server running on DATA_DIR or stopped.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
data_dir="${1:-./coachsync-data}"
coachsync() { "${COACHSYNC_BIN:-coachsync}" "$@"; }

coachsync admin import-roster --data-dir "$data_dir" --org riverside "$here/roster.csv"
for member in amara.boateng tom.lindqvist grace.liu; do
  coachsync admin group add --data-dir "$data_dir" --group north-grade3-team --user "$member"
done
coachsync admin relationship add --data-dir "$data_dir" --coach maria.santos --client lena.park \
  --school "North Elementary" --focus "instructional leadership: walkthrough feedback"
coachsync admin relationship add --data-dir "$data_dir" --coach james.okafor --client david.reyes \
  --school "South Middle" --focus "building a PLC culture"
