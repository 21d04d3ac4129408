/* Unit tests for folder roles, lists, wire names, filters and plans
 * (src/folder.c).  The plan cases are the scenarios of issue 3, section 4:
 * Italian mailboxes moving to servers with English SPECIAL-USE folders,
 * Courier's "INBOX." namespace on either side, and --map / filters.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "folder.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MAXF 12

/* UTF-8 spelled out so the expectations do not depend on an editor. */
#define LOCALITA "Localit\xc3\xa0"                                      /* Località */
#define NIHONGO "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"                  /* 日本語 */
#define TAIPEI "\xe5\x8f\xb0\xe5\x8c\x97"                               /* 台北 */
#define ELLINIKA "\xce\x95\xce\xbb\xce\xbb\xce\xb7\xce\xbd\xce\xb9\xce\xba\xce\xac" /* Ελληνικά */
#define M_LOCALITA "Localit&AOA-"
#define M_NIHONGO "&ZeVnLIqe-"
#define M_ELLINIKA "&A5UDuwO7A7cDvQO5A7oDrA-"

struct fdef {
	const char *raw;
	enum folder_role role;
	bool noselect;
};

struct side {
	const char *prefix;
	char delim;
	struct fdef f[MAXF];    /* up to the first raw == NULL */
};

static void build(struct folder_list *l, const struct side *s)
{
	folder_list_init(l);
	assert_int_equal(folder_list_set_namespace(l, s->prefix, s->delim), 0);
	for (size_t i = 0; i < MAXF && s->f[i].raw != NULL; i++)
		assert_int_equal(folder_list_add(l, s->f[i].raw, s->delim,
						 s->f[i].role, s->f[i].noselect), 0);
}

