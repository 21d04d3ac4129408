#!/usr/bin/python3
"""imaptool.py: IMAP fixtures and checks for trasloco's integration tests (stdlib only).

Usage: imaptool.py SUBCOMMAND [connection options] [subcommand options]

Connection options (accepted before or after the subcommand):
  --host H              server address (default 127.0.0.1)
  --port N              server port (required)
  --user U              login name; "user*admin" logs in as a Dovecot master user
  --password-env VAR    name of the environment variable holding the password
                        (default IMAP_PASSWORD); passwords never go on argv
  --tls implicit|starttls|none   (default none)
  --ca FILE             trust only this CA file (default: the system's trust store)
  --tls-name NAME       name to verify the certificate against (default: --host);
                        connecting to 127.0.0.1 with --tls-name mail.test is the usual way
  --auth login|plain    LOGIN command (default) or AUTHENTICATE PLAIN
  --authzid USER        with --auth plain: authorisation identity (master-user login:
                        --user admin --authzid user1@example.test)
  --timeout S           socket timeout in seconds (default 120)

Folder names on the command line and in output are "logical": UTF-8, '/' as the
hierarchy separator, without the personal namespace prefix ("Archive/2023" is
"INBOX.Archive.2023" on a Courier-style server).  The tool asks the server (NAMESPACE,
LIST) for its prefix and separator, and encodes modified UTF-7 itself.

Subcommands:
  login                            log in, print capabilities and namespace
  populate --seed N --profile small|standard [--messages M]
                                   create folders, APPEND a deterministic corpus
      standard (200 messages, ~15 MB by default): INBOX Sent Drafts Trash Junk Archive
      Archive/2023 Località Clienti "Clienti/Rossi & Figli" 日本語 Ελληνικά
      "Posta inviata" Progetti/2024/Q1 (parents not created) Vuota (empty).
      small (20 messages, ~40 KB): INBOX Sent Drafts Archive Archive/2023 Località
      "Clienti/Rossi & Figli" Vuota.  Both: text, multipart/alternative and
      multipart/mixed messages with base64 attachments (standard: a few of 1-3 MB),
      some without Message-ID, byte-identical duplicates in the same folder, two
      messages sharing a Message-ID with different bodies, raw UTF-8 and RFC 2047
      headers, every system flag and $Label1 $Forwarded NonJunk $Junk, INTERNALDATEs
      2010-2026 in +0100 -0500 +0530 +0000, some folders subscribed and some not.
      Deterministic from (profile, seed, messages); meant for an empty mailbox.
  append --folder F --count K --seed N [--size-kb KB] [--flags 'F1 F2']
                                   APPEND K new messages (F is created if missing)
  setflags --folder F --seed N --count K
                                   toggle flags/keywords on K messages, print changes
  expunge --folder F --count K [--seed N]
                                   \\Deleted + UID EXPUNGE on K chosen messages only
  delete-folder NAME | rename-folder OLD NEW | subscribe NAME...
  list [--json]                    folders, raw name, separator, attributes,
                                   subscription, message count
  count --folder F                 number of messages
  hold --connections C --seconds S open C logged-in sessions and keep them S seconds
  compare --dst-port N [--dst-host H] [--dst-user U] [--dst-password-env VAR]
          [--dst-tls T] [--dst-ca F] [--dst-tls-name N] [--dst-auth A] [--dst-authzid Z]
          [--map 'Src=Dst' ...] [--ignore-extra-folders] [--check-subscriptions] [-v]
      Source = the connection options, destination = the --dst-* options (each
      defaulting to the source's).  Every selectable source folder (logical name, after
      --map, which also renames the folder's children) must exist on the destination
      with the same multiset of (sha256 of BODY.PEEK[], flags without \Recent,
      INTERNALDATE as an instant); both sides are EXAMINEd (read-only) and bodies are
      fetched in batches of at most 8 MB / 200 messages.  Counted:
        missing          source copies without a destination copy (all the messages of
                         a missing folder included)
        extra            destination copies beyond the source's count (duplicates)
        flags, dates     paired copies whose flags / INTERNALDATE differ
        missing_folders  source folders absent on the destination
        extra_folders    destination-only folders (empty parents of migrated folders
                         are not counted); a failure unless --ignore-extra-folders
        subscriptions    with --check-subscriptions: folders subscribed on the source
                         (and existing there) but not on the destination
      Always prints one summary line:
        compare: folders=N messages=M missing=a extra=b flags=c dates=d missing_folders=e
                 extra_folders=f [subscriptions=g] result=identical|DIFFERENT
      preceded by one line per differing folder; -v adds every folder and per-message
      details (UID, size, Subject, Message-ID).

Exit status: 0 success (compare: identical), 1 differences found or a command refused
by the server, 2 usage error, 3 connection, TLS or login failure.
"""

import argparse
import base64
import concurrent.futures
import hashlib
import imaplib
import json
import os
import random
import re
import signal
import ssl
import sys
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

EXIT_OK, EXIT_DIFF, EXIT_USAGE, EXIT_CONNECT = 0, 1, 2, 3
SYSTEM_FLAGS = ["\\Seen", "\\Answered", "\\Flagged", "\\Draft", "\\Deleted"]
KEYWORDS = ["$Label1", "$Forwarded", "NonJunk", "$Junk"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
# body fetch batches: bounded in bytes and in messages, so memory stays small
BATCH_BYTES = 8 << 20
BATCH_MESSAGES = 200


class ToolError(Exception):
    def __init__(self, msg, code=EXIT_DIFF):
        super().__init__(msg)
        self.code = code


# --------------------------------------------------------------------------------------
# modified UTF-7 (RFC 3501 section 5.1.3)

def mutf7_encode(name):
    """UTF-8 str -> modified UTF-7: printable ASCII as is, '&' as '&-', everything else
    as '&' + modified base64 (',' for '/', no padding) of UTF-16BE + '-'."""
    out, pending = [], []

    def flush():
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            b64 = base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",")
            out.append("&" + b64 + "-")
            pending.clear()

    for ch in name:
        if "\x20" <= ch <= "\x7e":
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


def mutf7_decode(raw):
    """modified UTF-7 -> str; raises ValueError on anything RFC 3501 does not allow."""
    out, i = [], 0
    while i < len(raw):
        ch = raw[i]
        if ch != "&":
            if not "\x20" <= ch <= "\x7e":
                raise ValueError("non-ASCII character in mailbox name %r" % raw)
            out.append(ch)
            i += 1
            continue
        j = raw.find("-", i + 1)
        if j < 0:
            raise ValueError("unterminated '&' in %r" % raw)
        chunk = raw[i + 1:j]
        if not chunk:
            out.append("&")
        else:
            if not re.fullmatch(r"[A-Za-z0-9+,]+", chunk):
                raise ValueError("bad modified base64 in %r" % raw)
            data = base64.b64decode(chunk.replace(",", "/") + "=" * (-len(chunk) % 4))
            if len(data) % 2:
                raise ValueError("odd UTF-16 length in %r" % raw)
            out.append(data.decode("utf-16-be"))
        i = j + 1
    return "".join(out)


def mutf7_decode_lenient(raw):
    try:
        return mutf7_decode(raw)
    except (ValueError, UnicodeDecodeError):
        return raw


