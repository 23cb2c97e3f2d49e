/* A C client of the sotto ABI (protocol v2): two devices talking over
 * PQXDH, prekey management, save/restore with contexts and generations, a
 * rollback, a group of three with a removal through the store, the v1
 * forwarded-distribution attack refused, buffer and handle misuse, threads
 * racing on one handle, and the error paths an app can hit; then the
 * session layer (sessions.c). Prints a transcript; exits 0 only if every
 * check passed. Run by ffi/tests/clients.rs and, under valgrind, by
 * .ci/ffi.sh. */

#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "check.h"

int failures = 0;

/* The session layer's part of the run (sessions.c). */
void sessions(void);

static uint64_t device_generation(const SottoDevice *d) {
    uint64_t g = 0;
    OK(sotto_device_generation(d, &g));
    return g;
}

static uint64_t session_generation(const SottoSession *s) {
    uint64_t g = 0;
    OK(sotto_session_generation(s, &g));
    return g;
}

/* Encrypts `text` with `from` and decrypts it with `to`, checking the result. */
static void exchange(SottoSession *from, SottoSession *to, const char *label,
                     const char *text) {
    SottoBuffer wire = {0}, plain = {0};
    OK(sotto_session_encrypt(from, TEXT(text), &wire));
    OK(sotto_session_decrypt(to, wire.ptr, wire.len, &plain));
    CHECK(buffer_is(&plain, text));
    printf("%s: %.*s\n", label, (int)plain.len, (const char *)plain.ptr);
    release(&wire);
    release(&plain);
}

/* Accepts a prekey message on `device`, checks the plaintext and its sender,
 * and returns the new session. */
static SottoSession *accept_checked(SottoDevice *device, const SottoBuffer *wire,
                                    const char *text, const SottoBuffer *sender) {
    SottoSession *session = NULL;
    SottoPlaintext *plaintext = NULL;
    OK(sotto_session_accept(device, wire->ptr, wire->len, &session, &plaintext));
    SottoBuffer bytes = {0}, from = {0};
    OK(sotto_plaintext_bytes(plaintext, &bytes));
    OK(sotto_plaintext_sender_identity_key(plaintext, &from));
    CHECK(buffer_is(&bytes, text));
    CHECK(same(&from, sender));
    release(&bytes);
    release(&from);
    OK(sotto_plaintext_free(plaintext));
    return session;
}

/* A PQXDH session from `a` to `b` with one of b's one-time prekeys and
 * one-time KEM prekeys; a writes first, b replies. */
static void connect(SottoDevice *a, SottoDevice *b, SottoSession **a_to_b,
                    SottoSession **b_to_a) {
    SottoBuffer opk = {0}, kem = {0}, bundle = {0}, b_id = {0}, a_id = {0}, first = {0};
    OK(sotto_device_generate_one_time_prekeys(b, 1, &opk));
    OK(sotto_device_generate_one_time_kem_prekeys(b, 1, &kem));
    OK(sotto_device_bundle(b, opk.ptr, opk.len, kem.ptr, kem.len, &bundle));
    OK(sotto_device_identity_key(b, &b_id));
    OK(sotto_device_identity_key(a, &a_id));
    OK(sotto_session_initiate(a, bundle.ptr, bundle.len, b_id.ptr, b_id.len, a_to_b));
    OK(sotto_session_encrypt(*a_to_b, TEXT("hello"), &first));
    *b_to_a = accept_checked(b, &first, "hello", &a_id);
    exchange(*b_to_a, *a_to_b, "connect reply", "hi");
    SottoBuffer *owned[] = {&opk, &kem, &bundle, &b_id, &a_id, &first};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) release(owned[i]);
}

/* ----------------------------------------------------------------------- */

