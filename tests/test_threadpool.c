/* test_threadpool.c - the CPU thread pool (backends/cpu/threadpool.h): every
 * thread runs fn exactly once per run with the right (ith, nth), a parallel
 * sum is correct, barriers order phases (each phase sees all writes of the
 * previous one), thousands of consecutive runs work, and pools of 1 thread
 * run on the caller. */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

#include "cpu/threadpool.h"

/* ---- a parallel sum: thread ith sums its strided share into part[ith] ---- */

typedef struct sum_ctx {
    const int64_t *v;
    int64_t n;
    int64_t part[16];
    atomic_int calls;
    atomic_int mask; /* bit ith set by thread ith */
    int nth_seen[16];
} sum_ctx;

static void sum_fn(void *vctx, int ith, int nth) {
    sum_ctx *c = vctx;
    int64_t s = 0;
    for (int64_t i = ith; i < c->n; i += nth) s += c->v[i];
    c->part[ith] = s;
    c->nth_seen[ith] = nth;
    atomic_fetch_add(&c->calls, 1);
    atomic_fetch_or(&c->mask, 1 << ith);
}

static void check_sum(int n_threads) {
    bn_pool *p = bn_pool_new(n_threads);
    assert_non_null(p);
    assert_int_equal(bn_pool_size(p), n_threads);
    const int64_t n = 100003;
    int64_t *v = malloc((size_t)n * sizeof *v), want = 0;
    assert_non_null(v);
    for (int64_t i = 0; i < n; i++) {
        v[i] = (i * 7919) % 1009 - 500;
        want += v[i];
    }
    for (int rep = 0; rep < 3; rep++) {
        sum_ctx c;
        memset(&c, 0, sizeof c);
        c.v = v;
        c.n = n;
        atomic_init(&c.calls, 0);
        atomic_init(&c.mask, 0);
        bn_pool_run(p, sum_fn, &c);
        int64_t got = 0;
        for (int i = 0; i < n_threads; i++) {
            got += c.part[i];
            assert_int_equal(c.nth_seen[i], n_threads);
        }
        assert_int_equal(got, want);
        assert_int_equal(atomic_load(&c.calls), n_threads);
        assert_int_equal(atomic_load(&c.mask), (1 << n_threads) - 1);
    }
    free(v);
    bn_pool_free(p);
}

static void test_sum_1(void **state) {
    (void)state;
    check_sum(1);
}
static void test_sum_2(void **state) {
    (void)state;
    check_sum(2);
}
static void test_sum_4(void **state) {
    (void)state;
    check_sum(4);
}

/* ---- barriers: phase k writes slot[ith] = k * 1000 + ith; after the barrier
 * every thread reads every slot of phase k; a second barrier before the next
 * phase's writes keeps the reads valid. ---- */

#define PHASES 200

typedef struct bar_ctx {
    bn_pool *p;
    int slot[16];
    int errors[16];
} bar_ctx;

static void barrier_fn(void *vctx, int ith, int nth) {
    bar_ctx *c = vctx;
    for (int k = 0; k < PHASES; k++) {
        c->slot[ith] = k * 1000 + ith;
        bn_pool_barrier(c->p);
        for (int j = 0; j < nth; j++)
            if (c->slot[j] != k * 1000 + j) c->errors[ith]++;
        bn_pool_barrier(c->p);
    }
}

static void check_barrier(int n_threads) {
    bar_ctx c;
    memset(&c, 0, sizeof c);
    c.p = bn_pool_new(n_threads);
    assert_non_null(c.p);
    for (int rep = 0; rep < 3; rep++) bn_pool_run(c.p, barrier_fn, &c);
    for (int i = 0; i < n_threads; i++) assert_int_equal(c.errors[i], 0);
    bn_pool_free(c.p);
}

static void test_barrier(void **state) {
    (void)state;
    check_barrier(1);
    check_barrier(2);
    check_barrier(3);
    check_barrier(4);
}

/* ---- a barrier-separated reduction: each thread adds its share of a counter
 * array, then thread 0 reads everyone's result after the barrier. ---- */

typedef struct red_ctx {
    bn_pool *p;
    int64_t part[16];
    int64_t total;
} red_ctx;

static void reduce_fn(void *vctx, int ith, int nth) {
    red_ctx *c = vctx;
    int64_t s = 0;
    for (int64_t i = ith; i < 10000; i += nth) s += i;
    c->part[ith] = s;
    bn_pool_barrier(c->p);
    if (ith == 0) {
        c->total = 0;
        for (int j = 0; j < nth; j++) c->total += c->part[j];
    }
}

