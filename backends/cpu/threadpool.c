/* threadpool.c - a pool of persistent worker threads (see threadpool.h).
 *
 * Dispatch: bn_pool_run publishes (fn, ctx) and bumps a generation counter
 * (release). Workers spin briefly on that counter, then sleep on a condition
 * variable; the counter is bumped under the mutex, so a worker that checked it
 * under the mutex cannot miss the wake-up. After fn returns each worker
 * decrements `pending` (release); the caller, having run its own share as
 * ith 0, spins briefly on `pending` and then sleeps on a second condition
 * variable that the last worker signals under the mutex.
 *
 * Barrier: sense-reversing on an arrival counter and a phase counter. The last
 * thread to arrive resets the counter and advances the phase; the others spin
 * on the phase (pause, then sched_yield so a descheduled thread can run),
 * then sleep on a condition variable (spin-then-sleep: a node usually ends
 * within microseconds of its neighbours' ends, so the spin catches it
 * without a system call; a long wait, e.g. a thread preempted on a busy
 * machine, does not burn a core). Missed wake-ups cannot happen: a sleeper
 * increments bar_sleepers and then reads the phase, the last arriver stores
 * the phase and then reads bar_sleepers, all seq_cst, so either the sleeper
 * sees the new phase or the arriver sees the sleeper and broadcasts under the
 * mutex the sleeper holds until it waits. Arrival is an acq_rel
 * read-modify-write and the phase store a release, so every write made before
 * the barrier by any thread is visible to every thread after it.
 *
 * All shared state is C11 atomics or protected by the mutex; fn and ctx are
 * plain fields written only while no worker reads them (between runs) and
 * published by the generation counter. */
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

/* Waiting: SPIN_RELAX polls with a pause instruction, then polls separated by
 * sched_yield (so that with more threads than cores the thread being waited
 * for gets the CPU), then (runs only) sleeping on a condition variable. */
#define SPIN_RELAX 1000
#define SPIN_RUN 3000     /* polls of the generation / pending counters before sleeping */
#define SPIN_BARRIER 3000 /* polls of the barrier phase before sleeping */

struct bn_pool {
    int n; /* threads including the caller */
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv_work; /* workers wait here for a new generation */
    pthread_cond_t cv_done; /* the caller waits here for pending == 0 */
    pthread_cond_t cv_bar;  /* threads that waited long at a barrier sleep here */
    atomic_uint gen;        /* bumped once per run (under mu) */
    atomic_int pending;     /* workers still running the current fn */
    atomic_bool stop;
    int sleepers;         /* workers blocked on cv_work (under mu) */
    bool caller_sleeping; /* the caller is blocked on cv_done (under mu) */
    bn_pool_fn fn;
    void *ctx;
    atomic_int bar_count;    /* threads arrived at the current barrier */
    atomic_uint bar_phase;   /* advanced when all have arrived */
    atomic_int bar_sleepers; /* threads asleep (or about to be) on cv_bar */
};

typedef struct worker_arg {
    bn_pool *p;
    int ith;
} worker_arg;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield");
#endif
}

static inline void spin_pause(int i) {
    if (i < SPIN_RELAX)
        cpu_relax();
    else
        sched_yield();
}

static void *worker_main(void *arg) {
    worker_arg wa = *(worker_arg *)arg;
    free(arg);
    bn_pool *p = wa.p;
    unsigned seen = 0; /* gen starts at 0 */
    for (;;) {
        unsigned g = atomic_load_explicit(&p->gen, memory_order_acquire);
        for (int i = 0; g == seen && i < SPIN_RUN; i++) {
            if (atomic_load_explicit(&p->stop, memory_order_acquire)) return NULL;
            spin_pause(i);
            g = atomic_load_explicit(&p->gen, memory_order_acquire);
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen &&
                   !atomic_load_explicit(&p->stop, memory_order_acquire)) {
                p->sleepers++;
                pthread_cond_wait(&p->cv_work, &p->mu);
                p->sleepers--;
            }
            pthread_mutex_unlock(&p->mu);
            if (g == seen) return NULL; /* stop */
        }
        seen = g;
        p->fn(p->ctx, wa.ith, p->n);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            if (p->caller_sleeping) pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

static void stop_workers(bn_pool *p, int started) {
    pthread_mutex_lock(&p->mu);
    atomic_store_explicit(&p->stop, true, memory_order_release);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < started; i++) pthread_join(p->threads[i], NULL);
}

