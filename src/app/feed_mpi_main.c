/* feed_mpi_main.c - the feed_mpi executable (logic in src/app/cli.c). */
#include <hdf5.h>

#include "feed/app.h"

/* HDF5's own exit-time cleanup closes the files a fatal error left open; for a file whose
 * writes failed (a full disk) HDF5 1.10 then crashes or prints "infinite loop closing
 * library". The normal path closes every file itself, and a fatal error leaves only .tmp or
 * .partial files that the next run handles, so that cleanup is off (before any HDF5 call). */
int main(int argc, char **argv) {
    H5dont_atexit();
    return feed_cli_main(argc, argv);
}