static bool str_eq_or_null(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* ---- roles ----------------------------------------------------------- */

static void test_role_attr(void **state)
{
	static const struct {
		const char *attr;
		enum folder_role role;
	} cases[] = {
		{ "\\Sent", ROLE_SENT }, { "Sent", ROLE_SENT }, { "\\sent", ROLE_SENT },
		{ "\\Drafts", ROLE_DRAFTS }, { "\\TRASH", ROLE_TRASH },
		{ "\\Junk", ROLE_JUNK }, { "\\Archive", ROLE_ARCHIVE },
		{ "\\All", ROLE_ALL }, { "\\Flagged", ROLE_FLAGGED },
		{ "\\Spam", ROLE_JUNK },        /* Gmail XLIST */
		{ "\\Noselect", ROLE_NONE }, { "\\HasChildren", ROLE_NONE },
		{ "\\Sentx", ROLE_NONE }, { "", ROLE_NONE }, { "\\", ROLE_NONE },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		if (folder_role_from_attr(cases[i].attr) != cases[i].role)
			fail_msg("attribute '%s': role %d, want %d", cases[i].attr,
				 folder_role_from_attr(cases[i].attr), cases[i].role);
	assert_int_equal(folder_role_from_attr(NULL), ROLE_NONE);

	assert_null(folder_role_name(ROLE_NONE));
	assert_string_equal(folder_role_name(ROLE_SENT), "Sent");
	assert_string_equal(folder_role_name(ROLE_DRAFTS), "Drafts");
	assert_string_equal(folder_role_name(ROLE_TRASH), "Trash");
	assert_string_equal(folder_role_name(ROLE_JUNK), "Junk");
	assert_string_equal(folder_role_name(ROLE_ARCHIVE), "Archive");
	assert_string_equal(folder_role_name(ROLE_ALL), "All");
	assert_string_equal(folder_role_name(ROLE_FLAGGED), "Flagged");
	/* every name parses back to its role */
	for (int r = ROLE_SENT; r <= ROLE_FLAGGED; r++)
		assert_int_equal(folder_role_from_attr(folder_role_name((enum folder_role)r)), r);
}

static void test_role_name(void **state)
{
	static const struct {
		const char *name;
		enum folder_role role;
	} cases[] = {
		/* Sent */
		{ "Sent", ROLE_SENT }, { "Sent Items", ROLE_SENT },
		{ "Sent Messages", ROLE_SENT }, { "Sent Mail", ROLE_SENT },
		{ "Posta inviata", ROLE_SENT }, { "Inviata", ROLE_SENT },
		{ "Elementi inviati", ROLE_SENT }, { "Gesendet", ROLE_SENT },
		{ "Gesendete Objekte", ROLE_SENT }, { "Gesendete Elemente", ROLE_SENT },
		{ "Envoy\xc3\xa9s", ROLE_SENT },
		{ "\xc3\x89l\xc3\xa9ments envoy\xc3\xa9s", ROLE_SENT },
		{ "Messages envoy\xc3\xa9s", ROLE_SENT }, { "Enviados", ROLE_SENT },
		{ "Elementos enviados", ROLE_SENT }, { "Itens enviados", ROLE_SENT },
		{ "Verzonden", ROLE_SENT }, { "Verzonden items", ROLE_SENT },
		{ "Skickat", ROLE_SENT }, { "Skickade objekt", ROLE_SENT },
		{ "Sendt", ROLE_SENT }, { "Sendte elementer", ROLE_SENT },
		{ "L\xc3\xa4hetetyt", ROLE_SENT }, { "Wys\xc5\x82""ane", ROLE_SENT },
		{ "Odeslan\xc3\xa9", ROLE_SENT },
		{ "\xd0\x9e\xd1\x82\xd0\xbf\xd1\x80\xd0\xb0\xd0\xb2\xd0\xbb\xd0\xb5\xd0\xbd"
		  "\xd0\xbd\xd1\x8b\xd0\xb5", ROLE_SENT },                      /* Отправленные */
		/* Drafts */
		{ "Drafts", ROLE_DRAFTS }, { "Bozze", ROLE_DRAFTS },
		{ "Entw\xc3\xbc""rfe", ROLE_DRAFTS }, { "Brouillons", ROLE_DRAFTS },
		{ "Borradores", ROLE_DRAFTS }, { "Rascunhos", ROLE_DRAFTS },
		{ "Concepten", ROLE_DRAFTS }, { "Utkast", ROLE_DRAFTS },
		{ "Kladder", ROLE_DRAFTS }, { "Luonnokset", ROLE_DRAFTS },
		{ "Kopie robocze", ROLE_DRAFTS }, { "Koncepty", ROLE_DRAFTS },
		{ "\xd0\xa7\xd0\xb5\xd1\x80\xd0\xbd\xd0\xbe\xd0\xb2\xd0\xb8\xd0\xba\xd0\xb8",
		  ROLE_DRAFTS },                                                /* Черновики */
		/* Trash */
		{ "Trash", ROLE_TRASH }, { "Deleted Items", ROLE_TRASH },
		{ "Deleted Messages", ROLE_TRASH }, { "Bin", ROLE_TRASH },
		{ "Cestino", ROLE_TRASH }, { "Posta eliminata", ROLE_TRASH },
		{ "Elementi eliminati", ROLE_TRASH }, { "Papierkorb", ROLE_TRASH },
		{ "Gel\xc3\xb6schte Objekte", ROLE_TRASH },
		{ "Gel\xc3\xb6schte Elemente", ROLE_TRASH },
		{ "Corbeille", ROLE_TRASH },
		{ "\xc3\x89l\xc3\xa9ments supprim\xc3\xa9s", ROLE_TRASH },
		{ "Papelera", ROLE_TRASH }, { "Elementos eliminados", ROLE_TRASH },
		{ "Lixeira", ROLE_TRASH }, { "Lixo", ROLE_TRASH },
		{ "Itens exclu\xc3\xad""dos", ROLE_TRASH }, { "Prullenbak", ROLE_TRASH },
		{ "Verwijderde items", ROLE_TRASH }, { "Papperskorgen", ROLE_TRASH },
		{ "Borttagna objekt", ROLE_TRASH }, { "Papirkurv", ROLE_TRASH },
		{ "Slettede elementer", ROLE_TRASH }, { "Roskakori", ROLE_TRASH },
		{ "Kosz", ROLE_TRASH }, { "Ko\xc5\xa1", ROLE_TRASH },
		{ "\xd0\x9a\xd0\xbe\xd1\x80\xd0\xb7\xd0\xb8\xd0\xbd\xd0\xb0", ROLE_TRASH }, /* Корзина */
		/* Junk */
		{ "Junk", ROLE_JUNK }, { "Spam", ROLE_JUNK }, { "Junk E-mail", ROLE_JUNK },
		{ "Junk Email", ROLE_JUNK }, { "Junk Mail", ROLE_JUNK },
		{ "Bulk Mail", ROLE_JUNK }, { "Posta indesiderata", ROLE_JUNK },
		{ "Indesiderata", ROLE_JUNK }, { "Junk-E-Mail", ROLE_JUNK },
		{ "Spamverdacht", ROLE_JUNK },
		{ "Courrier ind\xc3\xa9sirable", ROLE_JUNK },
		{ "Ind\xc3\xa9sirables", ROLE_JUNK }, { "Correo no deseado", ROLE_JUNK },
		{ "Lixo eletr\xc3\xb4nico", ROLE_JUNK }, { "Ongewenste e-mail", ROLE_JUNK },
		{ "Skr\xc3\xa4ppost", ROLE_JUNK }, { "U\xc3\xb8nsket e-post", ROLE_JUNK },
		{ "Roskaposti", ROLE_JUNK },
		{ "Nevy\xc5\xbe\xc3\xa1""dan\xc3\xa1 po\xc5\xa1ta", ROLE_JUNK },
		{ "\xd0\xa1\xd0\xbf\xd0\xb0\xd0\xbc", ROLE_JUNK },             /* Спам */
		/* Archive */
		{ "Archive", ROLE_ARCHIVE }, { "Archives", ROLE_ARCHIVE },
		{ "Archivio", ROLE_ARCHIVE }, { "Archiv", ROLE_ARCHIVE },
		{ "Archivo", ROLE_ARCHIVE }, { "Arquivo", ROLE_ARCHIVE },
		{ "Archief", ROLE_ARCHIVE }, { "Arkiv", ROLE_ARCHIVE },
		{ "Arkisto", ROLE_ARCHIVE }, { "Archiwum", ROLE_ARCHIVE },
		{ "\xd0\x90\xd1\x80\xd1\x85\xd0\xb8\xd0\xb2", ROLE_ARCHIVE },  /* Архив */
		/* case-insensitive */
		{ "SENT ITEMS", ROLE_SENT }, { "sent items", ROLE_SENT },
		{ "POSTA INVIATA", ROLE_SENT }, { "posta Inviata", ROLE_SENT },
		{ "BOZZE", ROLE_DRAFTS }, { "cestino", ROLE_TRASH },
		{ "Posta Indesiderata", ROLE_JUNK }, { "junk e-mail", ROLE_JUNK },
		{ "\xc3\x89L\xc3\x89MENTS ENVOY\xc3\x89S", ROLE_SENT },         /* ÉLÉMENTS ENVOYÉS */
		{ "ENTW\xc3\x9c""RFE", ROLE_DRAFTS },                           /* ENTWÜRFE */
		{ "WYS\xc5\x81""ANE", ROLE_SENT },                              /* WYSŁANE */
		{ "KO\xc5\xa0", ROLE_TRASH },                                   /* KOŠ */
		{ "NEVY\xc5\xbd\xc3\x81""DAN\xc3\x81 PO\xc5\xa0TA", ROLE_JUNK },
		{ "\xd0\xa1\xd0\x9f\xd0\x90\xd0\x9c", ROLE_JUNK },             /* СПАМ */
		{ "\xce\x91\xce\xa0\xce\x95\xce\xa3\xce\xa4\xce\x91\xce\x9b\xce\x9c"
		  "\xce\x88\xce\x9d\xce\x91", ROLE_SENT },                      /* ΑΠΕΣΤΑΛΜΈΝΑ */
		/* not roles: not top level, not a whole name, not a name at all */
		{ "[Gmail]/Sent Mail", ROLE_NONE }, { "Clienti/Bozze", ROLE_NONE },
		{ "Sent/2023", ROLE_NONE }, { "Sent2", ROLE_NONE },
		{ "Posta", ROLE_NONE }, { "Sent ", ROLE_NONE }, { "", ROLE_NONE },
		{ "INBOX", ROLE_NONE }, { "Caf\xe9", ROLE_NONE },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		if (folder_role_from_name(cases[i].name) != cases[i].role)
			fail_msg("name '%s': role %d, want %d", cases[i].name,
				 folder_role_from_name(cases[i].name), cases[i].role);
	assert_int_equal(folder_role_from_name(NULL), ROLE_NONE);
}

/* ---- lists ------------------------------------------------------------- */

static void test_list_decode(void **state)
{
	static const struct {
		const char *prefix;
		char list_delim, delim;
		const char *raw, *name;
	} cases[] = {
		/* Courier: personal namespace "INBOX." */
		{ "INBOX.", '.', '.', "INBOX", "INBOX" },
		{ "INBOX.", '.', '.', "INBOX.Sent", "Sent" },
		{ "INBOX.", '.', '.', "inbox.Sent", "Sent" },
		{ "INBOX.", '.', '.', "INBOX.Archive.2024", "Archive/2024" },
		{ "INBOX.", '.', '.', "INBOX.Posta inviata", "Posta inviata" },
		{ "INBOX.", '.', '.', "INBOX." M_LOCALITA, LOCALITA },
		{ "INBOX.", '.', '.', "INBOX.Clienti.Rossi &- Figli", "Clienti/Rossi & Figli" },
		{ "INBOX.", '.', '.', "INBOX.a/b", "a\\/b" },
		{ "INBOX.", '.', '.', "INBOX.100%", "100%" },
		{ "INBOX.", '.', '.', "INBOX.back\\slash", "back\\\\slash" },
		{ "INBOX.", '.', '.', "#shared.x", "#shared/x" },
		/* Dovecot, Cyrus with altnamespace, Gmail: prefix "", '/' */
		{ "", '/', '/', "INBOX", "INBOX" },
		{ "", '/', '/', "inbox", "INBOX" },
		{ "", '/', '/', "Inbox/Sub", "INBOX/Sub" },
		{ "", '/', '/', "Sent", "Sent" },
		{ "", '/', '/', "Clienti/Rossi &- Figli", "Clienti/Rossi & Figli" },
		{ "", '/', '/', "~peter/mail/&U,BTFw-/" M_NIHONGO, "~peter/mail/" TAIPEI "/" NIHONGO },
		{ "", '/', '/', M_ELLINIKA, ELLINIKA },
		{ "", '/', '/', "100%", "100%" },
		{ "", '/', '/', "%percent", "%percent" },
		{ "", '/', '/', "a*b?", "a*b?" },
		/* control characters, valid in modified UTF-7, shown escaped */
		{ "", '/', '/', "a&AAE-b", "a\\u0001b" },
		{ "", '/', '/', "&AJs-", "\\u009B" },
		{ "", '/', '/', "[Gmail]/Sent Mail", "[Gmail]/Sent Mail" },
		/* Dovecot with '.' and no prefix */
		{ "", '.', '.', "Archive.2024", "Archive/2024" },
		{ "", '.', '.', "a/b.c", "a\\/b/c" },
		/* the entry's own delimiter wins over the list's; NIL falls back */
		{ "", '/', '.', "x.y", "x/y" },
		{ "", '.', 0, "x.y", "x/y" },
		/* no hierarchy at all */
		{ "", 0, 0, "a/b.c", "a\\/b.c" },
		/* not modified UTF-7: kept, escaped, still unique */
		{ "", '/', '/', "&Jjo", "\\x26Jjo" },
		{ "", '/', '/', "&AGE-", "\\x26AGE-" },
		{ "", '/', '/', "Caf\xe9", "Caf\\xE9" },
		{ "", '/', '/', "a\tb/c", "a\\x09b/c" },
		{ "", '/', '/', "50%\\&", "50%\\\\\\x26" },
		{ "", '/', '/', "100%/&", "100%/\\x26" },
		{ "INBOX.", '.', '.', "INBOX.bad&AGE-.x/y", "bad\\x26AGE-/x\\x2Fy" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct folder_list l;
		struct folder *f;

		folder_list_init(&l);
		assert_int_equal(folder_list_set_namespace(&l, cases[i].prefix, cases[i].list_delim), 0);
		assert_int_equal(folder_list_add(&l, cases[i].raw, cases[i].delim, ROLE_NONE, false), 0);
		assert_int_equal(l.n, 1);
		f = &l.v[0];
		assert_string_equal(f->raw, cases[i].raw);
		if (!str_eq_or_null(f->name, cases[i].name))
			fail_msg("raw '%s' (prefix '%s'): name '%s', want '%s'", cases[i].raw,
				 cases[i].prefix, f->name ? f->name : "(null)", cases[i].name);
		assert_ptr_equal(folder_list_find_name(&l, cases[i].name), f);
		folder_list_free(&l);
	}
}

static void test_list_ops(void **state)
{
	struct folder_list l;

	(void)state;
	folder_list_init(&l);
	assert_int_equal(folder_list_set_namespace(&l, "", '/'), 0);
	assert_int_equal(folder_list_add(&l, "INBOX", '/', ROLE_NONE, false), 0);
	assert_int_equal(folder_list_add(&l, "Drafts", '/', ROLE_NONE, false), 0);
	assert_false(l.has_roles);
	assert_int_equal(folder_list_add(&l, "Sent", '/', ROLE_SENT, false), 0);
	assert_true(l.has_roles);
	/* duplicates, INBOX in any case included, are ignored */
	assert_int_equal(folder_list_add(&l, "Sent", '/', ROLE_NONE, true), 0);
	assert_int_equal(folder_list_add(&l, "inbox", '/', ROLE_NONE, false), 0);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.v[2].role, ROLE_SENT);
	assert_false(l.v[2].noselect);

	assert_ptr_equal(folder_list_find_raw(&l, "Sent"), &l.v[2]);
	assert_ptr_equal(folder_list_find_raw(&l, "Inbox"), &l.v[0]);
	assert_null(folder_list_find_raw(&l, "sent"));
	assert_null(folder_list_find_raw(&l, NULL));
	assert_ptr_equal(folder_list_find_name(&l, "iNbOx"), &l.v[0]);
	assert_null(folder_list_find_name(&l, "drafts"));

	folder_list_subscribe(&l, "Drafts");
	folder_list_subscribe(&l, "Nowhere");
	assert_true(l.v[1].subscribed);
	assert_false(l.v[0].subscribed);
	assert_false(l.v[2].subscribed);

	folder_list_free(&l);
	assert_int_equal(l.n, 0);
	assert_null(l.v);
	folder_list_free(&l);   /* twice is harmless */
}

/* ---- wire names ----------------------------------------------------------- */

static void test_wire_name(void **state)
{
	static const struct {
		const char *prefix;
		char delim;
		const char *name, *raw;
		bool changed;
	} cases[] = {
		{ "", '/', "INBOX", "INBOX", false },
		{ "", '/', "inbox", "INBOX", false },
		{ "", '/', "Sent", "Sent", false },
		{ "", '/', "Archive/2024", "Archive/2024", false },
		{ "", '/', "INBOX/x", "INBOX/x", false },
		{ "", '/', "Inbox/x", "INBOX/x", false },
		{ "", '/', LOCALITA, M_LOCALITA, false },
		{ "", '/', "Clienti/Rossi & Figli", "Clienti/Rossi &- Figli", false },
		{ "", '/', NIHONGO "/" ELLINIKA, M_NIHONGO "/" M_ELLINIKA, false },
		{ "", '/', "v1.2", "v1.2", false },
		{ "", '/', "a\\/b", "a_b", true },      /* '.'-server name with '/' */
		{ "", '/', "100%", "100%", false },
		{ "", '/', "back\\\\slash", "back\\slash", false },
		{ "", '/', "a\\u0001b", "a&AAE-b", false },
		{ "", '/', "a\\u0041", "a\\u0041", false },  /* not a control: as typed */
		{ "", '/', "\\x26Jjo", "%26Jjo", false },
		{ "", '/', "a\\q", "a\\q", false },
		{ "INBOX.", '.', "INBOX", "INBOX", false },
		{ "INBOX.", '.', "Sent", "INBOX.Sent", false },
		{ "INBOX.", '.', "Archive/2024", "INBOX.Archive.2024", false },
		{ "INBOX.", '.', "INBOX/x", "INBOX.x", false },
		{ "INBOX.", '.', "v1.2", "INBOX.v1_2", true },
		{ "INBOX.", '.', "Clienti/Rossi & Figli", "INBOX.Clienti.Rossi &- Figli", false },
		{ "INBOX.", '.', LOCALITA, "INBOX." M_LOCALITA, false },
		{ "", '.', "v1.2", "v1_2", true },
		{ "", '.', "a.b/c.d", "a_b.c_d", true },
		{ "", '.', "a\\/b", "a/b", false },
		{ "", '.', "a\\/b/c", "a/b.c", false },
		{ "", '.', "100%", "100%", false },
		{ "", '.', "100%25", "100%25", false },
		{ "", '.', "50% off", "50% off", false },   /* not an escape: kept */
		{ "", '.', "%41", "%41", false },
		{ "Mail/", '/', "Sent", "Mail/Sent", false },
		{ "Mail/", '/', "INBOX/x", "INBOX/x", false },
		{ "", 0, "a/b", "a/b", true },              /* hierarchy lost */
		{ "", 0, "a.b", "a.b", false },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct folder_list l;
		bool changed = !cases[i].changed;
		char *raw;

		folder_list_init(&l);
		assert_int_equal(folder_list_set_namespace(&l, cases[i].prefix, cases[i].delim), 0);
		raw = folder_wire_name(&l, cases[i].name, &changed);
		if (!str_eq_or_null(raw, cases[i].raw) || changed != cases[i].changed)
			fail_msg("name '%s' (prefix '%s', delim '%c'): raw '%s' changed %d, want '%s' %d",
				 cases[i].name, cases[i].prefix, cases[i].delim ? cases[i].delim : '0',
				 raw ? raw : "(null)", changed, cases[i].raw, cases[i].changed);
		free(raw);
		/* changed is optional */
		raw = folder_wire_name(&l, cases[i].name, NULL);
		assert_string_equal(raw, cases[i].raw);
		free(raw);
		folder_list_free(&l);
	}
}

static void test_wire_name_invalid(void **state)
{
	static const char *const bad[] = { "", "p\xe4\xe4", "a/\xc3" };
	struct folder_list l;

	(void)state;
	folder_list_init(&l);
	assert_int_equal(folder_list_set_namespace(&l, "INBOX.", '.'), 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		bool changed = true;

		errno = 0;
		assert_null(folder_wire_name(&l, bad[i], &changed));
		assert_int_equal(errno, EINVAL);
		assert_false(changed);
	}
	errno = 0;
	assert_null(folder_wire_name(&l, NULL, NULL));
	assert_int_equal(errno, EINVAL);
	folder_list_free(&l);
}

/* Every decodable raw name comes back unchanged from its '/' form. */
static void test_wire_round_trip(void **state)
{
	static const struct side sides[] = {
		{ "INBOX.", '.', {
			{ "INBOX", 0, 0 }, { "INBOX.Sent", 0, 0 }, { "INBOX.Archive.2024", 0, 0 },
			{ "INBOX.a/b", 0, 0 }, { "INBOX.a/b.c%d", 0, 0 },
			{ "INBOX." M_LOCALITA, 0, 0 }, { "INBOX.Clienti.Rossi &- Figli", 0, 0 },
			{ "INBOX.~peter.mail.&U,BTFw-." M_NIHONGO, 0, 0 },
		} },
		{ "", '/', {
			{ "INBOX", 0, 0 }, { "INBOX/Sub", 0, 0 }, { "Sent", 0, 0 },
			{ "Archive/2024", 0, 0 }, { "v1.2", 0, 0 }, { "100%/x%2F", 0, 0 },
			{ "~peter/mail/&U,BTFw-/" M_NIHONGO, 0, 0 }, { M_ELLINIKA "/&2D3eAA-", 0, 0 },
		} },
		{ "", '.', {
			{ "INBOX.Sub", 0, 0 }, { "a/b.c", 0, 0 }, { "x%25y", 0, 0 },
		} },
	};

	(void)state;
	for (size_t s = 0; s < ARRAY_SIZE(sides); s++) {
		struct folder_list l;

		build(&l, &sides[s]);
		for (size_t i = 0; i < l.n; i++) {
			bool changed = true;
			char *raw = folder_wire_name(&l, l.v[i].name, &changed);

			if (!str_eq_or_null(raw, l.v[i].raw))
				fail_msg("raw '%s' -> name '%s' -> raw '%s'", l.v[i].raw,
					 l.v[i].name, raw ? raw : "(null)");
			assert_false(changed);
			free(raw);
		}
		folder_list_free(&l);
	}
}

/* ---- filters ---------------------------------------------------------- */

static void test_filter(void **state)
{
	static const char *inc[] = { "Archive", "Work*", "inbox", "Clienti/Rossi & Figli" };
	static const char *exc[] = { "Archive/2023", "*/Tmp", "Work/Private" };
	static const struct {
		const char *name;
		bool in_inc, in_both;
	} cases[] = {
		{ "Archive", true, true },
		{ "Archive/2023", true, false },        /* descendant of a plain name */
		{ "Archive/2023/Q1", true, false },     /* excluded with its parent */
		{ "Archive/2024", true, true },
		{ "Archive/Tmp", true, false },
		{ "Archive2", false, false },           /* a plain name is not a prefix */
		{ "Archivio", false, false },
		{ "archive", false, false },
		{ "Work", true, true },
		{ "Workshop", true, true },
		{ "Work/Old", true, true },             /* no FNM_PATHNAME */
		{ "Work/Private", true, false },
		{ "Work/Private/Deep", true, false },
		{ "INBOX", true, true },                /* INBOX in any case */
		{ "INBOX/Sub", true, true },
		{ "Clienti", false, false },
		{ "Clienti/Rossi & Figli", true, true },
		{ "Clienti/Rossi & Figli/2024", true, true },
		{ "Sent", false, false },
	};
	struct folder_filter none = { 0 };
	struct folder_filter only_inc = { inc, ARRAY_SIZE(inc), NULL, 0 };
	struct folder_filter both = { inc, ARRAY_SIZE(inc), exc, ARRAY_SIZE(exc) };
	struct folder_filter only_exc = { NULL, 0, exc, ARRAY_SIZE(exc) };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *n = cases[i].name;

		assert_true(folder_filter_match(&none, n));
		assert_true(folder_filter_match(NULL, n));
		if (folder_filter_match(&only_inc, n) != cases[i].in_inc)
			fail_msg("include: '%s' want %d", n, cases[i].in_inc);
		if (folder_filter_match(&both, n) != cases[i].in_both)
			fail_msg("include+exclude: '%s' want %d", n, cases[i].in_both);
	}
	assert_true(folder_filter_match(&only_exc, "Sent"));
	assert_false(folder_filter_match(&only_exc, "Archive/2023"));
	assert_false(folder_filter_match(&only_exc, "Deep/Tmp"));
	assert_false(folder_filter_match(&none, NULL));
}


/* Patterns are written as names are shown: '%' is itself, a '/' inside a
 * component is "\/", and a backslash is no pattern escape ("[*]" is). */
static void test_filter_shown_names(void **state)
{
	static const char *inc[] = { "%percent", "a\\/b", "star[*]", "back\\\\slash" };
	struct folder_filter f = { inc, ARRAY_SIZE(inc), NULL, 0 };
	struct folder_list l;

	(void)state;
	assert_true(folder_filter_match(&f, "%percent"));
	assert_true(folder_filter_match(&f, "%percent/sub"));
	assert_false(folder_filter_match(&f, "%25percent"));
	assert_true(folder_filter_match(&f, "a\\/b"));
	assert_false(folder_filter_match(&f, "a/b"));
	assert_true(folder_filter_match(&f, "star*"));
	assert_false(folder_filter_match(&f, "starx"));
	assert_true(folder_filter_match(&f, "back\\\\slash"));
	/* the names a '.' server's LIST gives match those patterns */
	folder_list_init(&l);
	assert_int_equal(folder_list_set_namespace(&l, "INBOX.", '.'), 0);
	assert_int_equal(folder_list_add(&l, "INBOX.%percent", '.', ROLE_NONE, false), 0);
	assert_int_equal(folder_list_add(&l, "INBOX.a/b", '.', ROLE_NONE, false), 0);
	assert_true(folder_filter_match(&f, l.v[0].name));
	assert_true(folder_filter_match(&f, l.v[1].name));
	folder_list_free(&l);
}

/* Every --folder, --exclude and --map that does nothing is reported. */
static void test_plan_unused(void **state)
{
	static const char *inc[] = { "%percent", "Nothing*", "INBOX" };
	static const char *exc[] = { "Sent", "INBOX/none" };
	static const struct folder_map_rule rules[] = {
		{ "%percent", "percent" }, { "%25percent", "x" }, { "Sent", "Old Sent" },
	};
	struct folder_list src, dst;
	struct folder_plan plan;
	struct folder_map_opts o = { 0 };
	struct tr_error err;

	(void)state;
	build(&src, &(struct side){ "", '/', { { "INBOX", 0, 0 }, { "%percent", 0, 0 },
					      { "Sent", 0, 0 } } });
	build(&dst, &(struct side){ "", '/', { { "INBOX", 0, 0 } } });
	o.rules = rules;
	o.n_rules = ARRAY_SIZE(rules);
	o.filter.include = inc;
	o.filter.n_include = ARRAY_SIZE(inc);
	o.filter.exclude = exc;
	o.filter.n_exclude = ARRAY_SIZE(exc);
	assert_int_equal(folder_plan_make(&src, &dst, &o, &plan, &err), 0);
	assert_int_equal(plan.n, 2);
	assert_string_equal(plan.v[1].dst_name, "percent");
	assert_string_equal(plan.v[1].why, "map");
	assert_int_equal(plan.n_unused, 5);
	assert_non_null(strstr(plan.unused[0], "--folder 'Nothing*'"));
	/* "Sent" exists but is not selected by --folder */
	assert_non_null(strstr(plan.unused[1], "--exclude 'Sent'"));
	assert_non_null(strstr(plan.unused[2], "--exclude 'INBOX/none'"));
	assert_non_null(strstr(plan.unused[3], "--map '%25percent=x'"));
	assert_non_null(strstr(plan.unused[4], "--map 'Sent=Old Sent'"));
	folder_plan_free(&plan);
	assert_int_equal(plan.n_unused, 0);
	assert_null(plan.unused);
	folder_list_free(&src);
	folder_list_free(&dst);
}

/* Names saved by trasloco 0.1 ("%25", "%2F", "%HH") in today's form. */
static void test_name_from_v1(void **state)
{
	static const struct {
		const char *old, *now;
	} cases[] = {
		{ "INBOX", "INBOX" },
		{ "Archive/2024", "Archive/2024" },
		{ "100%25", "100%" },
		{ "%25percent", "%percent" },
		{ "a%2Fb/c", "a\\/b/c" },
		{ "a%2fb", "a\\/b" },
		{ "%26Jjo", "\\x26Jjo" },
		{ "Caf%E9", "Caf\\xE9" },
		{ "back\\slash", "back\\\\slash" },
		{ "a\x01" "b", "a\\u0001b" },
		{ LOCALITA, LOCALITA },
		{ "50% off", "50% off" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *now = folder_name_from_v1(cases[i].old);

		if (!str_eq_or_null(now, cases[i].now))
			fail_msg("'%s' -> '%s', want '%s'", cases[i].old, now ? now : "(null)",
				 cases[i].now);
		free(now);
	}
}

/* ---- names a destination refuses -------------------------------------- */

static void test_legal_name(void **state)
{
	static const struct {
		const char *name;
		int level;
		char bad;
		const char *want;
	} cases[] = {
		{ "%percent", 1, 0, "_percent" },
		{ "a*b?c\"d", 1, 0, "a_b_c_d" },
		{ "a\\/b/c", 1, 0, "a_b/c" },             /* '/' inside a component */
		{ "back\\\\slash", 1, 0, "back_slash" },
		{ "a\\u0001b", 1, 0, "a_b" },
		{ "v1.2/sub", 1, '.', "v1_2/sub" },       /* the character the server named */
		{ "v1.2/sub", 1, 0, "v1.2/sub" },
		{ "INBOX/50%", 1, 0, "INBOX/50_" },       /* INBOX itself never changes */
		{ "semi;colon #1", 1, 0, "semi;colon #1" },
		{ "semi;colon #1", 2, 0, "semi_colon _1" },
		{ " lead/trail ", 2, 0, "_lead/trail_" },
		{ ".hidden", 2, 0, "_hidden" },
		{ "R&D (old), it's", 2, 0, "R&D (old), it's" },
		{ "R&D (old), it's", 3, 0, "R_D _old__ it_s" },
		{ LOCALITA "/x", 2, 0, LOCALITA "/x" },
		{ LOCALITA "/x", 3, 0, "Localit_/x" },
		{ "\\x26Jjo", 1, 0, "_26Jjo" },          /* undecodable: "%26Jjo" on the way */
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *got = folder_legal_name(cases[i].name, cases[i].level, cases[i].bad);

		if (!str_eq_or_null(got, cases[i].want))
			fail_msg("'%s' level %d: '%s', want '%s'", cases[i].name, cases[i].level,
				 got ? got : "(null)", cases[i].want);
		/* every level's result is a fixed point of itself */
		{
			char *again = folder_legal_name(got, cases[i].level, cases[i].bad);

			assert_string_equal(again, got);
			free(again);
		}
		assert_true(folder_legal_variant(cases[i].name, got));
		free(got);
	}
	assert_null(folder_legal_name("x", 0, 0));
	assert_null(folder_legal_name("x", FOLDER_LEGAL_LEVELS + 1, 0));
	assert_null(folder_legal_name("", 1, 0));
	assert_true(folder_legal_variant("%percent", "_percent_2"));
	assert_true(folder_legal_variant("%percent", "_percent_12"));
	assert_false(folder_legal_variant("%percent", "_percent_x"));
	assert_false(folder_legal_variant("%percent", "percent"));
	assert_false(folder_legal_variant("a%b", "a_c"));
	assert_false(folder_legal_variant("a%b", "a_b/c"));
}

/* The plan after refusals: collisions get a suffix, subfolders follow. */
static void test_plan_legalize(void **state)
{
	struct folder_list src, dst;
	struct folder_plan plan;
	struct tr_error err;

	(void)state;
	build(&src, &(struct side){ "", '/', { { "INBOX", 0, 0 }, { "a%b", 0, 0 },
					      { "a%b/c%d", 0, 0 }, { "x?y", 0, 0 },
					      { "x_y", 0, 0 }, { "p*q", 0, 0 } } });
	build(&dst, &(struct side){ "INBOX.", '.', { { "INBOX", 0, 0 }, { "INBOX.p_q", 0, 0 } } });
	assert_int_equal(folder_plan_make(&src, &dst, NULL, &plan, &err), 0);
	assert_int_equal(plan.n, 6);
	/* the parent first, then its child follows it */
	assert_int_equal(folder_plan_legalize(&plan, &dst, 1, 1, 0, &err), 1);
	assert_string_equal(plan.v[1].dst_name, "a_b");
	assert_string_equal(plan.v[1].dst_raw, "INBOX.a_b");
	assert_string_equal(plan.v[1].refused_name, "a%b");
	assert_string_equal(plan.v[1].why, "refused");
	assert_true(plan.v[1].renamed);
	assert_false(plan.v[1].dst_exists);
	assert_int_equal(folder_plan_legalize(&plan, &dst, 2, 1, 0, &err), 1);
	assert_string_equal(plan.v[2].dst_name, "a_b/c_d");
	/* "x_y" is another source folder's: the rename must not take it */
	assert_int_equal(folder_plan_legalize(&plan, &dst, 3, 1, 0, &err), 1);
	assert_string_equal(plan.v[3].dst_name, "x_y_2");
	/* "p_q" exists on the destination and no source folder claims it: an
	 * earlier run's copy of "p*q", taken again */
	assert_int_equal(folder_plan_legalize(&plan, &dst, 5, 1, 0, &err), 1);
	assert_string_equal(plan.v[5].dst_name, "p_q");
	assert_true(plan.v[5].dst_exists);
	/* nothing more for level 1 to change on a name it made */
	assert_int_equal(folder_plan_legalize(&plan, &dst, 1, 1, 0, &err), 0);
	/* a parent renamed with a suffix takes its child along */
	assert_int_equal(folder_plan_rename(&plan, &dst, 1, "a_b_9", "refused", &err), 0);
	assert_string_equal(plan.v[1].refused_name, "a%b");
	assert_int_equal(folder_plan_legalize(&plan, &dst, 2, 2, 0, &err), 1);
	assert_string_equal(plan.v[2].dst_name, "a_b_9/c_d");
	folder_plan_free(&plan);
	folder_list_free(&src);
	folder_list_free(&dst);
}

/* ---- plans ------------------------------------------------------------ */

struct want {
	const char *src_raw, *dst_raw, *dst_name;
	enum folder_role role;
	bool renamed;
	const char *why;
	bool exists;
};

struct plan_case {
	const char *title;
	struct side src, dst;
	bool keep_names;
	struct folder_map_rule rules[4];        /* up to from == NULL */
	const char *include[4], *exclude[4];    /* up to NULL */
	struct want want[MAXF];                 /* up to src_raw == NULL */
};

/* Dovecot with SPECIAL-USE on the English names */
#define DOVECOT_ROLES { "", '/', { \
	{ "INBOX", 0, 0 }, { "Sent", ROLE_SENT, 0 }, { "Drafts", ROLE_DRAFTS, 0 }, \
	{ "Trash", ROLE_TRASH, 0 }, { "Junk", ROLE_JUNK, 0 }, { "Archive", ROLE_ARCHIVE, 0 }, \
} }

static const struct plan_case plan_cases[] = {
	{ "a: \\Sent on 'Posta inviata' goes to the destination's \\Sent",
	  { "", '/', { { "INBOX", 0, 0 }, { "Posta inviata", ROLE_SENT, 0 } } },
	  DOVECOT_ROLES, false, { { 0 } }, { 0 }, { 0 }, {
		{ "INBOX", "INBOX", "INBOX", ROLE_NONE, false, NULL, true },
		{ "Posta inviata", "Sent", "Sent", ROLE_SENT, true, "special-use", true },
	} },
	{ "b: Italian names without attributes",
	  { "", '/', { { "INBOX", 0, 0 }, { "Posta inviata", 0, 0 }, { "Bozze", 0, 0 },
		       { "Cestino", 0, 0 }, { "Posta indesiderata", 0, 0 },
		       { "Archivio", 0, 0 }, { "Clienti", 0, 0 }, { "Clienti/Bozze", 0, 0 } } },
	  DOVECOT_ROLES, false, { { 0 } }, { 0 }, { 0 }, {
		{ "INBOX", "INBOX", "INBOX", ROLE_NONE, false, NULL, true },
		{ "Posta inviata", "Sent", "Sent", ROLE_SENT, true, "special-use", true },
		{ "Bozze", "Drafts", "Drafts", ROLE_DRAFTS, true, "special-use", true },
		{ "Cestino", "Trash", "Trash", ROLE_TRASH, true, "special-use", true },
		{ "Posta indesiderata", "Junk", "Junk", ROLE_JUNK, true, "special-use", true },
		{ "Archivio", "Archive", "Archive", ROLE_ARCHIVE, true, "special-use", true },
		{ "Clienti", "Clienti", "Clienti", ROLE_NONE, false, NULL, false },
		{ "Clienti/Bozze", "Clienti/Bozze", "Clienti/Bozze", ROLE_NONE, false, NULL, false },
	} },
	{ "c: a destination without SPECIAL-USE keeps the names",
	  { "", '/', { { "INBOX", 0, 0 }, { "Posta inviata", ROLE_SENT, 0 }, { "Bozze", 0, 0 } } },
	  { "", '/', { { "INBOX", 0, 0 }, { "Sent", 0, 0 }, { "Drafts", 0, 0 } } },
	  false, { { 0 } }, { 0 }, { 0 }, {
		{ "INBOX", "INBOX", "INBOX", ROLE_NONE, false, NULL, true },
		{ "Posta inviata", "Posta inviata", "Posta inviata", ROLE_SENT, false, NULL, false },
		{ "Bozze", "Bozze", "Bozze", ROLE_DRAFTS, false, NULL, false },
	} },
	{ "d: 'Sent' keeps Sent, the \\Sent folder with another name keeps its own",
	  { "", '/', { { "INBOX", 0, 0 }, { "Posta inviata", ROLE_SENT, 0 }, { "Sent", 0, 0 } } },
	  { "", '/', { { "INBOX", 0, 0 }, { "Sent", ROLE_SENT, 0 } } },
	  false, { { 0 } }, { 0 }, { 0 }, {
		{ "INBOX", "INBOX", "INBOX", ROLE_NONE, false, NULL, true },
		{ "Posta inviata", "Posta inviata", "Posta inviata", ROLE_SENT, false, NULL, false },
		{ "Sent", "Sent", "Sent", ROLE_SENT, false, NULL, true },
	} },
	{ "d2: the attribute beats the name for the role target",
	  { "", '/', { { "Posta inviata", 0, 0 }, { "Elementi inviati", ROLE_SENT, 0 } } },
	  { "", '/', { { "INBOX", 0, 0 }, { "Sent", ROLE_SENT, 0 } } },
	  false, { { 0 } }, { 0 }, { 0 }, {
		{ "Posta inviata", "Posta inviata", "Posta inviata", ROLE_SENT, false, NULL, false },
		{ "Elementi inviati", "Sent", "Sent", ROLE_SENT, true, "special-use", true },
	} },
	{ "e: keep_names only translates",
	  { "", '/', { { "INBOX", 0, 0 }, { "Posta inviata", ROLE_SENT, 0 }, { "Bozze", 0, 0 },
		       { "Archivio/2023", 0, 0 } } },
	  { "INBOX.", '.', { { "INBOX", 0, 0 }, { "INBOX.Sent", ROLE_SENT, 0 },
			     { "INBOX.Drafts", ROLE_DRAFTS, 0 } } },
	  true, { { 0 } }, { 0 }, { 0 }, {
		{ "INBOX", "INBOX", "INBOX", ROLE_NONE, false, NULL, true },
		{ "Posta inviata", "INBOX.Posta inviata", "Posta inviata", ROLE_SENT, false, NULL, false },
		{ "Bozze", "INBOX.Bozze", "Bozze", ROLE_DRAFTS, false, NULL, false },
		{ "Archivio/2023", "INBOX.Archivio.2023", "Archivio/2023", ROLE_NONE, false, NULL, false },
	} },
	{ "f: --map beats the role",
	  { "", '/', { { "INBOX", 0, 0 }, { "Posta inviata", ROLE_SENT, 0 }, { "Bozze", 0, 0 } } },
	  DOVECOT_ROLES, false,
	  { { "Posta inviata", "Archive/Vecchia posta" }, { "Non esiste", "Sent" } },
	  { 0 }, { 0 }, {
		{ "INBOX", "INBOX", "INBOX", ROLE_NONE, false, NULL, true },
		{ "Posta inviata", "Archive/Vecchia posta", "Archive/Vecchia posta", ROLE_SENT,
		  true, "map", false },
		{ "Bozze", "Drafts", "Drafts", ROLE_DRAFTS, true, "special-use", true },
	} },
	{ "g: --map merges two folders on purpose",
	  { "", '/', { { "INBOX", 0, 0 }, { "Vecchi", 0, 0 }, { "Vecchissimi", 0, 0 },
		       { "Fatture", 0, 0 } } },
	  DOVECOT_ROLES, false,
	  { { "Vecchi", "Archive" }, { "Vecchissimi", "Archive" }, { "Posteingang", "INBOX" } },
	  { 0 }, { 0 }, {
		{ "INBOX", "INBOX", "INBOX", ROLE_NONE, false, NULL, true },
		{ "Vecchi", "Archive", "Archive", ROLE_NONE, true, "map", true },
		{ "Vecchissimi", "Archive", "Archive", ROLE_NONE, true, "map", true },
		{ "Fatture", "Fatture", "Fatture", ROLE_NONE, false, NULL, false },
	} },
	{ "g2: --map into INBOX merges; a mapped target displaces a same-named folder",
	  { "", '/', { { "INBOX", 0, 0 }, { "Posteingang", 0, 0 }, { "Old", 0, 0 },
		       { "Fatture", 0, 0 } } },
	  DOVECOT_ROLES, false,
	  { { "Posteingang", "inbox" }, { "Old", "Fatture" } },
	  { 0 }, { 0 }, {
		{ "INBOX", "INBOX", "INBOX", ROLE_NONE, false, NULL, true },
		{ "Posteingang", "INBOX", "INBOX", ROLE_NONE, true, "map", true },
		{ "Old", "Fatture", "Fatture", ROLE_NONE, true, "map", false },
		{ "Fatture", "Fatture (2)", "Fatture (2)", ROLE_NONE, true, "clash", false },
	} },
	{ "h: Courier source to a '/' destination without prefix",
	  { "INBOX.", '.', { { "INBOX", 0, 0 }, { "INBOX.Sent", 0, 0 }, { "INBOX.Archive", 0, 0 },
			     { "INBOX.Archive.2024", 0, 0 }, { "INBOX.a/b", 0, 0 } } },
	  { "", '/', { { "INBOX", 0, 0 }, { "Sent", 0, 0 } } },
	  false, { { 0 } }, { 0 }, { 0 }, {
		{ "INBOX", "INBOX", "INBOX", ROLE_NONE, false, NULL, true },
		{ "INBOX.Sent", "Sent", "Sent", ROLE_SENT, false, NULL, true },
		{ "INBOX.Archive", "Archive", "Archive", ROLE_ARCHIVE, false, NULL, false },
		{ "INBOX.Archive.2024", "Archive/2024", "Archive/2024", ROLE_NONE, false, NULL, false },
		{ "INBOX.a/b", "a_b", "a_b", ROLE_NONE, true, "delimiter", false },
	} },
	{ "i: '/' source to a Courier destination",
	  { "", '/', { { "INBOX", 0, 0 }, { "Sent", ROLE_SENT, 0 }, { "Archive/2024", 0, 0 },
		       { "v1.2", 0, 0 }, { "Clienti", 0, 0 }, { "Clienti/Rossi &- Figli", 0, 0 },
		       { "INBOX/Sub", 0, 0 } } },
	  { "INBOX.", '.', { { "INBOX", 0, 0 }, { "INBOX.Sent", ROLE_SENT, 0 } } },
	  false, { { 0 } }, { 0 }, { 0 }, {
		{ "INBOX", "INBOX", "INBOX", ROLE_NONE, false, NULL, true },
		{ "Sent", "INBOX.Sent", "Sent", ROLE_SENT, false, NULL, true },
		{ "Archive/2024", "INBOX.Archive.2024", "Archive/2024", ROLE_NONE, false, NULL, false },
		{ "v1.2", "INBOX.v1_2", "v1_2", ROLE_NONE, true, "delimiter", false },
		{ "Clienti", "INBOX.Clienti", "Clienti", ROLE_NONE, false, NULL, false },
		{ "Clienti/Rossi &- Figli", "INBOX.Clienti.Rossi &- Figli", "Clienti/Rossi & Figli",
		  ROLE_NONE, false, NULL, false },
		{ "INBOX/Sub", "INBOX.Sub", "Sub", ROLE_NONE, true, "delimiter", false },
	} },
	{ "j: clashes get a suffix, untouched names win",
	  { "", '/', { { "INBOX/x", 0, 0 }, { "a.b", 0, 0 }, { "a_b", 0, 0 }, { "x", 0, 0 },
		       { "c.d", 0, 0 }, { "c_d", 0, 0 }, { "c_d (2)", 0, 0 } } },
	  { "INBOX.", '.', { { "INBOX", 0, 0 }, { "INBOX.a_b", 0, 0 } } },
	  false, { { 0 } }, { 0 }, { 0 }, {
		{ "INBOX/x", "INBOX.x (2)", "x (2)", ROLE_NONE, true, "clash", false },
		{ "a.b", "INBOX.a_b (2)", "a_b (2)", ROLE_NONE, true, "clash", false },
		{ "a_b", "INBOX.a_b", "a_b", ROLE_NONE, false, NULL, true },
		{ "x", "INBOX.x", "x", ROLE_NONE, false, NULL, false },
		{ "c.d", "INBOX.c_d (3)", "c_d (3)", ROLE_NONE, true, "clash", false },
		{ "c_d", "INBOX.c_d", "c_d", ROLE_NONE, false, NULL, false },
		{ "c_d (2)", "INBOX.c_d (2)", "c_d (2)", ROLE_NONE, false, NULL, false },
	} },
	{ "k: include and exclude, descendants of plain names included",
	  { "", '/', { { "INBOX", 0, 0 }, { "Archive", 0, 0 }, { "Archive/2023", 0, 0 },
		       { "Archive/2023/Q1", 0, 0 }, { "Archive/2024", 0, 0 }, { "Archive2", 0, 0 },
		       { "Work/Old", 0, 0 }, { "Sent", 0, 0 } } },
	  { "", '/', { { "INBOX", 0, 0 } } },
	  false, { { 0 } }, { "Archive", "Work*" }, { "Archive/2023" }, {
		{ "Archive", "Archive", "Archive", ROLE_ARCHIVE, false, NULL, false },
		{ "Archive/2024", "Archive/2024", "Archive/2024", ROLE_NONE, false, NULL, false },
		{ "Work/Old", "Work/Old", "Work/Old", ROLE_NONE, false, NULL, false },
	} },
	{ "l: \\Noselect folders are skipped, [Gmail]/... counts by attribute only",
	  { "", '/', { { "INBOX", 0, 0 }, { "[Gmail]", 0, true },
		       { "[Gmail]/Sent Mail", ROLE_SENT, 0 }, { "[Gmail]/All Mail", ROLE_ALL, 0 },
		       { "[Gmail]/Bozze", 0, 0 }, { "Gone", 0, true } } },
	  DOVECOT_ROLES, false, { { 0 } }, { 0 }, { 0 }, {
		{ "INBOX", "INBOX", "INBOX", ROLE_NONE, false, NULL, true },
		{ "[Gmail]/Sent Mail", "Sent", "Sent", ROLE_SENT, true, "special-use", true },
		{ "[Gmail]/All Mail", "[Gmail]/All Mail", "[Gmail]/All Mail", ROLE_ALL,
		  false, NULL, false },
		{ "[Gmail]/Bozze", "[Gmail]/Bozze", "[Gmail]/Bozze", ROLE_NONE, false, NULL, false },
	} },
	{ "l2: a \\Noselect destination is neither a role target nor existing",
	  { "", '/', { { "Posta inviata", ROLE_SENT, 0 }, { "Bozze", 0, 0 } } },
	  { "", '/', { { "INBOX", 0, 0 }, { "Sent", ROLE_SENT, true }, { "Bozze", 0, true },
		       { "Drafts", ROLE_DRAFTS, 0 } } },
	  false, { { 0 } }, { 0 }, { 0 }, {
		{ "Posta inviata", "Posta inviata", "Posta inviata", ROLE_SENT, false, NULL, false },
		{ "Bozze", "Drafts", "Drafts", ROLE_DRAFTS, true, "special-use", true },
	} },
	{ "m: INBOX in another case",
	  { "", '/', { { "inbox", 0, 0 }, { "Inbox/Sub", 0, 0 } } },
	  { "", '/', { { "INBOX", 0, 0 }, { "INBOX/Sub", 0, 0 } } },
	  false, { { 0 } }, { 0 }, { 0 }, {
		{ "inbox", "INBOX", "INBOX", ROLE_NONE, false, NULL, true },
		{ "Inbox/Sub", "INBOX/Sub", "INBOX/Sub", ROLE_NONE, false, NULL, true },
	} },
	{ "m2: INBOX listed in another case by the destination",
	  { "INBOX.", '.', { { "INBOX", 0, 0 } } },
	  { "", '/', { { "Inbox", 0, 0 } } },
	  false, { { 0 } }, { 0 }, { 0 }, {
		{ "INBOX", "INBOX", "INBOX", ROLE_NONE, false, NULL, true },
	} },
	{ "n: UTF-8 names, '/' source to Courier",
	  { "", '/', { { "INBOX", 0, 0 }, { M_LOCALITA, 0, 0 }, { "Clienti", 0, 0 },
		       { "Clienti/Rossi &- Figli", 0, 0 }, { M_NIHONGO, 0, 0 },
		       { M_ELLINIKA "/" M_NIHONGO, 0, 0 } } },
	  { "INBOX.", '.', { { "INBOX", 0, 0 }, { "INBOX." M_LOCALITA, 0, 0 } } },
	  false, { { 0 } }, { 0 }, { 0 }, {
		{ "INBOX", "INBOX", "INBOX", ROLE_NONE, false, NULL, true },
		{ M_LOCALITA, "INBOX." M_LOCALITA, LOCALITA, ROLE_NONE, false, NULL, true },
		{ "Clienti", "INBOX.Clienti", "Clienti", ROLE_NONE, false, NULL, false },
		{ "Clienti/Rossi &- Figli", "INBOX.Clienti.Rossi &- Figli", "Clienti/Rossi & Figli",
		  ROLE_NONE, false, NULL, false },
		{ M_NIHONGO, "INBOX." M_NIHONGO, NIHONGO, ROLE_NONE, false, NULL, false },
		{ M_ELLINIKA "/" M_NIHONGO, "INBOX." M_ELLINIKA "." M_NIHONGO,
		  ELLINIKA "/" NIHONGO, ROLE_NONE, false, NULL, false },
	} },
	{ "n2: UTF-8 names, Courier source to '/', with --map to UTF-8",
	  { "INBOX.", '.', { { "INBOX", 0, 0 }, { "INBOX." M_LOCALITA, 0, 0 },
			     { "INBOX.Clienti.Rossi &- Figli", 0, 0 },
			     { "INBOX." M_ELLINIKA, 0, 0 } } },
	  { "", '/', { { "INBOX", 0, 0 }, { M_NIHONGO, 0, 0 } } },
	  false, { { ELLINIKA, NIHONGO "/" ELLINIKA } }, { 0 }, { 0 }, {
		{ "INBOX", "INBOX", "INBOX", ROLE_NONE, false, NULL, true },
		{ "INBOX." M_LOCALITA, M_LOCALITA, LOCALITA, ROLE_NONE, false, NULL, false },
		{ "INBOX.Clienti.Rossi &- Figli", "Clienti/Rossi &- Figli", "Clienti/Rossi & Figli",
		  ROLE_NONE, false, NULL, false },
		{ "INBOX." M_ELLINIKA, M_NIHONGO "/" M_ELLINIKA, NIHONGO "/" ELLINIKA,
		  ROLE_NONE, true, "map", false },
	} },
	{ "undecodable source names travel escaped",
	  { "", '/', { { "&Jjo", 0, 0 }, { "Caf\xe9", 0, 0 } } },
	  { "", '/', { { "INBOX", 0, 0 } } },
	  false, { { 0 } }, { 0 }, { 0 }, {
		{ "&Jjo", "%26Jjo", "%26Jjo", ROLE_NONE, true, "undecodable", false },
		{ "Caf\xe9", "Caf%E9", "Caf%E9", ROLE_NONE, true, "undecodable", false },
	} },
};

static void check_entry(const char *title, size_t i, const struct folder_list *src,
			const struct folder_plan_entry *e, const struct want *w)
{
	const char *src_raw = src->v[e->src_index].raw;

	if (strcmp(src_raw, w->src_raw) != 0 || strcmp(e->dst_raw, w->dst_raw) != 0 ||
	    strcmp(e->dst_name, w->dst_name) != 0 || e->role != w->role ||
	    e->renamed != w->renamed || !str_eq_or_null(e->why, w->why) ||
	    e->dst_exists != w->exists)
		fail_msg("%s: entry %zu:\n"
			 "  got  '%s' -> '%s' ('%s') role %d renamed %d why %s exists %d\n"
			 "  want '%s' -> '%s' ('%s') role %d renamed %d why %s exists %d",
			 title, i,
			 src_raw, e->dst_raw, e->dst_name, e->role, e->renamed,
			 e->why ? e->why : "NULL", e->dst_exists,
			 w->src_raw, w->dst_raw, w->dst_name, w->role, w->renamed,
			 w->why ? w->why : "NULL", w->exists);
}

static size_t count_until_null(const char *const *v, size_t max)
{
	size_t n = 0;

	while (n < max && v[n] != NULL)
		n++;
	return n;
}

static void run_plan_case(const struct plan_case *pc)
{
	struct folder_list src, dst;
	struct folder_map_opts opts = { 0 };
	struct folder_plan plan;
	struct tr_error err;
	size_t n_want = 0, n_rules = 0;

	build(&src, &pc->src);
	build(&dst, &pc->dst);
	while (n_rules < ARRAY_SIZE(pc->rules) && pc->rules[n_rules].from != NULL)
		n_rules++;
	while (n_want < MAXF && pc->want[n_want].src_raw != NULL)
		n_want++;
	opts.keep_names = pc->keep_names;
	opts.rules = pc->rules;
	opts.n_rules = n_rules;
	opts.filter.include = (const char **)pc->include;
	opts.filter.n_include = count_until_null(pc->include, ARRAY_SIZE(pc->include));
	opts.filter.exclude = (const char **)pc->exclude;
	opts.filter.n_exclude = count_until_null(pc->exclude, ARRAY_SIZE(pc->exclude));

	tr_error_clear(&err);
	if (folder_plan_make(&src, &dst, &opts, &plan, &err) != 0)
		fail_msg("%s: plan failed: %s", pc->title, err.msg);
	if (plan.n != n_want)
		fail_msg("%s: %zu entries, want %zu", pc->title, plan.n, n_want);
	for (size_t i = 0; i < plan.n; i++)
		check_entry(pc->title, i, &src, &plan.v[i], &pc->want[i]);

	folder_plan_free(&plan);
	assert_int_equal(plan.n, 0);
	folder_list_free(&src);
	folder_list_free(&dst);
}

static void test_plan_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(plan_cases); i++)
		run_plan_case(&plan_cases[i]);
}

