/* A C client of the sotto ABI: a two-party conversation, persistence, and
 * the error paths an app can hit. Prints a transcript; exits 0 only if every
 * check passed. Run by ffi/tests/clients.rs and, under valgrind, by
 * .ci/ffi.sh. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sotto.h"

static int failures = 0;

static void print_last_error(void) {
    SottoBuffer msg = {0};
    if (sotto_last_error_message(&msg) == SOTTO_ERROR_OK && msg.len > 0) {
        fprintf(stderr, "    last error: %.*s\n", (int)msg.len, (const char *)msg.ptr);
    }
    sotto_buffer_free(&msg);
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

static int last_error_is_set(void) {
    SottoBuffer msg = {0};
    if (sotto_last_error_message(&msg) != SOTTO_ERROR_OK) return 0;
    int set = msg.len > 0;
    sotto_buffer_free(&msg);
    return set;
}

static int buffer_is(const SottoBuffer *b, const char *text) {
    size_t n = strlen(text);
    return b->len == n && (n == 0 || memcmp(b->ptr, text, n) == 0);
}

/* Encrypts `text` with `from` and decrypts it with `to`, checking the result. */
static void exchange(SottoSession *from, SottoSession *to, const char *label,
                     const char *text) {
    SottoBuffer wire = {0}, plain = {0};
    OK(sotto_session_encrypt(from, (const uint8_t *)text, strlen(text), &wire));
    OK(sotto_session_decrypt(to, wire.ptr, wire.len, &plain));
    CHECK(buffer_is(&plain, text));
    printf("%s: %.*s\n", label, (int)plain.len, (const char *)plain.ptr);
    OK(sotto_buffer_free(&wire));
    OK(sotto_buffer_free(&plain));
}

/* Encrypts `text` for the group with `from`; `to` decrypts it. Returns the
 * wire message (caller frees) for further checks. */
static SottoBuffer group_exchange(SottoGroupSender *from, SottoGroupReceiver *to,
                                  const char *label, const char *text) {
    SottoBuffer wire = {0}, plain = {0};
    OK(sotto_group_sender_encrypt(from, (const uint8_t *)text, strlen(text), &wire));
    OK(sotto_group_receiver_decrypt(to, wire.ptr, wire.len, &plain));
    CHECK(buffer_is(&plain, text));
    printf("%s: %.*s\n", label, (int)plain.len, (const char *)plain.ptr);
    OK(sotto_buffer_free(&plain));
    return wire;
}

/* Sends a sender key distribution from one member to another inside their
 * pairwise session, and installs it on the receiving side. */
static SottoGroupReceiver *distribute(SottoGroupSender *sender, SottoSession *from,
                                      SottoSession *to) {
    SottoBuffer dist = {0}, wire = {0}, got = {0};
    SottoGroupReceiver *receiver = NULL;
    OK(sotto_group_sender_distribution(sender, &dist));
    OK(sotto_session_encrypt(from, dist.ptr, dist.len, &wire));
    OK(sotto_session_decrypt(to, wire.ptr, wire.len, &got));
    OK(sotto_group_receiver_accept(got.ptr, got.len, to, &receiver));
    OK(sotto_buffer_free(&dist));
    OK(sotto_buffer_free(&wire));
    OK(sotto_buffer_free(&got));
    return receiver;
}

