/* Measurement aid, not part of Drover: preloaded into `drover server`, it calls glibc's
 * malloc_trim(0) every second, which shows how much of the RSS is free heap glibc keeps.
 *   gcc -O2 -shared -fPIC -o /var/tmp/trim.so scripts/bench/malloc_trim_preload.c -lpthread
 *   scripts/bench/rss.sh <drover> <api_bench> <workdir> <port> LD_PRELOAD=/var/tmp/trim.so */
#include <malloc.h>
#include <pthread.h>
#include <unistd.h>
static void *loop(void *arg) { (void)arg; for (;;) { sleep(1); malloc_trim(0); } return 0; }
__attribute__((constructor)) static void start(void) { pthread_t t; pthread_create(&t, 0, loop, 0); pthread_detach(t); }