# --------------------------------------------------------------------------------------
# IMAP response parsing.  imaplib hands back untagged data as a list where a response
# with literals is split into (text ending "{n}", literal) tuples followed by the rest
# of the line as a separate bytes item.  We glue them back into wire format and parse
# that properly, so literals anywhere (names, BODY[], headers) are handled.

class Atom(str):
    """an IMAP atom (distinguishes NIL and flags from quoted strings)"""


def join_responses(data):
    """imaplib data list -> list of complete responses in wire format (bytes)"""
    out, cur, after_literal = [], None, False
    for item in data:
        if item is None:
            continue
        if isinstance(item, tuple):
            head, lit = item
            if cur is None or not after_literal:
                if cur is not None:
                    out.append(cur)
                cur = b""
            cur += head + b"\r\n" + lit
            after_literal = True
        else:
            if after_literal:
                out.append(cur + item)
                cur = None
            else:
                out.append(item)
            after_literal = False
    if cur is not None:
        out.append(cur)
    return out


_ATOM_END = set(b" ()\r\n")
_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n")


def parse_values(buf):
    """Parse IMAP values (atoms, quoted strings, literals, lists, NIL) from bytes.
    Returns a list: Atom for atoms, str for quoted strings, bytes for literals, list for
    parenthesised lists, None for NIL."""
    stack = [[]]
    i, n = 0, len(buf)
    while i < n:
        c = buf[i]
        if c in (0x20, 0x0D, 0x0A):
            i += 1
        elif c == 0x28:  # (
            stack.append([])
            i += 1
        elif c == 0x29:  # )
            if len(stack) == 1:
                raise ValueError("unbalanced ')' in response")
            lst = stack.pop()
            stack[-1].append(lst)
            i += 1
        elif c == 0x22:  # "
            j, parts = i + 1, bytearray()
            while True:
                if j >= n:
                    raise ValueError("unterminated quoted string")
                d = buf[j]
                if d == 0x5C:  # backslash
                    parts.append(buf[j + 1])
                    j += 2
                elif d == 0x22:
                    break
                else:
                    parts.append(d)
                    j += 1
            stack[-1].append(bytes(parts).decode("utf-8", "surrogateescape"))
            i = j + 1
        elif c == 0x7B:  # {
            m = _LITERAL.match(buf, i)
            if not m:
                raise ValueError("bad literal at %d" % i)
            size = int(m.group(1))
            start = m.end()
            stack[-1].append(buf[start:start + size])
            i = start + size
        else:
            j = i
            while j < n and buf[j] not in _ATOM_END:
                if buf[j] == 0x5B:  # '[' : section spec, may contain spaces and parens
                    k = buf.find(b"]", j)
                    j = n if k < 0 else k + 1
                else:
                    j += 1
            word = buf[i:j].decode("utf-8", "surrogateescape")
            stack[-1].append(None if word.upper() == "NIL" else Atom(word))
            i = j
    if len(stack) != 1:
        raise ValueError("unbalanced '(' in response")
    return stack[0]


def as_text(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "surrogateescape")
    return v


def imap_quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_internaldate(s):
    """'dd-Mon-yyyy hh:mm:ss +zzzz' -> epoch seconds (locale independent)"""
    m = re.fullmatch(r"\s*(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)",
                     s)
    if not m:
        raise ValueError("bad INTERNALDATE %r" % s)
    day, mon, year, hh, mm, ss, sign, zh, zm = m.groups()
    off = timedelta(hours=int(zh), minutes=int(zm)) * (1 if sign == "+" else -1)
    dt = datetime(int(year), MONTHS.index(mon.capitalize()) + 1, int(day), int(hh), int(mm),
                  int(ss), tzinfo=timezone(off))
    return int(dt.timestamp())


