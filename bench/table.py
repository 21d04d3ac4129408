#!/usr/bin/python3
"""bench/table.py OUTDIR: the benchmark's tables (markdown) from OUTDIR/results.csv.

1. every tool and scenario: the full copy (messages/s, MB/s, wall, CPU, peak RSS, servers'
   CPU, verification) and the rerun with nothing new after it (wall, CPU, verification);
2. trasloco / peer ratios per scenario (throughput: higher is better for trasloco;
   rerun time: lower is better);
3. the targets of issue 6, checked against this run;
4. round trips: commands and waits per message seen by the delay proxy (plain-IMAP runs
   through the proxy only).
Repetitions (BENCH_RERUNS, BENCH_FULLS): the one with the median wall time is shown, with
the range; the verdict is the first verified repetition's (any failure shows).
"""
import csv
import json
import os
import sys

SCEN_LABEL = {
    "a": "0 ms, 1 account at a time",
    "b": "20 ms, 1 account at a time",
    "c": "20 ms, 4 accounts at once",
    "e": "0 ms, 4 accounts at once",
    "f": "TLS, 0 ms, 1 at a time",
}


def label(scen, rtt):
    if scen in SCEN_LABEL:
        return SCEN_LABEL[scen].replace("20 ms", "%s ms" % rtt) if rtt not in ("0", "20") \
            else SCEN_LABEL[scen]
    if scen.startswith("s"):
        return "%s small msgs, 1 account" % scen[1:]
    return scen


