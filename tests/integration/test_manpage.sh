#!/bin/bash
# The manual pages (doc/trasloco.1, doc/trasloco-job.5) against the program
# itself, so that an option added later and not documented fails here:
#   - every option that `trasloco --help`, `trasloco help CMD` or `trasloco CMD
#     --help` lists (for every CMD the usage names), and every option of the
#     job-file key table (src/jobconf.c), is an ".It Fl" entry of trasloco(1);
#   - every ".It Fl" entry of trasloco(1) is an option the program takes;
#   - every key of the key table is an ".It Cm" entry of trasloco-job(5)'s
#     KEYS, and every entry there is a key;
#   - every command of the usage and every queue subcommand has its ".It Cm"
#     entry, and every TRASLOCO_* variable the binary reads its ".It Ev";
#   - mandoc -Tlint (warnings and worse), or groff -ww without mandoc, says
#     nothing.
set -euo pipefail
name=manpage
fail() { printf 'FAIL: %s: %s\n' "$name" "$*" >&2; exit 1; }
TRASLOCO=${TRASLOCO:?set TRASLOCO to the binary}
SRCDIR=${TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
MAN1=${MAN1:-$SRCDIR/doc/trasloco.1}
MAN5=${MAN5:-$SRCDIR/doc/trasloco-job.5}
KEYS_C=$SRCDIR/src/jobconf.c
command -v python3 >/dev/null 2>&1 || { echo "SKIP: $name: no python3" >&2; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- what the program says about itself
"$TRASLOCO" --help >"$tmp/help.main" || fail "trasloco --help exited $?"
# the commands: "trasloco WORD" in the usage's synopsis (up to the first blank line)
cmds=$(sed '/^$/q' "$tmp/help.main" | grep -oE 'trasloco [a-z][a-z-]*' | cut -d' ' -f2 | sort -u)
[[ -n $cmds ]] || fail "no command in trasloco --help"
printf '%s\n' $cmds >"$tmp/commands"
for c in $cmds; do
    [[ $c == help || $c == version ]] && continue
    got=0
    if "$TRASLOCO" help "$c" >"$tmp/help.$c.1" 2>/dev/null && [[ -s $tmp/help.$c.1 ]]; then got=1; fi
    if "$TRASLOCO" "$c" --help >"$tmp/help.$c.2" 2>/dev/null && [[ -s $tmp/help.$c.2 ]]; then got=1; fi
    ((got)) || fail "neither 'trasloco help $c' nor 'trasloco $c --help' prints a help"
done
grep -aoE 'TRASLOCO_[A-Z_]+' "$TRASLOCO" | sort -u >"$tmp/env" || true

# ---- lint
if command -v mandoc >/dev/null 2>&1; then
    mandoc -Tlint -Wwarning "$MAN1" "$MAN5" >"$tmp/lint" 2>&1 || true
    lint="mandoc -Tlint -Wwarning"
elif command -v groff >/dev/null 2>&1; then
    groff -mandoc -ww -z "$MAN1" "$MAN5" >"$tmp/lint" 2>&1 || true
    lint="groff -mandoc -ww -z"
else
    echo "SKIP: $name: neither mandoc nor groff" >&2
    exit 77
fi
# mandoc's own remark on a stale mandoc.db is about the system, not the pages
grep -v 'outdated mandoc.db' "$tmp/lint" >"$tmp/lint.pages" || true
if [[ -s $tmp/lint.pages ]]; then
    cat "$tmp/lint.pages" >&2
    fail "$lint complains"
fi

python3 - "$tmp" "$MAN1" "$MAN5" "$KEYS_C" <<'PY'
import glob, os, re, sys
tmp, man1, man5, keys_c = sys.argv[1:5]
bad = []

# options in help texts: --long and -x, not inside a word
LONG = re.compile(r'(?<![\w-])(--[a-z][a-z0-9]*(?:-[a-z0-9]+)*)')
SHORT = re.compile(r'(?<![\w-])(-[a-zA-Z])(?![\w-])')
helped = {}          # option -> the help texts naming it
for f in sorted(glob.glob(os.path.join(tmp, 'help.*'))):
    what = os.path.basename(f)[5:]
    text = open(f, encoding='utf-8', errors='replace').read()
    for o in LONG.findall(text) + SHORT.findall(text):
        helped.setdefault(o, set()).add(what)

# the key table: entries "NAME(\"key\", ..." or "{ \"key\", takes_value, option, ..."
src = open(keys_c, encoding='utf-8').read()
m = re.search(r'jobconf_key keys\[\] = \{(.*?)\n\};', src, re.S)
if not m:
    sys.exit('FAIL: manpage: no key table in ' + keys_c)
keys, key_opts = [], []
for line in m.group(1).splitlines():
    e = re.match(r'\s*(?:[A-Z_]+\(|\{ )"([a-z0-9-]+)"(.*)', line)
    if not e:
        continue
    keys.append(e.group(1))
    raw = re.match(r'\s*\{ "[^"]+", (true|false), (true|false)', line)
    if raw is None or raw.group(2) == 'true':
        key_opts.append('--' + e.group(1))
if len(keys) < 10:
    sys.exit('FAIL: manpage: only %d keys read from %s' % (len(keys), keys_c))

def items(path, macro):
    """the NAMEs of ".It ... MACRO NAME" entries (several per .It line)"""
    out = set()
    for line in open(path, encoding='utf-8'):
        if line.startswith('.It '):
            for n in re.findall(r'\b%s (-?-?[A-Za-z0-9_][A-Za-z0-9_.-]*)' % macro, line):
                out.add(n)
    return out

man_opts = {('-' + o) for o in items(man1, 'Fl')}
man_cmds = items(man1, 'Cm')
man_env = items(man1, 'Ev')
man_keys = items(man5, 'Cm')

for o in sorted(helped):
    if o not in man_opts:
        bad.append('%s (in the help of %s) is not documented in trasloco(1)'
                   % (o, ', '.join(sorted(helped[o]))))
for o in key_opts:
    if o not in man_opts:
        bad.append('%s (a key of the job-file table) is not documented in trasloco(1)' % o)
    if o not in helped:
        bad.append('%s (a key of the job-file table) is in no --help' % o)
known = set(helped) | set(key_opts) | {'--help', '-h', '--version'}
for o in sorted(man_opts - known):
    bad.append('trasloco(1) documents %s, which the program does not take' % o)
for k in keys:
    if k not in man_keys:
        bad.append('key "%s" is not documented in trasloco-job(5)' % k)
for k in sorted(man_keys - set(keys)):
    bad.append('trasloco-job(5) documents key "%s", which is not in the key table' % k)
for c in open(os.path.join(tmp, 'commands')).read().split():
    if c not in man_cmds:
        bad.append('command %s is not documented in trasloco(1)' % c)
qhelp = ''
for f in glob.glob(os.path.join(tmp, 'help.queue.*')):
    qhelp += open(f, encoding='utf-8', errors='replace').read()
for c in sorted(set(re.findall(r'trasloco queue ([a-z]+)', qhelp))):
    if c not in man_cmds:
        bad.append('queue %s is not documented in trasloco(1)' % c)
for v in open(os.path.join(tmp, 'env')).read().split():
    if v not in man_env:
        bad.append('$%s (read by the program) is not documented in ENVIRONMENT' % v)

if bad:
    for b in bad:
        print('FAIL: manpage: ' + b, file=sys.stderr)
    sys.exit(1)
print('%d options, %d keys, %d commands checked' % (len(known), len(keys), len(man_cmds)))
PY
echo "PASS: $name"
