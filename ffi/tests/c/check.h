/* Checks shared by the C clients (conversation.c, sessions.c): a call that
 * must succeed, an error that must be exactly the one expected and leave a
 * message, and small buffer helpers. `failures` counts failed checks. */

#ifndef SOTTO_CLIENT_CHECK_H
#define SOTTO_CLIENT_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sotto.h"

extern int failures;

static inline void print_last_error(void) {
    SottoBuffer msg = {0};
    if (sotto_last_error_message(&msg) == SOTTO_ERROR_OK && msg.len > 0) {
        fprintf(stderr, "    last error: %.*s\n", (int)msg.len, (const char *)msg.ptr);
    }
    sotto_buffer_free(&msg);
}

static inline int last_error_is_set(void) {
    SottoBuffer msg = {0};
    if (sotto_last_error_message(&msg) != SOTTO_ERROR_OK) return 0;
    int set = msg.len > 0;
    sotto_buffer_free(&msg);
    return set;
}

/* Fails the run (and stops) unless `call` returned SOTTO_ERROR_OK. */
#define OK(call)                                                                 \
    do {                                                                         \
        SottoError rc_ = (call);                                                 \
        if (rc_ != SOTTO_ERROR_OK) {                                             \
            fprintf(stderr, "%s:%d: %s returned %d\n", __FILE__, __LINE__, #call, \
                    (int)rc_);                                                   \
            print_last_error();                                                  \
            exit(1);                                                             \
        }                                                                        \
    } while (0)

/* Records a failure unless `call` returned `want` and left a message. */
#define EXPECT_ERR(call, want)                                                    \
    do {                                                                          \
        SottoError rc_ = (call);                                                  \
        if (rc_ != (want)) {                                                      \
            fprintf(stderr, "%s:%d: %s returned %d, want %d\n", __FILE__, __LINE__, \
                    #call, (int)rc_, (int)(want));                                \
            print_last_error();                                                   \
            failures++;                                                           \
        } else if (!last_error_is_set()) {                                        \
            fprintf(stderr, "%s:%d: %s left no error message\n", __FILE__,        \
                    __LINE__, #call);                                             \
            failures++;                                                           \
        } else {                                                                  \
            printf("error ok: %s -> %d\n", #want, (int)rc_);                      \
        }                                                                         \
    } while (0)

#define CHECK(cond)                                                             \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                         \
        }                                                                       \
    } while (0)

#define TEXT(s) (const uint8_t *)(s), strlen(s)

#define NOW ((uint64_t)1700000000)

static inline int buffer_is(const SottoBuffer *b, const char *text) {
    size_t n = strlen(text);
    return b->len == n && (n == 0 || memcmp(b->ptr, text, n) == 0);
}

static inline int same(const SottoBuffer *a, const SottoBuffer *b) {
    return a->len == b->len && (a->len == 0 || memcmp(a->ptr, b->ptr, a->len) == 0);
}

static inline void release(SottoBuffer *b) { OK(sotto_buffer_free(b)); }

#endif /* SOTTO_CLIENT_CHECK_H */
