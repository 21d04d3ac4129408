#!/bin/bash
# migrate's progress line on a terminal has a horizon: messages done/total,
# bytes done of the total (estimated, "~", until every folder is planned) and
# an ETA.  Run under a pseudo-terminal (script), against a source slowed down
# by a proxy so that the copy lasts a few seconds; off a terminal no
# progress line is drawn.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init progress
. "$IT_LIBDIR/common.sh"
command -v script >/dev/null 2>&1 || it_skip "script (util-linux) not installed"
it_pair
src() {
    it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit --ca "$IT_CA" \
        --tls-name "$IT_TLS_NAME" --user "$U" "$@" >&2
}
src append --folder INBOX --count 24 --seed 41 --size-kb 40
src append --folder Lavoro --count 12 --seed 42 --size-kb 40

# the source's replies at 400 kB/s: the 1.5 MB take about 4 s
FAULTPROXY=$IT_LIBDIR/faultproxy.py
"$IT_PYTHON" "$FAULTPROXY" --upstream-port "$SRC_IMAPS_PORT" --raw \
    --fault 'on=connect,do=trickle,rate=400000,times=always' \
    --log "$IT_DIR/proxy.log" --port-file "$IT_DIR/proxy.port" > /dev/null &
it_at_exit "kill $! 2>/dev/null || true"
for _ in $(seq 1 100); do
    [[ -s $IT_DIR/proxy.port ]] && break
    sleep 0.05
done
[[ -s $IT_DIR/proxy.port ]] || it_fail "faultproxy did not start"
PROXY_PORT=$(cat "$IT_DIR/proxy.port")

args=(migrate --src "$IT_HOST:$PROXY_PORT" --src-tls implicit --src-tls-name "$IT_TLS_NAME"
    --dst "$IT_HOST:$DST_IMAPS_PORT" --dst-tls implicit --dst-tls-name "$IT_TLS_NAME"
    --ca-file "$IT_CA" --user "$U" --src-password-file "$IT_DIR/pw" --state "$IT_DIR/state"
    --timeout 20 --batch-count 4 --src-max-per-account 1)
printf -v cmd '%q ' "$TRASLOCO" "${args[@]}"
set +e
TERM=dumb timeout 120 script -q -e -c "$cmd" /dev/null > "$IT_DIR/tty.out" 2>&1
rc=$?
set -e
tr '\r' '\n' < "$IT_DIR/tty.out" | sed 's/\x1b\[K//g' > "$IT_DIR/tty.lines"
grep -a 'folders ' "$IT_DIR/tty.lines" | sed 's/^/    | /' >&2 || true
[[ $rc == 0 ]] || it_fail "migrate under a pseudo-terminal exited $rc"
# a line in the middle of the copy: some messages done, not all, with an ETA
line=$(grep -aE "^$U: folders [0-9]+/2, messages [0-9]+/36, [0-9.]+ [kMG]?B of ~?[0-9.]+ [kMG]?B \([0-9.]+ [kMG]?B/s\), ETA [0-9]+m[0-9]{2}s\$" \
    "$IT_DIR/tty.lines" | grep -avE 'messages (0|36)/36' | head -n 1 || true)
[[ -n $line ]] || it_fail "no progress line with messages done/total, bytes of a total and an ETA"
it_log "progress line: $line"
tr_compare

# Off a terminal: no progress line (a log line every 30 s instead).
src append --folder INBOX --count 2 --seed 43
tr_migrate
tr_expect_rc 0
grep -aq $'\x1b' "$TR_OUT" && it_fail "a progress line was drawn off a terminal"
tr_no_secret
it_pass