static void pairwise(void) {
    SottoDevice *alice = NULL, *bob = NULL;
    OK(sotto_device_generate(NOW, &alice));
    OK(sotto_device_generate(NOW, &bob));
    CHECK(device_generation(bob) == 0);

    /* Bob publishes one-time prekeys of both kinds. */
    SottoBuffer opks = {0}, kems = {0}, bundle = {0}, bob_id = {0}, alice_id = {0};
    OK(sotto_device_generate_one_time_prekeys(bob, 2, &opks));
    CHECK(opks.len == 2 * SOTTO_ONE_TIME_PREKEY_LEN);
    OK(sotto_device_generate_one_time_kem_prekeys(bob, 2, &kems));
    CHECK(kems.len == 2 * SOTTO_KEM_PREKEY_LEN);
    size_t count = 0;
    OK(sotto_device_one_time_prekey_count(bob, &count));
    CHECK(count == 2);
    OK(sotto_device_one_time_kem_prekey_count(bob, &count));
    CHECK(count == 2);
    CHECK(device_generation(bob) == 2);
    uint32_t id = 0;
    OK(sotto_prekey_id(opks.ptr + SOTTO_ONE_TIME_PREKEY_LEN, SOTTO_ONE_TIME_PREKEY_LEN, &id));
    CHECK(id == 2);
    OK(sotto_prekey_id(kems.ptr, SOTTO_KEM_PREKEY_LEN, &id));
    CHECK(id == 2); /* KEM id 1 is the last-resort one */
    OK(sotto_device_bundle(bob, opks.ptr, SOTTO_ONE_TIME_PREKEY_LEN, kems.ptr,
                           SOTTO_KEM_PREKEY_LEN, &bundle));
    OK(sotto_device_identity_key(bob, &bob_id));
    OK(sotto_device_identity_key(alice, &alice_id));
    CHECK(bob_id.len == SOTTO_IDENTITY_KEY_LEN);

    /* A bundle with a prekey Bob never issued (Alice's) is refused. */
    SottoBuffer alice_opk = {0}, nope = {0};
    OK(sotto_device_generate_one_time_prekeys(alice, 1, &alice_opk));
    EXPECT_ERR(sotto_device_bundle(bob, alice_opk.ptr, alice_opk.len, NULL, 0, &nope),
               SOTTO_ERROR_UNKNOWN_ONE_TIME_PREKEY);
    EXPECT_ERR(sotto_device_bundle(bob, NULL, 0, opks.ptr, SOTTO_ONE_TIME_PREKEY_LEN, &nope),
               SOTTO_ERROR_WRONG_TYPE); /* a one-time prekey where a KEM prekey goes */

    /* Alice imports the bundle and shows Bob's fingerprint. */
    SottoBuffer bundle_id = {0}, fp_text = {0}, fp = {0};
    bool has_kem = false;
    OK(sotto_bundle_verify(bundle.ptr, bundle.len, &bundle_id, &has_kem));
    CHECK(same(&bundle_id, &bob_id) && has_kem);
    OK(sotto_identity_key_fingerprint(bob_id.ptr, bob_id.len, &fp));
    CHECK(fp.len == SOTTO_FINGERPRINT_LEN);
    OK(sotto_identity_key_fingerprint_text(bob_id.ptr, bob_id.len, &fp_text));
    CHECK(fp_text.len == 71);
    printf("bob fingerprint: %.*s\n", (int)fp_text.len, (const char *)fp_text.ptr);

    /* A forged bundle, the wrong pinned identity, and a v1-sized identity. */
    uint8_t *bad = malloc(bundle.len);
    memcpy(bad, bundle.ptr, bundle.len);
    bad[2 + 32 + 4 + 32 + 10] ^= 0x01; /* inside the signed prekey signature */
    SottoSession *rejected = NULL;
    EXPECT_ERR(sotto_bundle_verify(bad, bundle.len, &nope, &has_kem), SOTTO_ERROR_INVALID_SIGNATURE);
    EXPECT_ERR(sotto_session_initiate(alice, bad, bundle.len, NULL, 0, &rejected),
               SOTTO_ERROR_INVALID_SIGNATURE);
    memcpy(bad, bundle.ptr, bundle.len);
    bad[bundle.len - 1] ^= 0x01; /* inside the KEM prekey signature */
    EXPECT_ERR(sotto_session_initiate(alice, bad, bundle.len, NULL, 0, &rejected),
               SOTTO_ERROR_INVALID_SIGNATURE);
    free(bad);
    EXPECT_ERR(sotto_bundle_verify(bundle.ptr, bundle.len - 1, &nope, &has_kem),
               SOTTO_ERROR_TRUNCATED);
    EXPECT_ERR(sotto_session_initiate(alice, bundle.ptr, bundle.len, alice_id.ptr, alice_id.len,
                                      &rejected),
               SOTTO_ERROR_IDENTITY_MISMATCH);
    uint8_t v1_sized[66] = {0};
    memcpy(v1_sized, bob_id.ptr, bob_id.len);
    EXPECT_ERR(sotto_session_initiate(alice, bundle.ptr, bundle.len, v1_sized, sizeof v1_sized,
                                      &rejected),
               SOTTO_ERROR_TRAILING_BYTES); /* the expected identity is 34 bytes now */
    CHECK(rejected == NULL);

    /* Alice starts a PQXDH session (pinned to Bob) and writes first. */
    SottoSession *to_bob = NULL, *to_alice = NULL;
    OK(sotto_session_initiate(alice, bundle.ptr, bundle.len, bob_id.ptr, bob_id.len, &to_bob));
    SottoKeyAgreement agreement = 0;
    OK(sotto_session_key_agreement(to_bob, &agreement));
    CHECK(agreement == SOTTO_KEY_AGREEMENT_PQXDH);
    bool awaiting = false;
    OK(sotto_session_is_awaiting_reply(to_bob, &awaiting));
    CHECK(awaiting);
    SottoBuffer first = {0};
    OK(sotto_session_encrypt(to_bob, TEXT("hello Bob"), &first));
    SottoMessageType kind = 0;
    OK(sotto_message_type(first.ptr, first.len, &kind));
    CHECK(kind == SOTTO_MESSAGE_TYPE_PREKEY);

    /* Bob accepts: the plaintext handle names Alice as the sender. */
    SottoPlaintext *hello = NULL;
    OK(sotto_session_accept(bob, first.ptr, first.len, &to_alice, &hello));
    SottoBuffer plain = {0}, sender = {0};
    OK(sotto_plaintext_bytes(hello, &plain));
    OK(sotto_plaintext_sender_identity_key(hello, &sender));
    CHECK(buffer_is(&plain, "hello Bob") && same(&sender, &alice_id));
    printf("alice -> bob: %.*s\n", (int)plain.len, (const char *)plain.ptr);
    release(&plain);
    release(&sender);
    OK(sotto_plaintext_free(hello));
    OK(sotto_device_one_time_prekey_count(bob, &count));
    CHECK(count == 1);
    OK(sotto_device_one_time_kem_prekey_count(bob, &count));
    CHECK(count == 1);
    SottoBuffer base_a = {0}, base_b = {0}, remote = {0};
    OK(sotto_prekey_message_base_key(first.ptr, first.len, &base_a));
    OK(sotto_session_base_key(to_alice, &base_b));
    CHECK(base_a.len == SOTTO_BASE_KEY_LEN && same(&base_a, &base_b));
    OK(sotto_session_remote_identity_key(to_alice, &remote));
    CHECK(same(&remote, &alice_id));

    /* The used prekeys: a replay fails, and a bundle cannot offer them. */
    SottoSession *dup = NULL;
    SottoPlaintext *dup_plain = NULL;
    EXPECT_ERR(sotto_session_accept(bob, first.ptr, first.len, &dup, &dup_plain),
               SOTTO_ERROR_UNKNOWN_ONE_TIME_PREKEY);
    CHECK(dup == NULL && dup_plain == NULL);
    EXPECT_ERR(sotto_device_bundle(bob, opks.ptr, SOTTO_ONE_TIME_PREKEY_LEN, NULL, 0, &nope),
               SOTTO_ERROR_UNKNOWN_ONE_TIME_PREKEY);
    EXPECT_ERR(sotto_device_bundle(bob, NULL, 0, kems.ptr, SOTTO_KEM_PREKEY_LEN, &nope),
               SOTTO_ERROR_UNKNOWN_KEM_PREKEY);

    exchange(to_alice, to_bob, "bob -> alice", "hi Alice");
    OK(sotto_session_is_awaiting_reply(to_bob, &awaiting));
    CHECK(!awaiting);
    exchange(to_bob, to_alice, "alice -> bob", "how are you?");

    /* Out of order delivery, then a duplicate and a tampered message. */
    SottoBuffer m[3] = {{0}, {0}, {0}};
    const char *texts[3] = {"one", "two", "three"};
    for (int i = 0; i < 3; i++) OK(sotto_session_encrypt(to_alice, TEXT(texts[i]), &m[i]));
    OK(sotto_message_type(m[0].ptr, m[0].len, &kind));
    CHECK(kind == SOTTO_MESSAGE_TYPE_RATCHET);
    int order[3] = {2, 0, 1};
    for (int k = 0; k < 3; k++) {
        int i = order[k];
        OK(sotto_session_decrypt(to_bob, m[i].ptr, m[i].len, &plain));
        CHECK(buffer_is(&plain, texts[i]));
        printf("bob -> alice (out of order): %.*s\n", (int)plain.len, (const char *)plain.ptr);
        release(&plain);
    }
    uint64_t before = session_generation(to_bob);
    EXPECT_ERR(sotto_session_decrypt(to_bob, m[0].ptr, m[0].len, &plain),
               SOTTO_ERROR_DUPLICATE_MESSAGE);
    SottoBuffer next = {0};
    OK(sotto_session_encrypt(to_alice, TEXT("four"), &next));
    next.ptr[next.len - 1] ^= 0x80;
    EXPECT_ERR(sotto_session_decrypt(to_bob, next.ptr, next.len, &plain),
               SOTTO_ERROR_AUTHENTICATION_FAILED);
    CHECK(session_generation(to_bob) == before); /* failures change nothing */
    next.ptr[next.len - 1] ^= 0x80;
    OK(sotto_session_decrypt(to_bob, next.ptr, next.len, &plain));
    CHECK(buffer_is(&plain, "four"));
    CHECK(session_generation(to_bob) == before + 1);
    release(&plain);
    release(&next);
    for (int i = 0; i < 3; i++) release(&m[i]);

    /* An empty message, given as (NULL, 0), decrypts to {NULL, 0, 0}. */
    OK(sotto_session_encrypt(to_bob, NULL, 0, &next));
    OK(sotto_session_decrypt(to_alice, next.ptr, next.len, &plain));
    CHECK(plain.ptr == NULL && plain.len == 0 && plain.id == 0);
    release(&next);

    /* Save and restore with contexts: a blob opens only under its record. */
    uint8_t key[SOTTO_STORAGE_KEY_LEN], wrong_key[SOTTO_STORAGE_KEY_LEN];
    memset(key, 0x42, sizeof key);
    memset(wrong_key, 0x43, sizeof wrong_key);
    const char *ctx_bob = "session/bob/1", *ctx_carol = "session/carol/1";
    SottoBuffer saved = {0}, sealed = {0};
    uint64_t gen_bob = session_generation(to_bob);
    OK(sotto_session_to_bytes(to_bob, &saved));
    OK(sotto_session_free(to_bob));
    to_bob = NULL;
    OK(sotto_session_from_bytes(saved.ptr, saved.len, &to_bob));
    CHECK(session_generation(to_bob) == gen_bob);
    release(&saved);
    OK(sotto_session_seal(to_bob, key, sizeof key, TEXT(ctx_bob), &sealed));
    SottoSession *opened = NULL;
    EXPECT_ERR(sotto_session_unseal(sealed.ptr, sealed.len, key, sizeof key, TEXT(ctx_carol), &opened),
               SOTTO_ERROR_AUTHENTICATION_FAILED); /* a blob moved to another record */
    EXPECT_ERR(sotto_session_unseal(sealed.ptr, sealed.len, wrong_key, sizeof wrong_key,
                                    TEXT(ctx_bob), &opened),
               SOTTO_ERROR_AUTHENTICATION_FAILED);
    EXPECT_ERR(sotto_session_unseal(sealed.ptr, sealed.len, key, 31, TEXT(ctx_bob), &opened),
               SOTTO_ERROR_INVALID_ARGUMENT);
    EXPECT_ERR(sotto_device_unseal(sealed.ptr, sealed.len, key, sizeof key, TEXT(ctx_bob), NULL),
               SOTTO_ERROR_NULL_POINTER);
    EXPECT_ERR(sotto_device_unseal(sealed.ptr, sealed.len, key, sizeof key, TEXT(ctx_bob),
                                   (SottoDevice **)&opened),
               SOTTO_ERROR_WRONG_TYPE);
    uint8_t *long_ctx = calloc(SOTTO_MAX_SEAL_CONTEXT_LEN + 1, 1);
    EXPECT_ERR(sotto_session_seal(to_bob, key, sizeof key, long_ctx, SOTTO_MAX_SEAL_CONTEXT_LEN + 1,
                                  &saved),
               SOTTO_ERROR_TOO_LARGE);
    free(long_ctx);
    CHECK(opened == NULL);
    OK(sotto_session_unseal(sealed.ptr, sealed.len, key, sizeof key, TEXT(ctx_bob), &opened));
    CHECK(session_generation(opened) == gen_bob);
    OK(sotto_session_free(to_bob));
    to_bob = opened;
    release(&sealed);
    exchange(to_bob, to_alice, "alice -> bob (restored)", "still here");

    /* A rollback across a ratchet-key draw: Alice restores a state saved
     * before she drew a new ratchet key and sends on a fresh one. Bob's
     * session reports it diverged; the generation shows the rollback. */
    exchange(to_alice, to_bob, "bob -> alice", "your turn");
    OK(sotto_session_to_bytes(to_bob, &saved));
    exchange(to_bob, to_alice, "alice -> bob (before rollback)", "new ratchet key");
    uint64_t latest = session_generation(to_bob);
    SottoSession *rolled_back = NULL;
    OK(sotto_session_from_bytes(saved.ptr, saved.len, &rolled_back));
    release(&saved);
    CHECK(session_generation(rolled_back) < latest);
    SottoBuffer diverged = {0};
    OK(sotto_session_encrypt(rolled_back, TEXT("after rollback"), &diverged));
    EXPECT_ERR(sotto_session_decrypt(to_alice, diverged.ptr, diverged.len, &plain),
               SOTTO_ERROR_SESSION_DIVERGED);
    release(&diverged);
    OK(sotto_session_free(rolled_back));

    /* Device persistence: sealed under a context, generation kept. */
    uint64_t gen_device = device_generation(bob);
    OK(sotto_device_seal(bob, key, sizeof key, TEXT("device"), &sealed));
    OK(sotto_device_to_bytes(bob, &saved));
    OK(sotto_device_free(bob));
    bob = NULL;
    SottoSession *wrong_kind = NULL;
    EXPECT_ERR(sotto_session_from_bytes(saved.ptr, saved.len, &wrong_kind), SOTTO_ERROR_WRONG_TYPE);
    OK(sotto_device_from_bytes(saved.ptr, saved.len, &bob));
    OK(sotto_device_free(bob));
    bob = NULL;
    OK(sotto_device_unseal(sealed.ptr, sealed.len, key, sizeof key, TEXT("device"), &bob));
    CHECK(device_generation(bob) == gen_device);
    release(&saved);
    release(&sealed);

    /* Signed prekeys: creation times, rotation, removal. */
    SottoSignedPrekeyInfo spks[SOTTO_MAX_SIGNED_PREKEYS];
    size_t n = 0;
    OK(sotto_device_signed_prekeys(bob, spks, SOTTO_MAX_SIGNED_PREKEYS, &n));
    CHECK(n == 1 && spks[0].id == 1 && spks[0].created == NOW && spks[0].base_key_count == 0);
    SottoBuffer spk_new = {0};
    OK(sotto_device_rotate_signed_prekey(bob, NOW + 86400, &spk_new));
    CHECK(spk_new.len == SOTTO_SIGNED_PREKEY_LEN);
    OK(sotto_prekey_id(spk_new.ptr, spk_new.len, &id));
    CHECK(id == 2);
    OK(sotto_device_signed_prekeys(bob, spks, SOTTO_MAX_SIGNED_PREKEYS, &n));
    CHECK(n == 2 && spks[1].id == 2 && spks[1].created == NOW + 86400);
    EXPECT_ERR(sotto_device_signed_prekeys(bob, spks, 1, &n), SOTTO_ERROR_INVALID_ARGUMENT);
    EXPECT_ERR(sotto_device_remove_signed_prekey(bob, 2), SOTTO_ERROR_UNKNOWN_SIGNED_PREKEY);
    EXPECT_ERR(sotto_device_remove_signed_prekey(bob, 99), SOTTO_ERROR_UNKNOWN_SIGNED_PREKEY);

    /* Last-resort KEM prekeys: list, rotate, remove. */
    SottoKemPrekeyInfo lr[SOTTO_MAX_LAST_RESORT_KEM_PREKEYS];
    OK(sotto_device_last_resort_kem_prekeys(bob, lr, SOTTO_MAX_LAST_RESORT_KEM_PREKEYS, &n));
    CHECK(n == 1 && lr[0].id == 1 && lr[0].created == NOW);
    SottoBuffer lr_new = {0};
    OK(sotto_device_rotate_last_resort_kem_prekey(bob, NOW + 7, &lr_new));
    CHECK(lr_new.len == SOTTO_KEM_PREKEY_LEN);
    OK(sotto_prekey_id(lr_new.ptr, lr_new.len, &id));
    OK(sotto_device_last_resort_kem_prekeys(bob, lr, SOTTO_MAX_LAST_RESORT_KEM_PREKEYS, &n));
    CHECK(n == 2 && lr[1].id == id && lr[1].created == NOW + 7);
    EXPECT_ERR(sotto_device_remove_last_resort_kem_prekey(bob, id), SOTTO_ERROR_UNKNOWN_KEM_PREKEY);
    OK(sotto_device_remove_last_resort_kem_prekey(bob, 1));
    EXPECT_ERR(sotto_device_remove_last_resort_kem_prekey(bob, 1), SOTTO_ERROR_UNKNOWN_KEM_PREKEY);
    release(&lr_new);

    /* A bundle with neither one-time prekey ("replayable": it uses the
     * last-resort KEM prekey) still reaches Bob, once: its base key is
     * recorded under the signed prekey. */
    SottoBuffer bundle2 = {0}, replayable = {0};
    OK(sotto_device_bundle(bob, NULL, 0, NULL, 0, &bundle2));
    SottoSession *second = NULL, *second_bob = NULL;
    OK(sotto_session_initiate(alice, bundle2.ptr, bundle2.len, NULL, 0, &second));
    OK(sotto_session_encrypt(second, TEXT("again"), &replayable));
    SottoBuffer bob_saved = {0};
    OK(sotto_device_to_bytes(bob, &bob_saved)); /* a backup, before the accept */
    second_bob = accept_checked(bob, &replayable, "again", &alice_id);
    printf("alice -> bob (rotated prekeys): again\n");
    OK(sotto_device_signed_prekeys(bob, spks, SOTTO_MAX_SIGNED_PREKEYS, &n));
    CHECK(n == 2 && spks[1].base_key_count == 1);
    EXPECT_ERR(sotto_session_accept(bob, replayable.ptr, replayable.len, &dup, &dup_plain),
               SOTTO_ERROR_DUPLICATE_PREKEY_MESSAGE);
    OK(sotto_device_remove_signed_prekey(bob, 1));
    EXPECT_ERR(sotto_device_remove_signed_prekey(bob, 1), SOTTO_ERROR_UNKNOWN_SIGNED_PREKEY);

    /* Restoring the backup: the generation shows it is older, and after
     * the reset the replayed message is refused for good. */
    uint64_t recorded = device_generation(bob);
    SottoDevice *restored = NULL;
    OK(sotto_device_from_bytes(bob_saved.ptr, bob_saved.len, &restored));
    CHECK(device_generation(restored) < recorded);
    SottoBuffer reset_spk = {0}, reset_kem = {0};
    OK(sotto_device_reset_prekeys_after_restore(restored, NOW + 99, recorded, &reset_spk, &reset_kem));
    CHECK(device_generation(restored) == recorded + 1);
    CHECK(reset_spk.len == SOTTO_SIGNED_PREKEY_LEN && reset_kem.len == SOTTO_KEM_PREKEY_LEN);
    EXPECT_ERR(sotto_session_accept(restored, replayable.ptr, replayable.len, &dup, &dup_plain),
               SOTTO_ERROR_UNKNOWN_SIGNED_PREKEY);
    EXPECT_ERR(sotto_device_reset_prekeys_after_restore(restored, NOW, 0, &reset_spk, &nope),
               SOTTO_ERROR_INVALID_ARGUMENT); /* reset_spk is still full */
    printf("bob (restored from backup, reset): replay refused\n");
    OK(sotto_device_free(restored));
    release(&bob_saved);
    release(&reset_spk);
    release(&reset_kem);

    /* Classical X3DH only by explicit opt-in, per call. */
    SottoBuffer spk_now = {0}, classical_bundle = {0}, classical_first = {0};
    OK(sotto_device_signed_prekey(bob, &spk_now));
    OK(sotto_bundle_new(bob_id.ptr, bob_id.len, spk_now.ptr, spk_now.len, NULL, 0, NULL, 0,
                        &classical_bundle));
    OK(sotto_bundle_verify(classical_bundle.ptr, classical_bundle.len, &nope, &has_kem));
    CHECK(!has_kem);
    release(&nope);
    SottoSession *classical = NULL, *classical_bob = NULL;
    EXPECT_ERR(sotto_session_initiate(alice, classical_bundle.ptr, classical_bundle.len, NULL, 0,
                                      &classical),
               SOTTO_ERROR_POST_QUANTUM_REQUIRED);
    OK(sotto_session_initiate_allow_classical(alice, classical_bundle.ptr, classical_bundle.len,
                                              bob_id.ptr, bob_id.len, &classical));
    OK(sotto_session_key_agreement(classical, &agreement));
    CHECK(agreement == SOTTO_KEY_AGREEMENT_X3DH);
    OK(sotto_session_encrypt(classical, TEXT("classical"), &classical_first));
    EXPECT_ERR(sotto_session_accept(bob, classical_first.ptr, classical_first.len, &dup, &dup_plain),
               SOTTO_ERROR_POST_QUANTUM_REQUIRED);
    SottoPlaintext *classical_plain = NULL;
    OK(sotto_session_accept_allow_classical(bob, classical_first.ptr, classical_first.len,
                                            &classical_bob, &classical_plain));
    OK(sotto_session_key_agreement(classical_bob, &agreement));
    CHECK(agreement == SOTTO_KEY_AGREEMENT_X3DH);
    OK(sotto_plaintext_free(classical_plain));
    printf("alice -> bob (classical, opted in): classical\n");

    /* A ratchet message is not a prekey message. */
    SottoBuffer ratchet = {0};
    OK(sotto_session_encrypt(to_alice, TEXT("x"), &ratchet));
    EXPECT_ERR(sotto_session_accept(bob, ratchet.ptr, ratchet.len, &dup, &dup_plain),
               SOTTO_ERROR_WRONG_TYPE);
    EXPECT_ERR(sotto_prekey_message_base_key(ratchet.ptr, ratchet.len, &base_a),
               SOTTO_ERROR_INVALID_ARGUMENT); /* base_a is not empty */
    release(&base_a);
    EXPECT_ERR(sotto_prekey_message_base_key(ratchet.ptr, ratchet.len, &base_a),
               SOTTO_ERROR_WRONG_TYPE);
    OK(sotto_session_decrypt(to_bob, ratchet.ptr, ratchet.len, &plain));
    release(&plain);

    /* NULL pointers, bad lengths, foreign bytes. */
    SottoDevice *no_device = NULL;
    EXPECT_ERR(sotto_device_generate(NOW, NULL), SOTTO_ERROR_NULL_POINTER);
    EXPECT_ERR(sotto_session_encrypt(NULL, TEXT("x"), &next), SOTTO_ERROR_NULL_POINTER);
    EXPECT_ERR(sotto_session_encrypt(to_bob, NULL, 5, &next), SOTTO_ERROR_NULL_POINTER);
    EXPECT_ERR(sotto_session_encrypt(to_bob, TEXT("x"), NULL), SOTTO_ERROR_NULL_POINTER);
    EXPECT_ERR(sotto_session_decrypt(to_bob, NULL, 10, &plain), SOTTO_ERROR_NULL_POINTER);
    EXPECT_ERR(sotto_device_one_time_prekey_count(bob, NULL), SOTTO_ERROR_NULL_POINTER);
    EXPECT_ERR(sotto_device_signed_prekeys(bob, NULL, 4, &n), SOTTO_ERROR_NULL_POINTER);
    CHECK(sotto_last_error_message(NULL) == SOTTO_ERROR_NULL_POINTER);
    OK(sotto_session_free(NULL));
    OK(sotto_device_free(NULL));
    OK(sotto_plaintext_free(NULL));
    OK(sotto_buffer_free(NULL));
    EXPECT_ERR(sotto_session_encrypt(to_bob, (const uint8_t *)"x", SIZE_MAX, &next),
               SOTTO_ERROR_INVALID_ARGUMENT);
    uint8_t *big = calloc(SOTTO_MAX_PLAINTEXT_LEN + 1, 1);
    EXPECT_ERR(sotto_session_encrypt(to_bob, big, SOTTO_MAX_PLAINTEXT_LEN + 1, &next),
               SOTTO_ERROR_PLAINTEXT_TOO_LARGE);
    free(big);
    big = calloc(SOTTO_MAX_MESSAGE_LEN + 1, 1);
    EXPECT_ERR(sotto_session_decrypt(to_bob, big, SOTTO_MAX_MESSAGE_LEN + 1, &plain),
               SOTTO_ERROR_TOO_LARGE);
    free(big);
    EXPECT_ERR(sotto_device_seal(bob, key, 33, NULL, 0, &sealed), SOTTO_ERROR_INVALID_ARGUMENT);
    EXPECT_ERR(sotto_device_generate_one_time_prekeys(bob, SOTTO_MAX_ONE_TIME_PREKEYS + 1, &opks),
               SOTTO_ERROR_INVALID_ARGUMENT); /* opks is still full */
    SottoBuffer more = {0};
    EXPECT_ERR(sotto_device_generate_one_time_prekeys(bob, SOTTO_MAX_ONE_TIME_PREKEYS + 1, &more),
               SOTTO_ERROR_TOO_MANY_PREKEYS);
    EXPECT_ERR(sotto_device_generate_one_time_kem_prekeys(bob, SOTTO_MAX_ONE_TIME_KEM_PREKEYS + 1,
                                                          &more),
               SOTTO_ERROR_TOO_MANY_PREKEYS);
    OK(sotto_device_generate_one_time_prekeys(bob, 0, &more));
    CHECK(more.ptr == NULL && more.len == 0);
    EXPECT_ERR(sotto_device_from_bytes((const uint8_t *)"\x02\x21", 2, &no_device),
               SOTTO_ERROR_TRUNCATED);
    EXPECT_ERR(sotto_device_from_bytes((const uint8_t *)"\x01\x21", 2, &no_device),
               SOTTO_ERROR_UNSUPPORTED_VERSION); /* a version 1 state */
    uint8_t future[128] = {0x03, 0x01};
    EXPECT_ERR(sotto_session_decrypt(to_bob, future, sizeof future, &plain),
               SOTTO_ERROR_UNSUPPORTED_VERSION);
    EXPECT_ERR(sotto_session_accept(bob, first.ptr, 40, &dup, &dup_plain), SOTTO_ERROR_TRUNCATED);
    EXPECT_ERR(sotto_prekey_id(bob_id.ptr, bob_id.len, &id), SOTTO_ERROR_WRONG_TYPE);

    /* Wrong handle types, as a binding with untyped pointers could pass. */
    SottoBuffer any = {0};
    EXPECT_ERR(sotto_device_identity_key((const SottoDevice *)to_bob, &any), SOTTO_ERROR_WRONG_HANDLE);
    EXPECT_ERR(sotto_session_encrypt((SottoSession *)alice, TEXT("x"), &next), SOTTO_ERROR_WRONG_HANDLE);
    EXPECT_ERR(sotto_session_free((SottoSession *)alice), SOTTO_ERROR_WRONG_HANDLE);
    EXPECT_ERR(sotto_device_free((SottoDevice *)to_alice), SOTTO_ERROR_WRONG_HANDLE);
    EXPECT_ERR(sotto_plaintext_bytes((const SottoPlaintext *)to_alice, &any), SOTTO_ERROR_WRONG_HANDLE);
    uint64_t not_a_handle[4] = {0x1234, 0, 0, 0};
    EXPECT_ERR(sotto_session_decrypt((SottoSession *)not_a_handle, first.ptr, first.len, &plain),
               SOTTO_ERROR_WRONG_HANDLE);
    EXPECT_ERR(sotto_session_decrypt((SottoSession *)((uint8_t *)not_a_handle + 1), first.ptr,
                                     first.len, &plain),
               SOTTO_ERROR_WRONG_HANDLE);
    EXPECT_ERR(sotto_session_accept((SottoDevice *)to_bob, first.ptr, first.len, &dup, &dup_plain),
               SOTTO_ERROR_WRONG_HANDLE);
    EXPECT_ERR(sotto_session_initiate(NULL, bundle.ptr, bundle.len, NULL, 0, &dup),
               SOTTO_ERROR_NULL_POINTER);
    CHECK(dup == NULL && dup_plain == NULL);
    OK(sotto_device_identity_key(alice, &any)); /* both still usable */
    release(&any);
    exchange(to_bob, to_alice, "alice -> bob (after misuse)", "all good");

    /* Output slots must be empty. */
    SottoSession *occupied = to_bob;
    EXPECT_ERR(sotto_session_from_bytes(first.ptr, first.len, &occupied), SOTTO_ERROR_INVALID_ARGUMENT);
    CHECK(occupied == to_bob);
    SottoPlaintext *same_slot = NULL;
    EXPECT_ERR(sotto_session_accept(bob, first.ptr, first.len, (SottoSession **)&same_slot,
                                    &same_slot),
               SOTTO_ERROR_INVALID_ARGUMENT);

    /* The last error message is per call: a success clears it. */
    EXPECT_ERR(sotto_bundle_verify(NULL, 3, &nope, &has_kem), SOTTO_ERROR_NULL_POINTER);
    OK(sotto_device_identity_key(alice, &any));
    CHECK(!last_error_is_set());
    release(&any);

    SottoBuffer *owned[] = {&opks, &kems, &bundle, &bob_id, &alice_id, &alice_opk, &bundle_id,
                            &fp, &fp_text, &first, &base_a, &base_b, &remote, &spk_new, &bundle2,
                            &replayable, &spk_now, &classical_bundle, &classical_first,
                            &ratchet};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) release(owned[i]);
    SottoSession *sessions[] = {to_bob, to_alice, second, second_bob, classical, classical_bob};
    for (size_t i = 0; i < sizeof sessions / sizeof sessions[0]; i++) OK(sotto_session_free(sessions[i]));
    OK(sotto_device_free(alice));
    OK(sotto_device_free(bob));
}

