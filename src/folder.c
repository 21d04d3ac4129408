/* folder: see include/folder.h
 *
 * The '/' form.  A name is the decoded UTF-8 with the personal namespace
 * prefix removed and the server's delimiter written as '/': the name as a
 * user sees it, and the one form options, logs, reports and the state use.
 * A component may itself contain '/' when the server's delimiter is
 * something else ('.' on Courier), so inside a component a literal '/' is
 * written "\/" and a literal backslash "\\"; splitting the '/' form at the
 * slashes not preceded by a backslash then always gives back the server's
 * components.  A control character (U+0000-U+001F, U+007F-U+009F) is
 * written "\uHHHH", so that a name is always printable.  Everything else,
 * '%' and '*' included, is itself.
 *
 * A raw name that is not valid modified UTF-7 keeps its bytes (prefix
 * stripped, delimiter as '/'), with '&', a literal '/' and every byte
 * outside 0x20-0x7e written "\xHH" and a backslash "\\".  Such a name
 * always holds a "\x", which no decoded name does (a backslash there is
 * always followed by '/', '\\' or 'u'), so it cannot collide with a valid
 * one and the folder can still be filtered, mapped and reported.  On its
 * way to a destination, "\xHH" becomes the text "%HH".
 *
 * INBOX is case-insensitive (RFC 3501): a raw "inbox" is named "INBOX",
 * and so is the first component of "Inbox/Sub".  Every other comparison
 * is a byte comparison of the '/' form.
 *
 * Filters: a pattern is fnmatch(3)ed against the whole '/' form without
 * FNM_PATHNAME and with FNM_NOESCAPE, so a pattern is written exactly as
 * the name is shown ("a\/b" matches the one folder "a\/b"; "[*]" matches a
 * literal '*') and "Archive*" also takes "Archive/2023"; a pattern without
 * wildcards also takes the folder's descendants, so that "--folder
 * Archive" means the whole Archive tree.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "folder.h"
#include "mutf7.h"

/* ---- small helpers ------------------------------------------------------ */

struct sbuf {
	char *s;
	size_t len, cap;
	bool oom;
};