/* Entries point back to the source by index, in source order. */
static void test_plan_indices(void **state)
{
	struct folder_list src, dst;
	struct folder_map_opts opts = { 0 };
	struct folder_plan plan;
	struct tr_error err;

	(void)state;
	build(&src, &(struct side){ "", '/', { { "[Gmail]", 0, true }, { "A", 0, 0 },
					      { "B", 0, true }, { "C", 0, 0 } } });
	build(&dst, &(struct side){ "", '/', { { "INBOX", 0, 0 } } });
	assert_int_equal(folder_plan_make(&src, &dst, &opts, &plan, &err), 0);
	assert_int_equal(plan.n, 2);
	assert_int_equal(plan.v[0].src_index, 1);
	assert_int_equal(plan.v[1].src_index, 3);
	folder_plan_free(&plan);

	/* no options at all, empty source */
	assert_int_equal(folder_plan_make(&dst, &dst, NULL, &plan, &err), 0);
	assert_int_equal(plan.n, 1);
	folder_plan_free(&plan);
	folder_list_free(&src);
	assert_int_equal(folder_plan_make(&src, &dst, NULL, &plan, &err), 0);
	assert_int_equal(plan.n, 0);
	folder_plan_free(&plan);
	folder_plan_free(&plan);
	folder_list_free(&dst);
}

