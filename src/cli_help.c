/* cli: each command's own --help (see include/cli.h).  The texts are put
 * together from the README's groups, so that an option reads the same in
 * every command that takes it; tests/unit/test_cli holds each command to
 * its own options. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char servers[] =
	"Servers and TLS (verified by default):\n"
	"  --src HOST[:PORT], --dst HOST[:PORT]   port 993 means implicit TLS, else STARTTLS\n"
	"  --src-tls, --dst-tls MODE              implicit | starttls | none\n"
	"  --src-tls-name NAME, --dst-tls-name NAME\n"
	"                                         verify the certificate as NAME (and send it\n"
	"                                         as SNI) while connecting to HOST, e.g. an IP\n"
	"  --ca-file FILE                         trust these CAs (default: the system store)\n"
	"  --insecure                             do not verify certificates (dangerous)\n"
	"  --allow-plaintext                      allow --*-tls none to a non-loopback host\n";

static const char migrate_accounts[] =
	"Account and passwords (never on the command line):\n"
	"  --user EMAIL                           the mailbox (login on both sides)\n"
	"  --src-user LOGIN, --dst-user LOGIN     when the logins differ\n"
	"  --src-password-file F, --dst-password-file F\n"
	"                                         else $TRASLOCO_SRC_PASSWORD /\n"
	"                                         $TRASLOCO_DST_PASSWORD, else a prompt; the\n"
	"                                         destination defaults to the source password\n";

static const char csv_accounts[] =
	"Accounts: ACCOUNTS.csv, \"email\",\"password\" per row (header row optional: Email,\n"
	"Password and optionally src_user, dst_user, dst_password), or JOB.job, \"key = value\"\n"
	"lines whose keys are the long options below (accounts = the CSV); the command line's\n"
	"options win over the job file's.\n";

static const char oauth[] =
	"OAuth2 (Gmail, Microsoft 365; the CSV then needs no passwords):\n"
	"  --src-auth M, --dst-auth M             password (default), xoauth2 or oauthbearer\n"
	"  --src-token-cmd CMD, --dst-token-cmd CMD\n"
	"                                         CMD (by /bin/sh) prints the account's token or\n"
	"                                         JSON {access_token, expires_in}; it gets\n"
	"                                         $TRASLOCO_EMAIL and $TRASLOCO_USER; run again\n"
	"                                         before expiry (default 45 min) and when refused\n"
	"  --src-oauth-provider P, --dst-oauth-provider P\n"
	"                                         built in instead: microsoft365 (app-only\n"
	"                                         client credentials) or google (domain-wide\n"
	"                                         delegation)\n"
	"  --src-oauth-tenant T, --dst-oauth-tenant T, --src-oauth-client-id ID,\n"
	"  --dst-oauth-client-id ID               microsoft365: the tenant and the app\n"
	"  --src-oauth-secret-file F, --dst-oauth-secret-file F\n"
	"                                         microsoft365: the client secret; google: the\n"
	"                                         service account's JSON key\n"
	"  --src-oauth-cert-file F, --dst-oauth-cert-file F, --src-oauth-key-file F,\n"
	"  --dst-oauth-key-file F                 microsoft365: a certificate and its key\n"
	"  --src-oauth-token-url URL, --dst-oauth-token-url URL\n"
	"                                         another token endpoint (https, --ca-file)\n"
	"Provider presets (first on the line: later settings win):\n"
	"  --src-preset gmail|microsoft365        gmail: 15 sessions per account, xoauth2,\n"
	"                                         All Mail/Starred/Important not copied;\n"
	"                                         microsoft365: 8 sessions, xoauth2\n"
	"  --copy-virtual-folders                 copy \\All, \\Flagged, \\Important views too\n";

static const char admin[] =
	"Destination admin:\n"
	"  --dst-admin USER --dst-admin-password-file F (or $TRASLOCO_DST_ADMIN_PASSWORD)\n"
	"                                         log in to the destination as an admin (SASL\n"
	"                                         PLAIN authorization identity)\n"
	"  --dst-admin-separator C                use the LOGIN \"user<C>admin\" form instead\n";

static const char src_admin[] =
	"Source admin (a platform moving its own servers):\n"
	"  --src-admin USER --src-admin-password-file F (or $TRASLOCO_SRC_ADMIN_PASSWORD)\n"
	"                                         log in to the source as an admin (a Dovecot\n"
	"                                         master user); with --dst-admin too, the CSV\n"
	"                                         may hold emails without passwords\n"
	"  --src-admin-separator C                use the LOGIN \"user<C>admin\" form instead\n";

static const char provisioning[] =
	"Provisioning, once per account before its first destination login:\n"
	"  --provision-cmd CMD                    CMD run by /bin/sh: the account's email in\n"
	"                                         $TRASLOCO_EMAIL (its login in $TRASLOCO_USER),\n"
	"                                         its password on standard input, never in argv\n"
	"                                         or the environment; exit 0 = it exists or was\n"
	"                                         created, else the account fails with the\n"
	"                                         command's stderr; killed after --timeout\n"
	"  --provision dovecot-passwd-file:PATH   add the users missing from that Dovecot\n"
	"                                         passwd-file, password as {SHA512-CRYPT}, under\n"
	"                                         PATH.lock, atomically (owner and mode kept);\n"
	"                                         existing lines are never touched\n"
	"  --provision-passwd-fields TEMPLATE     the fields after the password, %u user, %n\n"
	"                                         local part, %d domain, e.g.\n"
	"                                         \":5000:5000::/var/vmail/%d/%n::\" (default none)\n";

static const char folders[] =
	"Folders:\n"
	"  --folder PATTERN, --exclude PATTERN    choose folders ('/' hierarchy, shell globs)\n"
	"  --map 'OLD=NEW'                        rename a folder (repeatable)\n"
	"  --keep-names                           no special-use mapping\n";

static const char subscriptions[] =
	"  --no-subscriptions                     do not copy subscriptions\n";

static const char engine_copy[] =
	"Engine:\n"
	"  --state DIR                            default $XDG_STATE_HOME/trasloco\n"
	"  --src-max-per-account N, --dst-max-per-account N\n"
	"                                         sessions per account per server (default 4)\n"
	"  --timeout SECONDS                      network idle timeout (default 120)\n"
	"  --retries N                            attempts on transient errors (default 5)\n"
	"  --batch-size MB                        bytes per FETCH/APPEND batch (default 16)\n"
	"  --batch-count N                        messages per batch (default 100)\n"
	"  --spool-dir DIR                        where fetched messages wait (default $TMPDIR)\n"
	"  -q, --quiet | -v, --verbose | --debug | --no-progress\n"
	"Throttles (per server, all accounts of the job together; N, Nk, NM, NG = 10^3...):\n"
	"  --src-max-bytes-per-second B, --dst-max-bytes-per-second B\n"
	"  --src-max-messages-per-second N, --dst-max-messages-per-second N\n"
	"  --src-max-bytes-per-day B, --dst-max-bytes-per-day B\n"
	"                                         when spent, accounts pause until 00:00 UTC\n"
	"  --src-max-account-bytes-per-day B, --dst-max-account-bytes-per-day B\n"
	"                                         each account's own day budget on a server\n";

static const char passes[] =
	"Passes (run, migrate; README \"A migration, step by step\"):\n"
	"  --since DATE, --before DATE            only messages received on or after / before\n"
	"                                         DATE (YYYY-MM-DD, by INTERNALDATE): a pre-stage;\n"
	"                                         a later pass without them copies the rest\n"
	"  --trial N                              copy at most N messages per folder\n"
	"  --final                                a last pass, then a verify: the accounts\n"
	"                                         found complete are marked finished\n"
;

static const char engine_read[] =
	"Engine:\n"
	"  --src-max-per-account N, --dst-max-per-account N\n"
	"                                         sessions per account per server (default 4)\n"
	"  --timeout SECONDS                      network idle timeout (default 120)\n"
	"  -q, --quiet | -v, --verbose | --debug\n";

static const char batch_head[] =
	"Many accounts:\n"
	"  --parallel-accounts N                  accounts at once (default 4)\n"
	"  --src-max-connections N, --dst-max-connections N\n"
	"                                         sessions per server in all (default 40)\n";

static const char batch_run[] =
	"  --report FILE                          JSON report: every account, totals\n"
	"  --report-csv FILE                      one CSV row per account\n"
	"  --log-dir DIR                          a log per account (default STATE/logs)\n";

static const char exit_migrate[] =
	"Exit status: 0 everything was copied, 1 some messages or folders failed, 2 usage\n"
	"error, 3 a login was refused, 4 a server could not be reached, its certificate was\n"
	"refused or its port speaks the other TLS mode, 5 interrupted (run it again to\n"
	"continue), 6 any other failure, 7 paused: a day budget is spent (run it again after\n"
	"the time shown).\n";

static const char exit_batch[] =
	"Exit status: 0 every account ok, 1 some accounts failed or were partial, or rows\n"
	"were skipped, 2 usage error, 5 interrupted (run it again to continue), 6 the job\n"
	"could not run, 7 every account ok or paused, some paused (a day budget is spent).\n";

static void put(FILE *f, const char *const *parts)
{
	for (; *parts != NULL; parts++)
		fputs(*parts, f);
}

int cli_command_help(FILE *f, const char *cmd)
{
	if (strcmp(cmd, "migrate") == 0) {
		static const char *const t[] = {
			"usage: trasloco migrate --src HOST[:PORT] --dst HOST[:PORT] --user EMAIL "
			"[options]\n\n"
			"Copies every folder and message of one mailbox from the source IMAP server\n"
			"to the destination, keeping flags, keywords and dates.  Incremental: run it\n"
			"again and only what is new is copied; an interrupted run resumes.\n\n",
			servers, migrate_accounts, oauth, admin, src_admin, provisioning, folders,
			subscriptions, passes, engine_copy,
			"Before the first copy:\n"
			"  --dry-run                              where every folder goes and why, its\n"
			"                                         messages and bytes, what the destination\n"
			"                                         holds already; read only on both servers,\n"
			"                                         nothing copied, no state written\n"
			"  --report FILE                          that plan as JSON\n",
			"\n", exit_migrate, NULL };

		put(f, t);
		return 0;
	}
	if (strcmp(cmd, "run") == 0) {
		static const char *const t[] = {
			"usage: trasloco run ACCOUNTS.csv|JOB.job [options]\n\n"
			"Migrates every account of the CSV, several at once, each as `trasloco\n"
			"migrate` does, within the session caps per account and per server.\n\n",
			csv_accounts, servers, oauth, admin, src_admin, provisioning, folders, subscriptions,
			passes, engine_copy, batch_head, batch_run, "\n", exit_batch, NULL };

		put(f, t);
		return 0;
	}
	if (strcmp(cmd, "check") == 0) {
		static const char *const t[] = {
			"usage: trasloco check ACCOUNTS.csv|JOB.job [options]\n\n"
			"Before the first run: logs in on both sides and counts, per account, the\n"
			"folders, messages and bytes a run would copy, and whether they fit the\n"
			"destination's quota, and lists the accounts that do not exist yet on the\n"
			"destination (with --dst-admin a refused login means a missing user;\n"
			"without, \"missing or wrong password\").  Read only: nothing is created or\n"
			"copied.\n\n",
			csv_accounts, servers, oauth, admin, src_admin, folders, engine_read, batch_head,
			"  --report FILE                          JSON report\n"
			"  --folders                              per account, where every folder goes and\n"
			"                                         why (same name, special-use role, --map,\n"
			"                                         renamed, excluded), its messages and bytes,\n"
			"                                         what the destination holds already\n", "\n",
			"Exit status: 0 every account can log in and fits, 1 some will fail or not fit,\n"
			"or rows were skipped, 2 usage error, 5 interrupted, 6 the job could not run.\n",
			NULL };

		put(f, t);
		return 0;
	}
	if (strcmp(cmd, "verify") == 0) {
		static const char *const t[] = {
			"usage: trasloco verify ACCOUNTS.csv|JOB.job [--content] [options]\n\n"
			"After the last run: looks for every source message on the destination,\n"
			"under the folder mapping of a run, and lists each one it does not find.\n"
			"Read only (EXAMINE and BODY.PEEK on both sides).\n\n",
			csv_accounts, servers, oauth, admin, src_admin, folders, engine_read, batch_head,
			"  --report FILE                          JSON report, with the missing messages\n"
			"  --content                              compare whole contents (SHA-256),\n"
			"                                         downloading every message from both sides\n",
			"\n",
			"Exit status: 0 every source message is on the destination, 1 some are missing\n"
			"or could not be verified, or rows were skipped, 2 usage error, 5 interrupted,\n"
			"6 the job could not run.\n",
			NULL };

		put(f, t);
		return 0;
	}
	if (strcmp(cmd, "provision") == 0) {
		static const char *const t[] = {
			"usage: trasloco provision ACCOUNTS.csv|JOB.job --provision-cmd CMD|\n"
			"       --provision dovecot-passwd-file:PATH [options]\n\n"
			"Only the first step of a migration: makes every account of the CSV exist on\n"
			"the destination (as run does before copying each), and copies nothing.  One\n"
			"line per account: added (or ok, for a command), already there, or failed\n"
			"with the reason.\n\n",
			csv_accounts, provisioning,
			"  --timeout SECONDS                      the command's time limit (default 120)\n"
			"  -q, --quiet | -v, --verbose | --debug\n\n",
			exit_batch, NULL };

		put(f, t);
		return 0;
	}
	if (strcmp(cmd, "spool") == 0) {
		static const char *const t[] = {
			"usage: trasloco spool DIR [--config FILE] [options for every job]\n\n"
			"Runs every job file in DIR/pending (as `trasloco run JOB.job` would), moving\n"
			"each to running/, then with its report NAME.json to done/ or failed/; locked,\n"
			"safe to start from cron.  A job runs only if it is a regular file of DIR's\n"
			"owner, and every path it names stays inside DIR.  A job without \"state =\"\n"
			"keeps its state in DIR/state/NAME.\n\n"
			"  --config FILE                          settings for every job (job-file syntax;\n"
			"                                         owned by root, writable by no one else)\n\n"
			"TLS trust, the admins and provisioning (--ca-file, --insecure,\n"
			"--allow-plaintext, --dst-admin, --dst-admin-password-file, --src-admin,\n"
			"--src-admin-password-file, --provision-cmd, --provision,\n"
			"--provision-passwd-fields) come only from here or --config, never from a job.  These options, as a job's keys or here, apply to every job:\n\n",
			servers, admin, src_admin, provisioning, folders, subscriptions, engine_copy,
			batch_head, batch_run, "\n", exit_batch, NULL };

		put(f, t);
		return 0;
	}
	return -1;
}
