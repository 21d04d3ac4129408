/* trasloco: the program.  Everything lives in the library; see cli.h. */
#include "config.h"

#include "cli.h"

int main(int argc, char **argv)
{
	return cli_main(argc, argv);
}