/* ----------------------------------------------------------------------- */

struct member {
    const char *name;
    SottoDevice *device;
    SottoBuffer id;
    SottoGroupSender *sender;
    SottoGroupStore *store;
};

/* Sends `from`'s distribution to `to` over their session; `to` installs it
 * through its store in one call. Returns the outcome. */
static SottoInsertOutcome hand_out(const SottoBuffer *distribution, SottoSession *from_to,
                                   SottoSession *to_from, struct member *to) {
    SottoBuffer wire = {0};
    SottoInsertOutcome outcome = 0;
    OK(sotto_session_encrypt(from_to, distribution->ptr, distribution->len, &wire));
    OK(sotto_group_store_receive_distribution(to->store, to_from, wire.ptr, wire.len, &outcome));
    release(&wire);
    return outcome;
}

/* Encrypts `text` for the group; each reader decrypts it through its store
 * and sees the sender as authenticated. Returns the wire message. */
static SottoBuffer broadcast(struct member *from, struct member **readers, size_t n,
                             const char *text, const char *label) {
    SottoBuffer wire = {0};
    OK(sotto_group_sender_encrypt(from->sender, TEXT(text), &wire));
    for (size_t i = 0; i < n; i++) {
        SottoBuffer plain = {0}, sender = {0};
        bool authenticated = false;
        OK(sotto_group_store_decrypt(readers[i]->store, wire.ptr, wire.len, &plain, &sender,
                                     &authenticated));
        CHECK(buffer_is(&plain, text) && same(&sender, &from->id) && authenticated);
        release(&plain);
        release(&sender);
    }
    printf("%s: %s\n", label, text);
    return wire;
}

