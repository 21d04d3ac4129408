#!/bin/bash
# Provisioning and the source admin, against real Dovecots whose destinations start
# with no user at all (an empty passwd-file passdb/userdb):
#  - check lists the 10 accounts as missing on the destination (with --dst-admin: "not
#    on the destination yet"; without: "missing or wrong password");
#  - run --provision dovecot-passwd-file:PATH adds the 10 users to the very file Dovecot
#    reads ({SHA512-CRYPT}, the fields from --provision-passwd-fields), then the copy,
#    logging in with the users' own passwords, is exact message by message; a second
#    run and `trasloco provision` add nobody and change no byte of the file (same inode,
#    owner, group, mode);
#  - a provision command that fails fails every account with its stderr in the output
#    and the JSON report, and nothing is copied;
#  - `trasloco provision --provision-cmd SCRIPT` creates the users of a second
#    destination; the script checks its own /proc: the password is on its stdin, never
#    in its argv or environment;
#  - run --src-admin (Dovecot master user, passdb master = yes) and --dst-admin with a
#    CSV of emails alone: exact;
#  - the queue: a worker provisions, then copies; a queued job with src-admin (its
#    password sealed in the queue, never in clear) logs in to the source as the
#    admin, the CSV's source passwords wrong: exact.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init provision
: "${TRASLOCO:?}"

declare -A PW
users=""
accounts=()
for i in $(seq -w 1 10); do
    u=u$i@azienda.test
    accounts+=("$u")
    PW[$u]="pw $i:\"x\""
    users+="$u:$(printf '%s' "${PW[$u]}" | sed 's/%/%25/g; s/ /%20/g') "
done
ADMIN_PW='master pw'
it_dovecot_start src "USERS=$users" MASTER="admin:master%20pw"
it_dovecot_start dst USERS=none MASTER="admin:master%20pw"
it_dovecot_start dst2 USERS=none MASTER="admin:master%20pw"
it_dovecot_start dst3 USERS=none
it_dovecot_start dst4 USERS=none

for u in "${accounts[@]}"; do
    IMAP_PASSWORD=${PW[$u]} it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit \
        --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$u" populate --seed 7 \
        --profile small --messages 12 >/dev/null
done

umask 077
csv=$IT_DIR/accounts.csv
emails=$IT_DIR/emails.csv
{
    printf 'email,password\n'
    for u in "${accounts[@]}"; do
        printf '%s,"%s"\n' "$u" "$(printf '%s' "${PW[$u]}" | sed 's/"/""/g')"
    done
} > "$csv"
printf '%s\n' "${accounts[@]}" > "$emails"
printf '%s\n' "$ADMIN_PW" > "$IT_DIR/admin.pw"

N=0
# trr COMMAND DST_PORT ARGS...: trasloco COMMAND with the servers; output in $OUT, code in $RC.
trr() {
    local cmd=$1 dport=$2
    shift 2
    N=$((N + 1))
    OUT=$IT_DIR/out.$N
    set +e
    "$TRASLOCO" "$cmd" "$@" \
        --src "$IT_HOST:$SRC_IMAPS_PORT" --src-tls implicit --src-tls-name "$IT_TLS_NAME" \
        --dst "$IT_HOST:$dport" --dst-tls implicit --dst-tls-name "$IT_TLS_NAME" \
        --ca-file "$IT_CA" --timeout 20 --no-progress > "$OUT" 2>&1
    RC=$?
    set -e
    it_log "trasloco $cmd -> exit $RC"
    sed 's/^/    | /' "$OUT" >&2
}
expect_rc() { [[ $RC == "$1" ]] || it_fail "expected exit $1, got $RC"; }

