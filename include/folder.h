/* folder: what the servers call their folders, and which source folder goes
 * to which destination folder.
 *
 * Pure data, no sessions: the imap module fills a folder_list from LIST /
 * LSUB / NAMESPACE, and folder_plan() decides the destination name of every
 * source folder.  Names are kept in both forms: `raw` is the name on the wire
 * (modified UTF-7, with that server's delimiter and namespace prefix) and
 * `name` is the decoded UTF-8 with the personal namespace prefix removed and
 * the hierarchy written with '/', the form users type in --folder, --exclude
 * and --map and see in logs, reports and the state.  Inside a name
 * component a literal '/' is written "\/", a backslash "\\", a control
 * character "\uHHHH"; a name that is not valid modified UTF-7 shows its odd
 * bytes as "\xHH" (folder.c explains why this never collides).
 *
 * The mapping rules (issue 3, section 4):
 *  - INBOX is always INBOX (matched case-insensitively).
 *  - --map 'Old=New' (names in the '/' form) wins over everything.
 *  - With keep_names, names are only translated (delimiter, prefix).
 *  - Otherwise a source folder with a role (SPECIAL-USE attribute first,
 *    well-known name in several languages second, top level only) goes to
 *    the destination folder announcing the same role with SPECIAL-USE, when
 *    that folder has another name.  If the destination announces no roles,
 *    names are kept.
 *  - Two source folders never land in one destination folder unless --map
 *    says so: a folder whose own name is the target keeps it, and among
 *    role candidates the attribute beats the name; the losers keep their
 *    names.  Remaining clashes get a " (2)", " (3)" suffix.
 *  - A destination delimiter inside a source name component is replaced by
 *    '_' (the folder is then listed as renamed).
 */
#ifndef TRASLOCO_FOLDER_H
#define TRASLOCO_FOLDER_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

enum folder_role {
	ROLE_NONE = 0,
	ROLE_SENT,
	ROLE_DRAFTS,
	ROLE_TRASH,
	ROLE_JUNK,
	ROLE_ARCHIVE,
	ROLE_ALL,
	ROLE_FLAGGED,
	ROLE_IMPORTANT,     /* Gmail's \Important view (not RFC 6154) */
};

/* "Sent", "Drafts", ...: the SPECIAL-USE attribute without backslash; NULL for ROLE_NONE */
const char *folder_role_name(enum folder_role role);
/* parse an attribute name with or without backslash, case-insensitive; ROLE_NONE if unknown */
enum folder_role folder_role_from_attr(const char *attr);
/* role from a well-known top-level name in several languages ("Posta inviata" -> ROLE_SENT) */
enum folder_role folder_role_from_name(const char *utf8_name);

struct folder {
	char *raw;              /* wire name, owned */
	char *name;             /* UTF-8, prefix stripped, '/' hierarchy, owned; NULL if undecodable */
	char delim;             /* delimiter the server gave with this name, 0 for NIL */
	enum folder_role role;  /* from the SPECIAL-USE attribute only */
	bool noselect;          /* \Noselect or \NonExistent */
	bool subscribed;
	bool undecodable;       /* raw is not valid modified UTF-7 (name shows "\xHH") */
};

struct folder_list {
	struct folder *v;       /* owned array */
	size_t n, cap;
	char delim;             /* the personal namespace's delimiter (or the first LIST's) */
	char *prefix;           /* personal namespace prefix on the wire ("INBOX." or ""), owned */
	bool has_roles;         /* some folder carries a SPECIAL-USE attribute */
};

void folder_list_init(struct folder_list *l);
void folder_list_free(struct folder_list *l);
/* Set the namespace prefix and delimiter; call before adding folders. */
int folder_list_set_namespace(struct folder_list *l, const char *prefix, char delim);
/* Add one LIST entry.  Decodes raw into name (strict mUTF-7; an undecodable
 * name is kept with name = a printable escape of raw and a warning is the
 * caller's business).  Duplicate raw names are ignored. */
int folder_list_add(struct folder_list *l, const char *raw, char delim,
		    enum folder_role role, bool noselect);
/* Mark raw as subscribed (from LSUB or LIST (SUBSCRIBED)); unknown names are ignored. */
void folder_list_subscribe(struct folder_list *l, const char *raw);
struct folder *folder_list_find_raw(const struct folder_list *l, const char *raw);
struct folder *folder_list_find_name(const struct folder_list *l, const char *utf8_name);

/* Translate a '/'-form UTF-8 name into the wire name for a list's namespace:
 * components joined with its delimiter (a delimiter inside a component is
 * replaced with '_' and *changed is set), prefix added (not for INBOX),
 * modified UTF-7 encoded.  Returns a new string or NULL (errno). */
char *folder_wire_name(const struct folder_list *l, const char *utf8_name, bool *changed);