static void sb_putn(struct sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		char *ns;

		while (cap < b->len + n + 1)
			cap *= 2;
		ns = realloc(b->s, cap);
		if (ns == NULL) {
			b->oom = true;
			return;
		}
		b->s = ns;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void sb_putc(struct sbuf *b, char c)
{
	sb_putn(b, &c, 1);
}

/* The built string ("" if nothing was put), or NULL with errno = ENOMEM. */
static char *sb_take(struct sbuf *b)
{
	if (b->s == NULL)
		sb_putn(b, "", 0);
	if (b->oom) {
		free(b->s);
		b->s = NULL;
		errno = ENOMEM;
		return NULL;
	}
	return b->s;
}

static bool is_inbox(const char *name)
{
	return strcasecmp(name, "INBOX") == 0;
}

/* 5 when name is INBOX or starts with INBOX followed by sep, else 0. */
static size_t inbox_len(const char *name, char sep)
{
	if (strncasecmp(name, "INBOX", 5) != 0)
		return 0;
	return name[5] == '\0' || (sep != 0 && name[5] == sep) ? 5 : 0;
}

/* Two '/'-form names are one folder: INBOX in any case, the rest exact. */
static bool name_eq(const char *a, const char *b)
{
	if (inbox_len(a, '/') && inbox_len(b, '/'))
		return strcmp(a + 5, b + 5) == 0;
	return strcmp(a, b) == 0;
}

static bool raw_eq(const char *a, const char *b)
{
	return (is_inbox(a) && is_inbox(b)) || strcmp(a, b) == 0;
}

static const char *folder_label(const struct folder *f)
{
	return f->name != NULL ? f->name : f->raw;
}

/* ---- roles ----------------------------------------------------------- */

static const char *const role_names[] = {
	[ROLE_NONE] = NULL,
	[ROLE_SENT] = "Sent",
	[ROLE_DRAFTS] = "Drafts",
	[ROLE_TRASH] = "Trash",
	[ROLE_JUNK] = "Junk",
	[ROLE_ARCHIVE] = "Archive",
	[ROLE_ALL] = "All",
	[ROLE_FLAGGED] = "Flagged",
	[ROLE_IMPORTANT] = "Important",
};

const char *folder_role_name(enum folder_role role)
{
	if ((size_t)role >= sizeof(role_names) / sizeof(role_names[0]))
		return NULL;
	return role_names[role];
}

enum folder_role folder_role_from_attr(const char *attr)
{
	/* Gmail's pre-SPECIAL-USE XLIST names, still seen on old servers. */
	static const struct {
		const char *attr;
		enum folder_role role;
	} xlist[] = {
		{ "Spam", ROLE_JUNK },
		{ "AllMail", ROLE_ALL },
		{ "Starred", ROLE_FLAGGED },
	};

	if (attr == NULL)
		return ROLE_NONE;
	if (*attr == '\\')
		attr++;
	for (size_t r = ROLE_SENT; r < sizeof(role_names) / sizeof(role_names[0]); r++)
		if (strcasecmp(attr, role_names[r]) == 0)
			return (enum folder_role)r;
	for (size_t i = 0; i < sizeof(xlist) / sizeof(xlist[0]); i++)
		if (strcasecmp(attr, xlist[i].attr) == 0)
			return xlist[i].role;
	return ROLE_NONE;
}

/* Folder names the big clients and webmails create, by language.  Only
 * top-level names count: "[Gmail]/Sent Mail" is Gmail's business (it
 * announces SPECIAL-USE anyway), "Clienti/Bozze" is the user's. */
static const struct {
	const char *name;
	enum folder_role role;
} well_known[] = {
	/* English */
	{ "Sent", ROLE_SENT }, { "Sent Items", ROLE_SENT },
	{ "Sent Messages", ROLE_SENT }, { "Sent Mail", ROLE_SENT },
	{ "Drafts", ROLE_DRAFTS }, { "Draft", ROLE_DRAFTS },
	{ "Trash", ROLE_TRASH }, { "Deleted Items", ROLE_TRASH },
	{ "Deleted Messages", ROLE_TRASH }, { "Deleted", ROLE_TRASH },
	{ "Bin", ROLE_TRASH },
	{ "Junk", ROLE_JUNK }, { "Spam", ROLE_JUNK },
	{ "Junk E-mail", ROLE_JUNK }, { "Junk Email", ROLE_JUNK },
	{ "Junk Mail", ROLE_JUNK }, { "Bulk Mail", ROLE_JUNK },
	{ "Archive", ROLE_ARCHIVE }, { "Archives", ROLE_ARCHIVE },
	/* Italian */
	{ "Posta inviata", ROLE_SENT }, { "Inviata", ROLE_SENT },
	{ "Inviati", ROLE_SENT }, { "Elementi inviati", ROLE_SENT },
	{ "Bozze", ROLE_DRAFTS },
	{ "Cestino", ROLE_TRASH }, { "Posta eliminata", ROLE_TRASH },
	{ "Elementi eliminati", ROLE_TRASH },
	{ "Posta indesiderata", ROLE_JUNK }, { "Indesiderata", ROLE_JUNK },
	{ "Archivio", ROLE_ARCHIVE },
	/* German */
	{ "Gesendet", ROLE_SENT }, { "Gesendete Objekte", ROLE_SENT },
	{ "Gesendete Elemente", ROLE_SENT },
	{ "Entwürfe", ROLE_DRAFTS },
	{ "Papierkorb", ROLE_TRASH }, { "Gelöschte Objekte", ROLE_TRASH },
	{ "Gelöschte Elemente", ROLE_TRASH },
	{ "Junk-E-Mail", ROLE_JUNK }, { "Spamverdacht", ROLE_JUNK },
	{ "Archiv", ROLE_ARCHIVE },
	/* French */
	{ "Envoyés", ROLE_SENT }, { "Éléments envoyés", ROLE_SENT },
	{ "Messages envoyés", ROLE_SENT },
	{ "Brouillons", ROLE_DRAFTS },
	{ "Corbeille", ROLE_TRASH }, { "Éléments supprimés", ROLE_TRASH },
	{ "Courrier indésirable", ROLE_JUNK }, { "Indésirables", ROLE_JUNK },
	/* Spanish */
	{ "Enviados", ROLE_SENT }, { "Elementos enviados", ROLE_SENT },
	{ "Borradores", ROLE_DRAFTS },
	{ "Papelera", ROLE_TRASH }, { "Elementos eliminados", ROLE_TRASH },
	{ "Correo no deseado", ROLE_JUNK },
	{ "Archivo", ROLE_ARCHIVE },
	/* Portuguese */
	{ "Itens enviados", ROLE_SENT },
	{ "Rascunhos", ROLE_DRAFTS },
	{ "Lixeira", ROLE_TRASH }, { "Lixo", ROLE_TRASH },
	{ "Itens excluídos", ROLE_TRASH }, { "Itens eliminados", ROLE_TRASH },
	{ "Lixo eletrônico", ROLE_JUNK }, { "Lixo electrónico", ROLE_JUNK },
	{ "Arquivo", ROLE_ARCHIVE },
	/* Dutch */
	{ "Verzonden", ROLE_SENT }, { "Verzonden items", ROLE_SENT },
	{ "Concepten", ROLE_DRAFTS },
	{ "Prullenbak", ROLE_TRASH }, { "Verwijderde items", ROLE_TRASH },
	{ "Ongewenste e-mail", ROLE_JUNK },
	{ "Archief", ROLE_ARCHIVE },
	/* Swedish */
	{ "Skickat", ROLE_SENT }, { "Skickade", ROLE_SENT },
	{ "Skickade objekt", ROLE_SENT },
	{ "Utkast", ROLE_DRAFTS },
	{ "Papperskorgen", ROLE_TRASH }, { "Borttagna objekt", ROLE_TRASH },
	{ "Skräppost", ROLE_JUNK },
	{ "Arkiv", ROLE_ARCHIVE },
	/* Danish and Norwegian */
	{ "Sendt", ROLE_SENT }, { "Sendte elementer", ROLE_SENT },
	{ "Kladder", ROLE_DRAFTS },
	{ "Papirkurv", ROLE_TRASH }, { "Slettede elementer", ROLE_TRASH },
	{ "Uønsket e-post", ROLE_JUNK }, { "Uønsket e-mail", ROLE_JUNK },
	{ "Søppelpost", ROLE_JUNK },
	/* Finnish */
	{ "Lähetetyt", ROLE_SENT }, { "Lähetetyt kohteet", ROLE_SENT },
	{ "Luonnokset", ROLE_DRAFTS },
	{ "Roskakori", ROLE_TRASH }, { "Poistetut", ROLE_TRASH },
	{ "Poistetut kohteet", ROLE_TRASH },
	{ "Roskaposti", ROLE_JUNK },
	{ "Arkisto", ROLE_ARCHIVE },
	/* Polish */
	{ "Wysłane", ROLE_SENT }, { "Elementy wysłane", ROLE_SENT },
	{ "Kopie robocze", ROLE_DRAFTS }, { "Wersje robocze", ROLE_DRAFTS },
	{ "Kosz", ROLE_TRASH }, { "Elementy usunięte", ROLE_TRASH },
	{ "Wiadomości-śmieci", ROLE_JUNK },
	{ "Archiwum", ROLE_ARCHIVE },
	/* Czech */
	{ "Odeslané", ROLE_SENT }, { "Odeslaná pošta", ROLE_SENT },
	{ "Koncepty", ROLE_DRAFTS },
	{ "Koš", ROLE_TRASH }, { "Odstraněná pošta", ROLE_TRASH },
	{ "Nevyžádaná pošta", ROLE_JUNK },
	/* Russian */
	{ "Отправленные", ROLE_SENT },
	{ "Черновики", ROLE_DRAFTS },
	{ "Корзина", ROLE_TRASH }, { "Удаленные", ROLE_TRASH },
	{ "Удалённые", ROLE_TRASH },
	{ "Спам", ROLE_JUNK }, { "Нежелательная почта", ROLE_JUNK },
	{ "Архив", ROLE_ARCHIVE },
	/* Greek */
	{ "Απεσταλμένα", ROLE_SENT },
	{ "Πρόχειρα", ROLE_DRAFTS },
	{ "Διαγραμμένα", ROLE_TRASH },
	{ "Ανεπιθύμητα", ROLE_JUNK },
};

/* Simple one-to-one lower-casing for the scripts of the table above:
 * ASCII, Latin-1 supplement, Latin Extended-A, Greek, Cyrillic.  Enough to
 * make "POSTA INVIATA" and "ÉLÉMENTS ENVOYÉS" match; not Unicode folding. */
static uint32_t fold_latin_ext_a(uint32_t c)
{
	if (c == 0x130 || c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17f)
		return c;       /* dotted/dotless i, kra, 'n, long s: no pair */
	if (c == 0x178)
		return 0xff;    /* Ÿ */
	if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e))
		return (c & 1) ? c + 1 : c;
	return (c & 1) ? c : c + 1;
}

static uint32_t fold_greek(uint32_t c)
{
	static const struct {
		uint16_t upper, lower;
	} tonos[] = {
		{ 0x386, 0x3ac }, { 0x388, 0x3ad }, { 0x389, 0x3ae },
		{ 0x38a, 0x3af }, { 0x38c, 0x3cc }, { 0x38e, 0x3cd },
		{ 0x38f, 0x3ce },
	};

	if (c >= 0x391 && c <= 0x3ab && c != 0x3a2)
		return c + 0x20;
	if (c == 0x3c2)
		return 0x3c3;   /* final sigma */
	for (size_t i = 0; i < sizeof(tonos) / sizeof(tonos[0]); i++)
		if (c == tonos[i].upper)
			return tonos[i].lower;
	return c;
}

