#!/usr/bin/python3
"""bench/gen_corpus.py: a seeded synthetic mail corpus, written straight into Dovecot Maildirs.

usage: gen_corpus.py --home-root DIR --profile realistic|small --messages N [--seed S]
                     [--max-attach-mb X] [--uid UID --gid GID] [--doveadm-conf CONF]
                     [--summary FILE] USER [USER ...]

For each USER, replaces DIR/USER/Maildir with N messages in 11 folders:
  INBOX Sent Drafts Trash Archive Archive/2023 Archive/2024 Località Clienti
  "Clienti/Rossi & Figli" "Posta inviata"
(Maildir++ layout: ".Localit&AOA-", ".Clienti.Rossi &- Figli", names in modified UTF-7).

Messages are what a mailbox of a small Italian company holds: multipart/alternative
text+HTML (quoted-printable or 8bit), replies with In-Reply-To/References, inbound mail with
Received: lines, some multipart/mixed with PDF/JPEG/ZIP attachments (base64 of random
bytes, so incompressible; RFC 2231 UTF-8 file names), raw UTF-8 in From/Subject (~5%),
no Message-ID (~1% of inbound, 5% of sent, 30% of drafts), exact re-deliveries in the same
folder (~2%), copies in another folder (~2%), an earlier Message-ID reused with another
body (~1%).  Flags go into the file name (:2,DFRS plus keyword letters a=$Label1
b=$Forwarded c=NonJunk, declared in each folder's dovecot-keywords); the INTERNALDATE is
the file's mtime (2015-2025) and the file name starts with it, so UIDs follow dates.

Profiles (sizes as IMAP counts them, CRLF line ends):
  realistic  per 300 messages: ~252 of 2-50 KB (median ~11 KB), ~32 of 50 KB-1 MB,
             ~14 of 1-10 MB and 1 of 22-24 MB.  Seed 1, 4 users x 300: ~500 MB.
  small      1-20 KB text mail (median ~5 KB), 2% with a 15-60 KB attachment.
--max-attach-mb caps one attachment's encoded size (quick runs).

The files are written LF-only, with S=<file size>,W=<CRLF size> in their names (Dovecot
takes W as RFC822.SIZE without reading the file), owned by --uid/--gid (the uid the
Dovecot mail processes run as).  With --doveadm-conf, the folders are subscribed, Dovecot
indexes every folder (`doveadm mailbox status`) and the counts and sizes it reports are
checked against what was written (exit 1 on a mismatch).

Deterministic: the same (seed, profile, messages, max-attach-mb, user) gives the same
bytes, flags and dates, whatever the other users are.  Standard library only.
--summary writes JSON: {"users": {USER: {"messages", "bytes", "folders": {NAME: [n, bytes]},
"sizes": {...}}}, "messages", "bytes"} (bytes = RFC822.SIZE sums).
"""
import argparse
import base64
import json
import os
import quopri
import random
import shutil
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone

# name, weight, kind
FOLDERS = [
    ("INBOX", 34, "in"), ("Sent", 14, "sent"), ("Drafts", 3, "draft"), ("Trash", 5, "old"),
    ("Archive", 3, "old"), ("Archive/2023", 10, "old"), ("Archive/2024", 10, "old"),
    ("Località", 5, "in"), ("Clienti", 2, "old"), ("Clienti/Rossi & Figli", 8, "in"),
    ("Posta inviata", 6, "sent"),
]
KEYWORDS = ["$Label1", "$Forwarded", "NonJunk"]   # Maildir letters a, b, c

VOCAB = """
buongiorno gentile cliente fornitore ordine fattura bonifico scadenza preventivo offerta
consegna spedizione magazzino riunione verbale progetto cantiere sopralluogo contratto
allegato documento firmato copia conforme saldo acconto sconto listino prezzi aggiornati
grazie mille cordiali saluti distinti saluti resto disposizione eventuali chiarimenti
settimana prossima lunedì martedì mercoledì giovedì venerdì entro fine mese trimestre
il la lo le gli un una del della dei delle nel nella per con su tra fra che non più già
anche come quando dove perché così però quindi inoltre infatti comunque sempre ancora
città qualità società attività necessità priorità è può sarà
the and of to in for on with please find attached invoice order delivery meeting notes
regards thanks schedule update review draft final budget quarter shipment tracking
Milano Torino Bologna Firenze Verona Padova Brescia Bergamo Modena Parma Treviso Udine
""".split()
PEOPLE = ["Mario Rossi", "Giulia Bianchi", "Luca Ferrari", "Francesca Esposito",
          "Niccolò Gallo", "Chiara Romano", "Andrea Colombo", "Elena Ricci", "Marco Marino",
          "Sara Greco", "Lorenzo Bruno", "Federica Conti", "Anna Müller", "José García",
          "Renée Dubois", "Paolo De Luca"]
