/* The session layer through the C ABI (SPEC §16): two users with two
 * devices each, every device holding a record of the other user and an own
 * record of its user's other device. Device lists, safety numbers, fan-out
 * to every device (own devices included), replies, a group with fan-out and
 * a removal, a lost message answered by a retry request, a device restored
 * from a stale backup recovering with a new session, an identity change,
 * sealed save/restore, expiry, and the error paths of every new function.
 * Part of the C client (conversation.c calls sessions()). */

#include <stdbool.h>

#include "check.h"

enum { ALICE = 0, BOB = 1, DEVICES = 4 };

static const char *const USERS[2] = {"alice", "bob"};

/* One device of a user, with what it keeps. */
struct dev {
    char name[16];
    int user;
    uint32_t id;
    SottoDevice *device;
    SottoBuffer identity;
    SottoPeerRecord *peer; /* the other user */
    SottoPeerRecord *own;  /* this user's other device */
    SottoGroupSession *group;
};

static struct dev world[DEVICES];
static const uint8_t GROUP_ID[SOTTO_GROUP_ID_LEN] = "sotto C client: group of 2 users";
static const uint8_t STORAGE_KEY[SOTTO_STORAGE_KEY_LEN] = "storage key of the C client!!!!";

static struct dev *find(int user, uint32_t id) {
    for (int i = 0; i < DEVICES; i++) {
        if (world[i].user == user && world[i].id == id) return &world[i];
    }
    fprintf(stderr, "no device %s/%u\n", USERS[user], id);
    exit(1);
}

/* The record `at` keeps of `user`. */
static SottoPeerRecord *record_of(struct dev *at, int user) {
    return at->user == user ? at->own : at->peer;
}

/* The device list the server returns for `user`. */
static size_t list_of(int user, SottoDeviceListEntry *list) {
    size_t n = 0;
    for (int i = 0; i < DEVICES; i++) {
        if (world[i].user != user) continue;
        list[n].device = world[i].id;
        memcpy(list[n].identity_key, world[i].identity.ptr, SOTTO_IDENTITY_KEY_LEN);
        n++;
    }
    return n;
}

/* The bundle the server hands out for `d` (its last-resort KEM prekey). */
static SottoBuffer bundle_of(struct dev *d) {
    SottoBuffer bundle = {0};
    OK(sotto_device_bundle(d->device, NULL, 0, NULL, 0, &bundle));
    return bundle;
}

static uint64_t record_generation(const SottoPeerRecord *r) {
    uint64_t g = 0;
    OK(sotto_peer_record_generation(r, &g));
    return g;
}

/* Fetches a bundle for every device of `user` that `from`'s record needs. */
static void prepare(struct dev *from, int user) {
    SottoPeerRecord *record = record_of(from, user);
    SottoSendPlan plan;
    OK(sotto_peer_record_plan_send(record, NOW, &plan));
    for (size_t i = 0; i < plan.needs_bundle_count; i++) {
        SottoBuffer bundle = bundle_of(find(user, plan.needs_bundle[i]));
        OK(sotto_peer_record_add_bundle(record, from->device, plan.needs_bundle[i], bundle.ptr,
                                        bundle.len, NOW));
        release(&bundle);
    }
}

/* Decrypts `wire` from `from` at `to`, which must succeed. */
static SottoReceived *receive(struct dev *to, struct dev *from, const uint8_t *wire, size_t len) {
    SottoReceived *received = NULL;
    SottoFailure failure;
    OK(sotto_peer_record_decrypt(record_of(to, from->user), to->device, from->id, wire, len, NOW,
                                 &received, &failure));
    CHECK(failure.action == SOTTO_ACTION_NONE);
    uint32_t device = 0;
    OK(sotto_received_device(received, &device));
    CHECK(device == from->id);
    return received;
}

/* Acts on what `to` received from `from`: shows a payload (which must be
 * `text`), installs a distribution into `to`'s group. */
static void handle(struct dev *to, struct dev *from, SottoReceived *received, const char *text) {
    SottoContentKind kind = 0;
    OK(sotto_received_kind(received, &kind));
    if (kind == SOTTO_CONTENT_KIND_PAYLOAD) {
        SottoBuffer payload = {0}, sender = {0};
        OK(sotto_received_payload(received, &payload));
        OK(sotto_received_sender_identity_key(received, &sender));
        CHECK(buffer_is(&payload, text) && same(&sender, &from->identity));
        printf("%s -> %s: %.*s\n", from->name, to->name, (int)payload.len,
               (const char *)payload.ptr);
        release(&payload);
        release(&sender);
    } else {
        CHECK(kind == SOTTO_CONTENT_KIND_DISTRIBUTION);
        SottoBuffer gid = {0};
        OK(sotto_received_group_id(received, &gid));
        CHECK(gid.len == SOTTO_GROUP_ID_LEN && memcmp(gid.ptr, GROUP_ID, gid.len) == 0);
        release(&gid);
        SottoInsertOutcome outcome = 0;
        OK(sotto_group_session_install(to->group, record_of(to, from->user), received, &outcome));
        CHECK(outcome == SOTTO_INSERT_OUTCOME_ADDED);
    }
    OK(sotto_received_free(received));
}

/* Delivers every message of `outbox` (record i of `from` is of user
 * users[i]) and frees it; returns how many were delivered. */
static size_t deliver(struct dev *from, SottoOutbox *outbox, const int *users, const char *text) {
    size_t count = 0, unusable = 0;
    OK(sotto_outbox_message_count(outbox, &count));
    OK(sotto_outbox_unusable_count(outbox, &unusable));
    CHECK(unusable == 0);
    for (size_t i = 0; i < count; i++) {
        size_t record = 99;
        uint32_t device = 0;
        SottoBuffer wire = {0};
        OK(sotto_outbox_message(outbox, i, &record, &device, &wire));
        struct dev *to = find(users[record], device);
        handle(to, from, receive(to, from, wire.ptr, wire.len), text);
        release(&wire);
    }
    OK(sotto_outbox_free(outbox));
    return count;
}

/* `from` writes `text` to every device of both users but itself. */
static void send_to_all(struct dev *from, const char *text) {
    int other = 1 - from->user;
    prepare(from, other);
    prepare(from, from->user);
    SottoOutbox *to_peer = NULL, *to_own = NULL;
    OK(sotto_peer_record_encrypt(from->peer, TEXT(text), &to_peer));
    OK(sotto_peer_record_encrypt(from->own, TEXT(text), &to_own));
    CHECK(deliver(from, to_peer, &other, text) == 2);
    CHECK(deliver(from, to_own, &from->user, text) == 1);
}

/* The safety number `d` computes for the two users. */
static SottoBuffer safety_number(struct dev *d) {
    SottoBuffer number = {0};
    OK(sotto_peer_record_safety_number(d->peer, d->own, &number));
    CHECK(number.len == SOTTO_SAFETY_NUMBER_TEXT_LEN);
    return number;
}