static void test_plan_errors(void **state)
{
	static const struct {
		const char *title;
		struct folder_map_rule rules[3];
		const char *msg_part;
	} cases[] = {
		{ "o: two rules for one source",
		  { { "Posta inviata", "Sent" }, { "Bozze", "Drafts" }, { "Posta inviata", "Archive" } },
		  "Posta inviata" },
		{ "two rules for INBOX in different case",
		  { { "INBOX", "Old" }, { "inbox", "Older" }, { NULL, NULL } }, "inbox" },
		{ "duplicate rule naming no folder is still an error",
		  { { "Nowhere", "A" }, { "Nowhere", "A" }, { NULL, NULL } }, "Nowhere" },
		{ "empty target",
		  { { "Bozze", "" }, { NULL, NULL }, { NULL, NULL } }, "empty" },
		{ "invalid UTF-8 target",
		  { { "Bozze", "p\xe4\xe4" }, { NULL, NULL }, { NULL, NULL } }, "UTF-8" },
	};
	struct folder_list src, dst;

	(void)state;
	build(&src, &(struct side){ "", '/', { { "INBOX", 0, 0 }, { "Posta inviata", ROLE_SENT, 0 },
					      { "Bozze", 0, 0 } } });
	build(&dst, &(struct side)DOVECOT_ROLES);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct folder_map_opts opts = { 0 };
		struct folder_plan plan = { (void *)1, 99, NULL, 0 };
		struct tr_error err;
		size_t n = 0;

		while (n < ARRAY_SIZE(cases[i].rules) && cases[i].rules[n].from != NULL)
			n++;
		opts.rules = cases[i].rules;
		opts.n_rules = n;
		tr_error_clear(&err);
		if (folder_plan_make(&src, &dst, &opts, &plan, &err) != -1)
			fail_msg("%s: no error", cases[i].title);
		assert_int_equal(err.kind, TR_ERR_USAGE);
		if (strstr(err.msg, cases[i].msg_part) == NULL)
			fail_msg("%s: message '%s' lacks '%s'", cases[i].title, err.msg,
				 cases[i].msg_part);
		assert_null(plan.v);
		assert_int_equal(plan.n, 0);
	}
	folder_list_free(&src);
	folder_list_free(&dst);
}