def f(x, nd=1):
    try:
        return ("%%.%df" % nd) % float(x)
    except (TypeError, ValueError):
        return "-"


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def other_cpu(r):
    """CPU the rest of the machine used during the run: all cores' busy time minus the
    tool's, the servers' and the proxy's (a noise indicator)"""
    if not r.get("box_cpu_s"):
        return "-"
    k = num(r.get("kthread_cpu_s")) or 0
    x = num(r["box_cpu_s"]) - k - sum(num(r[c]) or 0 for c in ("cpu_s", "src_cpu_s", "dst_cpu_s", "proxy_cpu_s"))
    return "%s / %s" % (f(max(0.0, x), 2), f(k, 2))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    rows = list(csv.DictReader(open(os.path.join(out, "results.csv"))))
    runs = {}
    order = []
    groups = {}
    for r in rows:
        key = (r["tool"], r["scenario"], r["mode"])
        if (r["tool"], r["scenario"]) not in order:
            order.append((r["tool"], r["scenario"]))
        rep = r.get("repeat") or "1"
        if rep == "1" or key not in groups:
            groups[key] = {}      # a new measurement (the last one of a key counts)
        groups[key][rep] = r      # a repetition measured again replaces the disturbed one
    # repetitions (reruns): the row with the median wall time; the verdict of the verified one
    spread = {}
    for key, g in groups.items():
        g = list(g.values())
        ordered = sorted(g, key=lambda r: num(r["wall_s"]) or 0)
        med = dict(ordered[(len(ordered) - 1) // 2])
        verified = [r for r in g if r["verify"] != "skipped"]
        if verified:
            med["verify"] = verified[0]["verify"]
        bad = [r["exit"] for r in g if r["exit"] != "0"]
        if bad:
            med["exit"] = bad[0]
        runs[key] = med
        if len(g) > 1:
            spread[key] = (len(g), ordered[0]["wall_s"], ordered[-1]["wall_s"])
    scen_order = []
    for _, s in order:
        if s not in scen_order:
            scen_order.append(s)
    tools = []
    for t, _ in order:
        if t not in tools:
            tools.append(t)
    tools.sort(key=lambda t: (t != "trasloco", t))

    env = os.path.join(out, "env.txt")
    if os.path.exists(env):
        print("```\n" + open(env).read().rstrip() + "\n```\n")

    # 1 ------------------------------------------------------------------------------
    print("## Runs (full copy, then a rerun with nothing new)\n")
    print("| scenario | tool | RTT ms | TLS | par | msgs | MB | wall s | msgs/s | MB/s | CPU s "
          "| peak RSS MB | srv CPU src/dst s | other / kthread CPU s | verify | rerun RTT | rerun wall s "
          "| rerun CPU s | rerun srv CPU src/dst | rerun verify |")
    print("|" + "---|" * 20)
    for s in scen_order:
        for t in tools:
            full, rr = runs.get((t, s, "full")), runs.get((t, s, "rerun"))
            if not full:
                continue
            wall = num(full["wall_s"])
            msgs, byt = num(full["msgs"]), num(full["bytes"])
            v = full["verify"] + ("" if full["exit"] == "0" else " (exit %s)" % full["exit"])
            cells = [s + ": " + label(s, full["rtt_ms"]), t, full["rtt_ms"],
                     "yes" if full["tls"] == "tls" else "no", full["par"], f(msgs, 0),
                     f(byt / 1e6 if byt else None), f(wall, 2),
                     f(msgs / wall if wall else None, 0), f(byt / 1e6 / wall if wall else None),
                     f(full["cpu_s"], 2), f(num(full["maxrss_kb"]) / 1024 if full["maxrss_kb"] else None, 0),
                     "%s/%s" % (f(full["src_cpu_s"], 2), f(full["dst_cpu_s"], 2)), other_cpu(full), v]
            fsp = spread.get((t, s, "full"))
            if fsp:
                cells[7] += " (%s-%s, n=%d)" % (f(fsp[1], 2), f(fsp[2], 2), fsp[0])
            if rr:
                rv = rr["verify"] + ("" if rr["exit"] == "0" else " (exit %s)" % rr["exit"])
                if t == "trasloco" and rr.get("copied") not in ("", "0", None):
                    rv += " (copied %s)" % rr["copied"]
                sp = spread.get((t, s, "rerun"))
                rw = f(rr["wall_s"], 2) + (" (%s-%s, n=%d)" % (f(sp[1], 2), f(sp[2], 2), sp[0]) if sp else "")
                cells += [rr["rtt_ms"], rw, f(rr["cpu_s"], 2),
                          "%s/%s" % (f(rr["src_cpu_s"], 2), f(rr["dst_cpu_s"], 2)), rv]
            else:
                cells += ["-"] * 5
            print("| " + " | ".join(str(c) for c in cells) + " |")
    print()
    print("msgs/s and MB/s: messages and RFC822.SIZE bytes of the source / wall time of the "
          "full copy.  CPU s: user+sys of the tool and its children.  peak RSS: the largest "
          "single process.  srv CPU: the Dovecot masters' own CPU plus their reaped children "
          "(imap, imap-login), read before and after (doveadm writes dst's files itself: its "
          "destination work is in its own CPU).  other CPU: what the other processes of the "
          "machine used meanwhile (CPU of all processes minus tool, servers, proxy and kernel "
          "threads): noise when large; kthread: kernel threads (journal and writeback work, "
          "mostly caused by the destination's fsyncs).  verify: bench/verify.py (sha256 of every message, flags, INTERNALDATE, "
          "per folder; mbsync: X-TUID header stripped).\n")

    # 2 ------------------------------------------------------------------------------
    peers = [t for t in tools if t != "trasloco"]
    if peers and "trasloco" in tools:
        print("## trasloco / peer\n")
        head = "| scenario | " + " | ".join("msgs/s vs %s" % p for p in peers) + " | " + \
            " | ".join("rerun time vs %s" % p for p in peers) + " |"
        print(head)
        print("|" + "---|" * (1 + 2 * len(peers)))
        for s in scen_order:
            tf, tr = runs.get(("trasloco", s, "full")), runs.get(("trasloco", s, "rerun"))
            if not tf:
                continue
            cells = [s + ": " + label(s, tf["rtt_ms"])]
            for p in peers:
                pf = runs.get((p, s, "full"))
                if pf and num(pf["wall_s"]) and num(tf["wall_s"]):
                    cells.append("%.2f×" % (num(pf["wall_s"]) / num(tf["wall_s"])))
                else:
                    cells.append("-")
            for p in peers:
                pr = runs.get((p, s, "rerun"))
                if pr and tr and num(pr["wall_s"]):
                    cells.append("%.2f× (%s s vs %s s)" % (num(tr["wall_s"]) / num(pr["wall_s"]),
                                                        f(tr["wall_s"], 2), f(pr["wall_s"], 2)))
                else:
                    cells.append("-")
            print("| " + " | ".join(cells) + " |")
        print("\nmsgs/s ratio > 1: trasloco is faster.  rerun ratio < 1: trasloco's rerun is "
              "shorter.\n")

    # 3 ------------------------------------------------------------------------------
    print("## Targets of issue 6\n")

    def rate(t, s):
        r = runs.get((t, s, "full"))
        return num(r["msgs"]) / num(r["wall_s"]) if r and num(r["wall_s"]) else None

    def wall(t, s, m):
        r = runs.get((t, s, m))
        return num(r["wall_s"]) if r else None

    checks = []

    def ratio_check(what, a, b, op, limit):
        if a is None or b is None or not b:
            checks.append((what, "not measured", "-"))
            return
        v = a / b
        ok = v >= limit if op == ">=" else v <= limit
        checks.append((what, "%.2f× (need %s %.1f×)" % (v, op, limit), "met" if ok else "NOT met"))

    ratio_check("20 ms, 1 at a time: msgs/s vs doveadm", rate("trasloco", "b"), rate("doveadm", "b"), ">=", 2.0)
    ratio_check("20 ms, 4 at once: msgs/s vs doveadm", rate("trasloco", "c"), rate("doveadm", "c"), ">=", 1.5)
    ratio_check("20 ms vs 0 ms own time, 1 at a time", wall("trasloco", "b", "full"), wall("trasloco", "a", "full"), "<=", 1.2)
    ratio_check("0 ms, 4 at once: msgs/s vs doveadm", rate("trasloco", "e"), rate("doveadm", "e"), ">=", 1.2)
    ratio_check("TLS 0 ms: msgs/s vs doveadm over TLS", rate("trasloco", "f"), rate("doveadm", "f"), ">=", 1.0)
    ratio_check("rerun at 20 ms (d): time vs doveadm", wall("trasloco", "b", "rerun"), wall("doveadm", "b", "rerun"), "<=", 0.1)
    scale = sorted((s for s in scen_order if s.startswith("s") and s[1:].isdigit()), key=lambda s: int(s[1:]))
    if len(scale) >= 2:
        lo, hi = scale[0], scale[-1]
        ratio_check("rerun flat in size: %s vs %s (10%% allowed for noise)" % (hi, lo),
                    wall("trasloco", hi, "rerun"), wall("trasloco", lo, "rerun"), "<=", 1.1)
    if scale:
        hi = scale[-1]
        ratio_check("rerun %s vs mbsync" % hi, wall("trasloco", hi, "rerun"), wall("mbsync", hi, "rerun"), "<=", 1.0)
        ratio_check("full copy %s at 0 ms: time vs doveadm" % hi, wall("trasloco", hi, "full"), wall("doveadm", hi, "full"), "<=", 1.0)
        if hi == "s20000":
            w = wall("trasloco", hi, "full")
            checks.append(("full copy s20000 at 0 ms < 16.8 s (issue's doveadm)",
                           f(w, 2) + " s" if w else "not measured",
                           "-" if w is None else ("met" if w < 16.8 else "NOT met")))
    rss = [(num(r["maxrss_kb"]) / 1024, r["scenario"]) for k, r in runs.items()
           if k[0] == "trasloco" and r["par"] == "4" and num(r["maxrss_kb"])]
    if rss:
        m = max(rss)
        checks.append(("peak RSS, 4 accounts at once", "%.0f MB (%s; need <= 64)" % m,
                       "met" if m[0] <= 64 else "NOT met"))
    bad = [k for k, r in runs.items() if k[0] == "trasloco" and (r["verify"] not in ("ok", "skipped") or r["exit"] != "0")]
    checks.append(("every trasloco copy exact, exit 0",
                   "all %d runs" % sum(1 for k in runs if k[0] == "trasloco") if not bad else
                   "failed: " + ", ".join("%s/%s" % (k[1], k[2]) for k in bad),
                   "met" if not bad else "NOT met"))
    print("| target | measured | |")
    print("|---|---|---|")
    for c in checks:
        print("| %s | %s | %s |" % c)
    print()

    # 4 ------------------------------------------------------------------------------
    rt = [r for r in rows if r.get("src_cmds") not in ("", None)]
    if rt:
        seen = {}
        for r in rt:
            seen[(r["tool"], r["scenario"], r["mode"])] = r
        print("## Round trips (plain IMAP through the delay proxy)\n")
        print("| tool | scenario | mode | msgs | sessions src/dst | max per account src/dst "
              "| commands src/dst | waits src/dst | waits per msg | max waits in one session "
              "| FETCH cmds | APPEND cmds | msgs per APPEND | proxy CPU s |")
        print("|" + "---|" * 14)
        for (t, s, m), r in seen.items():
            msgs = num(r["msgs"]) or 1
            sw, dw = num(r["src_waits"]) or 0, num(r["dst_waits"]) or 0
            ac, am = num(r["append_cmds"]) or 0, num(r["append_msgs"]) or 0
            maxw = {}
            path = os.path.join(out, "runs", "%s-%s-%s.conns.jsonl" % (t, s, m))
            if os.path.exists(path):
                for line in open(path):
                    c = json.loads(line)
                    side = c["name"][:3]
                    maxw[side] = max(maxw.get(side, 0), c.get("waits", 0))
            rtt = num(r["rtt_ms"]) or 0
            mw = max(maxw.values()) if maxw else None
            print("| %s | %s | %s | %s | %s/%s | %s/%s | %s/%s | %s/%s | %s | %s | %s | %s | %s | %s |" % (
                t, s, m, r["msgs"], r["src_conns"], r["dst_conns"], r["src_maxconc"], r["dst_maxconc"],
                r["src_cmds"], r["dst_cmds"], r["src_waits"], r["dst_waits"],
                f((sw + dw) / msgs, 2) if m == "full" else "-",
                "-" if mw is None else "%d (%.1f s)" % (mw, mw * rtt / 1000.0),
                r["fetch_cmds"], r["append_cmds"], f(am / ac, 1) if ac else "-",
                f(r["proxy_cpu_s"], 2)))
        print("\nsessions: IMAP connections of the run (all accounts); max per account: sessions "
              "of one account open at once on one server (from the LOGIN the proxy saw).  "
              "waits: times a client had to wait for the server before going on (a command "
              "sent with nothing else outstanding, or a synchronizing literal), summed over all "
              "sessions; a session with W waits cannot take less than W x RTT.  doveadm has "
              "no dst sessions (it writes dst's Maildir itself).\n")


if __name__ == "__main__":
    main()