static void setup(void) {
    for (int i = 0; i < DEVICES; i++) {
        struct dev *d = &world[i];
        d->user = i / 2;
        d->id = (uint32_t)(i % 2 + 1);
        snprintf(d->name, sizeof d->name, "%s/%u", USERS[d->user], d->id);
        OK(sotto_device_generate(NOW, &d->device));
        OK(sotto_device_identity_key(d->device, &d->identity));
        OK(sotto_peer_record_new(TEXT(USERS[1 - d->user]), d->device, &d->peer));
        OK(sotto_peer_record_new_own(TEXT(USERS[d->user]), d->id, d->device, &d->own));
    }
    SottoDeviceListEntry list[SOTTO_MAX_DEVICES_PER_USER];
    for (int i = 0; i < DEVICES; i++) {
        struct dev *d = &world[i];
        SottoDeviceListChanges changes;
        size_t n = list_of(1 - d->user, list);
        OK(sotto_peer_record_update_devices(d->peer, list, n, NOW, &changes));
        CHECK(changes.added_count == 2 && changes.added[0] == 1 && changes.added[1] == 2);
        CHECK(changes.local == SOTTO_LOCAL_LISTING_NOT_OWN_RECORD);
        n = list_of(d->user, list);
        OK(sotto_peer_record_update_devices(d->own, list, n, NOW, &changes));
        CHECK(changes.added_count == 1 && changes.added[0] == 3 - d->id);
        CHECK(changes.local == SOTTO_LOCAL_LISTING_LISTED);
        /* The same list again changes nothing. */
        uint64_t before = record_generation(d->own);
        OK(sotto_peer_record_update_devices(d->own, list, n, NOW, &changes));
        CHECK(changes.added_count == 0 && changes.removed_count == 0 &&
              changes.identity_change_count == 0);
        CHECK(record_generation(d->own) == before);
        SottoBuffer user = {0};
        OK(sotto_peer_record_user(d->peer, &user));
        CHECK(buffer_is(&user, USERS[1 - d->user]));
        release(&user);
    }
    printf("sessions: device lists applied (alice 1, 2; bob 1, 2)\n");

    SottoBuffer first = safety_number(&world[0]);
    for (int i = 1; i < DEVICES; i++) {
        SottoBuffer other = safety_number(&world[i]);
        CHECK(same(&first, &other));
        release(&other);
    }
    SottoBuffer fingerprint = {0};
    OK(sotto_peer_record_fingerprint(world[0].peer, &fingerprint));
    CHECK(fingerprint.len == SOTTO_USER_FINGERPRINT_TEXT_LEN);
    printf("sessions: safety number %.*s\n", (int)first.len, (const char *)first.ptr);
    printf("sessions: all four devices compute the same safety number\n");
    release(&first);
    release(&fingerprint);
}

static void conversation(void) {
    struct dev *a1 = find(ALICE, 1), *b1 = find(BOB, 1);
    /* Fan-out: one message per device, alice's other device included. */
    send_to_all(a1, "hello from alice/1");
    /* The reply reaches alice/1 on the session alice/1 started, alice/2 and
     * bob/2 on new ones. */
    send_to_all(b1, "hi from bob/1");
    send_to_all(find(ALICE, 2), "alice/2 here");
    send_to_all(find(BOB, 2), "bob/2 here");
    send_to_all(a1, "everyone has a session with everyone");

    SottoDeviceInfo infos[SOTTO_MAX_DEVICES_PER_USER];
    size_t count = 0;
    OK(sotto_peer_record_devices(a1->peer, infos, SOTTO_MAX_DEVICES_PER_USER, &count));
    CHECK(count == 2);
    for (size_t i = 0; i < count; i++) {
        CHECK(infos[i].device == i + 1 && infos[i].has_active_session && !infos[i].awaiting_reply);
        CHECK(infos[i].post_quantum_pinned && !infos[i].is_stale && !infos[i].has_pending_identity);
        CHECK(memcmp(infos[i].identity_key, find(BOB, infos[i].device)->identity.ptr,
                     SOTTO_IDENTITY_KEY_LEN) == 0);
    }
    SottoSendPlan plan;
    OK(sotto_peer_record_plan_send(a1->peer, NOW, &plan));
    CHECK(plan.ready_count == 2 && plan.needs_bundle_count == 0 && plan.blocked_count == 0);
}

/* A message altered in transit: bob/1 asks for it again, alice/1 finds it
 * by the hint and resends. */
static void retry_request(void) {
    struct dev *a1 = find(ALICE, 1), *b1 = find(BOB, 1);
    const char *text = "lost in transit";
    SottoBuffer sent = {0};
    OK(sotto_peer_record_encrypt_to(a1->peer, b1->id, TEXT(text), &sent));
    uint8_t *copy = malloc(sent.len); /* what bob/1 receives: altered */
    CHECK(copy != NULL);
    memcpy(copy, sent.ptr, sent.len);
    copy[sent.len - 1] ^= 0x01;

    SottoReceived *received = NULL;
    SottoFailure failure;
    uint64_t before = record_generation(b1->peer);
    EXPECT_ERR(sotto_peer_record_decrypt(b1->peer, b1->device, a1->id, copy, sent.len, NOW,
                                         &received, &failure),
               SOTTO_ERROR_AUTHENTICATION_FAILED);
    CHECK(received == NULL && record_generation(b1->peer) == before);
    CHECK(failure.action == SOTTO_ACTION_REQUEST_RETRY && failure.hint.has_base_key == 0);
    bool matches = false;
    OK(sotto_retry_hint_matches(&failure.hint, sent.ptr, sent.len, &matches));
    CHECK(matches);
    free(copy);

    SottoBuffer request = {0};
    OK(sotto_peer_record_request_retry(b1->peer, a1->id, &failure.hint, NOW, &request));
    received = receive(a1, b1, request.ptr, request.len);
    SottoContentKind kind = 0;
    SottoRetryHint hint;
    OK(sotto_received_kind(received, &kind));
    CHECK(kind == SOTTO_CONTENT_KIND_RETRY_REQUEST);
    OK(sotto_received_retry_hint(received, &hint));
    CHECK(memcmp(hint.ratchet_key, failure.hint.ratchet_key, 32) == 0 &&
          hint.message_number == failure.hint.message_number && hint.has_base_key == 0);
    SottoBuffer nothing = {0};
    EXPECT_ERR(sotto_received_payload(received, &nothing), SOTTO_ERROR_INVALID_ARGUMENT);
    EXPECT_ERR(sotto_received_group_id(received, &nothing), SOTTO_ERROR_INVALID_ARGUMENT);
    EXPECT_ERR(sotto_received_sender_identity_key(received, &nothing),
               SOTTO_ERROR_INVALID_ARGUMENT);
    OK(sotto_received_free(received));
    received = NULL;
    OK(sotto_retry_hint_matches(&hint, sent.ptr, sent.len, &matches));
    CHECK(matches);
    SottoBuffer resent = {0};
    OK(sotto_peer_record_encrypt_to(a1->peer, b1->id, TEXT(text), &resent));
    handle(b1, a1, receive(b1, a1, resent.ptr, resent.len), text);
    printf("sessions: bob/1 asked alice/1 to resend: %s\n", text);
    /* The original, delivered late, still decrypts once (a skipped key);
     * then it is a duplicate. */
    handle(b1, a1, receive(b1, a1, sent.ptr, sent.len), text);
    EXPECT_ERR(sotto_peer_record_decrypt(b1->peer, b1->device, a1->id, sent.ptr, sent.len, NOW,
                                         &received, &failure),
               SOTTO_ERROR_DUPLICATE_MESSAGE);
    CHECK(failure.action == SOTTO_ACTION_IGNORE && failure.reason == SOTTO_ACTION_REASON_DUPLICATE);
    /* Retry requests are rate limited per device. */
    SottoBuffer more = {0};
    size_t allowed = 1;
    SottoError rc;
    while ((rc = sotto_peer_record_request_retry(b1->peer, a1->id, &hint, NOW, &more)) ==
           SOTTO_ERROR_OK) {
        release(&more);
        allowed++;
    }
    CHECK(allowed == SOTTO_MAX_RETRY_REQUESTS_PER_INTERVAL);
    EXPECT_ERR(sotto_peer_record_request_retry(b1->peer, a1->id, &hint, NOW, &more),
               SOTTO_ERROR_RECOVERY_RATE_LIMITED);
    OK(sotto_peer_record_request_retry(b1->peer, a1->id, &hint,
                                       NOW + SOTTO_MIN_RECOVERY_INTERVAL, &more));
    /* alice/1 reads the extra requests (same hint): nothing more to do. */
    received = receive(a1, b1, more.ptr, more.len);
    OK(sotto_received_free(received));
    release(&more);
    release(&request);
    release(&resent);
    release(&sent);
}

