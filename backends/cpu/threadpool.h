/* threadpool.h - a small pool of persistent worker threads.
 *
 * bn_pool_run(pool, fn, ctx) calls fn(ctx, ith, nth) once on each of the nth
 * threads (the calling thread is ith 0) and returns when all have returned.
 * Inside fn, bn_pool_barrier(pool) waits until all nth threads reach it. */
#ifndef BN_THREADPOOL_H
#define BN_THREADPOOL_H

typedef struct bn_pool bn_pool;
typedef void (*bn_pool_fn)(void *ctx, int ith, int nth);

/* n_threads >= 1 (1 = no workers: fn runs on the caller). NULL on failure. */
bn_pool *bn_pool_new(int n_threads);
void bn_pool_free(bn_pool *p);
int bn_pool_size(const bn_pool *p);
void bn_pool_run(bn_pool *p, bn_pool_fn fn, void *ctx);
void bn_pool_barrier(bn_pool *p);

#endif