int main(void) {
    SottoDevice *alice = NULL, *bob = NULL;
    OK(sotto_device_generate(&alice));
    OK(sotto_device_generate(&bob));

    /* Bob publishes two one-time prekeys and a bundle with the first. */
    SottoBuffer opks = {0}, bundle = {0}, bob_id = {0};
    OK(sotto_device_generate_one_time_prekeys(bob, 2, &opks));
    CHECK(opks.len == 2 * SOTTO_ONE_TIME_PREKEY_LEN);
    size_t count = 0;
    OK(sotto_device_one_time_prekey_count(bob, &count));
    CHECK(count == 2);
    OK(sotto_device_bundle(bob, opks.ptr, SOTTO_ONE_TIME_PREKEY_LEN, &bundle));
    OK(sotto_device_identity_key(bob, &bob_id));
    CHECK(bob_id.len == SOTTO_IDENTITY_KEY_LEN);

    /* Alice imports the bundle and shows Bob's fingerprint. */
    SottoBuffer bundle_id = {0}, fp = {0}, fp_text = {0}, fp2 = {0};
    OK(sotto_bundle_verify(bundle.ptr, bundle.len, &bundle_id));
    CHECK(bundle_id.len == bob_id.len && memcmp(bundle_id.ptr, bob_id.ptr, bob_id.len) == 0);
    OK(sotto_identity_key_fingerprint(bundle_id.ptr, bundle_id.len, &fp));
    CHECK(fp.len == SOTTO_FINGERPRINT_LEN);
    OK(sotto_identity_key_fingerprint_text(bob_id.ptr, bob_id.len, &fp_text));
    CHECK(fp_text.len == 71);
    printf("bob fingerprint: %.*s\n", (int)fp_text.len, (const char *)fp_text.ptr);

    /* A bundle whose signature was altered is refused. */
    uint8_t *bad = malloc(bundle.len);
    memcpy(bad, bundle.ptr, bundle.len);
    bad[2 + 64 + 4 + 32 + 10] ^= 0x01; /* inside the signed prekey signature */
    EXPECT_ERR(sotto_bundle_verify(bad, bundle.len, &fp2), SOTTO_ERROR_INVALID_SIGNATURE);
    SottoSession *rejected = NULL;
    EXPECT_ERR(sotto_session_initiate(alice, bad, bundle.len, NULL, 0, &rejected),
               SOTTO_ERROR_INVALID_SIGNATURE);
    CHECK(rejected == NULL);
    EXPECT_ERR(sotto_bundle_verify(bundle.ptr, bundle.len - 1, &fp2), SOTTO_ERROR_TRUNCATED);
    free(bad);

    /* Pinning the wrong identity is refused. */
    SottoBuffer alice_id = {0};
    OK(sotto_device_identity_key(alice, &alice_id));
    EXPECT_ERR(sotto_session_initiate(alice, bundle.ptr, bundle.len, alice_id.ptr, alice_id.len,
                                      &rejected),
               SOTTO_ERROR_IDENTITY_MISMATCH);

    /* Alice starts the session and writes first. */
    SottoSession *to_bob = NULL, *to_alice = NULL;
    OK(sotto_session_initiate(alice, bundle.ptr, bundle.len, bob_id.ptr, bob_id.len, &to_bob));
    bool awaiting = false;
    OK(sotto_session_is_awaiting_reply(to_bob, &awaiting));
    CHECK(awaiting);
    const char *hello = "hello Bob";
    SottoBuffer first = {0}, plain = {0};
    OK(sotto_session_encrypt(to_bob, (const uint8_t *)hello, strlen(hello), &first));
    SottoMessageType kind = 0;
    OK(sotto_message_type(first.ptr, first.len, &kind));
    CHECK(kind == SOTTO_MESSAGE_TYPE_PREKEY);

    /* Bob accepts it. */
    OK(sotto_session_accept(bob, first.ptr, first.len, &to_alice, &plain));
    CHECK(buffer_is(&plain, hello));
    printf("alice -> bob: %.*s\n", (int)plain.len, (const char *)plain.ptr);
    OK(sotto_buffer_free(&plain));
    OK(sotto_device_one_time_prekey_count(bob, &count));
    CHECK(count == 1);
    SottoBuffer base_a = {0}, base_b = {0}, remote = {0};
    OK(sotto_prekey_message_base_key(first.ptr, first.len, &base_a));
    OK(sotto_session_base_key(to_alice, &base_b));
    CHECK(base_a.len == SOTTO_BASE_KEY_LEN && base_b.len == SOTTO_BASE_KEY_LEN &&
          memcmp(base_a.ptr, base_b.ptr, SOTTO_BASE_KEY_LEN) == 0);
    OK(sotto_session_remote_identity_key(to_alice, &remote));
    CHECK(remote.len == alice_id.len && memcmp(remote.ptr, alice_id.ptr, remote.len) == 0);

    /* The same prekey message cannot start a second session. */
    SottoSession *dup = NULL;
    EXPECT_ERR(sotto_session_accept(bob, first.ptr, first.len, &dup, &plain),
               SOTTO_ERROR_DUPLICATE_PREKEY_MESSAGE);
    CHECK(dup == NULL && plain.ptr == NULL);

    exchange(to_alice, to_bob, "bob -> alice", "hi Alice");
    OK(sotto_session_is_awaiting_reply(to_bob, &awaiting));
    CHECK(!awaiting);
    exchange(to_bob, to_alice, "alice -> bob", "how are you?");

    /* Out of order delivery, then a duplicate and a tampered message. */
    SottoBuffer m[3] = {{0}, {0}, {0}};
    const char *texts[3] = {"one", "two", "three"};
    for (int i = 0; i < 3; i++) {
        OK(sotto_session_encrypt(to_alice, (const uint8_t *)texts[i], strlen(texts[i]), &m[i]));
        OK(sotto_message_type(m[i].ptr, m[i].len, &kind));
        CHECK(kind == SOTTO_MESSAGE_TYPE_RATCHET);
    }
    int order[3] = {2, 0, 1};
    for (int k = 0; k < 3; k++) {
        int i = order[k];
        OK(sotto_session_decrypt(to_bob, m[i].ptr, m[i].len, &plain));
        CHECK(buffer_is(&plain, texts[i]));
        printf("bob -> alice (out of order): %.*s\n", (int)plain.len, (const char *)plain.ptr);
        OK(sotto_buffer_free(&plain));
    }
    EXPECT_ERR(sotto_session_decrypt(to_bob, m[0].ptr, m[0].len, &plain),
               SOTTO_ERROR_DUPLICATE_MESSAGE);
    SottoBuffer next = {0};
    OK(sotto_session_encrypt(to_alice, (const uint8_t *)"four", 4, &next));
    next.ptr[next.len - 1] ^= 0x80;
    EXPECT_ERR(sotto_session_decrypt(to_bob, next.ptr, next.len, &plain),
               SOTTO_ERROR_AUTHENTICATION_FAILED);
    next.ptr[next.len - 1] ^= 0x80; /* the failure left the session as it was */
    OK(sotto_session_decrypt(to_bob, next.ptr, next.len, &plain));
    CHECK(buffer_is(&plain, "four"));
    OK(sotto_buffer_free(&plain));
    OK(sotto_buffer_free(&next));
    for (int i = 0; i < 3; i++) OK(sotto_buffer_free(&m[i]));

    /* An empty message, given as (NULL, 0), decrypts to {NULL, 0}. */
    OK(sotto_session_encrypt(to_bob, NULL, 0, &next));
    OK(sotto_session_decrypt(to_alice, next.ptr, next.len, &plain));
    CHECK(plain.ptr == NULL && plain.len == 0);
    OK(sotto_buffer_free(&next));

    /* Save and restore: plain and sealed, session and device. */
    uint8_t key[SOTTO_STORAGE_KEY_LEN], wrong_key[SOTTO_STORAGE_KEY_LEN];
    memset(key, 0x42, sizeof key);
    memset(wrong_key, 0x43, sizeof wrong_key);
    SottoBuffer saved = {0}, sealed = {0};
    OK(sotto_session_to_bytes(to_bob, &saved));
    OK(sotto_session_free(to_bob));
    to_bob = NULL;
    OK(sotto_session_from_bytes(saved.ptr, saved.len, &to_bob));
    OK(sotto_buffer_free(&saved));
    OK(sotto_session_seal(to_alice, key, sizeof key, &sealed));
    OK(sotto_session_free(to_alice));
    to_alice = NULL;
    EXPECT_ERR(sotto_session_unseal(sealed.ptr, sealed.len, wrong_key, sizeof wrong_key, &to_alice),
               SOTTO_ERROR_AUTHENTICATION_FAILED);
    EXPECT_ERR(sotto_session_unseal(sealed.ptr, sealed.len, key, 31, &to_alice),
               SOTTO_ERROR_INVALID_ARGUMENT);
    EXPECT_ERR(sotto_device_unseal(sealed.ptr, sealed.len, key, sizeof key, NULL),
               SOTTO_ERROR_NULL_POINTER);
    OK(sotto_session_unseal(sealed.ptr, sealed.len, key, sizeof key, &to_alice));
    OK(sotto_buffer_free(&sealed));
    exchange(to_bob, to_alice, "alice -> bob (restored)", "still here");
    exchange(to_alice, to_bob, "bob -> alice (restored)", "me too");

    OK(sotto_device_seal(bob, key, sizeof key, &sealed));
    OK(sotto_device_to_bytes(bob, &saved));
    OK(sotto_device_free(bob));
    bob = NULL;
    SottoDevice *wrong_kind = NULL;
    EXPECT_ERR(sotto_session_from_bytes(saved.ptr, saved.len, (SottoSession **)&wrong_kind),
               SOTTO_ERROR_WRONG_TYPE);
    OK(sotto_device_from_bytes(saved.ptr, saved.len, &bob));
    OK(sotto_device_free(bob));
    bob = NULL;
    OK(sotto_device_unseal(sealed.ptr, sealed.len, key, sizeof key, &bob));
    OK(sotto_buffer_free(&saved));
    OK(sotto_buffer_free(&sealed));

    /* Signed prekey rotation: a new bundle still reaches the restored Bob. */
    SottoBuffer spk_old = {0}, spk_new = {0}, bundle2 = {0}, third = {0};
    OK(sotto_device_signed_prekey(bob, &spk_old));
    OK(sotto_device_rotate_signed_prekey(bob, &spk_new));
    CHECK(spk_new.len == SOTTO_SIGNED_PREKEY_LEN && memcmp(spk_old.ptr, spk_new.ptr, spk_new.len) != 0);
    uint32_t new_id = ((uint32_t)spk_new.ptr[2] << 24) | ((uint32_t)spk_new.ptr[3] << 16) |
                      ((uint32_t)spk_new.ptr[4] << 8) | spk_new.ptr[5];
    EXPECT_ERR(sotto_device_remove_signed_prekey(bob, new_id), SOTTO_ERROR_UNKNOWN_SIGNED_PREKEY);
    OK(sotto_bundle_new(bob_id.ptr, bob_id.len, spk_new.ptr, spk_new.len,
                        opks.ptr + SOTTO_ONE_TIME_PREKEY_LEN, SOTTO_ONE_TIME_PREKEY_LEN, &bundle2));
    SottoSession *second = NULL, *second_bob = NULL;
    OK(sotto_session_initiate(alice, bundle2.ptr, bundle2.len, NULL, 0, &second));
    OK(sotto_session_encrypt(second, (const uint8_t *)"again", 5, &third));
    OK(sotto_session_accept(bob, third.ptr, third.len, &second_bob, &plain));
    CHECK(buffer_is(&plain, "again"));
    printf("alice -> bob (rotated prekey): %.*s\n", (int)plain.len, (const char *)plain.ptr);
    OK(sotto_buffer_free(&plain));
    OK(sotto_device_one_time_prekey_count(bob, &count));
    CHECK(count == 0);
    OK(sotto_device_remove_signed_prekey(bob, new_id - 1));
    EXPECT_ERR(sotto_device_remove_signed_prekey(bob, new_id - 1), SOTTO_ERROR_UNKNOWN_SIGNED_PREKEY);

    /* A ratchet message is not a prekey message. */
    SottoBuffer ratchet = {0};
    OK(sotto_session_encrypt(to_alice, (const uint8_t *)"x", 1, &ratchet));
    SottoSession *nope = NULL;
    EXPECT_ERR(sotto_session_accept(bob, ratchet.ptr, ratchet.len, &nope, &plain),
               SOTTO_ERROR_WRONG_TYPE);
    EXPECT_ERR(sotto_prekey_message_base_key(ratchet.ptr, ratchet.len, &base_a),
               SOTTO_ERROR_INVALID_ARGUMENT); /* base_a is not empty */
    OK(sotto_buffer_free(&base_a));
    EXPECT_ERR(sotto_prekey_message_base_key(ratchet.ptr, ratchet.len, &base_a),
               SOTTO_ERROR_WRONG_TYPE);
    OK(sotto_session_decrypt(to_bob, ratchet.ptr, ratchet.len, &plain));
    OK(sotto_buffer_free(&plain));
    OK(sotto_buffer_free(&ratchet));

    /* NULL pointers. */
    EXPECT_ERR(sotto_device_generate(NULL), SOTTO_ERROR_NULL_POINTER);
    EXPECT_ERR(sotto_session_encrypt(NULL, (const uint8_t *)"x", 1, &ratchet), SOTTO_ERROR_NULL_POINTER);
    EXPECT_ERR(sotto_session_encrypt(to_bob, NULL, 5, &ratchet), SOTTO_ERROR_NULL_POINTER);
    EXPECT_ERR(sotto_session_encrypt(to_bob, (const uint8_t *)"x", 1, NULL), SOTTO_ERROR_NULL_POINTER);
    EXPECT_ERR(sotto_session_decrypt(to_bob, NULL, 10, &plain), SOTTO_ERROR_NULL_POINTER);
    EXPECT_ERR(sotto_device_one_time_prekey_count(bob, NULL), SOTTO_ERROR_NULL_POINTER);
    CHECK(sotto_last_error_message(NULL) == SOTTO_ERROR_NULL_POINTER); /* does not touch the message */
    OK(sotto_session_free(NULL));
    OK(sotto_device_free(NULL));
    OK(sotto_buffer_free(NULL));

    /* Bad lengths. */
    EXPECT_ERR(sotto_session_encrypt(to_bob, (const uint8_t *)"x", SIZE_MAX, &ratchet),
               SOTTO_ERROR_INVALID_ARGUMENT);
    uint8_t *big = calloc(SOTTO_MAX_PLAINTEXT_LEN + 1, 1);
    EXPECT_ERR(sotto_session_encrypt(to_bob, big, SOTTO_MAX_PLAINTEXT_LEN + 1, &ratchet),
               SOTTO_ERROR_PLAINTEXT_TOO_LARGE);
    free(big);
    EXPECT_ERR(sotto_device_seal(bob, key, 33, &sealed), SOTTO_ERROR_INVALID_ARGUMENT);
    EXPECT_ERR(sotto_device_generate_one_time_prekeys(bob, SOTTO_MAX_ONE_TIME_PREKEYS + 1, &opks),
               SOTTO_ERROR_INVALID_ARGUMENT); /* opks is still full */
    SottoBuffer more = {0};
    EXPECT_ERR(sotto_device_generate_one_time_prekeys(bob, SOTTO_MAX_ONE_TIME_PREKEYS + 1, &more),
               SOTTO_ERROR_TOO_MANY_PREKEYS);
    EXPECT_ERR(sotto_device_from_bytes((const uint8_t *)"\x01\x21", 2, &wrong_kind),
               SOTTO_ERROR_TRUNCATED);
    uint8_t future[128] = {0x02, 0x01}; /* a version this library does not read */
    EXPECT_ERR(sotto_session_decrypt(to_bob, future, sizeof future, &plain),
               SOTTO_ERROR_UNSUPPORTED_VERSION);
    EXPECT_ERR(sotto_session_accept(bob, first.ptr, 40, &nope, &plain), SOTTO_ERROR_TRUNCATED);

    /* Wrong handle types, as a binding with untyped pointers could pass. */
    SottoBuffer id = {0};
    EXPECT_ERR(sotto_device_identity_key((const SottoDevice *)to_bob, &id), SOTTO_ERROR_WRONG_HANDLE);
    EXPECT_ERR(sotto_session_encrypt((SottoSession *)alice, (const uint8_t *)"x", 1, &ratchet),
               SOTTO_ERROR_WRONG_HANDLE);
    EXPECT_ERR(sotto_session_free((SottoSession *)alice), SOTTO_ERROR_WRONG_HANDLE);
    EXPECT_ERR(sotto_device_free((SottoDevice *)to_alice), SOTTO_ERROR_WRONG_HANDLE);
    uint64_t not_a_handle[4] = {0x1234, 0, 0, 0};
    EXPECT_ERR(sotto_session_decrypt((SottoSession *)not_a_handle, first.ptr, first.len, &plain),
               SOTTO_ERROR_WRONG_HANDLE);
    EXPECT_ERR(sotto_session_decrypt((SottoSession *)((uint8_t *)not_a_handle + 1), first.ptr,
                                     first.len, &plain),
               SOTTO_ERROR_WRONG_HANDLE);
    EXPECT_ERR(sotto_session_accept((SottoDevice *)to_bob, first.ptr, first.len, &nope, &plain),
               SOTTO_ERROR_WRONG_HANDLE);
    EXPECT_ERR(sotto_session_initiate(NULL, bundle.ptr, bundle.len, NULL, 0, &nope),
               SOTTO_ERROR_NULL_POINTER);
    CHECK(nope == NULL);
    OK(sotto_device_identity_key(alice, &id)); /* both still usable */
    exchange(to_bob, to_alice, "alice -> bob (after misuse)", "all good");

    /* Group chat: Alice and Bob each own a sender chain and hand its
     * distribution to the other inside their pairwise session. */
    uint8_t group_id[SOTTO_GROUP_ID_LEN];
    memset(group_id, 0x77, sizeof group_id);
    SottoGroupSender *alice_tx = NULL, *bob_tx = NULL, *no_sender = NULL;
    OK(sotto_group_sender_new(group_id, sizeof group_id, &alice_tx));
    OK(sotto_group_sender_new(group_id, sizeof group_id, &bob_tx));
    EXPECT_ERR(sotto_group_sender_new(group_id, 31, &no_sender), SOTTO_ERROR_INVALID_ARGUMENT);
    SottoGroupReceiver *bob_rx = distribute(alice_tx, to_bob, to_alice);   /* at Bob */
    SottoGroupReceiver *alice_rx = distribute(bob_tx, to_alice, to_bob);   /* at Alice */
    SottoBuffer member = {0};
    OK(sotto_group_receiver_sender_identity_key(bob_rx, &member));
    CHECK(member.len == alice_id.len && memcmp(member.ptr, alice_id.ptr, member.len) == 0);
    OK(sotto_buffer_free(&member));

    SottoBuffer g1 = group_exchange(alice_tx, bob_rx, "alice -> group", "hello group");
    SottoBuffer g2 = group_exchange(bob_tx, alice_rx, "bob -> group", "hi everyone");
    uint32_t msg_chain = 0, rx_chain = 1;
    OK(sotto_group_message_chain_id(g1.ptr, g1.len, &msg_chain));
    OK(sotto_group_receiver_chain_id(bob_rx, &rx_chain));
    CHECK(msg_chain == rx_chain);
    EXPECT_ERR(sotto_group_receiver_decrypt(bob_rx, g1.ptr, g1.len, &plain),
               SOTTO_ERROR_DUPLICATE_MESSAGE);
    EXPECT_ERR(sotto_group_receiver_decrypt(bob_rx, g2.ptr, g2.len, &plain),
               SOTTO_ERROR_UNKNOWN_GROUP_CHAIN);
    SottoBuffer g3 = {0};
    OK(sotto_group_sender_encrypt(alice_tx, (const uint8_t *)"tamper", 6, &g3));
    g3.ptr[g3.len - 70] ^= 0x01; /* in the AEAD tag: the signature no longer verifies */
    EXPECT_ERR(sotto_group_receiver_decrypt(bob_rx, g3.ptr, g3.len, &plain),
               SOTTO_ERROR_INVALID_SIGNATURE);
    g3.ptr[g3.len - 70] ^= 0x01;
    OK(sotto_group_receiver_decrypt(bob_rx, g3.ptr, g3.len, &plain));
    CHECK(buffer_is(&plain, "tamper"));
    OK(sotto_buffer_free(&plain));

    /* Wrong handle types across the group and pairwise APIs. */
    EXPECT_ERR(sotto_group_receiver_decrypt((SottoGroupReceiver *)alice_tx, g1.ptr, g1.len, &plain),
               SOTTO_ERROR_WRONG_HANDLE);
    EXPECT_ERR(sotto_group_sender_encrypt((SottoGroupSender *)to_bob, (const uint8_t *)"x", 1, &g3),
               SOTTO_ERROR_INVALID_ARGUMENT); /* g3 is still full */
    OK(sotto_buffer_free(&g3));
    EXPECT_ERR(sotto_group_sender_encrypt((SottoGroupSender *)to_bob, (const uint8_t *)"x", 1, &g3),
               SOTTO_ERROR_WRONG_HANDLE);
    SottoGroupReceiver *no_receiver = NULL;
    EXPECT_ERR(sotto_group_receiver_accept(g1.ptr, g1.len, (SottoSession *)bob_rx, &no_receiver),
               SOTTO_ERROR_WRONG_HANDLE);
    EXPECT_ERR(sotto_group_receiver_accept(g1.ptr, g1.len, to_alice, &no_receiver),
               SOTTO_ERROR_WRONG_TYPE);
    EXPECT_ERR(sotto_session_free((SottoSession *)alice_rx), SOTTO_ERROR_WRONG_HANDLE);

    /* Save and restore both kinds of group state. */
    OK(sotto_group_receiver_seal(bob_rx, key, sizeof key, &sealed));
    OK(sotto_group_receiver_free(bob_rx));
    bob_rx = NULL;
    OK(sotto_group_receiver_unseal(sealed.ptr, sealed.len, key, sizeof key, &bob_rx));
    OK(sotto_buffer_free(&sealed));
    OK(sotto_group_sender_to_bytes(alice_tx, &saved));
    OK(sotto_group_sender_free(alice_tx));
    alice_tx = NULL;
    EXPECT_ERR(sotto_group_receiver_from_bytes(saved.ptr, saved.len, &no_receiver),
               SOTTO_ERROR_WRONG_TYPE);
    OK(sotto_group_sender_from_bytes(saved.ptr, saved.len, &alice_tx));
    OK(sotto_buffer_free(&saved));
    OK(sotto_group_receiver_to_bytes(alice_rx, &saved));
    OK(sotto_group_receiver_free(alice_rx));
    alice_rx = NULL;
    OK(sotto_group_receiver_from_bytes(saved.ptr, saved.len, &alice_rx));
    OK(sotto_buffer_free(&saved));
    OK(sotto_group_sender_seal(bob_tx, key, sizeof key, &sealed));
    OK(sotto_group_sender_free(bob_tx));
    bob_tx = NULL;
    OK(sotto_group_sender_unseal(sealed.ptr, sealed.len, key, sizeof key, &bob_tx));
    OK(sotto_buffer_free(&sealed));
    SottoBuffer g4 = group_exchange(alice_tx, bob_rx, "alice -> group (restored)", "saved and back");
    SottoBuffer g5 = group_exchange(bob_tx, alice_rx, "bob -> group (restored)", "me too");

    /* Rotation: the old receiver cannot read the new chain; the new
     * distribution, imported without a session, can (as unauthenticated). */
    SottoBuffer rotated = {0};
    OK(sotto_group_sender_rotate(alice_tx, &rotated));
    SottoBuffer g6 = {0};
    OK(sotto_group_sender_encrypt(alice_tx, (const uint8_t *)"rotated", 7, &g6));
    EXPECT_ERR(sotto_group_receiver_decrypt(bob_rx, g6.ptr, g6.len, &plain),
               SOTTO_ERROR_UNKNOWN_GROUP_CHAIN);
    SottoGroupReceiver *imported = NULL;
    OK(sotto_group_receiver_import_unauthenticated(rotated.ptr, rotated.len, &imported));
    OK(sotto_group_receiver_sender_identity_key(imported, &member));
    CHECK(member.ptr == NULL && member.len == 0);
    OK(sotto_group_receiver_decrypt(imported, g6.ptr, g6.len, &plain));
    CHECK(buffer_is(&plain, "rotated"));
    printf("alice -> group (rotated): %.*s\n", (int)plain.len, (const char *)plain.ptr);
    OK(sotto_buffer_free(&plain));

    SottoBuffer *group_owned[] = {&g1, &g2, &g4, &g5, &g6, &rotated};
    for (size_t i = 0; i < sizeof group_owned / sizeof group_owned[0]; i++)
        OK(sotto_buffer_free(group_owned[i]));
    OK(sotto_group_receiver_free(imported));
    OK(sotto_group_receiver_free(bob_rx));
    OK(sotto_group_receiver_free(alice_rx));
    OK(sotto_group_sender_free(alice_tx));
    OK(sotto_group_sender_free(bob_tx));
    OK(sotto_group_sender_free(NULL));

    /* Buffer and handle-slot misuse. */
    SottoBuffer stale = {NULL, 5};
    EXPECT_ERR(sotto_buffer_free(&stale), SOTTO_ERROR_INVALID_ARGUMENT);
    OK(sotto_buffer_free(&id));
    OK(sotto_buffer_free(&id)); /* reset to {NULL, 0}: a second free is harmless */
    CHECK(id.ptr == NULL && id.len == 0);
    SottoSession *occupied = to_bob;
    EXPECT_ERR(sotto_session_from_bytes(first.ptr, first.len, &occupied), SOTTO_ERROR_INVALID_ARGUMENT);
    CHECK(occupied == to_bob);

    /* The last error message is per call: a success clears it. */
    EXPECT_ERR(sotto_bundle_verify(NULL, 3, &fp2), SOTTO_ERROR_NULL_POINTER);
    OK(sotto_device_identity_key(alice, &id));
    CHECK(!last_error_is_set());

    SottoBuffer *owned[] = {&opks, &bundle, &bob_id, &bundle_id, &fp, &fp_text, &alice_id,
                            &first, &base_a, &base_b, &remote, &spk_old, &spk_new, &bundle2,
                            &third, &id};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) OK(sotto_buffer_free(owned[i]));
    OK(sotto_session_free(to_bob));
    OK(sotto_session_free(to_alice));
    OK(sotto_session_free(second));
    OK(sotto_session_free(second_bob));
    OK(sotto_device_free(alice));
    OK(sotto_device_free(bob));

    if (failures > 0) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("conversation ok\n");
    return 0;
}