def format_internaldate(ts, tz_minutes):
    tz = timezone(timedelta(minutes=tz_minutes))
    dt = datetime.fromtimestamp(ts, tz)
    sign = "+" if tz_minutes >= 0 else "-"
    z = abs(tz_minutes)
    return "%02d-%s-%04d %02d:%02d:%02d %s%02d%02d" % (
        dt.day, MONTHS[dt.month - 1], dt.year, dt.hour, dt.minute, dt.second, sign, z // 60, z % 60)


def format_rfc5322_date(ts, tz_minutes):
    tz = timezone(timedelta(minutes=tz_minutes))
    dt = datetime.fromtimestamp(ts, tz)
    sign = "+" if tz_minutes >= 0 else "-"
    z = abs(tz_minutes)
    return "%s, %02d %s %04d %02d:%02d:%02d %s%02d%02d" % (
        WEEKDAYS[dt.weekday()], dt.day, MONTHS[dt.month - 1], dt.year, dt.hour, dt.minute,
        dt.second, sign, z // 60, z % 60)


def uid_set(uids):
    """sorted UIDs -> compact IMAP sequence set '1:5,8,10:12'"""
    out, uids = [], sorted(uids)
    i = 0
    while i < len(uids):
        j = i
        while j + 1 < len(uids) and uids[j + 1] == uids[j] + 1:
            j += 1
        out.append(str(uids[i]) if i == j else "%d:%d" % (uids[i], uids[j]))
        i = j + 1
    return ",".join(out)


def norm_flags(flags):
    """frozenset of flags without \\Recent; system flags in canonical case, keywords as is"""
    canon = {f.lower(): f for f in SYSTEM_FLAGS}
    out = set()
    for f in flags:
        f = str(f)
        if f.lower() == "\\recent":
            continue
        out.add(canon.get(f.lower(), f))
    return frozenset(out)


# --------------------------------------------------------------------------------------
# connection

class Endpoint:
    def __init__(self, host, port, user, password_env, tls, ca, tls_name, auth, authzid,
                 timeout):
        self.host, self.port, self.user = host, port, user
        self.password_env, self.tls, self.ca = password_env, tls, ca
        self.tls_name = tls_name or host
        self.auth, self.authzid, self.timeout = auth, authzid, timeout

    def describe(self):
        return "%s@%s:%s (tls=%s)" % (self.user, self.host, self.port, self.tls)


class _IMAP4TLS(imaplib.IMAP4_SSL):
    """implicit TLS verifying the certificate against server_name, not the address"""

    def __init__(self, host, port, ssl_context, server_name, timeout):
        self._server_name = server_name
        super().__init__(host, port, ssl_context=ssl_context, timeout=timeout)

    def _create_socket(self, timeout):
        sock = imaplib.IMAP4._create_socket(self, timeout)
        return self.ssl_context.wrap_socket(sock, server_hostname=self._server_name)


class Session:
    """A logged-in IMAP connection plus the personal namespace's prefix and separator."""

    def __init__(self, ep):
        self.ep = ep
        password = os.environ.get(ep.password_env)
        if password is None:
            raise ToolError("environment variable %s (password for %s) is not set"
                            % (ep.password_env, ep.user), EXIT_USAGE)
        try:
            self.m = self._connect(ep)
            self._login(ep, password)
        except ssl.SSLCertVerificationError as e:
            raise ToolError("%s: TLS certificate verification failed: %s"
                            % (ep.describe(), e.verify_message or e), EXIT_CONNECT)
        except ssl.SSLError as e:
            raise ToolError("%s: TLS error: %s" % (ep.describe(), e), EXIT_CONNECT)
        except (OSError, EOFError) as e:
            raise ToolError("%s: cannot connect: %s" % (ep.describe(), e), EXIT_CONNECT)
        except imaplib.IMAP4.error as e:
            raise ToolError("%s: login failed: %s" % (ep.describe(), e), EXIT_CONNECT)
        typ, data = self.m.capability()
        self.caps = set(as_text(data[0]).upper().split()) if typ == "OK" and data[0] else set()
        self.prefix, self.delim = self._namespace()

    @staticmethod
    def _connect(ep):
        if ep.tls == "none":
            return imaplib.IMAP4(ep.host, ep.port, timeout=ep.timeout)
        ctx = ssl.create_default_context(cafile=ep.ca) if ep.ca else ssl.create_default_context()
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if ep.tls == "implicit":
            return _IMAP4TLS(ep.host, ep.port, ctx, ep.tls_name, ep.timeout)
        m = imaplib.IMAP4(ep.host, ep.port, timeout=ep.timeout)
        # imaplib.starttls() verifies against self.host: point it at the TLS name
        # for the handshake only
        m.host = ep.tls_name
        try:
            m.starttls(ctx)
        finally:
            m.host = ep.host
        return m

    def _login(self, ep, password):
        m = self.m
        if ep.auth == "plain":
            token = ("%s\0%s\0%s" % (ep.authzid or "", ep.user, password)).encode("utf-8")
            m.authenticate("PLAIN", lambda _challenge: token)
            return
        if password.isascii() and password.isprintable():
            typ, data = m._simple_command("LOGIN", imap_quote(ep.user), imap_quote(password))
        else:  # non-ASCII password: send it as a literal
            m.literal = password.encode("utf-8")
            typ, data = m._simple_command("LOGIN", imap_quote(ep.user))
        if typ != "OK":
            raise imaplib.IMAP4.error(as_text(data[-1]) if data else "LOGIN refused")
        m.state = "AUTH"

    def _namespace(self):
        if "NAMESPACE" in self.caps:
            typ, data = self.m.namespace()
            if typ == "OK" and data and data[0]:
                vals = parse_values(join_responses(data)[0])
                personal = vals[0] if vals else None
                if personal:
                    prefix, delim = as_text(personal[0][0]), personal[0][1]
                    return prefix, as_text(delim) if delim else "/"
        typ, data = self.m.list('""', '""')
        for resp in join_responses(data):
            vals = parse_values(resp)
            if len(vals) >= 2 and vals[1]:
                return "", as_text(vals[1])
        return "", "/"

    def close(self):
        try:
            self.m.logout()
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass

    # ---- commands

    def simple(self, name, *args):
        """run a command whose untagged data we do not need; NO -> ToolError"""
        typ, data = self.m._simple_command(name, *args)
        if typ != "OK":
            raise ToolError("%s %s refused: %s" % (name, " ".join(args), as_text(data[-1])))
        return data

    # ---- names

    def to_raw(self, logical):
        """logical name -> server name (prefix, separator, modified UTF-7)"""
        if logical.upper() == "INBOX":
            return "INBOX"
        parts = logical.split("/")
        if self.delim != "/" and any(self.delim in p for p in parts):
            raise ToolError("folder name %r contains the server's separator %r"
                            % (logical, self.delim), EXIT_USAGE)
        return mutf7_encode(self.prefix + self.delim.join(parts))

    def to_logical(self, raw, delim=None):
        name = mutf7_decode_lenient(raw)
        if name.upper() == "INBOX":
            return "INBOX"
        if self.prefix and name.startswith(self.prefix):
            name = name[len(self.prefix):]
        d = delim or self.delim
        if d and d != "/":
            name = name.replace(d, "/")
        return name

    # ---- folders

    def folders(self):
        """list of dicts: logical, raw, delim, attrs (list), selectable (bool)"""
        typ, data = self.m.list('""', '"*"')
        if typ != "OK":
            raise ToolError("LIST refused")
        out = []
        for resp in join_responses(data):
            vals = parse_values(resp)
            if len(vals) < 3:
                continue
            attrs = [str(a) for a in vals[0]]
            delim = as_text(vals[1]) if vals[1] else None
            raw = as_text(vals[2])
            low = {a.lower() for a in attrs}
            out.append({"logical": self.to_logical(raw, delim), "raw": raw, "delim": delim,
                        "attrs": attrs,
                        "selectable": not ({"\\noselect", "\\nonexistent"} & low)})
        return out

    def subscribed(self):
        typ, data = self.m.lsub('""', '"*"')
        if typ != "OK":
            raise ToolError("LSUB refused")
        out = set()
        for resp in join_responses(data):
            vals = parse_values(resp)
            if len(vals) >= 3:
                out.add(self.to_logical(as_text(vals[2]), as_text(vals[1]) if vals[1] else None))
        return out

    def exists(self, logical):
        raw = self.to_raw(logical)
        return any(f["raw"] == raw and f["selectable"] for f in self.folders())

    def create(self, logical):
        typ, data = self.m.create(imap_quote(self.to_raw(logical)))
        if typ != "OK" and b"ALREADYEXISTS" not in (data[-1] or b""):
            raise ToolError("CREATE %s refused: %s" % (logical, as_text(data[-1])))

    def status_messages(self, raw):
        typ, data = self.m.status(imap_quote(raw), "(MESSAGES)")
        if typ != "OK":
            raise ToolError("STATUS %s refused: %s" % (raw, as_text(data[-1])))
        vals = parse_values(join_responses(data)[0])
        items = vals[-1]
        for k, v in zip(items[::2], items[1::2]):
            if str(k).upper() == "MESSAGES":
                return int(v)
        raise ToolError("STATUS %s: no MESSAGES" % raw)

    def select(self, logical=None, raw=None, readonly=False):
        raw = raw if raw is not None else self.to_raw(logical)
        typ, data = self.m.select(imap_quote(raw), readonly=readonly)
        if typ != "OK":
            raise ToolError("%s %s refused: %s" % ("EXAMINE" if readonly else "SELECT",
                                                    raw, as_text(data[-1])))
        return int(data[0])

    def fetch(self, uids, items):
        """UID FETCH uids items -> {uid: {ITEM: value}} (uids: str set or list)"""
        spec = uids if isinstance(uids, str) else uid_set(uids)
        typ, data = self.m.uid("FETCH", spec, items)
        if typ != "OK":
            raise ToolError("UID FETCH refused: %s" % as_text(data[-1]))
        out = {}
        for resp in join_responses(data):
            vals = parse_values(resp)
            if len(vals) < 2 or not isinstance(vals[1], list):
                continue
            lst = vals[1]
            d = {str(k).upper(): v for k, v in zip(lst[::2], lst[1::2])}
            if "UID" in d:
                out.setdefault(int(d["UID"]), {}).update(d)
        return out

    def append(self, logical, message, flags, internaldate):
        flag_arg = "(" + " ".join(flags) + ")" if flags else None
        typ, data = self.m.append(imap_quote(self.to_raw(logical)), flag_arg,
                                  '"' + internaldate + '"', message)
        if typ != "OK":
            raise ToolError("APPEND to %s refused: %s" % (logical, as_text(data[-1])))


# --------------------------------------------------------------------------------------
# message generation: deterministic from (seed, index), realistic RFC 5322 with CRLF

PEOPLE = [
    ("Mario Rossi", "mario.rossi@example.test"),
    ("Giulia Bianchi", "giulia.bianchi@example.test"),
    ("Luca Ferrari", "luca.ferrari@rossiefigli.example"),
    ("Zoë Müller", "zoe.mueller@example.de"),
    ("山田 太郎", "yamada@example.jp"),
    ("Γιώργος Παπαδόπουλος", "g.papadopoulos@example.gr"),
    ("Anna Esposito", "anna.esposito@example.it"),
    ("John Smith", "john.smith@example.com"),
    ("Priya Sharma", "priya.sharma@example.in"),
    ("Carlos Pérez", "carlos.perez@example.mx"),
]
SUBJECTS_ASCII = [
    "Quarterly report {n}", "Meeting notes {n}", "Invoice {n} attached", "Project update",
    "Preventivo n. {n}", "Ordine {n} confermato", "Photos from the trip", "Contratto di fornitura",
    "Agenda for next week", "Verbale assemblea {n}", "Your account statement",
]
SUBJECTS_UTF8 = [
    "Fattura n° {n} – scadenza", "Località: sopralluogo del {n}", "会議の議事録 {n}",
    "Αναφορά προόδου {n}", "Café ☕ domani?", "Zażółć gęślą jaźń {n}",
    "Riunione di lunedì", "Größenänderung 📎 {n}",
]
SENTENCES = [
    "Ti invio in allegato il documento di cui abbiamo parlato.",
    "Please find the figures for the last quarter below.",
    "La riunione è spostata a giovedì alle 15:00.",
    "Let me know if anything is missing or unclear.",
    "Il preventivo è valido trenta giorni dalla data di emissione.",
    "We should review the migration plan before Friday.",
    "Grazie per la disponibilità, a presto.",
    "Καλημέρα, σας στέλνω την αναφορά.",
    "明日の会議の資料を添付します。",
    "The quick brown fox jumps over the lazy dog.",
    "Lines that start with From or a dot must survive unchanged:",
    "From the beginning of this line.",
    ".a line starting with a dot",
    "Tabs\tand   several   spaces   stay as they are.",
]
TZS = [60, -300, 330, 0]  # +0100 -0500 +0530 +0000
ATTACHMENT_TYPES = [
    ("application/pdf", "fattura_{n}.pdf", b"%PDF-1.4\n"),
    ("image/jpeg", "foto_{n}.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"),
    ("application/zip", "archivio_{n}.zip", b"PK\x03\x04"),
    ("text/csv", "dati_{n}.csv", b"id;nome;importo\n"),
    ("application/pdf", "relazione_{n}_perché.pdf", b"%PDF-1.7\n"),  # RFC 2231 name
]


def encode_word(s):
    """RFC 2047 B-encoded words for a non-ASCII header value: whole characters, at most
    45 bytes (a 72-character word) each, folded onto continuation lines"""
    if s.isascii():
        return s
    words, chunk = [], b""
    for ch in s:
        b = ch.encode("utf-8")
        if len(chunk) + len(b) > 45:
            words.append(chunk)
            chunk = b""
        chunk += b
    words.append(chunk)
    return "\r\n ".join("=?UTF-8?B?" + base64.b64encode(w).decode("ascii") + "?="
                         for w in words)


def address(person, raw_utf8):
    """'Name <addr>': raw UTF-8 (quoted) in 8-bit messages, else RFC 2047 encoded"""
    name, addr = person
    if name.isascii():
        return "%s <%s>" % (name, addr)
    if raw_utf8:
        return '"%s" <%s>' % (name, addr)
    return "%s <%s>" % (encode_word(name), addr)


def b64_lines(data):
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def message_id(seed_key, index):
    h = hashlib.sha256(("%s:%d" % (seed_key, index)).encode()).hexdigest()
    return "<%s.%s@trasloco.example.test>" % (h[:16], h[16:24])


class MessageSpec:
    """What one APPEND carries; the bytes are generated on demand from (seed_key, index)."""

    def __init__(self, seed_key, index, folder, ts, tz, flags):
        self.seed_key, self.index, self.folder = seed_key, index, folder
        self.ts, self.tz, self.flags = ts, tz, list(flags)
        self.no_msgid = False
        self.msgid_of = None         # reuse another message's Message-ID (different body)
        self.utf8_raw = False        # raw UTF-8 in Subject/From (8-bit headers)
        self.attach = []             # attachment sizes in bytes (before base64)
        self.html = False
        self.reply = False

    def internaldate(self):
        return format_internaldate(self.ts, self.tz)

    def build(self):
        rng = random.Random("%s:msg:%d" % (self.seed_key, self.index))
        sender, rcpt = rng.sample(PEOPLE, 2)
        n = rng.randint(1, 9999)
        if self.utf8_raw:
            subject = rng.choice(SUBJECTS_UTF8).format(n=n)
        else:
            subject = encode_word(rng.choice(SUBJECTS_ASCII + SUBJECTS_UTF8).format(n=n))
        if self.reply:
            subject = "Re: " + subject
        sent = self.ts - rng.randint(5, 7200)   # Date: a little before arrival
        lines = [
            "Return-Path: <%s>" % sender[1],
            "Received: from mx%d.example.test (mx%d.example.test [192.0.2.%d])"
            % (n % 7, n % 7, n % 250 + 1),
            "\tby mail.example.test (Postfix) with ESMTPS id %X"
            % rng.getrandbits(40),
            "\tfor <%s>; %s" % (rcpt[1], format_rfc5322_date(self.ts, self.tz)),
            "Date: " + format_rfc5322_date(sent, self.tz),
            "From: " + address(sender, self.utf8_raw),
            "To: " + address(rcpt, self.utf8_raw),
        ]
        if rng.random() < 0.3:
            lines.append("Cc: " + ",\r\n\t".join(address(p, self.utf8_raw)
                                                 for p in rng.sample(PEOPLE, 3)))
        lines.append("Subject: " + subject)
        if not self.no_msgid:
            idx = self.index if self.msgid_of is None else self.msgid_of
            lines.append("Message-ID: " + message_id(self.seed_key, idx))
        if self.reply:
            refs = [message_id(self.seed_key + ":ref", self.index * 10 + k) for k in range(4)]
            lines.append("In-Reply-To: " + refs[-1])
            lines.append("References: " + "\r\n ".join(refs))   # folded header
        lines.append("X-Mailer: trasloco-imaptool %d" % (n % 5))
        lines.append("MIME-Version: 1.0")

        text = "\r\n".join(rng.choice(SENTENCES) for _ in range(rng.randint(2, 12)))
        text = "Ciao %s,\r\n\r\n%s\r\n\r\n-- \r\n%s\r\n" % (rcpt[0], text, sender[0])
        text_part = (b"Content-Type: text/plain; charset=utf-8\r\n"
                     b"Content-Transfer-Encoding: 8bit\r\n\r\n" + text.encode("utf-8"))
        if self.html:
            html = "<html><body><p>" + text.replace("\r\n", "<br>\r\n") + "</p></body></html>\r\n"
            bnd = "alt_%016x" % rng.getrandbits(64)
            body_part = ("Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n" % bnd
                         ).encode() + b"--" + bnd.encode() + b"\r\n" + text_part + \
                b"\r\n--" + bnd.encode() + b"\r\n" + \
                b"Content-Type: text/html; charset=utf-8\r\n" \
                b"Content-Transfer-Encoding: base64\r\n\r\n" + b64_lines(html.encode("utf-8")) + \
                b"--" + bnd.encode() + b"--\r\n"
        else:
            body_part = text_part

        if not self.attach:
            return "\r\n".join(lines).encode("utf-8") + b"\r\n" + body_part

        bnd = "mix_%016x" % rng.getrandbits(64)
        out = ["\r\n".join(lines).encode("utf-8"),
               ("\r\nContent-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n" % bnd).encode(),
               b"This is a multi-part message in MIME format.\r\n",
               b"--" + bnd.encode() + b"\r\n", body_part]
        for k, size in enumerate(self.attach):
            ctype, fname, magic = ATTACHMENT_TYPES[(self.index + k) % len(ATTACHMENT_TYPES)]
            fname = fname.format(n=n)
            data = (magic + rng.randbytes(max(0, size - len(magic))))[:max(size, 1)]
            if fname.isascii():
                disp = 'attachment; filename="%s"' % fname
            else:
                disp = "attachment;\r\n filename*=utf-8''" + "".join(
                    c if c.isascii() and c.isalnum() or c in "._-" else
                    "".join("%%%02X" % b for b in c.encode("utf-8")) for c in fname)
            out.append(b"\r\n--" + bnd.encode() + b"\r\n")
            out.append(("Content-Type: %s; name=\"%s\"\r\nContent-Disposition: %s\r\n"
                        "Content-Transfer-Encoding: base64\r\n\r\n"
                        % (ctype, encode_word(fname), disp)).encode("utf-8"))
            out.append(b64_lines(data))
        out.append(b"\r\n--" + bnd.encode() + b"--\r\n")
        return b"".join(out)


# folder: (logical name, weight for random placement, subscribed)
PROFILE_FOLDERS = {
    "standard": [
        ("INBOX", 30, True), ("Sent", 10, True), ("Drafts", 4, True), ("Trash", 5, True),
        ("Junk", 4, False), ("Archive", 6, True), ("Archive/2023", 8, True),
        ("Località", 4, True), ("Clienti", 3, False), ("Clienti/Rossi & Figli", 5, True),
        ("日本語", 3, True), ("Ελληνικά", 3, False), ("Posta inviata", 4, False),
        # three levels deep; its parents are never created (\Noselect on Maildir++)
        ("Progetti/2024/Q1", 3, True),
        ("Vuota", 0, False),   # stays empty
    ],
    "small": [
        ("INBOX", 8, True), ("Sent", 3, True), ("Drafts", 1, True), ("Archive", 1, True),
        ("Archive/2023", 3, True), ("Località", 2, True), ("Clienti/Rossi & Figli", 2, False),
        ("Vuota", 0, False),
    ],
}
PROFILE_MESSAGES = {"standard": 200, "small": 20}
DATE_FROM = int(datetime(2010, 1, 1, tzinfo=timezone.utc).timestamp())
DATE_TO = int(datetime(2026, 6, 30, tzinfo=timezone.utc).timestamp())


def random_flags(rng, folder):
    flags = []
    leaf = folder.split("/")[-1]
    if leaf == "Drafts":
        flags.append("\\Draft")
    if rng.random() < (0.95 if leaf in ("Sent", "Posta inviata") else 0.65):
        flags.append("\\Seen")
    for flag, p in (("\\Answered", 0.12), ("\\Flagged", 0.08), ("$Label1", 0.06),
                    ("$Forwarded", 0.05), ("NonJunk", 0.08)):
        if rng.random() < p:
            flags.append(flag)
    if leaf == "Junk" and rng.random() < 0.7:
        flags.append("$Junk")
    if rng.random() < (0.3 if leaf == "Trash" else 0.02):
        flags.append("\\Deleted")
    return flags


def build_plan(profile, seed, total):
    """The list of MessageSpecs to APPEND, in order (deterministic from profile+seed)."""
    folders = PROFILE_FOLDERS[profile]
    seed_key = "trasloco:%s:%d" % (profile, seed)
    rng = random.Random(seed_key + ":plan")
    filled = [f for f, w, _ in folders if w > 0]
    weights = [w for _, w, _ in folders if w > 0]
    n_dups = max(2, total * 3 // 100) if total >= 10 else (1 if total >= 4 else 0)
    n_unique = total - n_dups
    specs = []
    for i in range(n_unique):
        # the first messages visit every non-empty folder once, the rest are weighted
        folder = filled[i] if i < len(filled) else rng.choices(filled, weights)[0]
        ts = rng.randint(DATE_FROM, DATE_TO)
        spec = MessageSpec(seed_key, i, folder, ts, rng.choice(TZS), random_flags(rng, folder))
        spec.html = rng.random() < 0.35
        spec.reply = rng.random() < 0.25
        spec.utf8_raw = rng.random() < 0.08
        spec.no_msgid = rng.random() < (0.3 if folder.endswith("Drafts") else 0.04)
        if rng.random() < (0.15 if profile == "standard" else 0.2):
            spec.attach = [rng.randint(2000, 60000) if profile == "standard"
                           else rng.randint(200, 3000)]
        specs.append(spec)

    if profile == "standard" and n_unique > 20:
        # medium attachments (~4 MB in all for 200 messages) and a few 1-3 MB messages
        for i in rng.sample(range(len(filled), n_unique), max(1, n_unique * 25 // 200)):
            specs[i].attach = [rng.randint(40_000, 250_000)]
        for i in rng.sample(range(len(filled), n_unique), max(1, round(n_unique * 5 / 200))):
            specs[i].attach = [rng.randint(750_000, 2_200_000)]   # 1-3 MB once in base64
        # a forwarded mail with two attachments
        specs[len(filled)].attach = [rng.randint(5_000, 30_000), rng.randint(5_000, 30_000)]

    # guaranteed edge cases, on messages of INBOX (index 0 is INBOX's first message)
    inbox = [s for s in specs if s.folder == "INBOX"]
    if inbox:
        s = inbox[0]
        s.flags = SYSTEM_FLAGS + KEYWORDS        # every flag at once
        s.utf8_raw = True
    if len(inbox) >= 2:
        inbox[1].no_msgid = True
        inbox[1].flags = ["\\Seen", "NonJunk"]
    if len(inbox) >= 4:
        # same Message-ID, different bodies, same folder
        inbox[3].msgid_of = inbox[2].index
        inbox[2].no_msgid = inbox[3].no_msgid = False
    for tz, s in zip(TZS, inbox[4:8]):         # every time zone at least once
        s.tz = tz
    if len(specs) > 1 and not any("\\Draft" in s.flags for s in specs):
        specs[-1].flags.append("\\Draft")
    if len(specs) > 2 and not any("$Junk" in s.flags for s in specs):
        specs[-2].flags.append("$Junk")

    # genuine duplicates: the same message (bytes, flags, date) appended twice, same folder
    dup_src = rng.sample(range(min(len(specs), max(n_dups, 1) * 4)), min(n_dups, len(specs)))
    for i in dup_src:
        pos = rng.randint(i + 1, len(specs))
        specs.insert(pos, specs[i])
    return specs, [f for f, _, _ in folders], [f for f, _, sub in folders if sub]


# --------------------------------------------------------------------------------------
# subcommands

def cmd_login(args, s):
    print("login: ok %s caps=%s" % (s.ep.describe(), " ".join(sorted(s.caps))))
    print("namespace: prefix=%r separator=%r" % (s.prefix, s.delim))
    return EXIT_OK


def cmd_populate(args, s):
    total = args.messages if args.messages is not None else PROFILE_MESSAGES[args.profile]
    specs, folders, subscribed = build_plan(args.profile, args.seed, total)
    for f in folders:
        if f != "INBOX":
            s.create(f)
    for f in subscribed:
        s.simple("SUBSCRIBE", imap_quote(s.to_raw(f)))
    nbytes = 0
    for spec in specs:
        msg = spec.build()
        s.append(spec.folder, msg, spec.flags, spec.internaldate())
        nbytes += len(msg)
    print("populate: profile=%s seed=%d folders=%d messages=%d bytes=%d"
          % (args.profile, args.seed, len(folders), len(specs), nbytes))
    return EXIT_OK


def cmd_append(args, s):
    created = ""
    if not s.exists(args.folder):
        s.create(args.folder)
        created = " (created)"
    seed_key = "trasloco:append:%d:%s" % (args.seed, args.folder)
    rng = random.Random(seed_key)
    nbytes = 0
    for i in range(args.count):
        flags = args.flags.split() if args.flags is not None else \
            random_flags(rng, args.folder)
        spec = MessageSpec(seed_key, i, args.folder, rng.randint(DATE_FROM, DATE_TO),
                           rng.choice(TZS), flags)
        spec.html = rng.random() < 0.3
        if args.size_kb:
            spec.attach = [args.size_kb * 1024 * 3 // 4]   # base64 grows it by 4/3
        msg = spec.build()
        s.append(args.folder, msg, spec.flags, spec.internaldate())
        nbytes += len(msg)
    print("append: folder=%s%s messages=%d bytes=%d" % (args.folder, created, args.count, nbytes))
    return EXIT_OK


def _uids_and_flags(s):
    data = s.fetch("1:*", "(UID FLAGS)")
    return {uid: [str(f) for f in d.get("FLAGS", [])] for uid, d in data.items()}


def cmd_setflags(args, s):
    if s.select(args.folder) == 0:
        print("setflags: folder=%s is empty, nothing changed" % args.folder)
        return EXIT_OK
    current = _uids_and_flags(s)
    rng = random.Random("trasloco:setflags:%d:%s" % (args.seed, args.folder))
    chosen = sorted(rng.sample(sorted(current), min(args.count, len(current))))
    for uid in chosen:
        have = {f.lower() for f in current[uid]}
        add, remove = [], []
        for flag in rng.sample(SYSTEM_FLAGS + KEYWORDS, rng.randint(1, 2)):
            (remove if flag.lower() in have else add).append(flag)
        for op, flags in (("+FLAGS.SILENT", add), ("-FLAGS.SILENT", remove)):
            if flags:
                typ, data = s.m.uid("STORE", str(uid), op, "(" + " ".join(flags) + ")")
                if typ != "OK":
                    raise ToolError("UID STORE %d refused: %s" % (uid, as_text(data[-1])))
        print("setflags: folder=%s uid=%d %s" % (
            args.folder, uid, " ".join(["+" + f for f in add] + ["-" + f for f in remove])))
    print("setflags: folder=%s changed=%d" % (args.folder, len(chosen)))
    return EXIT_OK


def cmd_expunge(args, s):
    if "UIDPLUS" not in s.caps:
        raise ToolError("server lacks UIDPLUS: UID EXPUNGE needed to expunge only our picks")
    if s.select(args.folder) == 0:
        print("expunge: folder=%s is empty" % args.folder)
        return EXIT_OK
    uids = sorted(_uids_and_flags(s))
    rng = random.Random("trasloco:expunge:%d:%s" % (args.seed, args.folder))
    chosen = sorted(rng.sample(uids, min(args.count, len(uids))))
    spec = uid_set(chosen)
    typ, data = s.m.uid("STORE", spec, "+FLAGS.SILENT", "(\\Deleted)")
    if typ != "OK":
        raise ToolError("UID STORE refused: %s" % as_text(data[-1]))
    s.simple("UID", "EXPUNGE", spec)
    print("expunge: folder=%s expunged=%d uids=%s" % (args.folder, len(chosen), spec))
    return EXIT_OK


def cmd_delete_folder(args, s):
    s.simple("DELETE", imap_quote(s.to_raw(args.name)))
    print("delete-folder: %s" % args.name)
    return EXIT_OK


def cmd_subscribe(args, s):
    for name in args.names:
        s.simple("SUBSCRIBE", imap_quote(s.to_raw(name)))
    print("subscribe: %s" % ", ".join(args.names))
    return EXIT_OK


def cmd_rename_folder(args, s):
    s.simple("RENAME", imap_quote(s.to_raw(args.old)), imap_quote(s.to_raw(args.new)))
    print("rename-folder: %s -> %s" % (args.old, args.new))
    return EXIT_OK


def cmd_count(args, s):
    print(s.status_messages(s.to_raw(args.folder)))
    return EXIT_OK


def cmd_dates(args, s):
    """every message's INTERNALDATE day, in its own zone (as IMAP's SEARCH SINCE
    reads it): FOLDER<TAB>YYYY-MM-DD, one line per message"""
    for f in sorted(s.folders(), key=lambda f: f["logical"]):
        if not f["selectable"]:
            continue
        s.select(raw=f["raw"], readonly=True)
        if s.status_messages(f["raw"]) == 0:
            continue
        for uid, d in sorted(s.fetch("1:*", "(UID INTERNALDATE)").items()):
            m = re.match(r"\s*(\d{1,2})-([A-Za-z]{3})-(\d{4})", as_text(d["INTERNALDATE"]))
            print("%s\t%s-%02d-%02d" % (f["logical"], m.group(3),
                                         MONTHS.index(m.group(2).capitalize()) + 1,
                                         int(m.group(1))))
    return EXIT_OK


def cmd_list(args, s):
    subs = s.subscribed()
    rows = []
    for f in sorted(s.folders(), key=lambda f: (f["logical"] != "INBOX", f["logical"])):
        count = s.status_messages(f["raw"]) if f["selectable"] else None
        rows.append({"name": f["logical"], "raw": f["raw"], "delimiter": f["delim"],
                     "attributes": f["attrs"], "subscribed": f["logical"] in subs,
                     "messages": count})
    if args.json:
        json.dump(rows, sys.stdout, ensure_ascii=False, indent=1)
        print()
        return EXIT_OK
    for r in rows:
        print("%s\traw=%s\tdelimiter=%s\tattributes=%s\tsubscribed=%s\tmessages=%s" % (
            r["name"], r["raw"], r["delimiter"] or "NIL", " ".join(r["attributes"]) or "-",
            "yes" if r["subscribed"] else "no", "-" if r["messages"] is None else r["messages"]))
    return EXIT_OK


def cmd_hold(args, s):
    sessions = [s]
    try:
        for _ in range(args.connections - 1):
            sessions.append(Session(s.ep))
        print("hold: %d sessions open" % len(sessions), flush=True)
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            time.sleep(min(10.0, max(0.0, end - time.monotonic())))
            for x in sessions:
                x.m.noop()
    except ToolError as e:
        print("hold: only %d sessions: %s" % (len(sessions), e), file=sys.stderr)
        return EXIT_CONNECT
    finally:
        for x in sessions[1:]:
            x.close()
    return EXIT_OK


# ---- compare

class FolderScan:
    """per-message (sha256, flags, INTERNALDATE epoch) of one folder, plus a label for -v"""

    def __init__(self):
        self.entries = []    # (sha256 hex, frozenset flags, epoch)
        self.labels = {}     # sha256 -> short description (Message-ID / Subject / size)


def scan_folder(s, raw, want_labels):
    scan = FolderScan()
    if s.select(raw=raw, readonly=True) == 0:
        return scan
    items = "(UID FLAGS INTERNALDATE RFC822.SIZE%s)" % (
        " BODY.PEEK[HEADER.FIELDS (MESSAGE-ID SUBJECT)]" if want_labels else "")
    meta = s.fetch("1:*", items)
    uids = sorted(meta)
    batch, batch_bytes = [], 0

    def flush():
        if not batch:
            return
        bodies = s.fetch(batch, "(UID BODY.PEEK[])")
        for uid in batch:
            d = bodies.get(uid, {})
            body = next((v for k, v in d.items() if k.startswith("BODY[")), None)
            if body is None:
                raise ToolError("%s: no BODY[] for UID %d" % (raw, uid))
            body = body if isinstance(body, bytes) else str(body).encode("utf-8",
                                                                        "surrogateescape")
            h = hashlib.sha256(body).hexdigest()
            m = meta[uid]
            scan.entries.append((h, norm_flags(m.get("FLAGS", [])),
                                 parse_internaldate(as_text(m["INTERNALDATE"]))))
            if want_labels:
                hdr = next((v for k, v in m.items() if k.startswith("BODY[HEADER")), b"")
                hdr = as_text(hdr or b"")
                hdr = re.sub(r"\r?\n[ \t]+", " ", hdr).strip().replace("\r\n", " | ")
                scan.labels.setdefault(h, "uid=%d size=%d %s" % (uid, len(body), hdr[:120]))
        batch.clear()

    for uid in uids:
        batch.append(uid)
        batch_bytes += int(meta[uid].get("RFC822.SIZE", 0))
        if batch_bytes >= BATCH_BYTES or len(batch) >= BATCH_MESSAGES:
            flush()
            batch_bytes = 0
    flush()
    return scan


def compare_scans(src, dst):
    """-> Counter(missing, extra, flags, dates), list of detail lines"""
    r, details = Counter(), []
    by_src, by_dst = defaultdict(list), defaultdict(list)
    for h, f, d in src.entries:
        by_src[h].append((f, d))
    for h, f, d in dst.entries:
        by_dst[h].append((f, d))
    for h in sorted(by_src.keys() | by_dst.keys()):
        a, b = by_src.get(h, []), by_dst.get(h, [])
        # -v labels: the first copy's UID on that side, size, Subject and Message-ID
        label = ("src " + src.labels[h]) if h in src.labels else \
            ("dst " + dst.labels[h]) if h in dst.labels else "sha256=" + h[:16]
        if len(a) > len(b):
            r["missing"] += len(a) - len(b)
            details.append("  missing x%d: %s" % (len(a) - len(b), label))
        if len(b) > len(a):
            r["extra"] += len(b) - len(a)
            details.append("  extra x%d: %s" % (len(b) - len(a),
                                                 ("dst " + dst.labels[h]) if h in dst.labels
                                                 else label))
        # pair copies: exact (flags, date) matches first, then the rest in order
        ca, cb = Counter(a), Counter(b)
        common = ca & cb
        ra, rb = sorted((ca - common).elements(), key=repr), sorted((cb - common).elements(),
                                                                    key=repr)
        for (fa, da), (fb, db) in zip(ra, rb):
            if fa != fb:
                r["flags"] += 1
                details.append("  flags: %s src=(%s) dst=(%s)" % (
                    label, " ".join(sorted(fa)), " ".join(sorted(fb))))
            if da != db:
                r["dates"] += 1
                details.append("  date: %s src=%s dst=%s" % (
                    label, format_internaldate(da, 0), format_internaldate(db, 0)))
    return r, details


def apply_map(name, mapping):
    """--map 'Src=Dst' renames Src and everything below it (longest match wins)"""
    for src in sorted(mapping, key=len, reverse=True):
        if name == src:
            return mapping[src]
        if name.startswith(src + "/"):
            return mapping[src] + name[len(src):]
    return name


def cmd_compare(args, src):
    mapping = {}
    for m in args.map:
        if "=" not in m:
            raise ToolError("--map wants 'Src=Dst', got %r" % m, EXIT_USAGE)
        a, b = m.split("=", 1)
        mapping[a.strip("/")] = b.strip("/")
    dst_ep = Endpoint(args.dst_host or args.host, args.dst_port, args.dst_user or args.user,
                      args.dst_password_env or args.password_env, args.dst_tls or args.tls,
                      args.dst_ca or args.ca, args.dst_tls_name or args.tls_name,
                      args.dst_auth or args.auth, args.dst_authzid, args.timeout)
    dst = Session(dst_ep)
    verbose = args.verbose
    try:
        src_folders = src.folders()
        dst_folders = dst.folders()
        src_sel = {f["logical"]: f["raw"] for f in src_folders if f["selectable"]}
        dst_sel = {f["logical"]: f["raw"] for f in dst_folders if f["selectable"]}
        total = Counter()
        n_messages = 0
        mapped = {}
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
        for name in sorted(src_sel, key=lambda n: (n != "INBOX", n)):
            if name in args.skip:
                continue
            target = apply_map(name, mapping)
            mapped[name] = target
            if target not in dst_sel:
                count = src.status_messages(src_sel[name])
                n_messages += count
                total["missing_folders"] += 1
                total["missing"] += count
                print("folder %s: MISSING on destination (%s), %d messages"
                      % (name, target, count))
                continue
            fs = pool.submit(scan_folder, src, src_sel[name], verbose)
            fd = pool.submit(scan_folder, dst, dst_sel[target], verbose)
            s_scan, d_scan = fs.result(), fd.result()
            n_messages += len(s_scan.entries)
            r, details = compare_scans(s_scan, d_scan)
            total.update(r)
            bad = any(r.values())
            if verbose or bad:
                print("folder %s%s: src=%d dst=%d missing=%d extra=%d flags=%d dates=%d%s" % (
                    name, "" if target == name else " -> " + target, len(s_scan.entries),
                    len(d_scan.entries), r["missing"], r["extra"], r["flags"], r["dates"],
                    "" if bad else " ok"))
            if verbose:
                for line in details:
                    print(line)
        pool.shutdown()

        targets = set(mapped.values())
        ancestors = {"/".join(t.split("/")[:k])
                     for t in targets for k in range(1, t.count("/") + 1)}
        for name in sorted(set(dst_sel) - targets):
            if name in ancestors and dst.status_messages(dst_sel[name]) == 0:
                if verbose:
                    print("folder %s: only on destination, empty parent of migrated folders"
                          " (not counted)" % name)
                continue
            total["extra_folders"] += 1
            print("folder %s: EXTRA on destination%s" % (
                name, " (ignored)" if args.ignore_extra_folders else ""))

        if args.check_subscriptions:
            dst_subs = dst.subscribed()
            src_all = {f["logical"] for f in src_folders}
            for name in sorted(src.subscribed() & src_all):
                target = apply_map(name, mapping)
                if target not in dst_subs:
                    total["subscriptions"] += 1
                    print("folder %s: subscribed on source, not on destination (%s)"
                          % (name, target))
    finally:
        dst.close()

    failing = ["missing", "extra", "flags", "dates", "missing_folders"]
    if not args.ignore_extra_folders:
        failing.append("extra_folders")
    if args.check_subscriptions:
        failing.append("subscriptions")
    ok = not any(total[k] for k in failing)
    line = ("compare: folders=%d messages=%d missing=%d extra=%d flags=%d dates=%d "
            "missing_folders=%d extra_folders=%d" % (
                len(src_sel), n_messages, total["missing"], total["extra"], total["flags"],
                total["dates"], total["missing_folders"], total["extra_folders"]))
    if args.check_subscriptions:
        line += " subscriptions=%d" % total["subscriptions"]
    print(line + (" result=identical" if ok else " result=DIFFERENT"))
    return EXIT_OK if ok else EXIT_DIFF


# --------------------------------------------------------------------------------------
# command line

def add_connection_options(p, suppress):
    """Connection options; on subparsers their defaults are SUPPRESSed so that a value
    given before the subcommand is not overwritten by the subparser's default."""
    def d(value):
        return argparse.SUPPRESS if suppress else value
    g = p.add_argument_group("connection (the source, for compare)")
    g.add_argument("--host", default=d("127.0.0.1"), help="default 127.0.0.1")
    g.add_argument("--port", type=int, default=d(None), help="required")
    g.add_argument("--user", default=d(None), help="required; 'user*master' for master login")
    g.add_argument("--password-env", default=d("IMAP_PASSWORD"), metavar="VAR",
                   help="environment variable with the password (default IMAP_PASSWORD)")
    g.add_argument("--tls", choices=["implicit", "starttls", "none"], default=d("none"),
                   help="default none")
    g.add_argument("--ca", default=d(None), metavar="FILE",
                   help="CA file to trust (default: system store)")
    g.add_argument("--tls-name", default=d(None), metavar="NAME",
                   help="verify the certificate for NAME (default: --host)")
    g.add_argument("--auth", choices=["login", "plain"], default=d("login"),
                   help="LOGIN (default) or AUTHENTICATE PLAIN")
    g.add_argument("--authzid", default=d(None),
                   help="with --auth plain: log in as this user (master-user login)")
    g.add_argument("--timeout", type=float, default=d(120.0), help="seconds (default 120)")


def build_parser():
    head, _, rest = __doc__.partition("\n\n")
    parser = argparse.ArgumentParser(
        prog="imaptool.py", description=head, epilog=rest,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_connection_options(parser, False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")

    def new(name, func, helptext):
        p = sub.add_parser(name, help=helptext, description=helptext)
        add_connection_options(p, True)
        p.set_defaults(func=func)
        return p

    new("login", cmd_login, "log in, print capabilities and namespace")
    p = new("populate", cmd_populate, "create folders and APPEND a deterministic corpus")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--profile", choices=["small", "standard"], required=True)
    p.add_argument("--messages", type=int, help="total APPENDs (default: 20 small, 200 standard)")
    p = new("append", cmd_append, "APPEND new generated messages to a folder")
    p.add_argument("--folder", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--size-kb", type=int, help="add an attachment of about this size")
    p.add_argument("--flags", help="flags for every message (default: random)")
    p = new("setflags", cmd_setflags, "toggle flags and keywords on some messages")
    p.add_argument("--folder", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--count", type=int, required=True)
    p = new("expunge", cmd_expunge, "expunge some messages (UID EXPUNGE)")
    p.add_argument("--folder", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--seed", type=int, default=1)
    p = new("delete-folder", cmd_delete_folder, "DELETE a folder")
    p.add_argument("name")
    p = new("subscribe", cmd_subscribe, "SUBSCRIBE to folders")
    p.add_argument("names", nargs="+")
    p = new("rename-folder", cmd_rename_folder, "RENAME a folder")
    p.add_argument("old")
    p.add_argument("new")
    p = new("list", cmd_list, "list folders")
    p.add_argument("--json", action="store_true")
    new("dates", cmd_dates, "every message's INTERNALDATE day, by folder")
    p = new("count", cmd_count, "print a folder's message count")
    p.add_argument("--folder", required=True)
    p = new("hold", cmd_hold, "keep logged-in sessions open for a while")
    p.add_argument("--connections", type=int, default=1)
    p.add_argument("--seconds", type=float, required=True)
    p = new("compare", cmd_compare, "compare source and destination message by message")
    p.add_argument("--dst-host")
    p.add_argument("--dst-port", type=int, required=True)
    p.add_argument("--dst-user")
    p.add_argument("--dst-password-env", metavar="VAR")
    p.add_argument("--dst-tls", choices=["implicit", "starttls", "none"])
    p.add_argument("--dst-ca", metavar="FILE")
    p.add_argument("--dst-tls-name", metavar="NAME")
    p.add_argument("--dst-auth", choices=["login", "plain"])
    p.add_argument("--dst-authzid")
    p.add_argument("--map", action="append", default=[], metavar="SRC=DST")
    p.add_argument("--ignore-extra-folders", action="store_true")
    p.add_argument("--skip", action="append", default=[], metavar="FOLDER",
                   help="leave this source folder out (known not to be copied)")
    p.add_argument("--check-subscriptions", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    return parser


def run_tool(prog, parser, argv=None):
    """parse argv, open the session of --host/--port/--user and run the subcommand"""
    args = parser.parse_args(argv)
    if args.port is None or args.user is None:
        print("%s: --port and --user are required" % prog, file=sys.stderr)
        return EXIT_USAGE
    if args.authzid and args.auth != "plain":
        print("%s: --authzid needs --auth plain" % prog, file=sys.stderr)
        return EXIT_USAGE
    ep = Endpoint(args.host, args.port, args.user, args.password_env, args.tls, args.ca,
                  args.tls_name, args.auth, args.authzid, args.timeout)
    session = None
    try:
        session = Session(ep)
        return args.func(args, session)
    except ToolError as e:
        print("%s %s: %s" % (prog, args.command, e), file=sys.stderr)
        return e.code
    except (imaplib.IMAP4.error, OSError, ValueError) as e:
        print("%s %s: %s: %s" % (prog, args.command, type(e).__name__, e), file=sys.stderr)
        return EXIT_DIFF
    finally:
        if session is not None:
            session.close()


def main(argv=None):
    # behave like other command line tools in a pipe: `imaptool.py list | head` ends quietly
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    return run_tool("imaptool.py", build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