# compare_all PORT [USERS...]: every account (or those USERS) exact on the destination
compare_all() {
    local port=$1 u
    shift
    (($# > 0)) || set -- "${accounts[@]}"
    for u in "$@"; do
        if ! IMAP_PASSWORD=${PW[$u]} it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit \
            --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$u" \
            compare --dst-port "$port" --dst-tls implicit --dst-ca "$IT_CA" \
            --dst-tls-name "$IT_TLS_NAME" --dst-user "$u" > "$IT_DIR/compare.out" 2>&1; then
            cat "$IT_DIR/compare.out" >&2
            it_fail "$u: source and destination differ"
        fi
    done
}

file_id() { stat -c '%i %u %g %a %s' "$1"; sha256sum < "$1"; }

# ---- check: every account missing ------------------------------------------------
trr check "$DST_IMAPS_PORT" "$csv" --dst-admin admin --dst-admin-password-file "$IT_DIR/admin.pw" \
    --dst-admin-separator '*' --report "$IT_DIR/check.json"
expect_rc 1
grep -q '^10 account(s) not on the destination yet' "$OUT" ||
    it_fail "check does not list the 10 missing accounts"
for u in "${accounts[@]}"; do grep -q " $u" <(grep '^10 account(s) not on' "$OUT") ||
    it_fail "check does not name $u as missing"; done
[[ $(grep -o '"destination_account": *"missing"' "$IT_DIR/check.json" | wc -l) == 10 ]] ||
    it_fail "check's report does not say destination_account missing 10 times"
trr check "$DST_IMAPS_PORT" "$csv"
expect_rc 1
grep -q '^10 account(s) cannot log in to the destination: missing or wrong password' "$OUT" ||
    it_fail "check without an admin does not say 'missing or wrong password'"
# A wrong admin password ([AUTHENTICATIONFAILED]) is no proof that the users are missing
printf 'not the admin password\n' > "$IT_DIR/admin.wrong"
trr check "$DST_IMAPS_PORT" "$csv" --dst-admin admin --dst-admin-password-file "$IT_DIR/admin.wrong" \
    --dst-admin-separator '*' --report "$IT_DIR/check-wrong.json"
expect_rc 1
! grep -q 'not on the destination yet' "$OUT" || it_fail "a wrong admin password made accounts 'missing'"
grep -q "no such user, or the admin's password is wrong" "$OUT" ||
    it_fail "check with a wrong admin password does not say so"
[[ $(grep -o '"destination_account": *"missing_or_wrong_password"' "$IT_DIR/check-wrong.json" | wc -l) == 10 ]] ||
    it_fail "check's report with a wrong admin password"

# ---- the passwd-file built-in ----------------------------------------------------
pf=$DST_DIR/users.passwd
before_mode=$(stat -c '%u %g %a' "$pf")
fields=":$IT_MAIL_UID:$IT_MAIL_GID::$DST_DIR/home/%n@%d::"
trr run "$DST_IMAPS_PORT" "$csv" --state "$IT_DIR/state1" \
    --provision "dovecot-passwd-file:$pf" --provision-passwd-fields "$fields" \
    --report "$IT_DIR/run1.json"
expect_rc 0
[[ $(wc -l < "$pf") == 10 ]] || it_fail "the passwd-file does not have 10 lines"
for u in "${accounts[@]}"; do
    [[ $(grep -c "^$u:{SHA512-CRYPT}\\\$6\\\$[^:]*:$IT_MAIL_UID:$IT_MAIL_GID::$DST_DIR/home/$u::\$" "$pf") == 1 ]] ||
        it_fail "$u: not once in the passwd-file as expected"
done
[[ $(stat -c '%u %g %a' "$pf") == "$before_mode" ]] || it_fail "the passwd-file's owner or mode changed"
compare_all "$DST_IMAPS_PORT"
it_log "built-in: 10 users added, copy exact"

# a second run, and provision alone: nobody added, not a byte changed
id1=$(file_id "$pf")
trr run "$DST_IMAPS_PORT" "$csv" --state "$IT_DIR/state1" \
    --provision "dovecot-passwd-file:$pf" --provision-passwd-fields "$fields"
expect_rc 0
trr provision "$DST_IMAPS_PORT" "$csv" --provision "dovecot-passwd-file:$pf" \
    --provision-passwd-fields "$fields"
expect_rc 0
grep -q '^10 account(s): 0 added, 10 already there, 0 failed' "$OUT" ||
    it_fail "provision on a complete file does not say 10 already there"
[[ $(file_id "$pf") == "$id1" ]] || it_fail "the passwd-file changed on a second run"
compare_all "$DST_IMAPS_PORT"
trr check "$DST_IMAPS_PORT" "$csv"
expect_rc 0
! grep -q 'account(s) cannot log in' "$OUT" || it_fail "check still lists accounts"

# ---- a provision command that fails ---------------------------------------------
trr run "$DST_IMAPS_PORT" "$csv" --state "$IT_DIR/state-bad" --report "$IT_DIR/bad.json" \
    --provision-cmd 'echo "quota service down for $TRASLOCO_EMAIL" >&2; exit 7'
expect_rc 1
for u in "${accounts[@]}"; do
    grep -q "provision-cmd for $u failed (exit 7): quota service down for $u" "$IT_DIR/bad.json" ||
        it_fail "$u: the report does not carry the command's stderr"
done
grep -q 'quota service down for u01@azienda.test' "$OUT" ||
    it_fail "the output does not show the command's stderr"
grep -q '"messages_copied": *[1-9]' "$IT_DIR/bad.json" && it_fail "an account failed at provisioning was copied"

# ---- a provision command (to dst2), then --src-admin with emails alone -----------
trr check "$DST2_IMAPS_PORT" "$emails" --src-admin admin --src-admin-password-file "$IT_DIR/admin.pw" \
    --src-admin-separator '*' --dst-admin admin --dst-admin-password-file "$IT_DIR/admin.pw"
expect_rc 1
grep -q '^10 account(s) not on the destination yet' "$OUT" ||
    it_fail "check (admins, emails alone) does not list the 10 missing accounts"

script=$IT_DIR/mkuser.sh
cat > "$script" <<EOF
#!/bin/bash
# the provider's command: the password on stdin, nowhere else
set -eu
IFS= read -r pw
for f in /proc/\$\$/environ /proc/\$\$/cmdline /proc/\$PPID/environ /proc/\$PPID/cmdline; do
    if grep -qaF -- "\$pw" "\$f"; then echo "password seen in \$f" >&2; exit 9; fi
done
[[ -n \${TRASLOCO_EMAIL:-} ]] || { echo "no TRASLOCO_EMAIL" >&2; exit 8; }
if env | grep -q PASSWORD; then echo "a PASSWORD variable in the environment" >&2; exit 10; fi
grep -q "^\$TRASLOCO_EMAIL:" "$DST2_DIR/users.passwd" && exit 0
printf '%s:{PLAIN.B64}%s:%s:%s::%s::\n' "\$TRASLOCO_EMAIL" "\$(printf '%s' "\$pw" | base64 -w0)" \
    "$IT_MAIL_UID" "$IT_MAIL_GID" "$DST2_DIR/home/\$TRASLOCO_EMAIL" >> "$DST2_DIR/users.passwd"
echo "\$TRASLOCO_EMAIL" >> "$IT_DIR/created"
EOF
chmod 700 "$script"
# a password variable in trasloco's environment must not reach the command
TRASLOCO_DST_PASSWORD=leak trr provision "$DST2_IMAPS_PORT" "$csv" --provision-cmd "$script"
expect_rc 0
grep -q '^10 account(s): 10 ok, 0 already there, 0 failed' "$OUT" || it_fail "provision-cmd: not 10 ok"
[[ $(sort -u "$IT_DIR/created" | wc -l) == 10 && $(wc -l < "$IT_DIR/created") == 10 ]] ||
    it_fail "the script did not create each user once"

trr run "$DST2_IMAPS_PORT" "$emails" --state "$IT_DIR/state2" \
    --src-admin admin --src-admin-password-file "$IT_DIR/admin.pw" --src-admin-separator '*' \
    --dst-admin admin --dst-admin-password-file "$IT_DIR/admin.pw"
expect_rc 0
compare_all "$DST2_IMAPS_PORT"
it_log "--src-admin with emails alone: copy exact"

# ---- the spool: provisioning is the operator's, a job cannot set it -------------
spool=$IT_DIR/spool
mkdir -p "$spool/pending" "$spool/csv"
head -n 3 "$csv" > "$spool/csv/two.csv"
spooljob() {
    cat <<JOB
accounts = csv/two.csv
src = $IT_HOST:$SRC_IMAPS_PORT
src-tls = implicit
src-tls-name = $IT_TLS_NAME
dst = $IT_HOST:$DST3_IMAPS_PORT
dst-tls = implicit
dst-tls-name = $IT_TLS_NAME
timeout = 20
JOB
}
spooljob > "$spool/pending/a-two.job"
{ spooljob; printf 'provision-cmd = touch %s/pwned\n' "$IT_DIR"; } > "$spool/pending/b-evil.job"
pf3=$DST3_DIR/users.passwd
set +e
"$TRASLOCO" spool "$spool" --ca-file "$IT_CA" --no-progress \
    --provision "dovecot-passwd-file:$pf3" \
    --provision-passwd-fields ":$IT_MAIL_UID:$IT_MAIL_GID::$DST3_DIR/home/%u::" \
    > "$IT_DIR/out.spool" 2>&1
RC=$?
set -e
sed 's/^/    | /' "$IT_DIR/out.spool" >&2
expect_rc 1
[[ -f $spool/done/a-two.job && -f $spool/failed/b-evil.job ]] ||
    it_fail "the spool's jobs did not end in done/ and failed/"
grep -q '"provision-cmd" is not taken from a spool job' "$IT_DIR/out.spool" "$spool/failed/b-evil.json" ||
    it_fail "the spool does not say why the job with provision-cmd was refused"
[[ ! -e $IT_DIR/pwned ]] || it_fail "a spool job's provision-cmd ran"
[[ $(wc -l < "$pf3") == 2 ]] || it_fail "the spool did not provision its 2 accounts"
compare_all "$DST3_IMAPS_PORT" u01@azienda.test u02@azienda.test

# ---- the queue: a worker provisions before it copies ------------------------------
Q=$IT_DIR/queue
KEY=$IT_DIR/queue.key
head -n 4 "$csv" > "$IT_DIR/three.csv"
pf4=$DST4_DIR/users.passwd
cat > "$IT_DIR/q.job" <<EOF
src = $IT_HOST:$SRC_IMAPS_PORT
src-tls = implicit
src-tls-name = $IT_TLS_NAME
dst = $IT_HOST:$DST4_IMAPS_PORT
dst-tls = implicit
dst-tls-name = $IT_TLS_NAME
ca-file = $IT_CA
accounts = three.csv
timeout = 20
provision = dovecot-passwd-file:$pf4
provision-passwd-fields = :$IT_MAIL_UID:$IT_MAIL_GID::$DST4_DIR/home/%u::
EOF
# drain_worker OUT: a worker drains the queue (at most 120 s); it must exit 0
drain_worker() {
    set +e
    timeout 120 "$TRASLOCO" worker "sqlite:$Q" --key-file "$KEY" --drain > "$IT_DIR/$1" 2>&1
    RC=$?
    set -e
    grep -v ' info ' "$IT_DIR/$1" | sed 's/^/    w | /' >&2 || true
    expect_rc 0
}
"$TRASLOCO" queue init "$Q" --key-file "$KEY" > "$IT_DIR/out.qinit" 2>&1 ||
    it_fail "queue init: $(cat "$IT_DIR/out.qinit")"
"$TRASLOCO" queue submit "$Q" "$IT_DIR/q.job" --key-file "$KEY" > "$IT_DIR/out.qsubmit" 2>&1 ||
    it_fail "queue submit: $(cat "$IT_DIR/out.qsubmit")"
drain_worker out.worker
[[ $(wc -l < "$pf4") == 3 ]] || it_fail "the worker did not provision its 3 accounts"
compare_all "$DST4_IMAPS_PORT" u01@azienda.test u02@azienda.test u03@azienda.test

# a queued job with a source admin: the queue keeps its password sealed, and the
# CSV's source passwords (wrong here) are not used
for u in u01@azienda.test u02@azienda.test u03@azienda.test; do
    IMAP_PASSWORD=${PW[$u]} it_imaptool --port "$SRC_IMAPS_PORT" --tls implicit \
        --ca "$IT_CA" --tls-name "$IT_TLS_NAME" --user "$u" populate --seed 8 \
        --profile small --messages 5 >/dev/null
done
{
    printf 'email,password,dst_password\n'
    for u in u01@azienda.test u02@azienda.test u03@azienda.test; do
        printf '%s,"not the source password","%s"\n' "$u" "$(printf '%s' "${PW[$u]}" | sed 's/"/""/g')"
    done
} > "$IT_DIR/three-admin.csv"
{ sed 's/^accounts = .*/accounts = three-admin.csv/' "$IT_DIR/q.job"
  printf 'src-admin = admin\nsrc-admin-password-file = %s\nsrc-admin-separator = *\n' \
      "$IT_DIR/admin.pw"; } > "$IT_DIR/q-admin.job"
"$TRASLOCO" queue submit "$Q" "$IT_DIR/q-admin.job" --key-file "$KEY" > "$IT_DIR/out.qsrcadmin" 2>&1 ||
    it_fail "queue submit with src-admin: $(cat "$IT_DIR/out.qsrcadmin")"
if grep -rqaF -- "$ADMIN_PW" "$Q"; then
    it_fail "the source admin's password is in the queue in clear"
fi
drain_worker out.worker2
compare_all "$DST4_IMAPS_PORT" u01@azienda.test u02@azienda.test u03@azienda.test
it_log "a queued job with src-admin (the CSV's source passwords wrong): exact"

# no password anywhere in the outputs or reports
for u in "${accounts[@]}"; do
    if grep -rqF -- "${PW[$u]}" "$IT_DIR"/out.* "$IT_DIR"/*.json; then
        it_fail "a password appears in an output or report"
    fi
done
grep -rqF -- "$ADMIN_PW" "$IT_DIR"/out.* "$IT_DIR"/*.json && it_fail "the admin password leaked"
it_pass