/* ---- many consecutive runs: the caller sees each run's writes ---- */

typedef struct many_ctx {
    int64_t count[16];
} many_ctx;

static void inc_fn(void *vctx, int ith, int nth) {
    (void)nth;
    many_ctx *c = vctx;
    c->count[ith]++;
}

static void test_many_runs(void **state) {
    (void)state;
    for (int n_threads = 1; n_threads <= 4; n_threads++) {
        bn_pool *p = bn_pool_new(n_threads);
        assert_non_null(p);
        many_ctx c;
        memset(&c, 0, sizeof c);
        red_ctx r;
        memset(&r, 0, sizeof r);
        r.p = p;
        for (int run = 0; run < 2000; run++) {
            bn_pool_run(p, inc_fn, &c);
            for (int i = 0; i < n_threads; i++) assert_int_equal(c.count[i], run + 1);
            if (run % 100 == 0) {
                bn_pool_run(p, reduce_fn, &r);
                assert_int_equal(r.total, 10000 * 9999 / 2);
            }
        }
        bn_pool_free(p);
    }
}

/* ---- creating and freeing pools repeatedly; invalid sizes ---- */

static void test_new_free(void **state) {
    (void)state;
    assert_null(bn_pool_new(0));
    assert_null(bn_pool_new(-3));
    bn_pool_free(NULL);
    for (int i = 0; i < 50; i++) {
        bn_pool *p = bn_pool_new(1 + i % 4);
        assert_non_null(p);
        if (i % 2) {
            many_ctx c;
            memset(&c, 0, sizeof c);
            bn_pool_run(p, inc_fn, &c);
            assert_int_equal(c.count[0], 1);
        }
        bn_pool_free(p); /* workers may be spinning or asleep */
    }
}

/* ---- runs separated by pauses long enough for the workers to fall asleep on
 * the condition variable, so the wake-up path is exercised too ---- */

static void test_sleep_wake(void **state) {
    (void)state;
    bn_pool *p = bn_pool_new(3);
    assert_non_null(p);
    many_ctx c;
    memset(&c, 0, sizeof c);
    const struct timespec pause = {0, 20 * 1000 * 1000};
    for (int run = 0; run < 10; run++) {
        nanosleep(&pause, NULL);
        bn_pool_run(p, inc_fn, &c);
        for (int i = 0; i < 3; i++) assert_int_equal(c.count[i], run + 1);
    }
    nanosleep(&pause, NULL);
    bn_pool_free(p);
}

/* ---- a barrier where one thread arrives 30 ms late, long after the others
 * have stopped spinning and gone to sleep on the barrier: they must wake,
 * see the late thread's writes, and not have burnt the wait spinning (their
 * CPU time stays well under the wall time they waited) ---- */

typedef struct late_ctx {
    bn_pool *p;
    int value[4];
    int errors;
    double cpu_s[4];
} late_ctx;

static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void late_fn(void *vctx, int ith, int nth) {
    late_ctx *c = vctx;
    const double t0 = thread_cpu_s();
    if (ith == nth - 1) {
        const struct timespec late = {0, 30 * 1000 * 1000};
        nanosleep(&late, NULL);
    }
    c->value[ith] = ith + 1;
    bn_pool_barrier(c->p);
    for (int j = 0; j < nth; j++)
        if (c->value[j] != j + 1) c->errors++; /* only read: no race on the writes */
    c->cpu_s[ith] = thread_cpu_s() - t0;
    bn_pool_barrier(c->p);
    c->value[ith] = 0;
}

static void test_barrier_sleep(void **state) {
    (void)state;
    late_ctx c;
    memset(&c, 0, sizeof c);
    c.p = bn_pool_new(3);
    assert_non_null(c.p);
    for (int rep = 0; rep < 4; rep++) {
        int errors_before = c.errors;
        bn_pool_run(c.p, late_fn, &c);
        assert_int_equal(c.errors, errors_before);
        for (int i = 0; i < 2; i++) /* waited 30 ms each; spinning would cost ~30 ms */
            assert_true(c.cpu_s[i] < 0.015);
    }
    assert_int_equal(c.errors, 0);
    bn_pool_free(c.p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sum_1),      cmocka_unit_test(test_sum_2),
        cmocka_unit_test(test_sum_4),      cmocka_unit_test(test_barrier),
        cmocka_unit_test(test_many_runs),  cmocka_unit_test(test_new_free),
        cmocka_unit_test(test_sleep_wake), cmocka_unit_test(test_barrier_sleep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