/* bob/2's record of alice is restored from a stale sealed backup: its
 * sessions are deleted, alice/1's next message cannot be read, and bob/2
 * starts a new session that asks for it again. */
static void stale_restore(void) {
    struct dev *a1 = find(ALICE, 1), *b2 = find(BOB, 2);
    SottoBuffer backup = {0};
    OK(sotto_peer_record_seal(b2->peer, STORAGE_KEY, sizeof STORAGE_KEY, TEXT("record/alice"),
                              &backup));
    /* More traffic, then the restore. */
    send_to_all(a1, "before bob/2's restore");
    send_to_all(b2, "bob/2 says hi before its restore");
    uint64_t last = record_generation(b2->peer);

    SottoPeerRecord *restored = NULL;
    EXPECT_ERR(sotto_peer_record_unseal(backup.ptr, backup.len, STORAGE_KEY, sizeof STORAGE_KEY,
                                        TEXT("record/bob"), &restored),
               SOTTO_ERROR_AUTHENTICATION_FAILED);
    EXPECT_ERR(sotto_group_session_unseal(backup.ptr, backup.len, STORAGE_KEY, sizeof STORAGE_KEY,
                                          TEXT("record/alice"), (SottoGroupSession **)&restored),
               SOTTO_ERROR_WRONG_TYPE);
    OK(sotto_peer_record_unseal(backup.ptr, backup.len, STORAGE_KEY, sizeof STORAGE_KEY,
                                TEXT("record/alice"), &restored));
    CHECK(record_generation(restored) < last);
    OK(sotto_peer_record_free(b2->peer));
    b2->peer = restored;
    size_t deleted = 0;
    OK(sotto_peer_record_after_restore(b2->peer, last, &deleted));
    CHECK(deleted == 2 && record_generation(b2->peer) == last + 1);

    const char *text = "did you get this, bob/2?";
    SottoBuffer sent = {0};
    OK(sotto_peer_record_encrypt_to(a1->peer, b2->id, TEXT(text), &sent));
    SottoReceived *received = NULL;
    SottoFailure failure;
    EXPECT_ERR(sotto_peer_record_decrypt(b2->peer, b2->device, a1->id, sent.ptr, sent.len, NOW,
                                         &received, &failure),
               SOTTO_ERROR_NO_SESSION);
    CHECK(failure.action == SOTTO_ACTION_START_NEW_SESSION);
    SottoBuffer bundle = bundle_of(a1), first = {0}, again = {0};
    OK(sotto_peer_record_start_new_session(b2->peer, b2->device, a1->id, bundle.ptr, bundle.len,
                                           &failure.hint, NOW, &first));
    EXPECT_ERR(sotto_peer_record_start_new_session(b2->peer, b2->device, a1->id, bundle.ptr,
                                                   bundle.len, &failure.hint, NOW, &again),
               SOTTO_ERROR_RECOVERY_RATE_LIMITED);
    /* The same message again: the new session is the fix now, and a retry
     * request would travel in it. */
    EXPECT_ERR(sotto_peer_record_decrypt(b2->peer, b2->device, a1->id, sent.ptr, sent.len, NOW,
                                         &received, &failure),
               SOTTO_ERROR_SESSION_DIVERGED);
    CHECK(failure.action == SOTTO_ACTION_REQUEST_RETRY);

    received = receive(a1, b2, first.ptr, first.len);
    SottoContentKind kind = 0;
    SottoRetryHint hint;
    OK(sotto_received_kind(received, &kind));
    CHECK(kind == SOTTO_CONTENT_KIND_RETRY_REQUEST);
    OK(sotto_received_retry_hint(received, &hint));
    OK(sotto_received_free(received));
    bool matches = false;
    OK(sotto_retry_hint_matches(&hint, sent.ptr, sent.len, &matches));
    CHECK(matches);
    SottoBuffer resent = {0};
    OK(sotto_peer_record_encrypt_to(a1->peer, b2->id, TEXT(text), &resent));
    handle(b2, a1, receive(b2, a1, resent.ptr, resent.len), text);
    printf("sessions: bob/2, restored from a stale backup, recovered with a new session\n");
    /* Both sides now write on the new session. */
    send_to_all(b2, "bob/2 is back");
    send_to_all(a1, "welcome back, bob/2");
    release(&backup);
    release(&bundle);
    release(&first);
    release(&sent);
    release(&resent);
}

/* Each device makes the group, adds both users and hands its chain to the
 * three other devices; a message to the group; alice removes bob. */