static uint32_t fold_char(uint32_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c + 0x20;
	if (c >= 0xc0 && c <= 0xde && c != 0xd7)
		return c + 0x20;
	if (c >= 0x100 && c <= 0x17f)
		return fold_latin_ext_a(c);
	if (c >= 0x386 && c <= 0x3ce)
		return fold_greek(c);
	if (c >= 0x400 && c <= 0x40f)
		return c + 0x50;
	if (c >= 0x410 && c <= 0x42f)
		return c + 0x20;
	return c;
}

static bool fold_eq(const char *a, const char *b)
{
	const unsigned char *pa = (const unsigned char *)a;
	const unsigned char *pb = (const unsigned char *)b;
	uint32_t ca, cb;

	while (*pa != '\0' && *pb != '\0') {
		if (mutf7_utf8_next(&pa, &ca) < 0 || mutf7_utf8_next(&pb, &cb) < 0)
			return false;
		if (fold_char(ca) != fold_char(cb))
			return false;
	}
	return *pa == '\0' && *pb == '\0';
}

enum folder_role folder_role_from_name(const char *utf8_name)
{
	if (utf8_name == NULL || strchr(utf8_name, '/') != NULL)
		return ROLE_NONE;
	for (size_t i = 0; i < sizeof(well_known) / sizeof(well_known[0]); i++)
		if (fold_eq(utf8_name, well_known[i].name))
			return well_known[i].role;
	return ROLE_NONE;
}

/* ---- folder lists ------------------------------------------------------ */

void folder_list_init(struct folder_list *l)
{
	memset(l, 0, sizeof(*l));
}

void folder_list_free(struct folder_list *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].raw);
		free(l->v[i].name);
	}
	free(l->v);
	free(l->prefix);
	folder_list_init(l);
}

int folder_list_set_namespace(struct folder_list *l, const char *prefix, char delim)
{
	char *p = strdup(prefix != NULL ? prefix : "");

	if (p == NULL)
		return -1;
	free(l->prefix);
	l->prefix = p;
	l->delim = delim;
	return 0;
}

/* Length of the namespace prefix raw starts with, 0 if none.  A leading
 * INBOX in the prefix ("INBOX." on Courier) matches in any case. */
static size_t prefix_match(const char *raw, const char *prefix)
{
	size_t n, k = 0;

	if (prefix == NULL || *prefix == '\0')
		return 0;
	n = strlen(prefix);
	if (n >= 5 && strncasecmp(prefix, "INBOX", 5) == 0) {
		if (strncasecmp(raw, "INBOX", 5) != 0)
			return 0;
		k = 5;
	}
	if (strncmp(raw + k, prefix + k, n - k) != 0)
		return 0;
	/* the namespace itself is not a folder name to strip to nothing */
	return raw[n] != '\0' ? n : 0;
}

static void sb_putesc(struct sbuf *b, char kind, unsigned int v)
{
	char esc[8];

	if (kind == 'u')
		snprintf(esc, sizeof(esc), "\\u%04X", v & 0xffffu);
	else
		snprintf(esc, sizeof(esc), "\\x%02X", v & 0xffu);
	sb_putn(b, esc, strlen(esc));
}

/* Decoded UTF-8 into the '/' form: the delimiter becomes '/', a literal
 * '/' or backslash is escaped, control characters are written \uHHHH. */
static void put_decoded(struct sbuf *b, const char *s, char delim)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p != '\0') {
		const unsigned char *start = p;
		uint32_t c;

		if (delim != 0 && *p == (unsigned char)delim) {
			sb_putc(b, '/');
			p++;
			continue;
		}
		if (*p == '/' || *p == '\\') {
			sb_putc(b, '\\');
			sb_putc(b, (char)*p++);
			continue;
		}
		if (mutf7_utf8_next(&p, &c) < 0) {
			/* mutf7_decode gives valid UTF-8; be safe anyway */
			sb_putesc(b, 'x', *start);
			p = start + 1;
			continue;
		}
		if (c < 0x20 || (c >= 0x7f && c <= 0x9f))
			sb_putesc(b, 'u', c);
		else
			sb_putn(b, (const char *)start, (size_t)(p - start));
	}
}

/* An undecodable raw name, kept unique and printable (see the top). */
static void put_escaped_raw(struct sbuf *b, const char *s, char delim)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (delim != 0 && *s == delim) {
			sb_putc(b, '/');
		} else if (c == '\\') {
			sb_putn(b, "\\\\", 2);
		} else if (c < 0x20 || c >= 0x7f || c == '/' || c == '&') {
			sb_putesc(b, 'x', c);
		} else {
			sb_putc(b, *s);
		}
	}
}

/* The '/' form of a raw name as listed by l.  NULL only on ENOMEM. */
static char *raw_to_name(const struct folder_list *l, const char *raw, char delim,
			 bool *undecodable)
{
	struct sbuf b = { 0 };
	const char *body;
	char *dec;

	if (is_inbox(raw))
		return strdup("INBOX");
	body = raw + prefix_match(raw, l->prefix);
	dec = mutf7_decode(body);
	if (dec != NULL) {
		put_decoded(&b, dec, delim);
		free(dec);
	} else if (errno == EINVAL) {
		put_escaped_raw(&b, body, delim);
		if (undecodable != NULL)
			*undecodable = true;
	} else {
		return NULL;
	}
	if (!b.oom && b.s != NULL && inbox_len(b.s, '/'))
		memcpy(b.s, "INBOX", 5);
	return sb_take(&b);
}

static int list_grow(struct folder_list *l)
{
	size_t cap;
	struct folder *v;

	if (l->n < l->cap)
		return 0;
	cap = l->cap ? 2 * l->cap : 16;
	if (cap > SIZE_MAX / sizeof(*v)) {
		errno = ENOMEM;
		return -1;
	}
	v = realloc(l->v, cap * sizeof(*v));
	if (v == NULL)
		return -1;
	l->v = v;
	l->cap = cap;
	return 0;
}

int folder_list_add(struct folder_list *l, const char *raw, char delim,
		    enum folder_role role, bool noselect)
{
	struct folder *f;
	char *r, *name;
	bool undecodable;

