#!/usr/bin/env bash
# Bring the translation catalogs up to date with the texts in the code and the default templates:
#   scripts/translations.sh            extract, update every .po, compile the .mo files
#   scripts/translations.sh add LANG   start a catalog for a new language (then translate it and run again)
# See docs/translations.md.
set -euo pipefail
cd "$(dirname "$0")/.."
pybabel=${PYBABEL:-.venv/bin/pybabel}
locale=billing_batch/locale
pot=$locale/billing_batch.pot

"$pybabel" -q extract -F babel.cfg --sort-output --no-location --omit-header -o "$pot" .
if [[ "${1:-}" == "add" ]]; then
  "$pybabel" init -i "$pot" -d "$locale" -D billing_batch -l "$2"
  exit 0
fi
"$pybabel" -q update -i "$pot" -d "$locale" -D billing_batch --no-fuzzy-matching --ignore-obsolete --ignore-pot-creation-date
"$pybabel" compile -d "$locale" -D billing_batch --statistics