/* A name in the '/' form of trasloco 0.1 (state schema 1: "%25", "%2F",
 * "%HH") in today's form; for the state's upgrade.  NULL on ENOMEM. */
char *folder_name_from_v1(const char *old);

struct folder_map_rule {
	const char *from;       /* source name, '/' form */
	const char *to;         /* destination name, '/' form */
};

struct folder_filter {
	const char **include;   /* fnmatch patterns on the '/' form; none = everything */
	size_t n_include;
	const char **exclude;   /* applied after include */
	size_t n_exclude;
};

struct folder_map_opts {
	bool keep_names;
	/* leave out the source's virtual views: folders announced \All,
	 * \Flagged or \Important (Gmail's All Mail, Starred, Important), whose
	 * mail is in other folders too; each left out gets a line in unused */
	bool skip_views;
	const struct folder_map_rule *rules;
	size_t n_rules;
	struct folder_filter filter;
};

struct folder_plan_entry {
	size_t src_index;       /* into the source folder_list */
	char *dst_raw;          /* wire name on the destination, owned */
	char *dst_name;         /* '/' form UTF-8 on the destination, owned */
	enum folder_role role;  /* role the source folder was given (attribute or name) */
	bool renamed;           /* dst_name differs from the source's name */
	const char *why;        /* static: "map", "special-use", "delimiter", "clash",
				 * "undecodable", or NULL */
	bool dst_exists;        /* the destination already lists dst_raw (selectable) */
	char *refused_name;     /* the '/' form the destination refused to create, owned */
};

struct folder_plan {
	struct folder_plan_entry *v;  /* owned array, in source order */
	size_t n;
	/* One message per --folder, --exclude or --map that selected or renamed
	 * nothing ("--folder 'x' matches no folder of the source"), owned. */
	char **unused;
	size_t n_unused;
};

/* True when the '/'-form name passes the include/exclude patterns. */
bool folder_filter_match(const struct folder_filter *f, const char *utf8_name);

/* Plan every selectable source folder that passes the filter.  Fails
 * (TR_ERR_USAGE) only for an impossible --map (two rules for one source,
 * an empty or invalid name); a rule naming no source folder is ignored.
 * Roles \All and \Flagged are never remapped (virtual views). */
int folder_plan_make(const struct folder_list *src, const struct folder_list *dst,
		     const struct folder_map_opts *opts, struct folder_plan *out,
		     struct tr_error *err);
void folder_plan_free(struct folder_plan *p);

/* Names a destination refuses (CREATE answered "Invalid mailbox name").
 * The rule, tried level by level until the destination accepts: in every
 * component but a leading INBOX, each character the level takes becomes
 * '_' (one per character):
 *   level 1: % * ? " \ a '/' inside a component, control characters, and
 *            `bad`, a punctuation character the server's reply named (0:
 *            none; a letter or digit is ignored);
 *   level 2: also every other ASCII punctuation but ( ) , . & ' + @, and a
 *            space or a dot at either end of a component;
 *   level 3: also those, and every non-ASCII character.
 * A name another folder of the plan goes to gets "_2", "_3", ...; a name
 * the destination already has (and no other folder of the plan claims) is
 * taken as this folder's copy from an earlier run: the rule chose it then
 * and chooses it again, with or without the state.  A folder below a
 * renamed one follows its parent. */
#define FOLDER_LEGAL_LEVELS 3
/* The level's replacement of a '/'-form name (new string; NULL + errno). */
char *folder_legal_name(const char *name, int level, char bad);
/* Could name be what the rule made of refused (at any level, any `bad`
 * punctuation, with or without a suffix)?  Used to find a rename again on
 * the next run. */
bool folder_legal_variant(const char *refused, const char *name);
/* Entry i gets the rule's name at level: 1 when renamed (refused_name
 * keeps the first name refused, why = "refused"), 0 when the level
 * changes nothing more, -1 on error. */
int folder_plan_legalize(struct folder_plan *p, const struct folder_list *dst, size_t i,
			 int level, char bad, struct tr_error *err);
/* Read-only runs (verify): the folder a run made for entry i, absent from
 * the destination, after its name was refused: the rule's names at every
 * level, with each punctuation character of the name as the one a server
 * may have named, the first the destination has.  1 when found (entry i
 * renamed, why "refused"), 0 when none is there, -1 on error. */
int folder_plan_find_renamed(struct folder_plan *p, const struct folder_list *dst, size_t i,
			     struct tr_error *err);
/* Entry i goes to the '/'-form name instead, for reason why (static);
 * "refused" keeps the old name in refused_name. */
int folder_plan_rename(struct folder_plan *p, const struct folder_list *dst, size_t i,
		       const char *name, const char *why, struct tr_error *err);

#endif
