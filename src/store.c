/* store: see include/store.h.  The one place that knows every driver. */
#include "config.h"

#include <string.h>

#include "store.h"
#include "store_fault.h"
#include "store_imap.h"
#include "store_mem.h"

static const struct store_driver *const drivers[] = {
	&store_imap_driver,
	&store_mem_driver,
	&store_fault_driver,
};

const struct store_driver *store_driver_find(const char *name)
{
	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
		if (strcmp(drivers[i]->name, name) == 0)
			return drivers[i];
	return NULL;
}

int store_open(const struct store_driver *drv, const struct store_conf *c, struct store **st_r,
	       struct tr_error *err)
{
	*st_r = NULL;
	if (drv == NULL) {
		tr_error_set(err, TR_ERR_USAGE, "no such store driver");
		return -1;
	}
	return drv->open(c, st_r, err);
}