static void group(void) {
    for (int i = 0; i < DEVICES; i++) {
        struct dev *d = &world[i];
        OK(sotto_group_session_new(d->device, GROUP_ID, sizeof GROUP_ID, TEXT(USERS[d->user]),
                                   &d->group));
        bool added = false;
        OK(sotto_group_session_add_member(d->group, TEXT(USERS[1 - d->user]), &added));
        CHECK(added);
        OK(sotto_group_session_add_member(d->group, TEXT(USERS[1 - d->user]), &added));
        CHECK(!added);
        size_t members = 0;
        OK(sotto_group_session_member_count(d->group, &members));
        CHECK(members == 2);
    }
    for (int i = 0; i < DEVICES; i++) {
        struct dev *d = &world[i];
        SottoPeerRecord *records[2] = {d->peer, d->own};
        int users[2] = {1 - d->user, d->user};
        SottoOutbox *outbox = NULL;
        OK(sotto_group_session_distribute(d->group, records, 2, &outbox));
        CHECK(deliver(d, outbox, users, NULL) == 3);
    }
    printf("sessions: group: every device holds the three other devices' chains\n");

    struct dev *a1 = find(ALICE, 1), *a2 = find(ALICE, 2), *b1 = find(BOB, 1),
               *b2 = find(BOB, 2);
    SottoBuffer g1 = {0}, plain = {0}, sender = {0};
    bool authenticated = false;
    SottoFailure failure;
    OK(sotto_group_session_encrypt(a1->group, TEXT("hello group"), &g1));
    struct dev *readers[3] = {a2, b1, b2};
    for (int i = 0; i < 3; i++) {
        OK(sotto_group_session_decrypt(readers[i]->group, readers[i]->user == ALICE ? readers[i]->own : readers[i]->peer, g1.ptr, g1.len, &plain, &sender,
                                       &authenticated, &failure));
        CHECK(buffer_is(&plain, "hello group") && same(&sender, &a1->identity) && authenticated);
        CHECK(failure.action == SOTTO_ACTION_NONE);
        release(&plain);
        release(&sender);
    }
    printf("sessions: alice/1 -> group: hello group\n");
    /* Alice's chain, said to come from bob: refused before the replay check. */
    EXPECT_ERR(sotto_group_session_decrypt(b1->group, b1->own, g1.ptr, g1.len, &plain, &sender,
                                           &authenticated, &failure),
               SOTTO_ERROR_IDENTITY_MISMATCH);
    CHECK(failure.action == SOTTO_ACTION_IGNORE && failure.reason == SOTTO_ACTION_REASON_MALFORMED);
    EXPECT_ERR(sotto_group_session_decrypt(b1->group, b1->peer, g1.ptr, g1.len, &plain, &sender,
                                           &authenticated, &failure),
               SOTTO_ERROR_DUPLICATE_MESSAGE);
    CHECK(failure.action == SOTTO_ACTION_IGNORE && failure.reason == SOTTO_ACTION_REASON_DUPLICATE);
    EXPECT_ERR(sotto_group_session_decrypt(a1->group, a1->own, g1.ptr, g1.len, &plain, &sender,
                                           &authenticated, &failure),
               SOTTO_ERROR_UNKNOWN_GROUP_CHAIN); /* its own chain */
    CHECK(failure.action == SOTTO_ACTION_RETRY_LATER &&
          failure.reason == SOTTO_ACTION_REASON_MISSING_DISTRIBUTION);
    EXPECT_ERR(sotto_group_session_decrypt(b1->group, b1->peer, TEXT("not a group message"), &plain,
                                           &sender, &authenticated, &failure),
               SOTTO_ERROR_UNSUPPORTED_VERSION);
    CHECK(failure.action == SOTTO_ACTION_IGNORE && failure.reason == SOTTO_ACTION_REASON_MALFORMED);

    /* A new chain of bob/1 reaches alice/1 through a distribution request. */
    SottoBuffer ask = {0}, answer = {0};
    OK(sotto_peer_record_request_distribution(a1->peer, b1->id, GROUP_ID, sizeof GROUP_ID, &ask));
    SottoReceived *received = receive(b1, a1, ask.ptr, ask.len);
    SottoContentKind kind = 0;
    OK(sotto_received_kind(received, &kind));
    CHECK(kind == SOTTO_CONTENT_KIND_DISTRIBUTION_REQUEST);
    SottoBuffer gid = {0};
    OK(sotto_received_group_id(received, &gid));
    CHECK(gid.len == SOTTO_GROUP_ID_LEN && memcmp(gid.ptr, GROUP_ID, gid.len) == 0);
    release(&gid);
    OK(sotto_received_free(received));
    OK(sotto_group_session_distribute_to(b1->group, b1->peer, a1->id, &answer));
    received = receive(a1, b1, answer.ptr, answer.len);
    SottoInsertOutcome outcome = 0;
    OK(sotto_group_session_install(a1->group, a1->peer, received, &outcome));
    CHECK(outcome == SOTTO_INSERT_OUTCOME_UNCHANGED); /* already held */
    /* Installed only from a member's record of the device it came from. */
    EXPECT_ERR(sotto_group_session_install(a1->group, a1->own, received, &outcome),
               SOTTO_ERROR_IDENTITY_MISMATCH);
    OK(sotto_received_free(received));
    release(&ask);
    release(&answer);

    /* Alice removes bob: each of her devices in one call, handing its new
     * chain to her other device only. */
    struct dev *alices[2] = {a1, a2};
    for (int i = 0; i < 2; i++) {
        SottoPeerRecord *records[1] = {alices[i]->own};
        int users[1] = {ALICE};
        SottoOutbox *outbox = NULL;
        EXPECT_ERR(sotto_group_session_remove_member(alices[i]->group, alices[i]->device,
                                                     TEXT("bob"), &alices[i]->peer, 1, &outbox),
                   SOTTO_ERROR_NOT_GROUP_MEMBER); /* not the remaining members' records */
        EXPECT_ERR(sotto_group_session_remove_member(alices[i]->group, alices[i]->device,
                                                     TEXT("alice"), records, 1, &outbox),
                   SOTTO_ERROR_NOT_GROUP_MEMBER); /* the local user */
        OK(sotto_group_session_remove_member(alices[i]->group, alices[i]->device, TEXT("bob"),
                                             records, 1, &outbox));
        CHECK(deliver(alices[i], outbox, users, NULL) == 1);
        bool member = true;
        OK(sotto_group_session_is_member(alices[i]->group, TEXT("bob"), &member));
        CHECK(!member);
    }
    SottoBuffer g2 = {0}, g3 = {0};
    OK(sotto_group_session_encrypt(a1->group, TEXT("without bob"), &g2));
    OK(sotto_group_session_decrypt(a2->group, a2->own, g2.ptr, g2.len, &plain, &sender, &authenticated,
                                   &failure));
    CHECK(buffer_is(&plain, "without bob") && same(&sender, &a1->identity));
    release(&plain);
    release(&sender);
    printf("sessions: alice/1 -> group (bob removed): without bob\n");
    EXPECT_ERR(sotto_group_session_decrypt(b1->group, b1->peer, g2.ptr, g2.len, &plain, &sender,
                                           &authenticated, &failure),
               SOTTO_ERROR_UNKNOWN_GROUP_CHAIN);
    CHECK(failure.action == SOTTO_ACTION_RETRY_LATER &&
          failure.reason == SOTTO_ACTION_REASON_MISSING_DISTRIBUTION);
    OK(sotto_group_session_encrypt(b1->group, TEXT("still here?"), &g3));
    EXPECT_ERR(sotto_group_session_decrypt(a1->group, a1->peer, g3.ptr, g3.len, &plain, &sender,
                                           &authenticated, &failure),
               SOTTO_ERROR_NOT_GROUP_MEMBER); /* bob's record: no member now */
    CHECK(failure.action == SOTTO_ACTION_IGNORE && failure.reason == SOTTO_ACTION_REASON_MALFORMED);
    /* bob/1 hands its chain to alice/1 again: refused, bob is no member. */
    OK(sotto_group_session_distribute_to(b1->group, b1->peer, a1->id, &answer));
    received = receive(a1, b1, answer.ptr, answer.len);
    EXPECT_ERR(sotto_group_session_install(a1->group, a1->peer, received, &outcome),
               SOTTO_ERROR_NOT_GROUP_MEMBER);
    OK(sotto_received_free(received));
    printf("sessions: bob (removed) can neither read nor write: without bob\n");

    /* Save and restore sealed; a stale copy rotates and drops every chain. */
    SottoBuffer sealed = {0};
    uint64_t generation = 0, restored_generation = 0;
    OK(sotto_group_session_seal(a2->group, STORAGE_KEY, sizeof STORAGE_KEY, TEXT("group/g"),
                                &sealed));
    OK(sotto_group_session_generation(a2->group, &generation));
    SottoGroupSession *copy = NULL;
    OK(sotto_group_session_unseal(sealed.ptr, sealed.len, STORAGE_KEY, sizeof STORAGE_KEY,
                                  TEXT("group/g"), &copy));
    OK(sotto_group_session_generation(copy, &restored_generation));
    CHECK(restored_generation == generation);
    bool stale = true;
    OK(sotto_group_session_after_restore(copy, a2->device, generation, &stale));
    CHECK(!stale);
    OK(sotto_group_session_free(copy));
    copy = NULL;
    OK(sotto_group_session_unseal(sealed.ptr, sealed.len, STORAGE_KEY, sizeof STORAGE_KEY,
                                  TEXT("group/g"), &copy));
    OK(sotto_group_session_after_restore(copy, a2->device, generation + 5, &stale));
    CHECK(stale);
    EXPECT_ERR(sotto_group_session_decrypt(a2->group, a2->own, g2.ptr, g2.len, &plain, &sender,
                                           &authenticated, &failure),
               SOTTO_ERROR_DUPLICATE_MESSAGE);
    EXPECT_ERR(sotto_group_session_decrypt(copy, a2->own, g2.ptr, g2.len, &plain, &sender, &authenticated,
                                           &failure),
               SOTTO_ERROR_UNKNOWN_GROUP_CHAIN); /* receivers dropped */
    OK(sotto_group_session_free(copy));
    SottoBuffer saved = {0};
    OK(sotto_group_session_to_bytes(a1->group, &saved));
    copy = NULL;
    OK(sotto_group_session_from_bytes(saved.ptr, saved.len, &copy));
    OK(sotto_group_session_group_id(copy, &gid));
    CHECK(gid.len == SOTTO_GROUP_ID_LEN && memcmp(gid.ptr, GROUP_ID, gid.len) == 0);
    release(&gid);
    OK(sotto_group_session_free(copy));
    copy = NULL;
    EXPECT_ERR(sotto_peer_record_from_bytes(saved.ptr, saved.len, (SottoPeerRecord **)&copy),
               SOTTO_ERROR_WRONG_TYPE);
    release(&saved);
    release(&sealed);
    release(&g1);
    release(&g2);
    release(&g3);
    release(&answer);
}

