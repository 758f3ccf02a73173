/* feed_mpi_main.c - the feed_mpi executable (logic in src/app/cli.c). */
#include "feed/app.h"

int main(int argc, char **argv) { return feed_cli_main(argc, argv); }
