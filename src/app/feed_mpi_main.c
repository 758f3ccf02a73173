/* feed_mpi_main.c - placeholder entry point while the CLI is written */
int main(void) { return 0; }
