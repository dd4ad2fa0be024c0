#!/usr/bin/env bash
# WebDAV benchmark: Coffer's /dav/{tenant}/ against `rclone serve webdav` (the baseline,
# measured in the same run on the same files and the same machine), both with Basic
# authentication. Workloads: PROPFIND Depth 1 of a 10,000-entry folder, a 1 GiB PUT and
# GET (curl), 1,000 small (4 KiB) PUTs through `rclone copy`. Prints one table
# (workload, Coffer, baseline, ratio) and the same as JSON, plus each server's peak RSS.
#
# Needs: a Rust toolchain, curl, bc, python3, rclone (apt-get install rclone).
# Usage: benches/webdav.sh [ROUNDS]   (default 3; the median of the rounds is reported)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-3}"
command -v rclone >/dev/null || { echo "needs rclone (apt-get install rclone)"; exit 2; }

cargo build --release --locked --bin coffer >/dev/null
COFFER="$PWD/target/release/coffer"
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

EMAIL=bench@bench.example
DATA="$WORK/coffer-data"
"$COFFER" --data-dir "$DATA" init >/dev/null
"$COFFER" --data-dir "$DATA" user create "$EMAIL" --name Bench </dev/null >/dev/null
"$COFFER" --data-dir "$DATA" tenant create bench --owner "$EMAIL" >/dev/null
TOKEN=$("$COFFER" --data-dir "$DATA" --json token create bench "$EMAIL" --role owner --name bench \
    | python3 -c 'import sys,json; print(json.load(sys.stdin)["token"])')

# The 10,000-entry folder, loaded the same way into both: Coffer by its importer, the
# baseline by unzipping the same archive.
python3 - "$WORK/big.zip" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_STORED) as z:
    for i in range(10000):
        z.writestr(f"big/entry-{i:05}.txt", f"entry {i}\n")
PY
"$COFFER" --data-dir "$DATA" import bench "$WORK/big.zip" >/dev/null
BASE="$WORK/rclone-root"
mkdir -p "$BASE" && (cd "$BASE" && python3 -c 'import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extractall(".")' "$WORK/big.zip")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
CP=$(free_port); RP=$(free_port)
RUST_LOG=warn "$COFFER" --data-dir "$DATA" serve --listen "127.0.0.1:$CP" >/dev/null 2>&1 &
PIDS+=($!); COFFER_PID=$!
rclone serve webdav "$BASE" --addr "127.0.0.1:$RP" --user "$EMAIL" --pass "$TOKEN" >/dev/null 2>&1 &
PIDS+=($!); RCLONE_PID=$!
for port in "$CP" "$RP"; do
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
done
C_URL="http://127.0.0.1:$CP/dav/bench"
R_URL="http://127.0.0.1:$RP"
AUTH=(-u "$EMAIL:$TOKEN")

head -c $((1024 * 1024 * 1024)) /dev/urandom >"$WORK/1g.bin"
mkdir -p "$WORK/small"
for i in $(seq -w 1 1000); do head -c 4096 /dev/urandom >"$WORK/small/s$i.bin"; done
PASS=$(rclone obscure "$TOKEN")

# Seconds of one command, to the millisecond; a failed command stops the benchmark.
seconds() {
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >/dev/null || { echo "failed: $*" >&2; kill $$; }
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l
}
# The properties a sync client names (rclone's list, less its ownCloud extensions).
PROPS='<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:displayname/><d:getlastmodified/><d:getcontentlength/><d:resourcetype/><d:getcontenttype/><d:getetag/></d:prop></d:propfind>'
propfind() {
    curl -sf "${AUTH[@]}" -X PROPFIND -H 'Depth: 1' -H 'Content-Type: application/xml' \
        --data "$PROPS" -o "$WORK/propfind.xml" "$1/big/"
}
put_big() { curl -sf "${AUTH[@]}" -T "$WORK/1g.bin" "$1/1g-$2.bin"; }
get_big() { curl -sf "${AUTH[@]}" -o /dev/null "$1/1g-$2.bin"; }
small_puts() {
    RCLONE_CONFIG_B_TYPE=webdav RCLONE_CONFIG_B_URL="$1" RCLONE_CONFIG_B_VENDOR=other \
        RCLONE_CONFIG_B_USER="$EMAIL" RCLONE_CONFIG_B_PASS="$PASS" RCLONE_CONFIG=/dev/null \
        rclone copy "$WORK/small" "b:small-$2"
}

RESULTS="$WORK/results.txt"
: >"$RESULTS"
for round in $(seq "$ROUNDS"); do
    # Interleaved, so that the machine's noise falls on both alike.
    for side in coffer baseline; do
        url=$C_URL; [ $side = baseline ] && url=$R_URL
        echo "propfind $side $(seconds propfind "$url") $(grep -o '<D:response>' "$WORK/propfind.xml" | wc -l)" >>"$RESULTS"
        echo "put_1g $side $(seconds put_big "$url" "$round")" >>"$RESULTS"
        echo "get_1g $side $(seconds get_big "$url" "$round")" >>"$RESULTS"
        echo "small_puts $side $(seconds small_puts "$url" "$round")" >>"$RESULTS"
    done
    # The 1 GiB copies are not kept between rounds: Coffer's goes to its trash (the
    # whole data root is removed at the end).
    curl -sf "${AUTH[@]}" -X DELETE "$C_URL/1g-$round.bin" >/dev/null || true
    rm -f "$BASE/1g-$round.bin"
done
coffer_rss=$(awk '/VmHWM/ {print $2}' /proc/$COFFER_PID/status)
rclone_rss=$(awk '/VmHWM/ {print $2}' /proc/$RCLONE_PID/status)

python3 - "$RESULTS" "$coffer_rss" "$rclone_rss" "$ROUNDS" <<'PY'
import json, statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
coffer_rss, rclone_rss, rounds = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def med(work, side):
    return statistics.median(float(r[2]) for r in rows if r[0] == work and r[1] == side)
entries = {r[1]: int(r[3]) for r in rows if r[0] == "propfind"}
table = []
for work, unit, per in [
    ("propfind", "ms (PROPFIND Depth 1, 10,000 entries)", lambda s: s * 1000),
    ("put_1g", "MiB/s (1 GiB PUT)", lambda s: 1024 / s),
    ("get_1g", "MiB/s (1 GiB GET)", lambda s: 1024 / s),
    ("small_puts", "files/s (1,000 x 4 KiB PUT, rclone copy)", lambda s: 1000 / s),
]:
    c, b = per(med(work, "coffer")), per(med(work, "baseline"))
    better = b / c if work == "propfind" else c / b
    table.append({"workload": work, "unit": unit, "coffer": round(c, 1), "baseline": round(b, 1),
                  "ratio": round(better, 2)})
print(f"WebDAV: Coffer vs rclone serve webdav, median of {rounds} interleaved rounds "
      f"(ratio > 1: Coffer better)")
print(f"{'workload':<12} {'coffer':>10} {'baseline':>10} {'ratio':>7}  unit")
for t in table:
    print(f"{t['workload']:<12} {t['coffer']:>10} {t['baseline']:>10} {t['ratio']:>7}  {t['unit']}")
print(f"PROPFIND responses: coffer {entries.get('coffer')}, baseline {entries.get('baseline')}")
print(f"peak RSS: coffer {coffer_rss // 1024} MiB, baseline {rclone_rss // 1024} MiB")
print(json.dumps({"rounds": rounds, "results": table,
                  "peak_rss_kib": {"coffer": coffer_rss, "baseline": rclone_rss}}))
PY
