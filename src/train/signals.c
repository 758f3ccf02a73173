/* signals.c - stop flag set by SIGUSR1/SIGTERM; see include/feed/signals.h. */
#include "feed/signals.h"

#include <mpi.h>
#include <signal.h>
#include <string.h>

#include "feed/check.h"

static volatile sig_atomic_t g_signal = 0;

static void on_signal(int sig) { g_signal = sig; }

void feed_signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* MPI and HDF5 calls continue; we act at the next step */
    CHECK_SYS(sigaction(SIGUSR1, &sa, NULL), "", "SIGUSR1");
    CHECK_SYS(sigaction(SIGTERM, &sa, NULL), "", "SIGTERM");
}

int feed_signals_pending(void) { return (int)g_signal; }

bool feed_signals_agree_stop(MPI_Comm comm) {
    int mine = g_signal != 0, any = 0;
    CHECK_MPI(MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, comm));
    return any != 0;
}

const char *feed_signal_name(int sig) {
    switch (sig) {
    case SIGUSR1: return "SIGUSR1";
    case SIGTERM: return "SIGTERM";
    default: return "a signal";
    }
}