	if (raw == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (folder_list_find_raw(l, raw) != NULL)
		return 0;
	if (list_grow(l) < 0)
		return -1;
	r = strdup(raw);
	undecodable = false;
	name = raw_to_name(l, raw, delim != 0 ? delim : l->delim, &undecodable);
	if (r == NULL || name == NULL) {
		free(r);
		free(name);
		errno = ENOMEM;
		return -1;
	}
	f = &l->v[l->n++];
	f->raw = r;
	f->name = name;
	f->delim = delim;
	f->role = role;
	f->noselect = noselect;
	f->subscribed = false;
	f->undecodable = undecodable;
	if (role != ROLE_NONE)
		l->has_roles = true;
	return 0;
}

void folder_list_subscribe(struct folder_list *l, const char *raw)
{
	struct folder *f = folder_list_find_raw(l, raw);

	if (f != NULL)
		f->subscribed = true;
}

struct folder *folder_list_find_raw(const struct folder_list *l, const char *raw)
{
	if (raw == NULL)
		return NULL;
	for (size_t i = 0; i < l->n; i++)
		if (raw_eq(l->v[i].raw, raw))
			return &l->v[i];
	return NULL;
}

struct folder *folder_list_find_name(const struct folder_list *l, const char *utf8_name)
{
	if (utf8_name == NULL)
		return NULL;
	for (size_t i = 0; i < l->n; i++)
		if (name_eq(folder_label(&l->v[i]), utf8_name))
			return &l->v[i];
	return NULL;
}

/* ---- '/' form -> wire ----------------------------------------------------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The UTF-8 bytes of code point c (below 0x800: only control characters
 * come here) into b. */
static void sb_put_cp(struct sbuf *b, uint32_t c)
{
	if (c < 0x80) {
		sb_putc(b, (char)c);
	} else {
		sb_putc(b, (char)(0xc0 | (c >> 6)));
		sb_putc(b, (char)(0x80 | (c & 0x3f)));
	}
}

/* One '/'-form component, unescaped, with the server's delimiter made
 * harmless; returns the end of the component.  "\/", "\\" and "\uHHHH"
 * (a control character) are undone; "\xHH" (a byte of an undecodable name)
 * becomes the text "%HH"; any other backslash is itself. */
static const char *put_component(struct sbuf *b, const char *p, char delim, bool *changed)
{
	while (*p != '\0' && *p != '/') {
		char c = *p;

		if (c == '\\' && (p[1] == '/' || p[1] == '\\')) {
			c = p[1];
			p += 2;
		} else if (c == '\\' && p[1] == 'u' && hexval(p[2]) >= 0 && hexval(p[3]) >= 0 &&
			   hexval(p[4]) >= 0 && hexval(p[5]) >= 0) {
			uint32_t v = (uint32_t)(hexval(p[2]) << 12 | hexval(p[3]) << 8 |
						hexval(p[4]) << 4 | hexval(p[5]));

			if (v < 0x20 || (v >= 0x7f && v <= 0x9f)) {
				sb_put_cp(b, v);
				p += 6;
				continue;
			}
			p++;
		} else if (c == '\\' && p[1] == 'x' && hexval(p[2]) >= 0 && hexval(p[3]) >= 0) {
			sb_putc(b, '%');
			sb_putc(b, p[2]);
			sb_putc(b, p[3]);
			p += 4;
			continue;
		} else {
			p++;
		}
		if (delim != 0 && c == delim) {
			c = '_';
			*changed = true;
		}
		sb_putc(b, c);
	}
	return p;
}

char *folder_wire_name(const struct folder_list *l, const char *utf8_name, bool *changed)
{
	struct sbuf b = { 0 };
	const char *p = utf8_name;
	bool chg = false, under_inbox;
	char *body, *enc, *out;
	const char *prefix;

	if (changed != NULL)
		*changed = false;
	if (utf8_name == NULL || *utf8_name == '\0') {
		errno = EINVAL;
		return NULL;
	}
	if (is_inbox(utf8_name))
		return strdup("INBOX");

	/* INBOX's children hang off INBOX itself, never off the prefix:
	 * on Courier "INBOX/x" is "INBOX.x", not "INBOX.INBOX.x". */
	under_inbox = inbox_len(utf8_name, '/') != 0;
	if (under_inbox) {
		sb_putn(&b, "INBOX", 5);
		p += 5;
	} else {
		p = put_component(&b, p, l->delim, &chg);
	}
	while (*p == '/') {
		/* a server without hierarchy cannot keep it: the name changes */
		if (l->delim == 0)
			chg = true;
		sb_putc(&b, l->delim != 0 ? l->delim : '/');
		p = put_component(&b, p + 1, l->delim, &chg);
	}
	body = sb_take(&b);
	if (body == NULL)
		return NULL;
	enc = mutf7_encode(body);
	free(body);
	if (enc == NULL)
		return NULL;

	prefix = l->prefix != NULL && !under_inbox ? l->prefix : "";
	if (*prefix == '\0') {
		out = enc;
	} else {
		out = malloc(strlen(prefix) + strlen(enc) + 1);
		if (out != NULL) {
			strcpy(out, prefix);
			strcat(out, enc);
		}
		free(enc);
		if (out == NULL)
			return NULL;
	}
	if (changed != NULL)
		*changed = chg;
	return out;
}

/* The '/' form of trasloco 0.1's state (before the escapes above): '%'
 * was "%25", a '/' in a component "%2F", an undecodable byte "%HH";
 * backslashes and control characters were themselves. */
char *folder_name_from_v1(const char *old)
{
	struct sbuf b = { 0 };
	const unsigned char *p = (const unsigned char *)old;

	if (old == NULL) {
		errno = EINVAL;
		return NULL;
	}
	while (*p != '\0') {
		const unsigned char *start = p;
		uint32_t c;

		if (*p == '%' && hexval((char)p[1]) >= 0 && hexval((char)p[2]) >= 0) {
			unsigned int v = (unsigned int)(hexval((char)p[1]) * 16 + hexval((char)p[2]));

			if (v == '%')
				sb_putc(&b, '%');
			else if (v == '/')
				sb_putn(&b, "\\/", 2);
			else
				sb_putesc(&b, 'x', v);
			p += 3;
		} else if (*p == '\\') {
			sb_putn(&b, "\\\\", 2);
			p++;
		} else if (mutf7_utf8_next(&p, &c) < 0) {
			sb_putesc(&b, 'x', *start);
			p = start + 1;
		} else if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) {
			sb_putesc(&b, 'u', c);
		} else {
			sb_putn(&b, (const char *)start, (size_t)(p - start));
		}
	}
	return sb_take(&b);
}

/* ---- filters ---------------------------------------------------------- */

static bool has_wildcard(const char *pattern)
{
	return strpbrk(pattern, "*?[") != NULL;
}

/* name is pattern or lies below it ("Archive" -> "Archive/2023"). */
static bool is_self_or_below(const char *pattern, const char *name)
{
	size_t n;

	if (inbox_len(pattern, '/') && inbox_len(name, '/')) {
		pattern += 5;
		name += 5;
	}
	n = strlen(pattern);
	return strncmp(name, pattern, n) == 0 && (name[n] == '\0' || name[n] == '/');
}