/* bob/2 is reinstalled with a new identity: alice/2 is told, never trusts
 * it silently, and the safety number changes once she accepts. */
static void identity_change(void) {
    struct dev *a2 = find(ALICE, 2), *b2 = find(BOB, 2);
    SottoDevice *reinstalled = NULL;
    SottoBuffer new_id = {0}, old_fp = {0}, new_fp = {0};
    OK(sotto_device_generate(NOW, &reinstalled));
    OK(sotto_device_identity_key(reinstalled, &new_id));
    OK(sotto_identity_key_fingerprint(b2->identity.ptr, b2->identity.len, &old_fp));
    OK(sotto_identity_key_fingerprint(new_id.ptr, new_id.len, &new_fp));
    SottoBuffer number_before = safety_number(a2);

    SottoDeviceListEntry list[2];
    CHECK(list_of(BOB, list) == 2);
    memcpy(list[1].identity_key, new_id.ptr, SOTTO_IDENTITY_KEY_LEN);
    SottoDeviceListChanges changes;
    OK(sotto_peer_record_update_devices(a2->peer, list, 2, NOW, &changes));
    CHECK(changes.identity_change_count == 1 && changes.added_count == 0);
    CHECK(changes.identity_changes[0].device == 2);
    CHECK(memcmp(changes.identity_changes[0].old_fingerprint, old_fp.ptr, 32) == 0);
    CHECK(memcmp(changes.identity_changes[0].new_fingerprint, new_fp.ptr, 32) == 0);
    CHECK(memcmp(changes.identity_changes[0].new_identity_key, new_id.ptr,
                 SOTTO_IDENTITY_KEY_LEN) == 0);
    printf("sessions: bob/2 changed identity: reported, not trusted\n");

    SottoSendPlan plan;
    OK(sotto_peer_record_plan_send(a2->peer, NOW, &plan));
    CHECK(plan.blocked_count == 1 && plan.blocked[0] == 2 && plan.ready_count == 1);
    SottoOutbox *outbox = NULL;
    OK(sotto_peer_record_encrypt(a2->peer, TEXT("only to bob/1"), &outbox));
    size_t n = 0, record = 9;
    uint32_t device = 0;
    SottoError error = SOTTO_ERROR_OK;
    OK(sotto_outbox_message_count(outbox, &n));
    CHECK(n == 1);
    OK(sotto_outbox_unusable_count(outbox, &n));
    CHECK(n == 1);
    OK(sotto_outbox_unusable(outbox, 0, &record, &device, &error));
    CHECK(record == 0 && device == 2 && error == SOTTO_ERROR_IDENTITY_CHANGE_PENDING);
    SottoBuffer nothing = {0};
    EXPECT_ERR(sotto_outbox_message(outbox, 1, &record, &device, &nothing),
               SOTTO_ERROR_INVALID_ARGUMENT);
    EXPECT_ERR(sotto_outbox_unusable(outbox, 1, &record, &device, &error),
               SOTTO_ERROR_INVALID_ARGUMENT);
    OK(sotto_outbox_message(outbox, 0, &record, &device, &nothing));
    handle(find(BOB, 1), a2, receive(find(BOB, 1), a2, nothing.ptr, nothing.len),
           "only to bob/1");
    release(&nothing);
    OK(sotto_outbox_free(outbox));
    EXPECT_ERR(sotto_peer_record_encrypt_to(a2->peer, 2, TEXT("x"), &nothing),
               SOTTO_ERROR_IDENTITY_CHANGE_PENDING);
    /* Messages from the device wait until the change is acknowledged. */
    SottoBuffer late = {0};
    OK(sotto_peer_record_encrypt_to(b2->peer, a2->id, TEXT("from the old bob/2"), &late));
    SottoReceived *received = NULL;
    SottoFailure failure;
    EXPECT_ERR(sotto_peer_record_decrypt(a2->peer, a2->device, 2, late.ptr, late.len, NOW,
                                         &received, &failure),
               SOTTO_ERROR_IDENTITY_CHANGE_PENDING);
    CHECK(failure.action == SOTTO_ACTION_RETRY_LATER &&
          failure.reason == SOTTO_ACTION_REASON_IDENTITY_CHANGE_PENDING);

    SottoBuffer unchanged = safety_number(a2);
    CHECK(same(&unchanged, &number_before));
    EXPECT_ERR(sotto_peer_record_acknowledge_identity(a2->peer, 2, b2->identity.ptr,
                                                      b2->identity.len),
               SOTTO_ERROR_IDENTITY_MISMATCH);
    EXPECT_ERR(sotto_peer_record_acknowledge_identity(a2->peer, 7, new_id.ptr, new_id.len),
               SOTTO_ERROR_UNKNOWN_DEVICE);
    OK(sotto_peer_record_acknowledge_identity(a2->peer, 2, new_id.ptr, new_id.len));
    SottoBuffer number_after = safety_number(a2);
    CHECK(!same(&number_after, &number_before));
    OK(sotto_peer_record_plan_send(a2->peer, NOW, &plan));
    CHECK(plan.needs_bundle_count == 1 && plan.needs_bundle[0] == 2 && plan.blocked_count == 0);
    SottoDeviceInfo info;
    size_t count = 0;
    EXPECT_ERR(sotto_peer_record_devices(a2->peer, &info, 1, &count),
               SOTTO_ERROR_INVALID_ARGUMENT); /* two devices, room for one */
    printf("sessions: alice/2 accepted bob/2's new identity; the safety number changed\n");
    /* The old device's sessions went with its identity. */
    EXPECT_ERR(sotto_peer_record_decrypt(a2->peer, a2->device, 2, late.ptr, late.len, NOW,
                                         &received, &failure),
               SOTTO_ERROR_NO_SESSION);
    CHECK(failure.action == SOTTO_ACTION_START_NEW_SESSION);
    SottoBuffer *owned[] = {&new_id, &old_fp, &new_fp, &number_before, &number_after, &unchanged,
                            &late};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) release(owned[i]);
    OK(sotto_device_free(reinstalled));
}

