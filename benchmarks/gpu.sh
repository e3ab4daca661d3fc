#!/usr/bin/env bash
# CUDA checks and benchmarks on a GPU machine, results written to one folder.
#
# The machine: Python 3.12 with torch, torchvision, transformers and OpenCV installed,
# and NO internet. The project's other needs travel as wheels in a folder
# (benchmarks/wheels by default; never committed), built on a machine with PyPI by:
#
#   pip download --dest benchmarks/wheels --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_28_x86_64 \
#       --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --no-deps \
#       zennit==0.5.1 captum==0.9.0 diskcache av decord==0.6.0 tqdm click \
#       matplotlib contourpy cycler fonttools kiwisolver pyparsing python-dateutil six \
#       pillow packaging pytest pluggy iniconfig pygments
#
# (--no-deps: zennit and captum depend on torch, which must not be downloaded; the list
# is their other dependencies and pytest's.) Then, on the GPU machine:
#
#   bash benchmarks/gpu.sh [--device cuda|cpu] [--out DIR] [--wheels DIR] [--quick]
#
# 1. installs what is missing: pip install --no-index --no-deps --find-links WHEELS, each
#    wheel whose distribution the machine does not have (torch etc. stay as they are);
# 2. records the machine (torch.cuda.get_device_name, versions) in DIR/env.json;
# 3. runs the CUDA tests (tests/test_cuda.py: CUDA results equal the CPU's, no copy to
#    the host inside a method's loop, the split in one batch; skipped without CUDA) and
#    tests/test_budget.py; host reads of GPU scalars per method go to DIR/cuda_syncs.json;
# 4. runs benchmarks/bench_cold.py (cold four-view DTD: bundled model and r3d_18; aim on
#    a GPU: r3d_18 with the split under 1 s) and benchmarks/bench_peers.py (ours next to
#    zennit and captum by hand; the T freeze-frame DTD clips in one batch vs the
#    authors' loop, aim ≥ 10× faster) on --device;
# 5. writes DIR/summary.md (GPU name first) and exits non-zero if a step failed.
#
# DIR defaults to $OUT (the folder the device tool brings back), else
# benchmarks/gpu-results. --device cpu runs the same steps on the CPU (the CUDA tests
# skip), --quick keeps that short (bundled model only, one repeat): a dry run of the script.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEVICE=cuda
DEST="${OUT:-$ROOT/benchmarks/gpu-results}"
WHEELS="$ROOT/benchmarks/wheels"
QUICK=0
PY="${PYTHON:-python3}"
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE="$2"; shift 2 ;;
        --out) DEST="$2"; shift 2 ;;
        --wheels) WHEELS="$2"; shift 2 ;;
        --quick) QUICK=1; shift ;;
        -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
mkdir -p "$DEST"
DEST="$(cd "$DEST" && pwd)"
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export XAI_CACHE_DIR="$(mktemp -d)"
export XAI_CUDA_REPORT="$DEST/cuda_syncs.json"
rm -f "$XAI_CUDA_REPORT"
FAILED=()

step() {  # step NAME COMMAND...: run, log to DEST/NAME.log, remember a failure
    local name="$1"; shift
    echo "== $name: $*"
    local start=$SECONDS
    "$@" > >(tee "$DEST/$name.log") 2> >(tee "$DEST/$name.err" >&2)
    local rc=$?
    echo "== $name: exit $rc after $((SECONDS - start)) s"
    [ $rc -eq 0 ] || FAILED+=("$name (exit $rc)")
}

# 1. what the machine lacks, from the wheels folder only
NEEDS=(zennit captum diskcache av decord tqdm pytest)
missing=$("$PY" - "${NEEDS[@]}" <<'EOF'
import importlib.util, sys
print(" ".join(n for n in sys.argv[1:] if importlib.util.find_spec(n) is None))
EOF
)
if [ -n "$missing" ]; then
    if [ ! -d "$WHEELS" ]; then
        echo "missing: $missing, and no wheels folder $WHEELS (see the header)" >&2
        exit 3
    fi
    # --no-deps, each wheel whose distribution is not installed yet: what the machine has
    # (torch, numpy, pillow ...) stays as it is, and no resolver asks for more
    mapfile -t wheels < <("$PY" - "$WHEELS" <<'EOF'
import importlib.metadata as md, pathlib, re, sys
for wheel in sorted(pathlib.Path(sys.argv[1]).glob("*.whl")):
    name = re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()
    try:
        md.version(name)
    except md.PackageNotFoundError:
        print(wheel)
EOF
)
    step install "$PY" -m pip install --disable-pip-version-check --no-index --no-deps \
        --find-links "$WHEELS" "${wheels[@]}"
    step imports "$PY" -c "import $(IFS=,; echo "${NEEDS[*]}")"
    [ ${#FAILED[@]} -eq 0 ] || { echo "install failed: ${FAILED[*]}" >&2; exit 3; }
fi

# 2. the machine
step env "$PY" - "$DEVICE" "$DEST/env.json" <<'EOF'
import json, os, platform, sys
import torch
device, path = sys.argv[1], sys.argv[2]
cuda = device.startswith("cuda")
if cuda and not torch.cuda.is_available():
    sys.exit("--device cuda but torch sees no GPU")
info = {"device": device, "gpu": torch.cuda.get_device_name() if cuda else None,
        "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
        "cpus": os.cpu_count(), "load": os.getloadavg()}
json.dump(info, open(path, "w"), indent=1)
print(json.dumps(info))
EOF

# 3. tests
step tests "$PY" -m pytest -q -p no:cacheprovider -rs tests/test_cuda.py tests/test_budget.py \
    --junitxml="$DEST/tests.xml"

# 4. benchmarks
if [ "$QUICK" = 1 ]; then
    COLD=(--cases motion); PEERS=(--skip-c3d --repeats 1 --split-models motion)
else
    COLD=(); PEERS=()
fi
step bench_cold "$PY" benchmarks/bench_cold.py --device "$DEVICE" "${COLD[@]}" \
    --json "$DEST/cold.json"
step bench_peers "$PY" benchmarks/bench_peers.py --device "$DEVICE" "${PEERS[@]}" \
    --json "$DEST/peers.json"

# 5. summary
{
    echo "# gpu.sh on $("$PY" -c "import json; e = json.load(open('$DEST/env.json')); print(e['gpu'] or 'the CPU (--device cpu)', '· torch', e['torch'], '· CUDA', e['cuda'])" 2>/dev/null || echo "$DEVICE")"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
    echo
    echo "## Tests"; echo; tail -n 3 "$DEST/tests.log" 2>/dev/null; echo
    [ -f "$XAI_CUDA_REPORT" ] && { echo "Host reads of GPU scalars per clip:"; echo;
                                   cat "$XAI_CUDA_REPORT"; echo; }
    echo "## Cold explanation (bench_cold.py)"; echo; cat "$DEST/bench_cold.log" 2>/dev/null; echo
    echo "## Peers (bench_peers.py)"; echo; cat "$DEST/bench_peers.log" 2>/dev/null; echo
    if [ ${#FAILED[@]} -gt 0 ]; then echo "**Failed steps:** ${FAILED[*]}"; fi
} > "$DEST/summary.md"
rm -rf "$XAI_CACHE_DIR"
echo "results in $DEST (summary.md)"
[ ${#FAILED[@]} -eq 0 ] || { echo "failed: ${FAILED[*]}" >&2; exit 1; }