static void group(void) {
    uint8_t group_id[SOTTO_GROUP_ID_LEN];
    memset(group_id, 0x77, sizeof group_id);
    struct member alice = {"alice", NULL, {0}, NULL, NULL}, bob = {"bob", NULL, {0}, NULL, NULL},
                  carol = {"carol", NULL, {0}, NULL, NULL};
    struct member *all[] = {&alice, &bob, &carol};
    for (int i = 0; i < 3; i++) {
        OK(sotto_device_generate(NOW, &all[i]->device));
        OK(sotto_device_identity_key(all[i]->device, &all[i]->id));
        OK(sotto_group_sender_new(all[i]->device, group_id, sizeof group_id, &all[i]->sender));
        OK(sotto_group_store_new(group_id, sizeof group_id, &all[i]->store));
    }
    SottoSession *ab = NULL, *ba = NULL, *ac = NULL, *ca = NULL, *bc = NULL, *cb = NULL;
    connect(alice.device, bob.device, &ab, &ba);
    connect(alice.device, carol.device, &ac, &ca);
    connect(bob.device, carol.device, &bc, &cb);

    SottoBuffer owner = {0}, gid = {0}, chain = {0};
    OK(sotto_group_sender_owner_identity_key(alice.sender, &owner));
    CHECK(same(&owner, &alice.id));
    OK(sotto_group_sender_group_id(alice.sender, &gid));
    CHECK(gid.len == SOTTO_GROUP_ID_LEN && memcmp(gid.ptr, group_id, sizeof group_id) == 0);
    release(&gid);
    OK(sotto_group_store_group_id(carol.store, &gid));
    CHECK(gid.len == SOTTO_GROUP_ID_LEN && memcmp(gid.ptr, group_id, sizeof group_id) == 0);
    release(&owner);
    release(&gid);

    SottoBuffer dist_a = {0}, dist_b = {0}, dist_c = {0};
    OK(sotto_group_sender_distribution(alice.sender, &dist_a));
    OK(sotto_group_sender_distribution(bob.sender, &dist_b));
    OK(sotto_group_sender_distribution(carol.sender, &dist_c));
    CHECK(dist_a.len == SOTTO_SENDER_KEY_DISTRIBUTION_LEN);

    /* The v1 attack: Bob, a member, forwards Alice's distribution to Carol
     * over his own session with her, before Alice's copy arrives. In v1 the
     * C ABI installed it as a second receiver credited to Bob. Now the owner
     * named in it is Alice, not the session's peer: refused, in one call,
     * and the session is left as it was. */
    SottoBuffer forwarded = {0}, plain = {0}, sender = {0};
    SottoInsertOutcome outcome = 0;
    OK(sotto_session_encrypt(bc, dist_a.ptr, dist_a.len, &forwarded));
    uint64_t before = session_generation(cb);
    EXPECT_ERR(sotto_group_store_receive_distribution(carol.store, cb, forwarded.ptr,
                                                      forwarded.len, &outcome),
               SOTTO_ERROR_GROUP_OWNER_MISMATCH);
    CHECK(session_generation(cb) == before);
    /* Through a plaintext handle: the same refusal. */
    SottoPlaintext *forwarded_plain = NULL;
    OK(sotto_session_decrypt_plaintext(cb, forwarded.ptr, forwarded.len, &forwarded_plain));
    OK(sotto_plaintext_sender_identity_key(forwarded_plain, &sender));
    CHECK(same(&sender, &bob.id));
    release(&sender);
    EXPECT_ERR(sotto_group_store_install(carol.store, forwarded_plain, &outcome),
               SOTTO_ERROR_GROUP_OWNER_MISMATCH);
    size_t held = 99;
    OK(sotto_group_store_len(carol.store, &held));
    CHECK(held == 0);
    printf("carol refuses alice's key forwarded by bob\n");

    /* Everyone hands out its own key over its own sessions. */
    CHECK(hand_out(&dist_a, ab, ba, &bob) == SOTTO_INSERT_OUTCOME_ADDED);
    CHECK(hand_out(&dist_a, ac, ca, &carol) == SOTTO_INSERT_OUTCOME_ADDED);
    CHECK(hand_out(&dist_b, ba, ab, &alice) == SOTTO_INSERT_OUTCOME_ADDED);
    CHECK(hand_out(&dist_b, bc, cb, &carol) == SOTTO_INSERT_OUTCOME_ADDED);
    CHECK(hand_out(&dist_c, ca, ac, &alice) == SOTTO_INSERT_OUTCOME_ADDED);
    CHECK(hand_out(&dist_c, cb, bc, &bob) == SOTTO_INSERT_OUTCOME_ADDED);
    /* Re-delivering Alice's key, by her: unchanged. The forwarded copy,
     * even after Alice's arrived: still refused. No second receiver. */
    CHECK(hand_out(&dist_a, ac, ca, &carol) == SOTTO_INSERT_OUTCOME_UNCHANGED);
    EXPECT_ERR(sotto_group_store_install(carol.store, forwarded_plain, &outcome),
               SOTTO_ERROR_GROUP_OWNER_MISMATCH);
    OK(sotto_plaintext_free(forwarded_plain));
    OK(sotto_group_store_len(carol.store, &held));
    CHECK(held == 2);
    printf("group: alice, bob and carol hold each other's sender keys\n");

    struct member *not_alice[] = {&bob, &carol}, *not_bob[] = {&alice, &carol},
                  *not_carol[] = {&alice, &bob};
    SottoBuffer g1 = broadcast(&alice, not_alice, 2, "hello group", "alice -> group");
    SottoBuffer g2 = broadcast(&bob, not_bob, 2, "hi everyone", "bob -> group");
    SottoBuffer g3 = broadcast(&carol, not_carol, 2, "hey both", "carol -> group");
    bool authenticated = false;
    EXPECT_ERR(sotto_group_store_decrypt(bob.store, g1.ptr, g1.len, &plain, &sender, &authenticated),
               SOTTO_ERROR_DUPLICATE_MESSAGE);
    EXPECT_ERR(sotto_group_store_decrypt(alice.store, g1.ptr, g1.len, &plain, &sender,
                                         &authenticated),
               SOTTO_ERROR_UNKNOWN_GROUP_CHAIN); /* her own chain is not in her store */

    /* Routing and the receiver's view. */
    uint32_t index = 99, next_index = 0;
    OK(sotto_group_message_chain_id(g1.ptr, g1.len, &chain));
    OK(sotto_group_message_index(g1.ptr, g1.len, &index));
    OK(sotto_group_message_group_id(g1.ptr, g1.len, &gid));
    CHECK(chain.len == SOTTO_CHAIN_ID_LEN && index == 0 &&
          memcmp(gid.ptr, group_id, sizeof group_id) == 0);
    release(&gid);
    OK(sotto_group_sender_chain_id(alice.sender, &gid));
    CHECK(same(&gid, &chain));
    release(&gid);
    OK(sotto_group_store_receiver(bob.store, chain.ptr, chain.len, &owner, &authenticated,
                                  &next_index));
    CHECK(same(&owner, &alice.id) && authenticated && next_index == 1);
    release(&owner);
    SottoBuffer ids = {0};
    OK(sotto_group_store_chain_ids(bob.store, &ids));
    CHECK(ids.len == 2 * SOTTO_CHAIN_ID_LEN && memcmp(ids.ptr, chain.ptr, SOTTO_CHAIN_ID_LEN) == 0);
    release(&ids);
    EXPECT_ERR(sotto_group_store_receiver(bob.store, chain.ptr, 31, &owner, &authenticated,
                                          &next_index),
               SOTTO_ERROR_INVALID_ARGUMENT);
    SottoBuffer bob_chain = {0};
    OK(sotto_group_sender_chain_id(bob.sender, &bob_chain));
    EXPECT_ERR(sotto_group_store_receiver(bob.store, bob_chain.ptr, bob_chain.len, &owner,
                                          &authenticated, &next_index),
               SOTTO_ERROR_UNKNOWN_GROUP_CHAIN);
    release(&bob_chain);

    /* Tampering breaks the signature, checked first; state unchanged. */
    SottoBuffer g4 = {0};
    OK(sotto_group_sender_encrypt(alice.sender, TEXT("tamper"), &g4));
    g4.ptr[g4.len - 70] ^= 0x01;
    EXPECT_ERR(sotto_group_store_decrypt(bob.store, g4.ptr, g4.len, &plain, &sender, &authenticated),
               SOTTO_ERROR_INVALID_SIGNATURE);
    g4.ptr[g4.len - 70] ^= 0x01;
    OK(sotto_group_store_decrypt(bob.store, g4.ptr, g4.len, &plain, &sender, &authenticated));
    CHECK(buffer_is(&plain, "tamper"));
    release(&plain);
    release(&sender);
    EXPECT_ERR(sotto_group_store_decrypt(bob.store, g4.ptr, g4.len, &plain, &plain, &authenticated),
               SOTTO_ERROR_INVALID_ARGUMENT); /* one buffer for two outputs */

    /* A distribution of another group, a plaintext that is not one, and an
     * unauthenticated import that a later delivery upgrades. */
    uint8_t other_id[SOTTO_GROUP_ID_LEN] = {0};
    SottoGroupSender *other = NULL;
    SottoBuffer other_dist = {0}, wire = {0};
    OK(sotto_group_sender_new(alice.device, other_id, sizeof other_id, &other));
    OK(sotto_group_sender_distribution(other, &other_dist));
    OK(sotto_session_encrypt(ab, other_dist.ptr, other_dist.len, &wire));
    EXPECT_ERR(sotto_group_store_receive_distribution(bob.store, ba, wire.ptr, wire.len, &outcome),
               SOTTO_ERROR_GROUP_MISMATCH);
    OK(sotto_session_decrypt(ba, wire.ptr, wire.len, &plain)); /* the session did not move */
    release(&plain);
    release(&wire);
    OK(sotto_session_encrypt(ab, TEXT("just chat"), &wire));
    EXPECT_ERR(sotto_group_store_receive_distribution(bob.store, ba, wire.ptr, wire.len, &outcome),
               SOTTO_ERROR_UNSUPPORTED_VERSION);
    OK(sotto_session_decrypt(ba, wire.ptr, wire.len, &plain));
    CHECK(buffer_is(&plain, "just chat"));
    release(&plain);
    release(&wire);
    OK(sotto_session_encrypt(ab, g1.ptr, g1.len, &wire));
    EXPECT_ERR(sotto_group_store_receive_distribution(bob.store, ba, wire.ptr, wire.len, &outcome),
               SOTTO_ERROR_WRONG_TYPE);
    release(&wire);
    EXPECT_ERR(sotto_group_store_import_unauthenticated(bob.store, other_dist.ptr, other_dist.len,
                                                        &outcome),
               SOTTO_ERROR_GROUP_MISMATCH);
    SottoBuffer rotated_a = {0};
    OK(sotto_group_sender_rotate(alice.sender, alice.device, &rotated_a));
    OK(sotto_group_store_import_unauthenticated(carol.store, rotated_a.ptr, rotated_a.len,
                                                &outcome));
    CHECK(outcome == SOTTO_INSERT_OUTCOME_ADDED);
    SottoBuffer g5 = {0};
    OK(sotto_group_sender_encrypt(alice.sender, TEXT("from a backup"), &g5));
    OK(sotto_group_store_decrypt(carol.store, g5.ptr, g5.len, &plain, &sender, &authenticated));
    CHECK(buffer_is(&plain, "from a backup") && same(&sender, &alice.id) && !authenticated);
    release(&plain);
    release(&sender);
    CHECK(hand_out(&rotated_a, ac, ca, &carol) == SOTTO_INSERT_OUTCOME_UPGRADED);
    CHECK(hand_out(&rotated_a, ab, ba, &bob) == SOTTO_INSERT_OUTCOME_ADDED);
    SottoBuffer g6 = broadcast(&alice, not_alice, 2, "rotated", "alice -> group (rotated)");

    /* Save and restore the sender and the store, sealed under contexts. */
    uint8_t key[SOTTO_STORAGE_KEY_LEN];
    memset(key, 0x5a, sizeof key);
    SottoBuffer sealed = {0}, saved = {0};
    uint64_t gen_store = 0, gen_sender = 0, gen = 0;
    OK(sotto_group_store_generation(bob.store, &gen_store));
    OK(sotto_group_sender_generation(bob.sender, &gen_sender));
    CHECK(gen_store > 0 && gen_sender == 1); /* one message sent */
    OK(sotto_group_store_seal(bob.store, key, sizeof key, TEXT("group/77/store"), &sealed));
    OK(sotto_group_store_free(bob.store));
    bob.store = NULL;
    SottoGroupStore *no_store = NULL;
    EXPECT_ERR(sotto_group_store_unseal(sealed.ptr, sealed.len, key, sizeof key,
                                        TEXT("group/77/sender"), &no_store),
               SOTTO_ERROR_AUTHENTICATION_FAILED);
    EXPECT_ERR(sotto_group_sender_unseal(sealed.ptr, sealed.len, key, sizeof key,
                                         TEXT("group/77/store"), (SottoGroupSender **)&no_store),
               SOTTO_ERROR_WRONG_TYPE);
    OK(sotto_group_store_unseal(sealed.ptr, sealed.len, key, sizeof key, TEXT("group/77/store"),
                                &bob.store));
    OK(sotto_group_store_generation(bob.store, &gen));
    CHECK(gen == gen_store);
    release(&sealed);
    OK(sotto_group_sender_to_bytes(bob.sender, &saved));
    OK(sotto_group_sender_free(bob.sender));
    bob.sender = NULL;
    EXPECT_ERR(sotto_group_store_from_bytes(saved.ptr, saved.len, &no_store), SOTTO_ERROR_WRONG_TYPE);
    OK(sotto_group_sender_from_bytes(saved.ptr, saved.len, &bob.sender));
    release(&saved);
    OK(sotto_group_store_to_bytes(carol.store, &saved));
    OK(sotto_group_store_free(carol.store));
    carol.store = NULL;
    OK(sotto_group_store_from_bytes(saved.ptr, saved.len, &carol.store));
    release(&saved);
    SottoBuffer g7 = broadcast(&bob, not_bob, 2, "me too", "bob -> group (restored)");
    uint32_t sender_index = 0;
    OK(sotto_group_sender_index(bob.sender, &sender_index));
    CHECK(sender_index == 2);
    OK(sotto_group_sender_generation(bob.sender, &gen));
    CHECK(gen == 2);

    /* Carol leaves: Alice and Bob drop her chains through their stores,
     * rotate theirs and hand the new keys to each other only. */
    size_t removed = 0;
    OK(sotto_group_store_remove_owner(alice.store, carol.id.ptr, carol.id.len, &removed));
    CHECK(removed == 1);
    OK(sotto_group_store_remove_owner(bob.store, carol.id.ptr, carol.id.len, &removed));
    CHECK(removed == 1);
    OK(sotto_group_store_remove_owner(bob.store, carol.id.ptr, carol.id.len, &removed));
    CHECK(removed == 0);
    EXPECT_ERR(sotto_group_store_remove_owner(bob.store, carol.id.ptr, 33, &removed),
               SOTTO_ERROR_TRUNCATED);
    SottoBuffer new_a = {0}, new_b = {0};
    OK(sotto_group_sender_rotate(alice.sender, alice.device, &new_a));
    OK(sotto_group_sender_rotate(bob.sender, bob.device, &new_b));
    CHECK(hand_out(&new_a, ab, ba, &bob) == SOTTO_INSERT_OUTCOME_ADDED);
    CHECK(hand_out(&new_b, ba, ab, &alice) == SOTTO_INSERT_OUTCOME_ADDED);
    struct member *only_bob[] = {&bob}, *only_alice[] = {&alice};
    SottoBuffer g8 = broadcast(&alice, only_bob, 1, "without carol", "alice -> group (carol removed)");
    SottoBuffer g9 = broadcast(&bob, only_alice, 1, "agreed", "bob -> group (carol removed)");
    EXPECT_ERR(sotto_group_store_decrypt(carol.store, g8.ptr, g8.len, &plain, &sender, &authenticated),
               SOTTO_ERROR_UNKNOWN_GROUP_CHAIN);
    EXPECT_ERR(sotto_group_store_decrypt(carol.store, g9.ptr, g9.len, &plain, &sender, &authenticated),
               SOTTO_ERROR_UNKNOWN_GROUP_CHAIN);
    SottoBuffer g10 = {0};
    OK(sotto_group_sender_encrypt(carol.sender, TEXT("anyone?"), &g10));
    EXPECT_ERR(sotto_group_store_decrypt(alice.store, g10.ptr, g10.len, &plain, &sender,
                                         &authenticated),
               SOTTO_ERROR_UNKNOWN_GROUP_CHAIN);
    printf("carol (removed) cannot read: without carol\n");

    /* Group error paths: NULLs, wrong handles, lengths. */
    SottoGroupSender *no_sender = NULL;
    EXPECT_ERR(sotto_group_sender_new(alice.device, group_id, 31, &no_sender),
               SOTTO_ERROR_INVALID_ARGUMENT);
    EXPECT_ERR(sotto_group_sender_new((SottoDevice *)alice.store, group_id, 32, &no_sender),
               SOTTO_ERROR_WRONG_HANDLE);
    EXPECT_ERR(sotto_group_store_new(NULL, 32, &no_store), SOTTO_ERROR_NULL_POINTER);
    EXPECT_ERR(sotto_group_store_decrypt((SottoGroupStore *)alice.sender, g1.ptr, g1.len, &plain,
                                         &sender, &authenticated),
               SOTTO_ERROR_WRONG_HANDLE);
    EXPECT_ERR(sotto_group_store_receive_distribution(bob.store, (SottoSession *)alice.store,
                                                      g1.ptr, g1.len, &outcome),
               SOTTO_ERROR_WRONG_TYPE); /* the message is parsed first */
    OK(sotto_session_encrypt(ab, new_a.ptr, new_a.len, &wire));
    EXPECT_ERR(sotto_group_store_receive_distribution(bob.store, (SottoSession *)alice.store,
                                                      wire.ptr, wire.len, &outcome),
               SOTTO_ERROR_WRONG_HANDLE);
    EXPECT_ERR(sotto_group_store_receive_distribution(bob.store, ba, wire.ptr, wire.len, NULL),
               SOTTO_ERROR_NULL_POINTER);
    CHECK(hand_out(&new_a, ab, ba, &bob) == SOTTO_INSERT_OUTCOME_UNCHANGED);
    OK(sotto_session_decrypt(ba, wire.ptr, wire.len, &plain));
    release(&plain);
    release(&wire);
    EXPECT_ERR(sotto_group_store_install(bob.store, (SottoPlaintext *)ba, &outcome),
               SOTTO_ERROR_WRONG_HANDLE);
    EXPECT_ERR(sotto_group_store_free((SottoGroupStore *)alice.sender), SOTTO_ERROR_WRONG_HANDLE);
    EXPECT_ERR(sotto_group_sender_encrypt(alice.sender, TEXT("x"), &g1),
               SOTTO_ERROR_INVALID_ARGUMENT); /* g1 is still full */
    uint8_t *big = calloc(SOTTO_MAX_GROUP_MESSAGE_LEN + 1, 1);
    EXPECT_ERR(sotto_group_store_decrypt(bob.store, big, SOTTO_MAX_GROUP_MESSAGE_LEN + 1, &plain,
                                         &sender, &authenticated),
               SOTTO_ERROR_TOO_LARGE);
    free(big);
    EXPECT_ERR(sotto_group_message_chain_id(g1.ptr, g1.len, &chain), SOTTO_ERROR_INVALID_ARGUMENT);
    release(&chain); /* it was full */
    EXPECT_ERR(sotto_group_message_chain_id(g1.ptr, 40, &chain), SOTTO_ERROR_TRUNCATED);
    OK(sotto_group_sender_free(NULL));
    OK(sotto_group_store_free(NULL));

    SottoBuffer *owned[] = {&dist_a, &dist_b, &dist_c, &forwarded, &g1, &g2, &g3, &g4, &g5, &g6,
                            &g7, &g8, &g9, &g10, &other_dist, &rotated_a, &new_a, &new_b};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) release(owned[i]);
    OK(sotto_group_sender_free(other));
    SottoSession *sessions[] = {ab, ba, ac, ca, bc, cb};
    for (size_t i = 0; i < 6; i++) OK(sotto_session_free(sessions[i]));
    for (int i = 0; i < 3; i++) {
        release(&all[i]->id);
        OK(sotto_group_sender_free(all[i]->sender));
        OK(sotto_group_store_free(all[i]->store));
        OK(sotto_device_free(all[i]->device));
    }
}