/* alice/1's record of bob after bob/2 leaves the list, and expiry. */
static void expiry(void) {
    struct dev *a1 = find(ALICE, 1), *b1 = find(BOB, 1);
    SottoDeviceListEntry list[2];
    list_of(BOB, list);
    SottoDeviceListChanges changes;
    OK(sotto_peer_record_update_devices(a1->peer, list, 1, NOW, &changes));
    CHECK(changes.removed_count == 1 && changes.removed[0] == 2);
    SottoSendPlan plan;
    OK(sotto_peer_record_plan_send(a1->peer, NOW, &plan));
    CHECK(plan.ready_count == 1 && plan.ready[0] == b1->id);
    SottoBuffer nothing = {0};
    EXPECT_ERR(sotto_peer_record_encrypt_to(a1->peer, 2, TEXT("x"), &nothing),
               SOTTO_ERROR_UNKNOWN_DEVICE); /* stale: nothing is sent to it */
    /* Its late messages still decrypt. */
    SottoBuffer late = {0};
    OK(sotto_peer_record_encrypt_to(find(BOB, 2)->peer, a1->id, TEXT("leaving"), &late));
    handle(a1, find(BOB, 2), receive(a1, find(BOB, 2), late.ptr, late.len), "leaving");
    release(&late);
    SottoExpired expired;
    OK(sotto_peer_record_expire(a1->peer, NOW + SOTTO_MAX_STALE_DEVICE_AGE - 1, &expired));
    CHECK(expired.device_count == 0);
    OK(sotto_peer_record_expire(a1->peer, NOW + SOTTO_MAX_STALE_DEVICE_AGE, &expired));
    CHECK(expired.device_count == 1 && expired.devices[0] == 2);
    printf("sessions: bob/2 left the list, and expired after %u days\n",
           (unsigned)(SOTTO_MAX_STALE_DEVICE_AGE / 86400));
}

