#!/bin/sh
# Builds the libFuzzer targets with Debian's clang and runs each for a bounded
# time on its seed corpus (tests/fuzz/corpus/NAME), never writing into it.
#   tests/fuzz/run.sh [SECONDS]     default 60 per target
# Exit status non-zero when a target finds a crash, a leak or a broken promise.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-60}
out=${FUZZ_DIR:-$top/build-fuzz}
command -v clang >/dev/null || { echo "fuzz: clang is missing (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
mkdir -p "$out"
# config.h from a configure run of our own, so this works from a clean checkout.
if [ ! -f "$out/config.h" ]; then
    (cd "$top" && { [ -x configure ] || ./autogen.sh >/dev/null; })
    (cd "$out" && "$top/configure" >/dev/null)
fi
flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I$top/include -I$out"
# jobconf knows a PostgreSQL DSN (the state key) through pg.c: libpq's header and library
clang $flags $(pkg-config --cflags libpq) "$top/tests/fuzz/fuzz_job.c" "$top/src/job.c" \
    "$top/src/jobconf.c" "$top/src/net.c" "$top/src/error.c" "$top/src/pg.c" "$top/src/log.c" \
    "$top/src/text.c" "$top/src/throttle_parse.c" -lcsv $(pkg-config --libs libpq) -pthread \
    -o "$out/fuzz_job"
clang $flags "$top/tests/fuzz/fuzz_folder.c" "$top/src/folder.c" "$top/src/mutf7.c" \
    "$top/src/error.c" -o "$out/fuzz_folder"
clang $flags "$top/tests/fuzz/fuzz_nul.c" "$top/src/nul.c" "$top/src/error.c" -letpan \
    -o "$out/fuzz_nul"
clang $flags "$top/tests/fuzz/fuzz_msgsig.c" "$top/src/msgsig.c" -lcrypto -o "$out/fuzz_msgsig"
clang $flags "$top/tests/fuzz/fuzz_text.c" "$top/src/text.c" -o "$out/fuzz_text"
clang $flags "$top/tests/fuzz/fuzz_budget.c" "$top/src/budget.c" -o "$out/fuzz_budget"
clang $flags "$top/tests/fuzz/fuzz_throttle.c" "$top/src/throttle_parse.c" -o "$out/fuzz_throttle"
clang $flags "$top/tests/fuzz/fuzz_unseal.c" "$top/src/seal.c" "$top/src/error.c" \
    "$top/src/log.c" "$top/src/text.c" -lcrypto -pthread \
    -o "$out/fuzz_unseal"
# the API's request bodies: jobjson.c with what it stands on (queue.c decides
# which settings a queued job keeps and reads intervals; it names its backends)
clang $flags $(pkg-config --cflags libpq jansson sqlite3) "$top/tests/fuzz/fuzz_jobjson.c" \
    "$top/src/jobjson.c" "$top/src/job.c" "$top/src/jobconf.c" "$top/src/queue.c" \
    "$top/src/queue_base.c" "$top/src/queue_pg.c" "$top/src/queue_sqlite.c" "$top/src/queue_status.c" \
    "$top/src/net.c" "$top/src/error.c" "$top/src/pg.c" "$top/src/pg_schema.c" \
    "$top/src/log.c" "$top/src/text.c" "$top/src/report.c" "$top/src/seal.c" \
    "$top/src/secret.c" "$top/src/privdir.c" "$top/src/throttle_parse.c" -lcsv $(pkg-config --libs libpq jansson sqlite3) \
    -lcrypto -pthread -o "$out/fuzz_jobjson"
# the passwd-file fields' template (provision.c links libcrypt for its hash)
clang $flags "$top/tests/fuzz/fuzz_provision.c" "$top/src/provision.c" "$top/src/error.c" \
    "$top/src/log.c" "$top/src/text.c" -lcrypt -pthread -o "$out/fuzz_provision"
# the token command's output and the servers' SASL failure JSON
clang $flags $(pkg-config --cflags jansson) "$top/tests/fuzz/fuzz_oauth.c" "$top/src/oauth.c" "$top/src/oauth_flow.c" "$top/src/oauth_text.c" "$top/src/secret.c" \
    "$top/src/error.c" "$top/src/log.c" "$top/src/text.c" $(pkg-config --libs jansson libcurl) \
    -lcrypto -pthread -o "$out/fuzz_oauth"
for t in job folder nul msgsig text budget unseal jobjson provision throttle oauth; do
    mkdir -p "$out/corpus-$t"
    echo "fuzz: $t for ${secs}s"
    "$out/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$out/crash-$t-" "$out/corpus-$t" "$top/tests/fuzz/corpus/$t" \
        2>"$out/fuzz_$t.log" || { tail -50 "$out/fuzz_$t.log" >&2; exit 1; }
    grep -E '^#[0-9]+.*DONE' "$out/fuzz_$t.log" | tail -1
done
