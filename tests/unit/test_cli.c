/* Unit tests for what the command layer does to the process (src/cli.c). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "cli.h"

/* Whatever command runs, a crash must not leave a core file holding
 * passwords: cli_main makes the process non-dumpable, with RLIMIT_CORE 0. */
static void test_no_core_dumps(void **state)
{
	char *argv[] = { (char *)"trasloco", (char *)"version", NULL };
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };

	(void)state;
	/* as a shell with `ulimit -c unlimited` would start it */
	(void)setrlimit(RLIMIT_CORE, &rl);
	assert_int_equal(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), 0);
	assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1);

	assert_int_equal(cli_main(2, argv), EXIT_OK);
	assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
	assert_int_equal(getrlimit(RLIMIT_CORE, &rl), 0);
	assert_int_equal(rl.rlim_cur, 0);
	assert_int_equal(rl.rlim_max, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_core_dumps),
	};

	return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