static bool pattern_match(const char *pattern, const char *name)
{
	if (fnmatch(pattern, name, FNM_NOESCAPE) == 0)
		return true;
	return !has_wildcard(pattern) && is_self_or_below(pattern, name);
}

static bool any_match(const char *const *patterns, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (patterns[i] != NULL && pattern_match(patterns[i], name))
			return true;
	return false;
}

bool folder_filter_match(const struct folder_filter *f, const char *utf8_name)
{
	if (utf8_name == NULL)
		return false;
	if (f == NULL)
		return true;
	if (f->n_include > 0 && !any_match(f->include, f->n_include, utf8_name))
		return false;
	return !any_match(f->exclude, f->n_exclude, utf8_name);
}

/* ---- plans -------------------------------------------------------------- */

enum role_source {
	ROLE_BY_NOTHING,
	ROLE_BY_ATTR,
	ROLE_BY_NAME,
};

/* One source folder on its way to a destination name. */
struct cand {
	size_t src;
	const char *name;               /* source '/' form */
	enum folder_role role;
	enum role_source role_by;
	const struct folder_map_rule *rule;
	const struct folder *remap;     /* destination folder with the same role */
	char *own_raw;                  /* own name translated for the destination */
	bool own_changed;               /* translation replaced a delimiter */
	bool own_exact;                 /* translation keeps the name as is */
	char *clash_name;               /* '/' form given by a " (n)" suffix, owned */
	char *dst_raw;
	const char *why;
	bool pending;                   /* lost its target: needs a suffix */
};

struct planner {
	const struct folder_list *src, *dst;
	const struct folder_map_opts *opts;
	struct cand *c;
	size_t n;
	const char **claimed;           /* destination raw names taken so far */
	size_t n_claimed;
	struct tr_error *err;
};

/* The destination's own reading of a wire name: with a personal prefix
 * "INBOX." the name "INBOX.INBOX" is INBOX itself (Dovecot, Courier). */
static const char *dst_resolve(const struct planner *pl, const char *raw)
{
	const char *prefix = pl->dst->prefix;
	size_t n = prefix != NULL ? strlen(prefix) : 0;

	if (n > 0 && strncasecmp(raw, prefix, n) == 0 && is_inbox(raw + n))
		return "INBOX";
	return raw;
}

static bool is_claimed(const struct planner *pl, const char *raw)
{
	for (size_t i = 0; i < pl->n_claimed; i++)
		if (raw_eq(dst_resolve(pl, pl->claimed[i]), dst_resolve(pl, raw)))
			return true;
	return false;
}

/* The claims array is sized for one claim per candidate up front. */
static void claim(struct planner *pl, struct cand *c, char *raw, const char *why)
{
	free(c->dst_raw);
	c->dst_raw = raw;
	c->why = why;
	pl->claimed[pl->n_claimed++] = raw;
}

/* Change the name a candidate claimed, keeping the claims consistent. */
static void reclaim(struct planner *pl, struct cand *c, char *raw, const char *why)
{
	for (size_t k = 0; k < pl->n_claimed; k++)
		if (pl->claimed[k] == c->dst_raw)
			pl->claimed[k] = raw;
	free(c->dst_raw);
	c->dst_raw = raw;
	c->why = why;
}

static int fail_errno(struct planner *pl, const char *what, const char *name)
{
	int e = errno;

	tr_error_set(pl->err, e == ENOMEM ? TR_ERR_LOCAL : TR_ERR_USAGE,
		     "%s '%s': %s", what, name,
		     e == EINVAL ? "not a valid UTF-8 folder name" : strerror(e));
	return -1;
}

static int check_utf8(const char *name, struct tr_error *err)
{
	char *enc = mutf7_encode(name);

	if (enc != NULL) {
		free(enc);
		return 0;
	}
	if (errno == EINVAL)
		tr_error_set(err, TR_ERR_USAGE, "--map: '%s' is not a valid UTF-8 folder name", name);
	else
		tr_error_set(err, TR_ERR_LOCAL, "--map: %s", strerror(errno));
	return -1;
}

static int check_rules(const struct folder_map_opts *o, struct tr_error *err)
{
	for (size_t i = 0; i < o->n_rules; i++) {
		const struct folder_map_rule *r = &o->rules[i];

		if (r->from == NULL || r->to == NULL || *r->from == '\0' || *r->to == '\0') {
			tr_error_set(err, TR_ERR_USAGE, "--map: empty folder name in rule %zu", i + 1);
			return -1;
		}
		if (check_utf8(r->from, err) < 0 || check_utf8(r->to, err) < 0)
			return -1;
		for (size_t j = 0; j < i; j++) {
			if (name_eq(o->rules[j].from, r->from)) {
				tr_error_set(err, TR_ERR_USAGE,
					     "--map: two rules for source folder '%s' ('%s' and '%s')",
					     r->from, o->rules[j].to, r->to);
				return -1;
			}
		}
	}
	return 0;
}

static const struct folder_map_rule *find_rule(const struct folder_map_opts *o, const char *name)
{
	for (size_t i = 0; i < o->n_rules; i++)
		if (name_eq(o->rules[i].from, name))
			return &o->rules[i];
	return NULL;
}

static const struct folder *dst_with_role(const struct folder_list *dst, enum folder_role role)
{
	for (size_t i = 0; i < dst->n; i++)
		if (!dst->v[i].noselect && dst->v[i].role == role)
			return &dst->v[i];
	return NULL;
}

/* Role, rule, translated name and remap target of one source folder. */
static int cand_init(struct planner *pl, struct cand *c, size_t src_index)
{
	const struct folder *f = &pl->src->v[src_index];
	const struct folder_map_opts *o = pl->opts;
	char *back;

	c->src = src_index;
	c->name = folder_label(f);
	if (!is_inbox(c->name)) {
		if (f->role != ROLE_NONE) {
			c->role = f->role;
			c->role_by = ROLE_BY_ATTR;
		} else {
			c->role = folder_role_from_name(c->name);
			c->role_by = c->role != ROLE_NONE ? ROLE_BY_NAME : ROLE_BY_NOTHING;
		}
	}
	c->rule = find_rule(o, c->name);

	c->own_raw = folder_wire_name(pl->dst, c->name, &c->own_changed);
	if (c->own_raw == NULL)
		return fail_errno(pl, "source folder", c->name);
	back = raw_to_name(pl->dst, c->own_raw, pl->dst->delim, NULL);
	if (back == NULL)
		return fail_errno(pl, "source folder", c->name);
	c->own_exact = name_eq(back, c->name);
	free(back);

	/* \All and \Flagged are virtual views on most servers: never a target. */
	if (!o->keep_names && c->rule == NULL && c->role != ROLE_NONE && c->role != ROLE_ALL &&
	    c->role != ROLE_FLAGGED && c->role != ROLE_IMPORTANT && pl->dst->has_roles) {
		const struct folder *d = dst_with_role(pl->dst, c->role);

		if (d != NULL && !name_eq(folder_label(d), c->name))
			c->remap = d;
	}
	return 0;
}