/* Error paths of the session layer that the scenes above do not take. */
static void error_paths(void) {
    struct dev *a1 = find(ALICE, 1), *b1 = find(BOB, 1);
    SottoPeerRecord *no_record = NULL;
    SottoBuffer nothing = {0};
    SottoReceived *received = NULL;
    SottoFailure failure;
    char long_user[SOTTO_MAX_USER_ID_LEN + 2];
    memset(long_user, 'u', sizeof long_user - 1);
    long_user[sizeof long_user - 1] = '\0';
    EXPECT_ERR(sotto_peer_record_new(TEXT(long_user), a1->device, &no_record),
               SOTTO_ERROR_INVALID_ENCODING);
    EXPECT_ERR(sotto_peer_record_new(NULL, 0, a1->device, &no_record),
               SOTTO_ERROR_INVALID_ENCODING);
    EXPECT_ERR(sotto_peer_record_new(TEXT("bob"), (SottoDevice *)a1->peer, &no_record),
               SOTTO_ERROR_WRONG_HANDLE);
    EXPECT_ERR(sotto_peer_record_new(TEXT("bob"), a1->device, &a1->peer),
               SOTTO_ERROR_INVALID_ARGUMENT); /* the slot holds a handle */
    CHECK(no_record == NULL);

    /* Device lists: too long, a device twice, one identity twice, the local
     * identity for another device, a bad key, NULL. */
    SottoDeviceListEntry list[SOTTO_MAX_DEVICES_PER_USER + 1];
    memset(list, 0, sizeof list);
    SottoDeviceListChanges changes;
    EXPECT_ERR(sotto_peer_record_update_devices(a1->peer, list, SOTTO_MAX_DEVICES_PER_USER + 1,
                                                NOW, &changes),
               SOTTO_ERROR_INVALID_DEVICE_LIST);
    list_of(BOB, list);
    list[1].device = list[0].device;
    EXPECT_ERR(sotto_peer_record_update_devices(a1->peer, list, 2, NOW, &changes),
               SOTTO_ERROR_INVALID_DEVICE_LIST);
    list_of(BOB, list);
    memcpy(list[1].identity_key, list[0].identity_key, SOTTO_IDENTITY_KEY_LEN);
    EXPECT_ERR(sotto_peer_record_update_devices(a1->peer, list, 2, NOW, &changes),
               SOTTO_ERROR_INVALID_DEVICE_LIST);
    list_of(BOB, list);
    memcpy(list[1].identity_key, a1->identity.ptr, SOTTO_IDENTITY_KEY_LEN);
    EXPECT_ERR(sotto_peer_record_update_devices(a1->peer, list, 2, NOW, &changes),
               SOTTO_ERROR_INVALID_DEVICE_LIST);
    list_of(BOB, list);
    memset(list[1].identity_key + 2, 0xff, 32);
    EXPECT_ERR(sotto_peer_record_update_devices(a1->peer, list, 2, NOW, &changes),
               SOTTO_ERROR_INVALID_PUBLIC_KEY);
    EXPECT_ERR(sotto_peer_record_update_devices(a1->peer, NULL, 2, NOW, &changes),
               SOTTO_ERROR_NULL_POINTER);
    EXPECT_ERR(sotto_peer_record_update_devices(a1->peer, list, 1, NOW, NULL),
               SOTTO_ERROR_NULL_POINTER);

    /* Sending. */
    uint8_t *big = calloc(SOTTO_MAX_PAYLOAD_LEN + 1, 1);
    CHECK(big != NULL);
    SottoOutbox *no_outbox = NULL;
    EXPECT_ERR(sotto_peer_record_encrypt(a1->peer, big, SOTTO_MAX_PAYLOAD_LEN + 1, &no_outbox),
               SOTTO_ERROR_PLAINTEXT_TOO_LARGE);
    EXPECT_ERR(sotto_peer_record_encrypt_to(a1->peer, 1, big, SOTTO_MAX_PAYLOAD_LEN + 1,
                                            &nothing),
               SOTTO_ERROR_PLAINTEXT_TOO_LARGE);
    free(big);
    EXPECT_ERR(sotto_peer_record_encrypt_to(a1->peer, 9, TEXT("x"), &nothing),
               SOTTO_ERROR_UNKNOWN_DEVICE);
    SottoPeerRecord *fresh = NULL;
    OK(sotto_peer_record_new(TEXT("bob"), a1->device, &fresh));
    list_of(BOB, list);
    OK(sotto_peer_record_update_devices(fresh, list, 2, NOW, &changes));
    EXPECT_ERR(sotto_peer_record_encrypt_to(fresh, 1, TEXT("x"), &nothing), SOTTO_ERROR_NO_SESSION);
    EXPECT_ERR(sotto_peer_record_request_distribution(fresh, 1, GROUP_ID, sizeof GROUP_ID,
                                                      &nothing),
               SOTTO_ERROR_NO_SESSION);
    EXPECT_ERR(sotto_peer_record_request_distribution(fresh, 1, GROUP_ID, 31, &nothing),
               SOTTO_ERROR_INVALID_ARGUMENT);
    SottoOutbox *outbox = NULL;
    OK(sotto_peer_record_encrypt(fresh, TEXT("nobody has a session"), &outbox));
    size_t n = 9;
    OK(sotto_outbox_message_count(outbox, &n));
    CHECK(n == 0);
    size_t record = 9;
    uint32_t device = 0;
    SottoError error = SOTTO_ERROR_OK;
    OK(sotto_outbox_unusable(outbox, 1, &record, &device, &error));
    CHECK(device == 2 && error == SOTTO_ERROR_NO_SESSION);
    OK(sotto_outbox_free(outbox));
    EXPECT_ERR(sotto_outbox_free(outbox), SOTTO_ERROR_WRONG_HANDLE);
    outbox = NULL;
    EXPECT_ERR(sotto_outbox_message_count((SottoOutbox *)fresh, &n), SOTTO_ERROR_WRONG_HANDLE);
    EXPECT_ERR(sotto_peer_record_expire(fresh, NOW, NULL), SOTTO_ERROR_NULL_POINTER);
    SottoBuffer own_bundle = bundle_of(a1), bob_bundle = bundle_of(b1);
    EXPECT_ERR(sotto_peer_record_add_bundle(fresh, a1->device, 1, own_bundle.ptr, own_bundle.len,
                                            NOW),
               SOTTO_ERROR_IDENTITY_MISMATCH); /* alice/1's bundle for bob/1 */
    EXPECT_ERR(sotto_peer_record_add_bundle(fresh, b1->device, 1, bob_bundle.ptr, bob_bundle.len,
                                            NOW),
               SOTTO_ERROR_IDENTITY_MISMATCH); /* not the record's device */
    EXPECT_ERR(sotto_peer_record_add_bundle(fresh, a1->device, 5, bob_bundle.ptr, bob_bundle.len,
                                            NOW),
               SOTTO_ERROR_UNKNOWN_DEVICE);
    bob_bundle.ptr[bob_bundle.len - 1] ^= 1;
    EXPECT_ERR(sotto_peer_record_add_bundle(fresh, a1->device, 1, bob_bundle.ptr, bob_bundle.len,
                                            NOW),
               SOTTO_ERROR_INVALID_SIGNATURE);
    bob_bundle.ptr[bob_bundle.len - 1] ^= 1;
    /* A classical bundle: refused unless allowed; a pinned device is never
     * allowed. */
    SottoBuffer spk = {0}, classical = {0};
    OK(sotto_device_signed_prekey(b1->device, &spk));
    OK(sotto_bundle_new(b1->identity.ptr, b1->identity.len, spk.ptr, spk.len, NULL, 0, NULL, 0,
                        &classical));
    EXPECT_ERR(sotto_peer_record_add_bundle(fresh, a1->device, 1, classical.ptr, classical.len,
                                            NOW),
               SOTTO_ERROR_POST_QUANTUM_REQUIRED);
    OK(sotto_peer_record_allow_classical(fresh, 1, true));
    OK(sotto_peer_record_add_bundle(fresh, a1->device, 1, classical.ptr, classical.len, NOW));
    OK(sotto_peer_record_add_bundle(fresh, a1->device, 1, bob_bundle.ptr, bob_bundle.len, NOW));
    EXPECT_ERR(sotto_peer_record_allow_classical(fresh, 1, true), SOTTO_ERROR_POST_QUANTUM_REQUIRED);
    EXPECT_ERR(sotto_peer_record_allow_classical(fresh, 8, false), SOTTO_ERROR_UNKNOWN_DEVICE);
    EXPECT_ERR(sotto_peer_record_add_bundle(fresh, a1->device, 1, classical.ptr, classical.len,
                                            NOW),
               SOTTO_ERROR_POST_QUANTUM_REQUIRED);
    SottoDeviceInfo info[2];
    OK(sotto_peer_record_devices(fresh, info, 2, &n));
    CHECK(n == 2 && info[0].post_quantum_pinned && info[0].archived_sessions == 1 &&
          info[0].awaiting_reply && !info[1].has_active_session);
    release(&spk);
    release(&classical);

    /* Receiving: a device the record does not hold, the wrong local
     * device, bytes that are no message, NULLs. */
    SottoBuffer wire = {0};
    OK(sotto_peer_record_encrypt_to(b1->peer, a1->id, TEXT("to alice/1"), &wire));
    EXPECT_ERR(sotto_peer_record_decrypt(a1->peer, a1->device, 9, wire.ptr, wire.len, NOW,
                                         &received, &failure),
               SOTTO_ERROR_UNKNOWN_DEVICE);
    CHECK(failure.action == SOTTO_ACTION_RETRY_LATER &&
          failure.reason == SOTTO_ACTION_REASON_UNKNOWN_DEVICE);
    EXPECT_ERR(sotto_peer_record_decrypt(a1->peer, b1->device, b1->id, wire.ptr, wire.len, NOW,
                                         &received, &failure),
               SOTTO_ERROR_IDENTITY_MISMATCH);
    CHECK(failure.action == SOTTO_ACTION_IGNORE &&
          failure.reason == SOTTO_ACTION_REASON_WRONG_LOCAL_DEVICE);
    EXPECT_ERR(sotto_peer_record_decrypt(a1->peer, a1->device, b1->id, wire.ptr, 3, NOW,
                                         &received, &failure),
               SOTTO_ERROR_TRUNCATED);
    CHECK(failure.action == SOTTO_ACTION_IGNORE && failure.reason == SOTTO_ACTION_REASON_MALFORMED);
    EXPECT_ERR(sotto_peer_record_decrypt(a1->peer, (SottoDevice *)a1->own, b1->id, wire.ptr,
                                         wire.len, NOW, &received, &failure),
               SOTTO_ERROR_WRONG_HANDLE);
    CHECK(failure.action == SOTTO_ACTION_NONE);
    EXPECT_ERR(sotto_peer_record_decrypt(a1->peer, a1->device, b1->id, wire.ptr, wire.len, NOW,
                                         &received, NULL),
               SOTTO_ERROR_NULL_POINTER);
    CHECK(received == NULL);
    handle(a1, b1, receive(a1, b1, wire.ptr, wire.len), "to alice/1"); /* unchanged by all that */
    release(&wire);

    /* Hints: a flag that is not 0 or 1, NULL. */
    SottoRetryHint hint;
    memset(&hint, 0, sizeof hint);
    hint.has_base_key = 2;
    EXPECT_ERR(sotto_peer_record_request_retry(a1->peer, 1, &hint, NOW, &nothing),
               SOTTO_ERROR_INVALID_ARGUMENT);
    EXPECT_ERR(sotto_peer_record_request_retry(a1->peer, 1, NULL, NOW, &nothing),
               SOTTO_ERROR_NULL_POINTER);
    hint.has_base_key = 0;
    EXPECT_ERR(sotto_peer_record_request_retry(fresh, 2, &hint, NOW, &nothing),
               SOTTO_ERROR_NO_SESSION);
    EXPECT_ERR(sotto_peer_record_request_retry(fresh, 7, &hint, NOW, &nothing),
               SOTTO_ERROR_UNKNOWN_DEVICE);
    bool matches = true;
    EXPECT_ERR(sotto_retry_hint_matches(&hint, (const uint8_t *)"\x02", 1, &matches),
               SOTTO_ERROR_TRUNCATED);
    EXPECT_ERR(sotto_peer_record_start_new_session(fresh, a1->device, 1, bob_bundle.ptr, 10,
                                                   &hint, NOW, &nothing),
               SOTTO_ERROR_TRUNCATED);

    /* Safety numbers: the same handle twice, a record that is not the own
     * one, a record with no listed device. */
    EXPECT_ERR(sotto_peer_record_safety_number(a1->own, a1->own, &nothing),
               SOTTO_ERROR_INVALID_ARGUMENT);
    EXPECT_ERR(sotto_peer_record_safety_number(a1->own, fresh, &nothing),
               SOTTO_ERROR_IDENTITY_MISMATCH);
    EXPECT_ERR(sotto_peer_record_safety_number(b1->peer, a1->own, &nothing),
               SOTTO_ERROR_IDENTITY_MISMATCH); /* another device's record */
    SottoPeerRecord *empty = NULL;
    OK(sotto_peer_record_new(TEXT("carol"), a1->device, &empty));
    EXPECT_ERR(sotto_peer_record_fingerprint(empty, &nothing), SOTTO_ERROR_INVALID_DEVICE_LIST);
    EXPECT_ERR(sotto_peer_record_safety_number(empty, a1->own, &nothing),
               SOTTO_ERROR_INVALID_DEVICE_LIST);

    /* Groups. */
    SottoGroupSession *scratch = NULL, *no_group = NULL;
    EXPECT_ERR(sotto_group_session_new(a1->device, GROUP_ID, 16, TEXT("alice"), &no_group),
               SOTTO_ERROR_INVALID_ARGUMENT);
    EXPECT_ERR(sotto_group_session_new(a1->device, GROUP_ID, sizeof GROUP_ID, TEXT(long_user),
                                       &no_group),
               SOTTO_ERROR_INVALID_ENCODING);
    OK(sotto_group_session_new(a1->device, GROUP_ID, sizeof GROUP_ID, TEXT("alice"), &scratch));
    bool added = false;
    char member[16];
    size_t members = 1;
    SottoError rc = SOTTO_ERROR_OK;
    for (int i = 0; rc == SOTTO_ERROR_OK && i < 2000; i++) {
        snprintf(member, sizeof member, "member%d", i);
        rc = sotto_group_session_add_member(scratch, TEXT(member), &added);
        if (rc == SOTTO_ERROR_OK) members++;
    }
    CHECK(rc == SOTTO_ERROR_TOO_MANY_GROUP_MEMBERS && members == SOTTO_MAX_GROUP_MEMBERS);
    EXPECT_ERR(sotto_group_session_add_member(scratch, TEXT("one more"), &added),
               SOTTO_ERROR_TOO_MANY_GROUP_MEMBERS);
    OK(sotto_group_session_add_member(scratch, TEXT("member0"), &added)); /* already one */
    CHECK(!added);
    SottoPeerRecord *twice[2] = {a1->peer, a1->peer};
    EXPECT_ERR(sotto_group_session_distribute(scratch, twice, 2, &outbox),
               SOTTO_ERROR_INVALID_ARGUMENT);
    SottoPeerRecord *not_members[1] = {empty};
    EXPECT_ERR(sotto_group_session_distribute(scratch, not_members, 1, &outbox),
               SOTTO_ERROR_NOT_GROUP_MEMBER);
    EXPECT_ERR(sotto_group_session_distribute(scratch, NULL, SOTTO_MAX_GROUP_MEMBERS + 1, &outbox),
               SOTTO_ERROR_NOT_GROUP_MEMBER);
    EXPECT_ERR(sotto_group_session_distribute(scratch, NULL, 1, &outbox), SOTTO_ERROR_NULL_POINTER);
    SottoPeerRecord *wrong[1] = {(SottoPeerRecord *)scratch};
    EXPECT_ERR(sotto_group_session_distribute(scratch, wrong, 1, &outbox), SOTTO_ERROR_WRONG_HANDLE);
    OK(sotto_group_session_add_member(b1->group, TEXT("carol"), &added));
    SottoPeerRecord *foreign[1] = {a1->own}; /* alice's record in bob/1's group */
    EXPECT_ERR(sotto_group_session_distribute(b1->group, foreign, 1, &outbox),
               SOTTO_ERROR_IDENTITY_MISMATCH);
    EXPECT_ERR(sotto_group_session_distribute_to(b1->group, empty, 1, &nothing),
               SOTTO_ERROR_IDENTITY_MISMATCH); /* carol's record, of alice/1 */
    EXPECT_ERR(sotto_group_session_rotate(b1->group, b1->device, &b1->peer, 1, &outbox),
               SOTTO_ERROR_NOT_GROUP_MEMBER); /* the own record and carol's are missing */
    OK(sotto_peer_record_encrypt_to(b1->peer, a1->id, TEXT("just chat"), &wire));
    received = receive(a1, b1, wire.ptr, wire.len);
    SottoInsertOutcome outcome = 0;
    EXPECT_ERR(sotto_group_session_install(a1->group, a1->peer, received, &outcome),
               SOTTO_ERROR_INVALID_ENCODING); /* a payload, not a distribution */
    EXPECT_ERR(sotto_group_session_install(a1->group, a1->peer, (SottoReceived *)a1->peer,
                                           &outcome),
               SOTTO_ERROR_WRONG_HANDLE);
    OK(sotto_received_free(received));
    EXPECT_ERR(sotto_received_free(received), SOTTO_ERROR_WRONG_HANDLE);
    release(&wire);
    SottoBuffer plain = {0};
    bool authenticated = false;
    EXPECT_ERR(sotto_group_session_decrypt(scratch, a1->peer, (const uint8_t *)"x", 1, &plain, &plain,
                                           &authenticated, &failure),
               SOTTO_ERROR_INVALID_ARGUMENT);
    CHECK(failure.action == SOTTO_ACTION_NONE);
    bool stale = false;
    EXPECT_ERR(sotto_group_session_after_restore(scratch, (SottoDevice *)scratch, 0, &stale),
               SOTTO_ERROR_WRONG_HANDLE);
    OK(sotto_group_session_free(scratch));
    OK(sotto_group_session_free(NULL));
    OK(sotto_peer_record_free(NULL));
    OK(sotto_received_free(NULL));
    OK(sotto_outbox_free(NULL));
    EXPECT_ERR(sotto_peer_record_free((SottoPeerRecord *)a1->group), SOTTO_ERROR_WRONG_HANDLE);

    /* Persistence: a plain copy, altered bytes, another context. */
    SottoBuffer saved = {0};
    OK(sotto_peer_record_to_bytes(fresh, &saved));
    SottoPeerRecord *copy = NULL;
    OK(sotto_peer_record_from_bytes(saved.ptr, saved.len, &copy));
    CHECK(record_generation(copy) == record_generation(fresh));
    size_t deleted = 9;
    OK(sotto_peer_record_after_restore(copy, record_generation(fresh), &deleted));
    CHECK(deleted == 0);
    OK(sotto_peer_record_free(copy));
    copy = NULL;
    EXPECT_ERR(sotto_peer_record_from_bytes(saved.ptr, saved.len - 1, &copy), SOTTO_ERROR_TRUNCATED);
    EXPECT_ERR(sotto_session_from_bytes(saved.ptr, saved.len, (SottoSession **)&copy),
               SOTTO_ERROR_WRONG_TYPE);
    release(&saved);
    CHECK(copy == NULL);

    OK(sotto_peer_record_free(fresh));
    OK(sotto_peer_record_free(empty));
    release(&own_bundle);
    release(&bob_bundle);
}

void sessions(void) {
    setup();
    conversation();
    retry_request();
    stale_restore();
    group();
    identity_change();
    expiry();
    error_paths();
    for (int i = 0; i < DEVICES; i++) {
        struct dev *d = &world[i];
        OK(sotto_group_session_free(d->group));
        OK(sotto_peer_record_free(d->peer));
        OK(sotto_peer_record_free(d->own));
        OK(sotto_device_free(d->device));
        release(&d->identity);
    }
    printf("sessions ok\n");
}