/* Lists filled by hand, as the header allows: a NULL name falls back to
 * the raw name; a name that is not UTF-8 fails the plan cleanly. */
static void test_plan_hand_made_lists(void **state)
{
	struct folder_list src, dst;
	struct folder_plan plan;
	struct tr_error err;

	(void)state;
	build(&src, &(struct side){ "", '/', { { "INBOX", 0, 0 }, { "A", 0, 0 }, { "B", 0, 0 },
					      { "C", 0, 0 } } });
	build(&dst, &(struct side){ "", '.', { { "INBOX", 0, 0 } } });
	free(src.v[1].name);
	src.v[1].name = NULL;
	assert_int_equal(folder_plan_make(&src, &dst, NULL, &plan, &err), 0);
	assert_int_equal(plan.n, 4);
	assert_string_equal(plan.v[1].dst_raw, "A");
	assert_false(plan.v[1].renamed);
	folder_plan_free(&plan);

	free(src.v[2].name);
	src.v[2].name = strdup("p\xe4\xe4");
	assert_non_null(src.v[2].name);
	tr_error_clear(&err);
	assert_int_equal(folder_plan_make(&src, &dst, NULL, &plan, &err), -1);
	assert_int_equal(err.kind, TR_ERR_USAGE);
	assert_non_null(strstr(err.msg, "UTF-8"));
	assert_null(plan.v);
	assert_int_equal(plan.n, 0);
	folder_list_free(&src);
	folder_list_free(&dst);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_role_attr),
		cmocka_unit_test(test_role_name),
		cmocka_unit_test(test_list_decode),
		cmocka_unit_test(test_list_ops),
		cmocka_unit_test(test_wire_name),
		cmocka_unit_test(test_wire_name_invalid),
		cmocka_unit_test(test_wire_round_trip),
		cmocka_unit_test(test_filter),
		cmocka_unit_test(test_filter_shown_names),
		cmocka_unit_test(test_name_from_v1),
		cmocka_unit_test(test_plan_cases),
		cmocka_unit_test(test_plan_indices),
		cmocka_unit_test(test_plan_errors),
		cmocka_unit_test(test_plan_hand_made_lists),
		cmocka_unit_test(test_plan_unused),
		cmocka_unit_test(test_legal_name),
		cmocka_unit_test(test_plan_legalize),
	};

	return cmocka_run_group_tests_name("folder", tests, NULL, NULL);
}