static int phase_rules(struct planner *pl)
{
	for (size_t i = 0; i < pl->n; i++) {
		struct cand *c = &pl->c[i];
		char *raw;

		if (c->rule == NULL)
			continue;
		raw = folder_wire_name(pl->dst, c->rule->to, NULL);
		if (raw == NULL)
			return fail_errno(pl, "--map target", c->rule->to);
		/* an explicit merge: no check for an earlier claim */
		claim(pl, c, raw, "map");
	}
	return 0;
}

/* Take the translated own name if free; otherwise the folder waits for a
 * suffix.  INBOX is always INBOX, even when --map merges into it. */
static int take_own(struct planner *pl, struct cand *c)
{
	char *raw;

	/* Only the source's INBOX may become the destination's INBOX. */
	if ((is_claimed(pl, c->own_raw) && !is_inbox(c->own_raw)) ||
	    (!is_inbox(c->name) && is_inbox(dst_resolve(pl, c->own_raw)))) {
		c->pending = true;
		return 0;
	}
	raw = strdup(c->own_raw);
	if (raw == NULL)
		return fail_errno(pl, "source folder", c->name);
	claim(pl, c, raw, NULL);
	return 0;
}

static int phase_identity(struct planner *pl, bool exact)
{
	for (size_t i = 0; i < pl->n; i++) {
		struct cand *c = &pl->c[i];

		if (c->rule != NULL || c->remap != NULL || c->own_exact != exact)
			continue;
		if (take_own(pl, c) < 0)
			return -1;
	}
	return 0;
}

static int phase_roles(struct planner *pl, enum role_source by)
{
	for (size_t i = 0; i < pl->n; i++) {
		struct cand *c = &pl->c[i];
		char *raw;

		if (c->remap == NULL || c->role_by != by)
			continue;
		if (is_claimed(pl, c->remap->raw)) {
			if (take_own(pl, c) < 0)
				return -1;
			continue;
		}
		raw = strdup(c->remap->raw);
		if (raw == NULL)
			return fail_errno(pl, "source folder", c->name);
		claim(pl, c, raw, "special-use");
	}
	return 0;
}

/* " (2)", " (3)", ...: distinct suffixes give distinct wire names, so at
 * most one try per claim already made is needed. */
static int phase_suffix(struct planner *pl)
{
	for (size_t i = 0; i < pl->n; i++) {
		struct cand *c = &pl->c[i];
		size_t len = strlen(c->name) + 32;
		char *name, *raw = NULL;

		if (!c->pending)
			continue;
		name = malloc(len);
		if (name == NULL)
			return fail_errno(pl, "source folder", c->name);
		for (size_t k = 2; raw == NULL; k++) {
			snprintf(name, len, "%s (%zu)", c->name, k);
			raw = folder_wire_name(pl->dst, name, NULL);
			if (raw == NULL) {
				fail_errno(pl, "source folder", c->name);
				free(name);
				return -1;
			}
			if (is_claimed(pl, raw)) {
				free(raw);
				raw = NULL;
			}
		}
		claim(pl, c, raw, "clash");
		c->clash_name = name;
		c->pending = false;
	}
	return 0;
}

/* A folder renamed for a clash takes its subfolders along: "a/b" goes
 * below "a (2)" when "a" became "a (2)", or the hierarchy would break. */
static int phase_children(struct planner *pl)
{
	for (size_t i = 0; i < pl->n; i++) {
		const struct cand *p = &pl->c[i];
		size_t plen;

		if (p->clash_name == NULL)
			continue;
		plen = strlen(p->name);
		for (size_t j = 0; j < pl->n; j++) {
			struct cand *c = &pl->c[j];
			char *name, *raw;
			size_t len;

			if (j == i || c->rule != NULL || strncmp(c->name, p->name, plen) != 0 ||
			    c->name[plen] != '/')
				continue;
			len = strlen(p->clash_name) + strlen(c->name + plen) + 1;
			name = malloc(len);
			if (name == NULL)
				return fail_errno(pl, "source folder", c->name);
			snprintf(name, len, "%s%s", p->clash_name, c->name + plen);
			raw = folder_wire_name(pl->dst, name, NULL);
			free(name);
			if (raw == NULL)
				return fail_errno(pl, "source folder", c->name);
			/* below a name nobody else had, so no new clash */
			reclaim(pl, c, raw, "clash");
		}
	}
	return 0;
}

static bool dst_has_selectable(const struct folder_list *dst, const char *raw)
{
	const struct folder *f = folder_list_find_raw(dst, raw);

	return f != NULL && !f->noselect;
}

/* Move the decisions into the plan; the candidates give up dst_raw. */
static int plan_fill(struct planner *pl, struct folder_plan *out)
{
	out->v = calloc(pl->n ? pl->n : 1, sizeof(*out->v));
	if (out->v == NULL)
		return fail_errno(pl, "plan", "folders");
	for (size_t i = 0; i < pl->n; i++) {
		struct cand *c = &pl->c[i];
		struct folder_plan_entry *e = &out->v[i];

		e->dst_name = raw_to_name(pl->dst, c->dst_raw, pl->dst->delim, NULL);
		if (e->dst_name == NULL)
			return fail_errno(pl, "destination folder", c->dst_raw);
		e->src_index = c->src;
		e->dst_raw = c->dst_raw;
		c->dst_raw = NULL;
		out->n = i + 1;
		e->role = c->role;
		e->renamed = !name_eq(e->dst_name, c->name);
		e->why = c->why;
		if (e->why == NULL && e->renamed)
			e->why = pl->src->v[c->src].undecodable ? "undecodable" : "delimiter";
		e->dst_exists = dst_has_selectable(pl->dst, e->dst_raw);
	}
	return 0;
}

static int add_unused(struct planner *pl, struct folder_plan *out, const char *fmt,
		      const char *a, const char *b)
{
	size_t len = strlen(fmt) + strlen(a) + (b != NULL ? strlen(b) : 0) + 1;
	char *msg = malloc(len), **nv;

	nv = msg != NULL ? realloc(out->unused, (out->n_unused + 1) * sizeof(*nv)) : NULL;
	if (nv == NULL) {
		free(msg);
		errno = ENOMEM;
		return fail_errno(pl, "plan", "folders");
	}
	snprintf(msg, len, fmt, a, b != NULL ? b : "");
	out->unused = nv;
	out->unused[out->n_unused++] = msg;
	return 0;
}

/* Options that selected or renamed nothing: almost always a typo, or a
 * name written in another form than the one the source shows. */