DOMAINS = ["rossiefigli.example", "fornitore-nord.example", "studio-bianchi.example",
           "logistica.example.net", "banca.example.com", "comune.example.it"]
MAILERS = ["Mozilla Thunderbird 115.4", "Microsoft Outlook 16.0", "Apple Mail (2.3774)",
           "Roundcube Webmail/1.6.5", "K-9 Mail for Android", None, None]
ATTACH = [("application/pdf", "Fattura_%d.pdf", b"%PDF-1.7\n"),
          ("application/pdf", "Preventivo n. %d.pdf", b"%PDF-1.5\n"),
          ("image/jpeg", "foto cantiere %d.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF"),
          ("application/zip", "documenti_%d.zip", b"PK\x03\x04"),
          ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
           "listino prezzi %d — località.xlsx", b"PK\x03\x04")]


def mutf7(name):
    """IMAP modified UTF-7 (RFC 3501 5.1.3), the way Dovecot names Maildir++ folders."""
    out, pend = [], []

    def flush():
        if pend:
            b = base64.b64encode("".join(pend).encode("utf-16-be")).decode().rstrip("=")
            out.append("&" + b.replace("/", ",") + "-")
            pend.clear()
    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pend.append(ch)
    flush()
    return "".join(out)


def folder_path(maildir, name):
    if name == "INBOX":
        return maildir
    return os.path.join(maildir, "." + mutf7(name).replace("/", "."))


def b_word(s):
    """RFC 2047 encoded word when needed."""
    if s.isascii():
        return s
    return "=?UTF-8?B?" + base64.b64encode(s.encode()).decode() + "?="


def rfc2231(fname):
    if fname.isascii():
        return 'filename="%s"' % fname
    enc = "".join(chr(b) if chr(b).isalnum() or chr(b) in "._-" else "%%%02X" % b
                  for b in fname.encode())
    return "filename*=UTF-8''" + enc