bn_pool *bn_pool_new(int n_threads) {
    if (n_threads < 1) return NULL;
    bn_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n_threads;
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->stop, false);
    atomic_init(&p->bar_count, 0);
    atomic_init(&p->bar_phase, 0);
    atomic_init(&p->bar_sleepers, 0);
    if (n_threads == 1) return p;

    p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
    if (!p->threads) {
        free(p);
        return NULL;
    }
    if (pthread_mutex_init(&p->mu, NULL) != 0) goto fail_mu;
    if (pthread_cond_init(&p->cv_work, NULL) != 0) goto fail_cv_work;
    if (pthread_cond_init(&p->cv_done, NULL) != 0) goto fail_cv_done;
    if (pthread_cond_init(&p->cv_bar, NULL) != 0) goto fail_cv_bar;
    int started = 0;
    for (; started < n_threads - 1; started++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) break;
        wa->p = p;
        wa->ith = started + 1;
        if (pthread_create(&p->threads[started], NULL, worker_main, wa) != 0) {
            free(wa);
            break;
        }
    }
    if (started == n_threads - 1) return p;
    stop_workers(p, started);
    pthread_cond_destroy(&p->cv_bar);
fail_cv_bar:
    pthread_cond_destroy(&p->cv_done);
fail_cv_done:
    pthread_cond_destroy(&p->cv_work);
fail_cv_work:
    pthread_mutex_destroy(&p->mu);
fail_mu:
    free(p->threads);
    free(p);
    return NULL;
}

void bn_pool_free(bn_pool *p) {
    if (!p) return;
    if (p->n > 1) {
        stop_workers(p, p->n - 1);
        pthread_cond_destroy(&p->cv_bar);
        pthread_cond_destroy(&p->cv_done);
        pthread_cond_destroy(&p->cv_work);
        pthread_mutex_destroy(&p->mu);
    }
    free(p->threads);
    free(p);
}

int bn_pool_size(const bn_pool *p) {
    return p ? p->n : 0;
}

void bn_pool_run(bn_pool *p, bn_pool_fn fn, void *ctx) {
    if (p->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    /* No worker reads fn/ctx now: the previous run ended with pending == 0. */
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    if (p->sleepers > 0) pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);

    fn(ctx, 0, p->n);

    for (int i = 0; i < SPIN_RUN; i++) {
        if (atomic_load_explicit(&p->pending, memory_order_acquire) == 0) return;
        spin_pause(i);
    }
    pthread_mutex_lock(&p->mu);
    while (atomic_load_explicit(&p->pending, memory_order_acquire) != 0) {
        p->caller_sleeping = true;
        pthread_cond_wait(&p->cv_done, &p->mu);
        p->caller_sleeping = false;
    }
    pthread_mutex_unlock(&p->mu);
}

void bn_pool_barrier(bn_pool *p) {
    const int n = p->n;
    if (n == 1) return;
    const unsigned phase = atomic_load_explicit(&p->bar_phase, memory_order_relaxed);
    if (atomic_fetch_add_explicit(&p->bar_count, 1, memory_order_acq_rel) == n - 1) {
        atomic_store_explicit(&p->bar_count, 0, memory_order_relaxed);
        atomic_store_explicit(&p->bar_phase, phase + 1, memory_order_seq_cst);
        if (atomic_load_explicit(&p->bar_sleepers, memory_order_seq_cst) > 0) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_broadcast(&p->cv_bar);
            pthread_mutex_unlock(&p->mu);
        }
        return;
    }
    for (int i = 0; i < SPIN_BARRIER; i++) {
        if (atomic_load_explicit(&p->bar_phase, memory_order_acquire) != phase) return;
        spin_pause(i);
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->bar_sleepers, 1, memory_order_seq_cst);
    while (atomic_load_explicit(&p->bar_phase, memory_order_seq_cst) == phase)
        pthread_cond_wait(&p->cv_bar, &p->mu);
    atomic_fetch_sub_explicit(&p->bar_sleepers, 1, memory_order_relaxed);
    pthread_mutex_unlock(&p->mu);
}