static int note_unused(struct planner *pl, struct folder_plan *out)
{
	const struct folder_filter *f = &pl->opts->filter;

	for (size_t k = 0; k < f->n_include; k++) {
		bool hit = false;

		for (size_t i = 0; i < pl->src->n && !hit; i++)
			hit = !pl->src->v[i].noselect &&
			      pattern_match(f->include[k], folder_label(&pl->src->v[i]));
		if (!hit && add_unused(pl, out, "--folder '%s' matches no folder of the source%s",
				       f->include[k], NULL) < 0)
			return -1;
	}
	for (size_t k = 0; k < f->n_exclude; k++) {
		bool hit = false;

		for (size_t i = 0; i < pl->src->n && !hit; i++) {
			const char *name = folder_label(&pl->src->v[i]);

			hit = !pl->src->v[i].noselect && pattern_match(f->exclude[k], name) &&
			      (f->n_include == 0 || any_match(f->include, f->n_include, name));
		}
		if (!hit && add_unused(pl, out, "--exclude '%s' matches no selected folder of the "
				       "source%s", f->exclude[k], NULL) < 0)
			return -1;
	}
	for (size_t k = 0; k < pl->opts->n_rules; k++) {
		const struct folder_map_rule *r = &pl->opts->rules[k];
		bool hit = false;

		for (size_t i = 0; i < pl->n && !hit; i++)
			hit = pl->c[i].rule == r;
		if (!hit && add_unused(pl, out, "--map '%s=%s': no selected folder of the source "
				       "has that name", r->from, r->to) < 0)
			return -1;
	}
	return 0;
}

static int plan_run(struct planner *pl, struct folder_plan *out)
{
	for (size_t i = 0; i < pl->src->n; i++) {
		const struct folder *f = &pl->src->v[i];

		if (f->noselect || !folder_filter_match(&pl->opts->filter, folder_label(f)))
			continue;
		if (pl->opts->skip_views && (f->role == ROLE_ALL || f->role == ROLE_FLAGGED ||
					     f->role == ROLE_IMPORTANT)) {
			if (add_unused(pl, out, "%s: not copied: a virtual view (\\%s) of mail that "
				       "other folders hold (--copy-virtual-folders copies it)",
				       folder_label(f), folder_role_name(f->role)) < 0)
				return -1;
			continue;
		}
		if (cand_init(pl, &pl->c[pl->n++], i) < 0)
			return -1;
	}
	if (phase_rules(pl) < 0 ||
	    phase_identity(pl, true) < 0 ||    /* untouched names first */
	    phase_identity(pl, false) < 0 ||
	    phase_roles(pl, ROLE_BY_ATTR) < 0 ||
	    phase_roles(pl, ROLE_BY_NAME) < 0 ||
	    phase_suffix(pl) < 0 ||
	    phase_children(pl) < 0)
		return -1;
	if (plan_fill(pl, out) < 0)
		return -1;
	return note_unused(pl, out);
}

int folder_plan_make(const struct folder_list *src, const struct folder_list *dst,
		     const struct folder_map_opts *opts, struct folder_plan *out,
		     struct tr_error *err)
{
	static const struct folder_map_opts no_opts;
	struct planner pl = { 0 };
	size_t cap;
	int rc;

	memset(out, 0, sizeof(*out));
	if (opts == NULL)
		opts = &no_opts;
	if (check_rules(opts, err) < 0)
		return -1;

	pl.src = src;
	pl.dst = dst;
	pl.opts = opts;
	pl.err = err;
	cap = src->n ? src->n : 1;
	pl.c = calloc(cap, sizeof(*pl.c));
	pl.claimed = calloc(cap, sizeof(*pl.claimed));
	if (pl.c == NULL || pl.claimed == NULL) {
		rc = fail_errno(&pl, "plan", "folders");
	} else {
		rc = plan_run(&pl, out);
	}

	for (size_t i = 0; i < pl.n; i++) {
		free(pl.c[i].own_raw);
		free(pl.c[i].dst_raw);
		free(pl.c[i].clash_name);
	}
	free(pl.c);
	free(pl.claimed);
	if (rc < 0)
		folder_plan_free(out);
	return rc;
}

void folder_plan_free(struct folder_plan *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].dst_raw);
		free(p->v[i].dst_name);
		free(p->v[i].refused_name);
	}
	free(p->v);
	p->v = NULL;
	p->n = 0;
	for (size_t i = 0; i < p->n_unused; i++)
		free(p->unused[i]);
	free(p->unused);
	p->unused = NULL;
	p->n_unused = 0;
}

/* ---- names a destination refused --------------------------------------- */