/* ----------------------------------------------------------------------- */

/* Two threads encrypting with one session: each call runs or is refused as
 * busy, never both at once. */
struct race {
    SottoSession *session;
    int ok, busy, other;
};

static void *encrypt_many(void *arg) {
    struct race *r = arg;
    for (int i = 0; i < 200; i++) {
        SottoBuffer out = {0};
        SottoError rc = sotto_session_encrypt(r->session, TEXT("race"), &out);
        if (rc == SOTTO_ERROR_OK) {
            r->ok++;
            sotto_buffer_free(&out);
        } else if (rc == SOTTO_ERROR_HANDLE_BUSY) {
            r->busy++;
        } else {
            r->other++;
        }
    }
    return NULL;
}

/* Uses a session until it is gone; records how that ended. */
struct until_freed {
    SottoSession *session;
    atomic_int calls;
    SottoError last;
};

static void *use_until_freed(void *arg) {
    struct until_freed *u = arg;
    for (;;) {
        SottoBuffer out = {0};
        SottoError rc = sotto_session_encrypt(u->session, TEXT("still there?"), &out);
        atomic_fetch_add(&u->calls, 1);
        if (rc == SOTTO_ERROR_OK) {
            sotto_buffer_free(&out);
        } else if (rc != SOTTO_ERROR_HANDLE_BUSY) {
            u->last = rc;
            return NULL;
        }
    }
}

