#!/usr/bin/env bash
# The Python package's tests: builds and installs it with `pip install ./python` (maturin, release) into
# a cached venv with pinned test dependencies (numpy, pytest, model2vec 0.10 to compare with, Dask), then
# runs pytest with the real test models. Called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${SEMBED_TEST_MODELS:-$HOME/.cache/sembed/test-models}/py-sembed"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# dask/distributed/pandas/pyarrow: the sembed.dask test runs a real two-process LocalCluster.
pins=(numpy==2.4.6 pytest==8.4.2 model2vec==0.10.0 dask==2026.8.0 distributed==2026.8.0 pandas==3.1.1 pyarrow==26.0.1)
"$venv/bin/python" - "${pins[@]}" <<'PY' 2>/dev/null || "$venv/bin/python" -m pip install -q --disable-pip-version-check "${pins[@]}"
import importlib.metadata as m, sys
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    assert m.version(name) == want, (name, m.version(name), want)
PY
# Always rebuilt and reinstalled: the tests must see this checkout's code.
"$venv/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps ./python
export SEMBED_TEST_MINILM="$(scripts/fetch-test-model.sh)"
export SEMBED_TEST_MPNET="$(scripts/fetch-mpnet.sh)"
# The CLI, for the tests that check it and the package agree.
cargo build --release --quiet -p sembed-cli
export SEMBED_TEST_CLI="$PWD/target/release/sembed"
# -rs: any skip is listed with its reason at the end (none are expected).
cd python/tests && "$venv/bin/python" -m pytest -q -rs -p no:cacheprovider "$@"