/* Does level replace the character c of a component? */
static bool legal_replaces(uint32_t c, int level, char bad)
{
	/* a letter or digit named by a server is no rule of ours: ignored */
	if (c < 0x20 || (c >= 0x7f && c <= 0x9f) ||
	    (bad != 0 && c == (unsigned char)bad && ispunct((unsigned char)bad)))
		return true;
	if (c >= 0x80)
		return level >= 3;
	if (strchr("%*?\"\\/", (int)c) != NULL)
		return true;
	if (c == ' ' || c == '-' || c == '_' || (c >= '0' && c <= '9') ||
	    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return false;
	if (strchr("(),.&'+@", (int)c) != NULL)
		return level >= 3;
	return level >= 2;
}

/* One component of the '/' form at p, made legal at level into b;
 * returns the end of the component. */
static const char *legal_component(struct sbuf *b, const char *p, int level, char bad)
{
	struct sbuf raw = { 0 };
	const unsigned char *q;
	size_t start = b->len;
	bool dummy = false;

	p = put_component(&raw, p, 0, &dummy);
	if (sb_take(&raw) == NULL) {
		b->oom = true;
		return p;
	}
	q = (const unsigned char *)raw.s;
	while (*q != '\0') {
		const unsigned char *cs = q;
		uint32_t c;

		if (mutf7_utf8_next(&q, &c) < 0) {
			c = 0;          /* not UTF-8: always replaced */
			q = cs + 1;
		}
		if (legal_replaces(c, level, bad))
			sb_putc(b, '_');
		else
			sb_putn(b, (const char *)cs, (size_t)(q - cs));
	}
	free(raw.s);
	/* A space or a dot at either end is what many servers trim or refuse. */
	if (level >= 2 && !b->oom && b->len > start) {
		if (b->s[start] == ' ' || b->s[start] == '.')
			b->s[start] = '_';
		if (b->s[b->len - 1] == ' ' || b->s[b->len - 1] == '.')
			b->s[b->len - 1] = '_';
	}
	return p;
}

char *folder_legal_name(const char *name, int level, char bad)
{
	struct sbuf b = { 0 };
	const char *p = name;

	if (name == NULL || *name == '\0' || level < 1 || level > FOLDER_LEGAL_LEVELS) {
		errno = EINVAL;
		return NULL;
	}
	if (inbox_len(name, '/')) {
		sb_putn(&b, "INBOX", 5);
		p += 5;
	} else {
		p = legal_component(&b, p, level, bad);
	}
	while (*p == '/') {
		sb_putc(&b, '/');
		p = legal_component(&b, p + 1, level, bad);
	}
	return sb_take(&b);
}

/* What the replacements of every level, with any punctuation named by a
 * server, leave of a name: letters and digits; two names with one
 * skeleton differ only where some level may have replaced. */
static char *skeleton(const char *name)
{
	char *s = folder_legal_name(name, FOLDER_LEGAL_LEVELS, 0);

	for (char *p = s; p != NULL && *p != '\0'; p++)
		if (*p != '/' && !isalnum((unsigned char)*p))
			*p = '_';
	return s;
}

bool folder_legal_variant(const char *refused, const char *name)
{
	char *a = skeleton(refused), *b = skeleton(name);
	bool eq = false;

	if (a != NULL && b != NULL) {
		size_t la = strlen(a), lb = strlen(b);

		eq = strcmp(a, b) == 0;
		/* a collision suffix "_2", "_3" ... */
		if (!eq && lb > la + 1 && strncmp(a, b, la) == 0 && b[la] == '_' &&
		    strspn(b + la + 1, "0123456789") == lb - la - 1)
			eq = true;
	}
	free(a);
	free(b);
	return eq;
}

static bool plan_claims(const struct folder_plan *p, size_t except, const char *raw)
{
	for (size_t j = 0; j < p->n; j++)
		if (j != except && raw_eq(p->v[j].dst_raw, raw))
			return true;
	return false;
}

int folder_plan_rename(struct folder_plan *p, const struct folder_list *dst, size_t i,
		       const char *name, const char *why, struct tr_error *err)
{
	struct folder_plan_entry *e = &p->v[i];
	char *raw = folder_wire_name(dst, name, NULL), *shown;

	if (raw == NULL) {
		tr_error_set(err, errno == ENOMEM ? TR_ERR_LOCAL : TR_ERR_USAGE,
			     "folder name '%s': %s", name, strerror(errno));
		return -1;
	}
	shown = raw_to_name(dst, raw, dst->delim, NULL);
	if (shown == NULL) {
		free(raw);
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	if (e->refused_name == NULL && strcmp(why, "refused") == 0) {
		e->refused_name = e->dst_name;
		e->dst_name = NULL;
	}
	free(e->dst_name);
	free(e->dst_raw);
	e->dst_name = shown;
	e->dst_raw = raw;
	e->renamed = true;
	e->why = why;
	e->dst_exists = dst_has_selectable(dst, raw);
	return 0;
}

int folder_plan_legalize(struct folder_plan *p, const struct folder_list *dst, size_t i,
			 int level, char bad, struct tr_error *err)
{
	struct folder_plan_entry *e = &p->v[i];
	const char *orig = e->refused_name != NULL ? e->refused_name : e->dst_name;
	const struct folder_plan_entry *parent = NULL;
	size_t plen = 0;
	char *base = NULL, *name = NULL, *raw = NULL;
	int r = -1;

	/* Below a parent renamed the same way, the subfolder follows it. */
	for (size_t j = 0; j < p->n; j++) {
		const struct folder_plan_entry *f = &p->v[j];
		size_t n = f->refused_name != NULL ? strlen(f->refused_name) : 0;

		if (j != i && n > plen && strncmp(orig, f->refused_name, n) == 0 &&
		    orig[n] == '/') {
			parent = f;
			plen = n;
		}
	}
	if (parent != NULL) {
		char *rest = folder_legal_name(orig + plen + 1, level, bad);

		if (rest != NULL && (base = malloc(strlen(parent->dst_name) + strlen(rest) + 2)))
			sprintf(base, "%s/%s", parent->dst_name, rest);
		free(rest);
	} else {
		base = folder_legal_name(orig, level, bad);
	}
	if (base == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	if (strcmp(base, e->dst_name) == 0 || strcmp(base, orig) == 0) {
		r = 0;          /* nothing more this level can change */
		goto out;
	}
	/* The first name no other folder of the plan claims.  One the
	 * destination already has is this folder's copy from an earlier run
	 * (the same rule chose it then): taken, so that a run without its
	 * state goes back to it rather than copying everything again. */
	name = strdup(base);
	for (unsigned k = 2; name != NULL; k++) {
		raw = folder_wire_name(dst, name, NULL);
		if (raw == NULL)
			break;
		if (!plan_claims(p, i, raw))
			break;
		free(raw);
		raw = NULL;
		free(name);
		name = malloc(strlen(base) + 16);
		if (name != NULL)
			sprintf(name, "%s_%u", base, k);
	}
	if (raw == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "folder name '%s': %s", base,
			     strerror(errno ? errno : ENOMEM));
		goto out;
	}
	r = folder_plan_rename(p, dst, i, name, "refused", err) < 0 ? -1 : 1;
out:
	free(raw);
	free(name);
	free(base);
	return r;
}

int folder_plan_find_renamed(struct folder_plan *p, const struct folder_list *dst, size_t i,
			     struct tr_error *err)
{
	const char *orig = p->v[i].dst_name;
	char bads[64] = { 0 };
	size_t n_bad = 1;

	/* the characters a server's reply may have named */
	for (const char *c = orig; *c != '\0' && n_bad < sizeof(bads); c++)
		if (ispunct((unsigned char)*c) && memchr(bads, *c, n_bad) == NULL)
			bads[n_bad++] = *c;
	for (int level = 1; level <= FOLDER_LEGAL_LEVELS; level++) {
		for (size_t b = 0; b < n_bad; b++) {
			char *base = folder_legal_name(orig, level, bads[b]), *name, *raw = NULL;
			const struct folder *f;
			int r = 0;

			if (base == NULL) {
				tr_error_set(err, TR_ERR_LOCAL, "out of memory");
				return -1;
			}
			if (strcmp(base, orig) == 0) {
				free(base);
				continue;
			}
			name = strdup(base);
			for (unsigned k = 2; name != NULL; k++) {
				raw = folder_wire_name(dst, name, NULL);
				if (raw == NULL || !plan_claims(p, i, raw))
					break;
				free(raw);
				raw = NULL;
				free(name);
				name = malloc(strlen(base) + 16);
				if (name != NULL)
					sprintf(name, "%s_%u", base, k);
			}
			f = raw != NULL ? folder_list_find_raw(dst, raw) : NULL;
			if (f != NULL && !f->noselect)
				r = folder_plan_rename(p, dst, i, name, "refused", err) < 0 ? -1 : 1;
			free(raw);
			free(name);
			free(base);
			if (r != 0)
				return r;
		}
	}
	return 0;
}