static void memory_safety(void) {
    SottoDevice *alice = NULL, *bob = NULL;
    OK(sotto_device_generate(NOW, &alice));
    OK(sotto_device_generate(NOW, &bob));
    SottoSession *ab = NULL, *ba = NULL;
    connect(alice, bob, &ab, &ba);

    /* A copied buffer cannot be freed twice, not even after the allocator
     * reused its block for the next output. */
    SottoBuffer first = {0}, next = {0};
    OK(sotto_session_encrypt(ab, TEXT("first"), &first));
    SottoBuffer copy = first;
    OK(sotto_buffer_free(&first));
    CHECK(first.ptr == NULL && first.len == 0 && first.id == 0);
    OK(sotto_session_encrypt(ab, TEXT("first"), &next));
    EXPECT_ERR(sotto_buffer_free(&copy), SOTTO_ERROR_INVALID_BUFFER);
    SottoBuffer plain = {0};
    OK(sotto_session_decrypt(ba, next.ptr, next.len, &plain)); /* `next` is intact */
    CHECK(buffer_is(&plain, "first"));
    release(&plain);
    SottoBuffer altered = next;
    altered.len -= 1;
    EXPECT_ERR(sotto_buffer_free(&altered), SOTTO_ERROR_INVALID_BUFFER);
    altered = next;
    altered.id += 1000;
    EXPECT_ERR(sotto_buffer_free(&altered), SOTTO_ERROR_INVALID_BUFFER);
    SottoBuffer stale = {NULL, 5, 0};
    EXPECT_ERR(sotto_buffer_free(&stale), SOTTO_ERROR_INVALID_BUFFER);
    release(&next);
    OK(sotto_buffer_free(&next)); /* reset to empty: a second free through the same struct is a no-op */
    printf("buffers: a copy freed twice is refused\n");

    /* A freed handle is refused, not reused. */
    SottoDevice *gone = NULL;
    OK(sotto_device_generate(NOW, &gone));
    OK(sotto_device_free(gone));
    SottoBuffer id = {0};
    EXPECT_ERR(sotto_device_identity_key(gone, &id), SOTTO_ERROR_WRONG_HANDLE);
    EXPECT_ERR(sotto_device_free(gone), SOTTO_ERROR_WRONG_HANDLE);

    /* Two threads on one session: every call ran or was refused as busy,
     * and the session moved once per call that ran. */
    uint64_t before = session_generation(ab);
    struct race r1 = {ab, 0, 0, 0}, r2 = {ab, 0, 0, 0};
    pthread_t t1, t2;
    CHECK(pthread_create(&t1, NULL, encrypt_many, &r1) == 0);
    CHECK(pthread_create(&t2, NULL, encrypt_many, &r2) == 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    CHECK(r1.other == 0 && r2.other == 0);
    CHECK(r1.ok + r1.busy == 200 && r2.ok + r2.busy == 200);
    CHECK(session_generation(ab) == before + (uint64_t)(r1.ok + r2.ok));
    fprintf(stderr, "race: %d ran, %d refused as busy\n", r1.ok + r2.ok, r1.busy + r2.busy);
    printf("threads: concurrent calls on one session ran or were refused\n");

    /* A free racing a call on another thread: refused while busy, and the
     * other thread's next call finds the handle gone. */
    struct until_freed u = {ab, 0, SOTTO_ERROR_OK};
    pthread_t t3;
    CHECK(pthread_create(&t3, NULL, use_until_freed, &u) == 0);
    while (atomic_load(&u.calls) < 20) sched_yield();
    int refused = 0;
    for (;;) {
        SottoError rc = sotto_session_free(ab);
        if (rc == SOTTO_ERROR_OK) break;
        CHECK(rc == SOTTO_ERROR_HANDLE_BUSY);
        if (rc != SOTTO_ERROR_HANDLE_BUSY) break;
        refused++;
        sched_yield();
    }
    pthread_join(t3, NULL);
    CHECK(u.last == SOTTO_ERROR_WRONG_HANDLE);
    fprintf(stderr, "free race: %d frees refused as busy\n", refused);
    printf("threads: a free racing a call is refused or ends the other thread's use\n");

    OK(sotto_session_free(ba));
    OK(sotto_device_free(alice));
    OK(sotto_device_free(bob));
}

int main(void) {
    pairwise();
    group();
    memory_safety();
    sessions();
    if (failures > 0) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("conversation ok\n");
    return 0;
}
