#!/usr/bin/env bash
# Set up billing_batch: system libraries for WeasyPrint, then a virtual environment in .venv.
#   ./setup.sh        the program
#   ./setup.sh test   the program and the test tools
set -euo pipefail
cd "$(dirname "$0")"

# WeasyPrint needs Pango, and HarfBuzz's subsetter to embed fonts quickly; pdftoppm is for looking at PDFs.
# fonts-noto-cjk: customer names in Chinese, Japanese or Korean (invoices and the review chart fall back on it).
debian_packages=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core fonts-noto-cjk poppler-utils)
# The tests open the review page in a real headless browser.
[[ "${1:-}" == "test" ]] && debian_packages+=(chromium)
missing=()
for pkg in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "Installing system packages: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "billing_batch needs these system packages: ${missing[*]}"
    echo "Install them with:  sudo apt-get install ${missing[*]}"
    echo "(on other systems, see https://doc.courtbouillon.org/weasyprint/stable/first_steps.html)"
    exit 1
  fi
fi

python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "billing_batch needs Python 3.11 or newer."; exit 1; }
[[ -x .venv/bin/python ]] || "$python" -m venv .venv
extras=""
[[ "${1:-}" == "test" ]] && extras="[test,dask]"  # dask: the Dask executor is tested on a LocalCluster
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras}"