class User:
    def __init__(self, args, user):
        self.args, self.user = args, user
        self.rng = random.Random("trasloco-bench/%s/%s/%s" % (args.seed, args.profile, user))
        local = user.split("@")[0]
        self.me = (local.capitalize() + " " + "Bench", user)
        self.cap = int(args.max_attach_mb * 1_000_000) if args.max_attach_mb else None

    # ---- pieces ---------------------------------------------------------------------
    def words(self, nbytes):
        r, out, size = self.rng, [], 0
        while size < nbytes:
            w = r.choice(VOCAB)
            out.append(w)
            size += len(w.encode()) + 1
        paras, i = [], 0
        while i < len(out):
            k = r.randint(15, 90)
            paras.append(" ".join(out[i:i + k]).capitalize() + ".")
            i += k
        return paras

    def person(self):
        name = self.rng.choice(PEOPLE)
        local = name.split()[0].lower().encode("ascii", "ignore").decode() or "info"
        return name, "%s.%s@%s" % (local, name.split()[-1].lower().encode("ascii", "ignore").decode(),
                                   self.rng.choice(DOMAINS))

    def attachment(self, enc_size, boundary):
        r = self.rng
        if self.cap:
            enc_size = min(enc_size, self.cap)
        raw_len = max(64, int(enc_size * 0.75 * 76 / 77))
        ctype, fmt, magic = r.choice(ATTACH)
        data = magic + r.randbytes(raw_len - len(magic))
        fname = fmt % r.randint(1, 9999)
        return ("--%s\nContent-Type: %s; name=\"%s\"\nContent-Transfer-Encoding: base64\n"
                "Content-Disposition: attachment; %s\n\n" % (boundary, ctype, b_word(fname),
                                                            rfc2231(fname))
                ).encode() + base64.encodebytes(data)

    # ---- one message ----------------------------------------------------------------
    def message(self, kind, when, size_class, mid=None):
        """size_class: (name, [attachment encoded sizes]) from plan_classes"""
        r = self.rng
        outbound = kind in ("sent", "draft")
        other = self.person()
        frm, to = (self.me, other) if outbound else (other, self.me)
        raw8 = r.random() < 0.05
        subj = " ".join(self.words(r.randint(20, 70))[0].rstrip(".").split()[:9])
        reply = r.random() < 0.35
        subj = ("Re: " if reply else r.choice(["", "", "", "Fwd: ", "I: ", "R: "])) + subj
        if raw8:
            subj += " — città"
        tz = timezone(timedelta(hours=2 if 4 <= when.month <= 10 else 1)) if r.random() < 0.9 \
            else timezone(timedelta(hours=r.choice([-5, 0, 8])))
        date = when.astimezone(tz).strftime("%a, %d %b %Y %H:%M:%S %z")
        h = []
        if not outbound:
            h.append("Return-Path: <%s>" % frm[1])
            for hop in range(r.randint(1, 2)):
                h.append("Received: from mx%d.%s (mx%d.%s [203.0.113.%d])\n\tby mx.example.test "
                         "(Postfix) with ESMTPS id %X\n\tfor <%s>; %s"
                         % (hop + 1, r.choice(DOMAINS), hop + 1, r.choice(DOMAINS),
                            r.randint(1, 254), r.getrandbits(40), to[1], date))
        h.append("Date: " + date)
        enc = (lambda s: s) if raw8 else b_word
        h.append('From: "%s" <%s>' % (enc(frm[0]), frm[1]))
        h.append('To: "%s" <%s>' % (enc(to[0]), to[1]))
        if r.random() < 0.2:
            h.append('Cc: "%s" <%s>' % tuple(map(b_word, self.person())))
        h.append("Subject: " + enc(subj))
        p_nomid = {"draft": 0.30, "sent": 0.05}.get(kind, 0.01)
        if mid is None and r.random() >= p_nomid:
            mid = "<%s.%x@%s>" % (when.strftime("%Y%m%d%H%M%S"), r.getrandbits(56),
                                  self.user.split("@")[1] if outbound else r.choice(DOMAINS))
        if mid:
            h.append("Message-ID: " + mid)
        if reply:
            ref = "<%x@%s>" % (r.getrandbits(60), r.choice(DOMAINS))
            h.append("In-Reply-To: " + ref)
            h.append("References: " + ref)
        mailer = r.choice(MAILERS)
        if mailer:
            h.append(("User-Agent: " if "Thunderbird" in mailer else "X-Mailer: ") + mailer)
        h.append("MIME-Version: 1.0")

        # text size: the message's own text, then attachments by size class
        if self.args.profile == "small":
            tsize = int(min(max(r.lognormvariate(7.5, 0.7), 300), 8000))
            atts = [r.randint(15_000, 60_000)] if r.random() < 0.02 else []
        else:  # realistic
            tsize = int(min(max(r.lognormvariate(8.22, 0.75), 500), 20_000))
            atts = size_class[1]
        paras = self.words(tsize)
        sig = "\n-- \n%s\n%s\n" % (frm[0], "Tel. +39 02 %07d" % r.randint(0, 9_999_999))
        plain = "\n\n".join(textwrap.fill(p, 72) for p in paras) + "\n" + sig
        html = ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head>\n"
                "<body style=\"font-family: Arial, sans-serif; font-size: 11pt\">\n"
                + "\n".join("<p>%s</p>" % textwrap.fill(p, 72) for p in paras)
                + "\n<p style=\"color:#666\">%s</p>\n</body></html>\n" % frm[0])
        b_alt = "----=_Alt_%016x" % r.getrandbits(64)
        if r.random() < 0.5:
            pcte, pbody = "quoted-printable", quopri.encodestring(plain.encode()).decode()
        else:
            pcte, pbody = "8bit", plain
        alt = ("--%s\nContent-Type: text/plain; charset=UTF-8; format=flowed\n"
               "Content-Transfer-Encoding: %s\n\n%s\n--%s\nContent-Type: text/html; charset=UTF-8\n"
               "Content-Transfer-Encoding: quoted-printable\n\n%s\n--%s--\n"
               % (b_alt, pcte, pbody, b_alt, quopri.encodestring(html.encode()).decode(), b_alt))
        if not atts:
            h.append('Content-Type: multipart/alternative;\n\tboundary="%s"' % b_alt)
            return ("\n".join(h) + "\n\nThis is a multi-part message in MIME format.\n"
                    + alt).encode()
        b_mix = "----=_Mix_%016x" % r.getrandbits(64)
        h.append('Content-Type: multipart/mixed;\n\tboundary="%s"' % b_mix)
        out = [("\n".join(h) + "\n\nThis is a multi-part message in MIME format.\n--%s\n"
                "Content-Type: multipart/alternative;\n\tboundary=\"%s\"\n\n%s"
                % (b_mix, b_alt, alt)).encode()]
        for a in atts:
            out.append(self.attachment(a, b_mix))
        out.append(("--%s--\n" % b_mix).encode())
        return b"".join(out)

    def flags(self, kind):
        r, f = self.rng, set()
        if kind == "draft":
            f.add("D")
            if r.random() < 0.4:
                f.add("S")
        elif kind == "sent":
            f.add("S")
        elif kind == "old":
            f.add("S")
            if r.random() < 0.15:
                f.add("R")
        else:
            if r.random() < 0.7:
                f.add("S")
            if r.random() < 0.2:
                f.add("R")
        if kind != "draft" and r.random() < 0.07:
            f.add("F")
        for letter, p in (("a", 0.05), ("b", 0.04), ("c", 0.03)):
            if r.random() < p:
                f.add(letter)
        return "".join(sorted(f))

    def when(self, folder):
        r = self.rng
        if folder.startswith("Archive/"):
            y = int(folder.split("/")[1])
            lo = datetime(y, 1, 1, tzinfo=timezone.utc)
            return lo + timedelta(seconds=r.random() * 365 * 86400)
        lo = datetime(2015, 1, 1, tzinfo=timezone.utc)
        span = (datetime(2025, 10, 31, tzinfo=timezone.utc) - lo).total_seconds()
        return lo + timedelta(seconds=span * (r.random() ** 0.5))   # more recent mail

    # ---- one mailbox ------------------------------------------------------------------
    def plan_classes(self, n):
        """[(size class, [attachment encoded sizes])] for n messages.  Sizes are drawn
        stratified (one per quantile slot, then shuffled), so the total hardly depends on
        the seed."""
        r = self.rng
        if self.args.profile == "small":
            return [("small", None)] * n
        huge = round(n / 300) if n >= 150 else (1 if n >= 20 else 0)
        large = round(n * 57 / 1200)
        medium = round(n * 127 / 1200)

        def strat(k, f):
            return [f((i + r.random()) / k) for i in range(k)]
        plan = [("huge", [s]) for s in strat(huge, lambda q: int(22_000_000 + 1_800_000 * q))]
        plan += [("large", [s]) for s in strat(large, lambda q: int(1_000_000 + 8_600_000 * q ** 0.6))]
        plan += [("medium", [s] if r.random() < 0.7 else [s // 3, s - s // 3])
                 for s in strat(medium, lambda q: int(40_000 * 22.0 ** q))]
        plan += [("small", [])] * (n - len(plan))
        r.shuffle(plan)
        return plan

    def generate(self):
        r = self.rng
        names = [f[0] for f in FOLDERS]
        weights = [f[1] for f in FOLDERS]
        kind = {f[0]: f[2] for f in FOLDERS}
        made = []        # (folder, raw bytes, flags, internal date as epoch)
        small = []       # indexes into made: candidates for duplicates
        for plan in self.plan_classes(self.args.messages):
            cls = plan[0]
            x = r.random()
            if cls == "small" and small and x < 0.02:      # delivered twice, same folder
                f, raw, _, t = made[r.choice(small)]
                made.append((f, raw, self.flags(kind[f]), t + r.randint(1, 900)))
                continue
            if cls == "small" and small and x < 0.04:      # copied to another folder
                f, raw, fl, t = made[r.choice(small)]
                made.append((r.choice([n for n in names if n != f]), raw, fl, t))
                continue
            folder = r.choices(names, weights)[0]
            when = self.when(folder)
            mid = None
            if small and x < 0.05:                         # Message-ID reused, other body
                old = made[r.choice(small)][1].split(b"\n\n", 1)[0]
                for line in old.split(b"\n"):
                    if line.startswith(b"Message-ID: "):
                        mid = line[12:].decode()
            raw = self.message(kind[folder], when, plan, mid)
            delay = r.randint(0, 3) if kind[folder] in ("sent", "draft") else r.randint(4, 5400)
            made.append((folder, raw, self.flags(kind[folder]), int(when.timestamp()) + delay))
            if cls == "small":
                small.append(len(made) - 1)
        return names, made

    def write(self, home):
        names, made = self.generate()
        maildir = os.path.join(home, "Maildir")
        shutil.rmtree(maildir, ignore_errors=True)
        for name in names:
            d = folder_path(maildir, name)
            for sub in ("cur", "new", "tmp"):
                os.makedirs(os.path.join(d, sub), exist_ok=True)
            if name != "INBOX":
                open(os.path.join(d, "maildirfolder"), "w").close()
            with open(os.path.join(d, "dovecot-keywords"), "w") as fh:
                fh.write("".join("%d %s\n" % (i, k) for i, k in enumerate(KEYWORDS)))
        folders = {n: [0, 0] for n in names}
        sizes = {"lt50k": 0, "50k-1m": 0, "1m-10m": 0, "ge10m": 0}
        vsizes = []
        for seq, (folder, raw, fl, t) in enumerate(made):
            assert b"\r" not in raw
            vsize = len(raw) + raw.count(b"\n")
            base = "%d.M%06dP%dQ%d.benchgen,S=%d,W=%d:2,%s" % (
                t, self.rng.randint(0, 999_999), 4000 + seq % 30000, seq, len(raw), vsize, fl)
            path = os.path.join(folder_path(maildir, folder), "cur", base)
            with open(path, "wb") as fh:
                fh.write(raw)
            os.utime(path, (t, t))
            folders[folder][0] += 1
            folders[folder][1] += vsize
            vsizes.append(vsize)
            sizes["lt50k" if vsize < 50_000 else "50k-1m" if vsize < 1_000_000
                  else "1m-10m" if vsize < 10_000_000 else "ge10m"] += 1
        if self.args.uid is not None:
            for root, dirs, files in os.walk(maildir):
                os.chown(root, self.args.uid, self.args.gid)
                os.chmod(root, 0o700)
                for fn in files:
                    os.chown(os.path.join(root, fn), self.args.uid, self.args.gid)
        vsizes.sort()
        return {"messages": len(made), "bytes": sum(vsizes),
                "median": vsizes[len(vsizes) // 2] if vsizes else 0,
                "max": vsizes[-1] if vsizes else 0, "sizes": sizes, "folders": folders}


def doveadm(conf, *a):
    return subprocess.run(["doveadm", "-c", conf] + list(a), check=True,
                          capture_output=True, text=True).stdout


def check_with_dovecot(conf, user, summary):
    names = list(summary["folders"])
    doveadm(conf, "mailbox", "subscribe", "-u", user, *names)
    out = doveadm(conf, "-f", "tab", "mailbox", "status", "-u", user, "messages vsize", "*")
    seen = {}
    for line in out.splitlines()[1:]:
        name, n, v = line.rsplit("\t", 2)
        seen[name] = [int(n), int(v)]
    bad = ["%s: wrote %s, Dovecot sees %s" % (n, w, seen.get(n))
           for n, w in summary["folders"].items() if seen.get(n) != w]
    if bad:
        sys.exit("gen_corpus.py: %s: %s" % (user, "; ".join(bad)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--home-root", required=True, help="USER's home is HOME_ROOT/USER")
    ap.add_argument("--profile", choices=["realistic", "small"], default="realistic")
    ap.add_argument("--messages", type=int, default=300, help="per user (default 300)")
    ap.add_argument("--seed", default="1")
    ap.add_argument("--max-attach-mb", type=float, default=0, help="cap (0: none)")
    ap.add_argument("--uid", type=int)
    ap.add_argument("--gid", type=int)
    ap.add_argument("--doveadm-conf", help="index and check with this Dovecot instance")
    ap.add_argument("--summary", help="write a JSON summary here")
    ap.add_argument("users", nargs="+")
    args = ap.parse_args()
    if (args.uid is None) != (args.gid is None):
        ap.error("--uid and --gid go together")
    result = {"seed": args.seed, "profile": args.profile, "messages_per_user": args.messages,
              "max_attach_mb": args.max_attach_mb, "users": {}}
    for user in args.users:
        s = User(args, user).write(os.path.join(args.home_root, user))
        if args.doveadm_conf:
            check_with_dovecot(args.doveadm_conf, user, s)
        result["users"][user] = s
        print("gen_corpus: %s: %d messages, %.1f MB (median %.1f KB, max %.1f MB) %s"
              % (user, s["messages"], s["bytes"] / 1e6, s["median"] / 1e3, s["max"] / 1e6,
                 " ".join("%s=%d" % kv for kv in s["sizes"].items())), file=sys.stderr)
    result["messages"] = sum(u["messages"] for u in result["users"].values())
    result["bytes"] = sum(u["bytes"] for u in result["users"].values())
    if args.summary:
        with open(args.summary, "w") as fh:
            json.dump(result, fh, indent=1, ensure_ascii=False)


if __name__ == "__main__":
    main()
