"""sotto v1, written from SPEC.md alone.

A second, independent implementation of the sotto protocol used to check that
SPEC.md is precise enough for interoperability. Section numbers in comments
refer to SPEC.md. Nothing here is constant time or zeroizes memory: it is a
conformance model, not a library to ship.

Randomness is never drawn from the OS: every operation that the spec says
"draws" bytes takes an `rng` object whose `draw(n)` returns the next
caller-supplied byte string (see `Draws`).
"""

from __future__ import annotations

import copy
import hashlib
import hmac as _hmac

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF as _HKDF


# ---------------------------------------------------------------------------
# Errors (§12, §15.13)
# ---------------------------------------------------------------------------

class SottoError(Exception):
    """An error of §12 / §15.13: `name` is the variant, `fields` its public fields."""

    def __init__(self, name: str, **fields):
        super().__init__(name + (repr(fields) if fields else ""))
        self.name = name
        self.fields = fields


def fail(name, **fields):
    raise SottoError(name, **fields)


# ---------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------

VERSION = 0x01

TAG_RATCHET_MESSAGE = 0x01
TAG_PREKEY_MESSAGE = 0x02
TAG_GROUP_MESSAGE = 0x03
TAG_SENDER_KEY_DISTRIBUTION = 0x04
TAG_IDENTITY_KEY = 0x10
TAG_SIGNED_PREKEY = 0x11
TAG_ONE_TIME_PREKEY = 0x12
TAG_PREKEY_BUNDLE = 0x13
TAG_SESSION = 0x20
TAG_DEVICE = 0x21
TAG_GROUP_SENDER = 0x22
TAG_GROUP_RECEIVER = 0x23
TAG_SEALED = 0x30

# §8.7
MAX_SKIP = 1000
MAX_SKIPPED_KEYS_PER_CHAIN = 1000
MAX_SKIPPED_KEYS = 2000
MAX_RECEIVING_CHAINS = 5
MAX_PLAINTEXT_LEN = 262144
MAX_MESSAGE_LEN = 262325
# §10.1: "1 MiB"
MAX_STATE_LEN = 1 << 20

# §6 device limits (the table of §6; pinned by device.json).
MAX_ONE_TIME_PREKEYS = 1000
MAX_SIGNED_PREKEYS = 4
MAX_RECENT_BASE_KEYS = 1000

U32_MAX = 2**32 - 1

# §15.10
GROUP_SKIP_WINDOW = 32
MAX_GROUP_SKIPPED_KEYS = 256
MAX_GROUP_JUMP = 2**24
MAX_CHAINS_PER_SENDER = 4
MAX_GROUP_RECEIVERS = 1024
MAX_GROUP_MESSAGE_LEN = 262282
GROUP_MESSAGE_OVERHEAD = 138    # header 58 + tag 16 + signature 64

# §3
L_X3DH = b"sotto v1 x3dh"
L_ROOT = b"sotto v1 root"
L_CHAIN_MESSAGE = b"sotto v1 chain message"
L_CHAIN_NEXT = b"sotto v1 chain next"
L_MESSAGE_KEYS = b"sotto v1 message keys"
L_SIGNED_PREKEY = b"sotto v1 signed prekey"
L_FINGERPRINT = b"sotto v1 fingerprint"
L_SEALED = b"sotto v1 sealed state"
L_GROUP_STEP = b"sotto v1 group step"
L_GROUP_DERIVE = b"sotto v1 group derive"
L_GROUP_KEY = b"sotto v1 group key"
L_GROUP_MESSAGE_KEYS = b"sotto v1 group message keys"
L_GROUP_SIGNATURE = b"sotto v1 group signature"


def u8(x): return bytes([x])
def u16(x): return x.to_bytes(2, "big")
def u32(x): return x.to_bytes(4, "big")


class Draws:
    """A replayed RNG: hands out the recorded draws in order, checking sizes."""

    def __init__(self, draws):
        self.draws = [bytes.fromhex(d) if isinstance(d, str) else bytes(d) for d in draws]

    def draw(self, n):
        if not self.draws:
            raise AssertionError("RNG: no draw left for %d bytes" % n)
        d = self.draws.pop(0)
        if len(d) != n:
            raise AssertionError("RNG: recorded draw has %d bytes, %d wanted" % (len(d), n))
        return d

    def exhausted(self):
        return not self.draws


# ---------------------------------------------------------------------------
# §2 Primitives
# ---------------------------------------------------------------------------

P25519 = 2**255 - 19


def x25519(k: bytes, p: bytes) -> bytes:
    """RFC 7748 X25519 (clamping inside). Returns the raw 32 bytes, even all-zero."""
    try:
        return X25519PrivateKey.from_private_bytes(k).exchange(X25519PublicKey.from_public_bytes(p))
    except ValueError:
        # OpenSSL refuses to return the all-zero output of a low-order point.
        return bytes(32)


def DH(k: bytes, p: bytes) -> bytes:
    out = x25519(k, p)
    if out == bytes(32):
        fail("NonContributoryKey")
    return out


def pub(k: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(k).public_key().public_bytes_raw()


def HMAC(key: bytes, m: bytes) -> bytes:
    return _hmac.new(key, m, hashlib.sha256).digest()


def HKDF(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return _HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def SHA256(m: bytes) -> bytes:
    return hashlib.sha256(m).digest()


def KN(salt, ikm, info):
    okm = HKDF(salt, ikm, info, 44)
    return okm[:32], okm[32:44]


def Seal(key, nonce, ad, plaintext):
    return AESGCM(key).encrypt(nonce, plaintext, ad)


def Open(key, nonce, ad, ciphertext):
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, ad)
    except InvalidTag:
        fail("AuthenticationFailed")


def x25519_canonical(b: bytes) -> bool:
    """§2: top bit clear and little-endian value < 2^255 - 19."""
    return int.from_bytes(b, "little") < P25519  # implies bit 255 is 0


# --- Ed25519 (RFC 8032), pure Python, with the strict verification of §2 ----

ED_P = P25519
ED_L = 2**252 + 27742317777372353535851937790883648493
ED_D = (-121665 * pow(121666, ED_P - 2, ED_P)) % ED_P
ED_SQRT_M1 = pow(2, (ED_P - 1) // 4, ED_P)


def _ed_add(P, Q):
    # Extended twisted Edwards coordinates (X, Y, Z, T), a = -1.
    X1, Y1, Z1, T1 = P
    X2, Y2, Z2, T2 = Q
    A = (Y1 - X1) * (Y2 - X2) % ED_P
    B = (Y1 + X1) * (Y2 + X2) % ED_P
    C = 2 * T1 * T2 * ED_D % ED_P
    Dd = 2 * Z1 * Z2 % ED_P
    E, F, G, H = B - A, Dd - C, Dd + C, B + A
    return (E * F % ED_P, G * H % ED_P, F * G % ED_P, E * H % ED_P)


def _ed_mul(s, P):
    Q = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            Q = _ed_add(Q, P)
        P = _ed_add(P, P)
        s >>= 1
    return Q


def _ed_is_identity(P):
    X, Y, Z, _ = P
    return X % ED_P == 0 and (Y - Z) % ED_P == 0


def _ed_encode(P):
    X, Y, Z, _ = P
    zi = pow(Z, ED_P - 2, ED_P)
    x, y = X * zi % ED_P, Y * zi % ED_P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _ed_decode(b: bytes):
    """RFC 8032 §5.1.3 point decoding; None if it fails."""
    if len(b) != 32:
        return None
    n = int.from_bytes(b, "little")
    sign = n >> 255
    y = n & ((1 << 255) - 1)
    if y >= ED_P:
        return None
    u = (y * y - 1) % ED_P
    v = (ED_D * y * y + 1) % ED_P
    x = u * pow(v, 3, ED_P) * pow(u * pow(v, 7, ED_P), (ED_P - 5) // 8, ED_P) % ED_P
    if (v * x * x - u) % ED_P != 0:
        x = x * ED_SQRT_M1 % ED_P
        if (v * x * x - u) % ED_P != 0:
            return None
    if x == 0 and sign == 1:
        return None
    if (x & 1) != sign:
        x = ED_P - x
    return (x, y, 1, x * y % ED_P)


_ED_BY = 4 * pow(5, ED_P - 2, ED_P) % ED_P
ED_B = _ed_decode(_ED_BY.to_bytes(32, "little"))


def _ed_small_order(P):
    return _ed_is_identity(_ed_mul(8, P))


def ed25519_public_valid(b: bytes) -> bool:
    """§2: decodes, canonical (re-encodes to the same bytes), not of small order."""
    P = _ed_decode(b)
    return P is not None and _ed_encode(P) == b and not _ed_small_order(P)


def _ed_expand(seed):
    h = hashlib.sha512(seed).digest()
    a = bytearray(h[:32])
    a[0] &= 248
    a[31] &= 127
    a[31] |= 64
    return int.from_bytes(a, "little"), h[32:]


def ed25519_public(seed: bytes) -> bytes:
    a, _ = _ed_expand(seed)
    return _ed_encode(_ed_mul(a, ED_B))


def Sign(seed: bytes, m: bytes) -> bytes:
    a, prefix = _ed_expand(seed)
    A = _ed_encode(_ed_mul(a, ED_B))
    r = int.from_bytes(hashlib.sha512(prefix + m).digest(), "little") % ED_L
    R = _ed_encode(_ed_mul(r, ED_B))
    k = int.from_bytes(hashlib.sha512(R + A + m).digest(), "little") % ED_L
    S = (r + k * a) % ED_L
    return R + S.to_bytes(32, "little")


def verify_strict(A_bytes: bytes, m: bytes, sig: bytes) -> bool:
    """§2 Verify, steps 1-4."""
    if len(sig) != 64:
        return False
    R_bytes, S_bytes = sig[:32], sig[32:]
    S = int.from_bytes(S_bytes, "little")
    if S >= ED_L:                                   # 1
        return False
    R = _ed_decode(R_bytes)                          # 2
    A = _ed_decode(A_bytes)
    if R is None or A is None:
        return False
    if _ed_small_order(R) or _ed_small_order(A):     # 3
        return False
    k = int.from_bytes(hashlib.sha512(R_bytes + A_bytes + m).digest(), "little") % ED_L
    negA = (ED_P - A[0], A[1], A[2], ED_P - A[3])
    check = _ed_add(_ed_mul(S, ED_B), _ed_mul(k, negA))
    return _ed_encode(check) == R_bytes              # 4


def Verify(pk, m, sig):
    if not verify_strict(pk, m, sig):
        fail("InvalidSignature")


# ---------------------------------------------------------------------------
# §4 Decoding
# ---------------------------------------------------------------------------

class Reader:
    """Reads fields in order; each check fails at the field that breaks it (§4)."""

    def __init__(self, data: bytes, max_len: int | None = None):
        if max_len is not None and len(data) > max_len:
            fail("TooLarge")                        # rule 1, before anything else
        self.data = bytes(data)
        self.pos = 0

    def take(self, n):
        if len(self.data) - self.pos < n:
            fail("Truncated")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def u8(self): return self.take(1)[0]
    def u16(self): return int.from_bytes(self.take(2), "big")
    def u32(self): return int.from_bytes(self.take(4), "big")

    def header(self, expected_tag):
        version = self.u8()
        if version != VERSION:
            fail("UnsupportedVersion", found=version)
        tag = self.u8()
        if tag != expected_tag:
            fail("WrongType", expected=expected_tag, found=tag)

    def flag(self):
        f = self.u8()
        if f not in (0, 1):
            fail("InvalidEncoding")
        return f == 1

    def x25519_public(self):
        b = self.take(32)
        if not x25519_canonical(b):
            fail("InvalidPublicKey")
        return b

    def ed25519_public(self):
        b = self.take(32)
        if not ed25519_public_valid(b):
            fail("InvalidPublicKey")
        return b

    def identity(self):
        """64-byte embedded identity key: Ed25519 half, then X25519 half (§5.1)."""
        return self.ed25519_public() + self.x25519_public()

    def rest(self):
        b = self.data[self.pos:]
        self.pos = len(self.data)
        return b

    def remaining(self):
        return len(self.data) - self.pos

    def finish(self):
        if self.pos != len(self.data):
            fail("TrailingBytes")


# ---------------------------------------------------------------------------
# §5 Keys
# ---------------------------------------------------------------------------

def identity_key_from_bytes(data: bytes) -> bytes:
    """§5.1 standalone identity key (66 bytes) -> the 64-byte embedded form."""
    r = Reader(data)
    r.header(TAG_IDENTITY_KEY)
    ik = r.identity()
    r.finish()
    return ik


def identity_key_to_bytes(ik: bytes) -> bytes:
    return bytes([VERSION, TAG_IDENTITY_KEY]) + ik


def fingerprint(ik: bytes) -> bytes:
    return SHA256(L_FINGERPRINT + ik)


def fingerprint_display(fp: bytes) -> str:
    h = fp.hex()
    return " ".join(h[i:i + 8] for i in range(0, 64, 8))


def signed_prekey_data(ik_dh_pub, spk_id, spk_pub):
    return L_SIGNED_PREKEY + ik_dh_pub + u32(spk_id) + spk_pub


def signed_prekey_to_bytes(spk_id, spk_pub, sig):
    return bytes([VERSION, TAG_SIGNED_PREKEY]) + u32(spk_id) + spk_pub + sig


def signed_prekey_from_bytes(data):
    r = Reader(data)
    r.header(TAG_SIGNED_PREKEY)
    spk_id = r.u32()
    spk_pub = r.x25519_public()
    sig = r.take(64)
    r.finish()
    return spk_id, spk_pub, sig


def one_time_prekey_to_bytes(opk_id, opk_pub):
    return bytes([VERSION, TAG_ONE_TIME_PREKEY]) + u32(opk_id) + opk_pub


def one_time_prekey_from_bytes(data):
    r = Reader(data)
    r.header(TAG_ONE_TIME_PREKEY)
    opk_id = r.u32()
    opk_pub = r.x25519_public()
    r.finish()
    return opk_id, opk_pub


class PreKeyBundle:
    """§5.5. `opk` is None or (id, public)."""

    def __init__(self, ik, spk_id, spk_pub, sig, opk):
        self.ik, self.spk_id, self.spk_pub, self.sig, self.opk = ik, spk_id, spk_pub, sig, opk

    def to_bytes(self):
        b = bytes([VERSION, TAG_PREKEY_BUNDLE]) + self.ik + u32(self.spk_id) + self.spk_pub + self.sig
        if self.opk is None:
            return b + b"\x00"
        return b + b"\x01" + u32(self.opk[0]) + self.opk[1]

    @classmethod
    def from_bytes(cls, data):
        r = Reader(data)
        r.header(TAG_PREKEY_BUNDLE)
        ik = r.identity()
        spk_id = r.u32()
        spk_pub = r.x25519_public()
        sig = r.take(64)
        opk = None
        if r.flag():
            opk_id = r.u32()
            opk = (opk_id, r.x25519_public())
        r.finish()
        return cls(ik, spk_id, spk_pub, sig, opk)

    def verify(self):
        Verify(self.ik[:32], signed_prekey_data(self.ik[32:], self.spk_id, self.spk_pub), self.sig)
        return self

    def verify_for(self, expected_ik):
        # §5.5: "verify_for checks the identity first, then the signature".
        if not _hmac.compare_digest(self.ik, expected_ik):
            fail("IdentityMismatch")
        return self.verify()


# ---------------------------------------------------------------------------
# §9 Wire formats
# ---------------------------------------------------------------------------

class RatchetMessage:
    """§9.1. `raw` is the complete ratchet-message encoding."""

    def __init__(self, K, PN, N, salt, ciphertext):
        self.K, self.PN, self.N, self.salt, self.ciphertext = K, PN, N, salt, ciphertext

    def header(self):
        return bytes([VERSION, TAG_RATCHET_MESSAGE]) + self.K + u32(self.PN) + u32(self.N) + self.salt

    def to_bytes(self):
        return self.header() + self.ciphertext

    @classmethod
    def parse(cls, data):
        r = Reader(data, MAX_MESSAGE_LEN)
        r.header(TAG_RATCHET_MESSAGE)
        K = r.x25519_public()
        PN = r.u32()
        N = r.u32()
        salt = r.take(16)
        ct = r.rest()
        if len(ct) < 16:
            fail("Truncated")
        if len(ct) > MAX_PLAINTEXT_LEN + 16:
            fail("TooLarge")
        return cls(K, PN, N, salt, ct)


class PreKeyMessage:
    """§9.2."""

    def __init__(self, ik, base_key, spk_id, opk_id, inner: RatchetMessage):
        self.ik, self.base_key, self.spk_id, self.opk_id, self.inner = ik, base_key, spk_id, opk_id, inner

    def prekey_header(self):
        b = bytes([VERSION, TAG_PREKEY_MESSAGE]) + self.ik + self.base_key + u32(self.spk_id)
        if self.opk_id is None:
            return b + b"\x00"
        return b + b"\x01" + u32(self.opk_id)

    def to_bytes(self):
        return self.prekey_header() + self.inner.to_bytes()

    @classmethod
    def parse(cls, data):
        r = Reader(data, MAX_MESSAGE_LEN)
        r.header(TAG_PREKEY_MESSAGE)
        ik = r.identity()
        base_key = r.x25519_public()
        spk_id = r.u32()
        opk_id = r.u32() if r.flag() else None
        inner = RatchetMessage.parse(r.rest())
        return cls(ik, base_key, spk_id, opk_id, inner)


def parse_message(data: bytes):
    """§9.2 dispatch: byte 1 == 0x02 is a prekey message, anything else a ratchet message."""
    if len(data) > MAX_MESSAGE_LEN:
        fail("TooLarge")
    if len(data) >= 2 and data[1] == TAG_PREKEY_MESSAGE:
        return PreKeyMessage.parse(data)
    return RatchetMessage.parse(data)


# ---------------------------------------------------------------------------
# §8 Double Ratchet
# ---------------------------------------------------------------------------

def KDF_RK(rk, dh_out):
    okm = HKDF(rk, dh_out, L_ROOT, 64)
    return okm[:32], okm[32:]


def chain_step(ck):
    return HMAC(ck, L_CHAIN_MESSAGE), HMAC(ck, L_CHAIN_NEXT)


def derive_keys(ck, a, b):
    """Message keys a..b (exclusive) of a chain at index a with key ck -> ([(i, mk)], ck_b)."""
    out = []
    for i in range(a, b):
        mk, ck = chain_step(ck)
        out.append((i, mk))
    return out, ck


class ReceivingChain:
    def __init__(self, ratchet_key, ck, next_index, skipped=None):
        self.ratchet_key = ratchet_key
        self.ck = ck                      # None for closed chains
        self.next = next_index
        self.skipped = dict(skipped or {})  # index -> message key, kept in index order


class SendingChain:
    def __init__(self, secret, public, ck, ns):
        self.secret, self.public, self.ck, self.ns = secret, public, ck, ns


INITIATOR, RESPONDER = 0, 1


class Session:
    """§8.1 session state. `trace` records the intermediates of the last operation."""

    def __init__(self):
        self.role = None
        self.local_identity = None
        self.remote_identity = None
        self.base_key = None
        self.pending = None               # (spk_id, opk_id or None)
        self.RK = None
        self.DHr = None
        self.sending = None               # SendingChain or None
        self.PN = 0
        self.chains = []                  # ReceivingChain, oldest first
        self.trace = {}

    @property
    def AD(self):
        if self.role == INITIATOR:
            return self.local_identity + self.remote_identity
        return self.remote_identity + self.local_identity

    def current_chain(self):
        return self.chains[-1] if self.chains else None

    def skipped_count(self):
        return sum(len(c.skipped) for c in self.chains)

    # ---- §8.5 Encrypt --------------------------------------------------

    def encrypt(self, rng, plaintext: bytes) -> bytes:
        if len(plaintext) > MAX_PLAINTEXT_LEN:
            fail("PlaintextTooLarge")
        if self.sending is not None and self.sending.ns == U32_MAX:
            fail("ChainExhausted")
        trace = {"dh_ratchet": None}
        if self.sending is None:
            secret = rng.draw(32)
            dh_out = DH(secret, self.DHr)
            rk_in = self.RK
            new_rk, cks = KDF_RK(self.RK, dh_out)
            trace["dh_ratchet"] = {
                "ratchet_private": secret, "ratchet_public": pub(secret),
                "remote_ratchet_public": self.DHr, "dh_output": dh_out,
                "root_key_in": rk_in, "root_key_out": new_rk, "chain_key_out": cks,
            }
            self.RK = new_rk
            self.sending = SendingChain(secret, pub(secret), cks, 0)
        salt = rng.draw(16)
        s = self.sending
        mk, ck_next = chain_step(s.ck)
        rm = RatchetMessage(s.public, self.PN, s.ns, salt, b"")
        prefix = b""
        if self.pending is not None:
            pk = PreKeyMessage(self.local_identity, self.base_key, self.pending[0], self.pending[1], rm)
            prefix = pk.prekey_header()
        aad = self.AD + prefix + rm.header()
        key, nonce = KN(salt, mk, L_MESSAGE_KEYS)
        rm.ciphertext = Seal(key, nonce, aad, plaintext)
        trace.update({
            "previous_chain_length": self.PN, "message_number": s.ns, "chain_key": s.ck,
            "message_key": mk, "next_chain_key": ck_next, "salt": salt, "aes_key": key,
            "nonce": nonce, "header": rm.header(), "aad": aad, "ciphertext": rm.ciphertext,
        })
        s.ck, s.ns = ck_next, s.ns + 1
        out = prefix + rm.to_bytes()
        trace["message"] = out
        trace["kind"] = "prekey" if prefix else "ratchet"
        self.trace = trace
        return out

    # ---- §8.6 Decrypt --------------------------------------------------

    def decrypt(self, message) -> bytes:
        """All or nothing: works on a copy and commits only on success."""
        if isinstance(message, (bytes, bytearray)):
            message = parse_message(bytes(message))
        work = copy.deepcopy(self)
        plaintext = work._decrypt(message)
        self.__dict__.update(work.__dict__)
        return plaintext

    def _decrypt(self, msg):
        prefix = b""
        if isinstance(msg, PreKeyMessage):
            if not _hmac.compare_digest(msg.ik, self.remote_identity):
                fail("IdentityMismatch")
            if self.role != RESPONDER or msg.base_key != self.base_key:
                fail("SessionMismatch")
            prefix = msg.prekey_header()
            msg = msg.inner
        pt = self._decrypt_ratchet(msg, self.AD + prefix + msg.header())
        self.pending = None
        self._enforce_bounds()
        self.trace["skipped_keys_after"] = self.skipped_count()
        return pt

    def _decrypt_ratchet(self, m: RatchetMessage, aad):
        trace = {"dh_ratchet": None, "skipped_stored": []}
        self.trace = trace
        chain = next((c for c in self.chains if c.ratchet_key == m.K), None)
        if chain is not None:
            if m.N in chain.skipped:                                   # 1.1
                mk = chain.skipped[m.N]
                pt = open_message(mk, m, aad)
                del chain.skipped[m.N]
                trace.update(key_source="skipped", message_key=mk)
                return pt
            if chain is self.current_chain() and m.N >= chain.next:    # 1.2
                if m.N - chain.next > MAX_SKIP:
                    fail("TooFarAhead", skipped=m.N - chain.next)
                if m.N == U32_MAX:
                    fail("ChainExhausted")
                keys, ck = derive_keys(chain.ck, chain.next, m.N)
                mk, ck_next = chain_step(ck)
                pt = open_message(mk, m, aad)
                for i, k in keys:
                    chain.skipped[i] = k
                chain.ck, chain.next = ck_next, m.N + 1
                trace["skipped_stored"] = [(chain.ratchet_key, i, k) for i, k in keys]
                trace.update(key_source="chain", message_key=mk)
                return pt
            fail("DuplicateMessage")                                   # 1.3
        # 2: a new ratchet key
        if self.sending is None:
            fail("UnexpectedRatchetKey")
        cur = self.current_chain()
        c = cur.next if cur is not None else 0
        closing = max(m.PN - c, 0) if cur is not None else 0
        if closing + m.N > MAX_SKIP:
            fail("TooFarAhead", skipped=closing + m.N)
        if m.N == U32_MAX:
            fail("ChainExhausted")
        dh_out = DH(self.sending.secret, m.K)
        new_rk, ckr = KDF_RK(self.RK, dh_out)
        new_keys, ck = derive_keys(ckr, 0, m.N)
        mk, ck_next = chain_step(ck)
        closing_keys = derive_keys(cur.ck, c, m.PN)[0] if cur is not None else []
        pt = open_message(mk, m, aad)
        trace["dh_ratchet"] = {
            "ratchet_private": self.sending.secret, "remote_ratchet_public": m.K,
            "dh_output": dh_out, "root_key_in": self.RK, "root_key_out": new_rk,
            "chain_key_out": ckr,
        }
        if cur is not None:
            for i, k in closing_keys:
                cur.skipped[i] = k
            cur.ck = None
            cur.next = max(c, m.PN)
            trace["skipped_stored"] += [(cur.ratchet_key, i, k) for i, k in closing_keys]
        self.chains.append(ReceivingChain(m.K, ck_next, m.N + 1, dict(new_keys)))
        trace["skipped_stored"] += [(m.K, i, k) for i, k in new_keys]
        self.RK = new_rk
        self.DHr = m.K
        self.PN = self.sending.ns
        self.sending = None
        trace.update(key_source="chain", message_key=mk)
        return pt

    def _enforce_bounds(self):
        """§8.7: chains, then per chain, then total. Records what went in
        `self.trace["evicted"]`: {"chains": [ratchet keys], "keys": [(rule, ratchet
        key, [indices])]}, one keys entry per (rule, chain) in the order deleted."""
        chains, keys = [], []

        def drop_key(rule, ch):
            i = min(ch.skipped)
            del ch.skipped[i]
            if keys and keys[-1][0] == rule and keys[-1][1] is ch:
                keys[-1][2].append(i)
            else:
                keys.append((rule, ch, [i]))

        while len(self.chains) > MAX_RECEIVING_CHAINS:
            chains.append(self.chains.pop(0).ratchet_key)
        for ch in self.chains:
            while len(ch.skipped) > MAX_SKIPPED_KEYS_PER_CHAIN:
                drop_key("per_chain", ch)
        while self.skipped_count() > MAX_SKIPPED_KEYS:
            drop_key("total", next(c for c in self.chains if c.skipped))
        self.trace["evicted"] = {"chains": chains,
                                 "keys": [(rule, ch.ratchet_key, idx) for rule, ch, idx in keys]}

    # ---- §10.2 Saved state ----------------------------------------------

    def to_bytes(self) -> bytes:
        b = bytearray([VERSION, TAG_SESSION, self.role])
        b += self.local_identity + self.remote_identity + self.base_key
        if self.pending is None:
            b += b"\x00"
        else:
            b += b"\x01" + u32(self.pending[0])
            b += b"\x00" if self.pending[1] is None else b"\x01" + u32(self.pending[1])
        b += self.RK + self.DHr
        if self.sending is None:
            b += b"\x00"
        else:
            b += b"\x01" + self.sending.secret + self.sending.ck + u32(self.sending.ns)
        b += u32(self.PN)
        b += u8(len(self.chains))
        for ch in self.chains:
            b += ch.ratchet_key
            b += b"\x00" if ch.ck is None else b"\x01" + ch.ck
            b += u32(ch.next) + u16(len(ch.skipped))
            for i in sorted(ch.skipped):
                b += u32(i) + ch.skipped[i]
        return bytes(b)

    @classmethod
    def from_bytes(cls, data: bytes):
        r = Reader(data, MAX_STATE_LEN)
        r.header(TAG_SESSION)
        s = cls()
        s.role = r.u8()
        if s.role not in (INITIATOR, RESPONDER):
            fail("InvalidEncoding")
        s.local_identity = r.identity()
        s.remote_identity = r.identity()
        s.base_key = r.take(32)          # §4: base keys in saved state are not validated
        if r.flag():
            if s.role != INITIATOR:
                fail("InvalidEncoding")
            spk_id = r.u32()
            opk_id = r.u32() if r.flag() else None
            s.pending = (spk_id, opk_id)
        s.RK = r.take(32)
        s.DHr = r.x25519_public()
        if r.flag():
            secret = r.take(32)
            ck = r.take(32)
            ns = r.u32()
            s.sending = SendingChain(secret, pub(secret), ck, ns)
        s.PN = r.u32()
        count = r.u8()
        if count > MAX_RECEIVING_CHAINS:
            fail("InvalidEncoding")
        total = 0
        for n in range(count):
            last = n == count - 1
            key = r.take(32)             # §4: ratchet keys of receiving chains are not validated
            has_ck = r.flag()
            if has_ck != last:
                fail("InvalidEncoding")
            ck = r.take(32) if has_ck else None
            nxt = r.u32()
            kc = r.u16()
            total += kc
            if kc > MAX_SKIPPED_KEYS_PER_CHAIN or total > MAX_SKIPPED_KEYS:
                fail("InvalidEncoding")
            skipped = {}
            prev = -1
            for _ in range(kc):
                i = r.u32()
                if i <= prev or i >= nxt:
                    fail("InvalidEncoding")
                skipped[i] = r.take(32)
                prev = i
            s.chains.append(ReceivingChain(key, ck, nxt, skipped))
        r.finish()
        # §10.2: "After the last field and the TrailingBytes check: if there is at
        # least one chain, the last chain's ratchet key MUST equal dhr".
        if s.chains and s.chains[-1].ratchet_key != s.DHr:
            fail("InvalidEncoding")
        return s

    def seal(self, rng, storage_key):
        return seal_state(self.to_bytes(), storage_key, rng.draw(32))

    @classmethod
    def unseal(cls, data, storage_key):
        return cls.from_bytes(unseal_state(data, storage_key, TAG_SESSION))


def open_message(mk, m: RatchetMessage, aad):
    key, nonce = KN(m.salt, mk, L_MESSAGE_KEYS)
    return Open(key, nonce, aad, m.ciphertext)


# ---------------------------------------------------------------------------
# §6 Device, §7 X3DH
# ---------------------------------------------------------------------------

def x3dh_sk(dhs):
    return HKDF(bytes(32), b"\xff" * 32 + b"".join(dhs), L_X3DH, 32)


class Device:
    def __init__(self):
        self.sig_seed = None
        self.dh_secret = None
        self.next_spk_id = 1
        self.next_opk_id = 1
        self.spks = []          # (id, secret, signature), oldest first, last is current
        self.opks = []          # (id, secret), id order
        self.recent_base_keys = []
        self.trace = {}

    # identity
    @property
    def ik_sig_pub(self): return ed25519_public(self.sig_seed)
    @property
    def ik_dh_pub(self): return pub(self.dh_secret)
    @property
    def identity_key(self): return self.ik_sig_pub + self.ik_dh_pub

    def _new_spk(self, rng):
        # §6: "If the next id is 2^32 - 1: TooManyPreKeys, no change" (id 2^32 - 1
        # is never assigned, so the stored next id always fits in a u32).
        if self.next_spk_id >= U32_MAX:
            fail("TooManyPreKeys")
        secret = rng.draw(32)
        spk_id = self.next_spk_id
        sig = Sign(self.sig_seed, signed_prekey_data(self.ik_dh_pub, spk_id, pub(secret)))
        self.spks.append((spk_id, secret, sig))
        self.next_spk_id += 1

    @classmethod
    def generate(cls, rng):
        d = cls()
        d.sig_seed = rng.draw(32)
        d.dh_secret = rng.draw(32)
        d._new_spk(rng)
        return d

    def rotate_signed_prekey(self, rng):
        self._new_spk(rng)
        while len(self.spks) - 1 > MAX_SIGNED_PREKEYS - 1:
            self.spks.pop(0)

    def generate_one_time_prekeys(self, rng, count):
        # §6: more than MAX_ONE_TIME_PREKEYS held, or next_id + count > 2^32 - 1.
        if len(self.opks) + count > MAX_ONE_TIME_PREKEYS or self.next_opk_id + count > U32_MAX:
            fail("TooManyPreKeys")
        for _ in range(count):
            self.opks.append((self.next_opk_id, rng.draw(32)))
            self.next_opk_id += 1

    def signed_prekey_bytes(self, index=-1):
        spk_id, secret, sig = self.spks[index]
        return signed_prekey_to_bytes(spk_id, pub(secret), sig)

    def bundle(self, opk_id=None) -> PreKeyBundle:
        spk_id, secret, sig = self.spks[-1]
        opk = None
        if opk_id is not None:
            opk = (opk_id, pub(dict(self.opks)[opk_id]))
        return PreKeyBundle(self.identity_key, spk_id, pub(secret), sig, opk)

    # §7.1
    def initiate(self, rng, bundle: PreKeyBundle) -> Session:
        """Needs a bundle on which .verify() has succeeded."""
        ek = rng.draw(32)
        dhs = [DH(self.dh_secret, bundle.spk_pub), DH(ek, bundle.ik[32:]), DH(ek, bundle.spk_pub)]
        if bundle.opk is not None:
            dhs.append(DH(ek, bundle.opk[1]))
        sk = x3dh_sk(dhs)
        s = Session()
        s.role = INITIATOR
        s.local_identity = self.identity_key
        s.remote_identity = bundle.ik
        s.base_key = pub(ek)
        s.pending = (bundle.spk_id, bundle.opk[0] if bundle.opk else None)
        s.RK = sk
        s.DHr = bundle.spk_pub
        self.trace = {"base_key_private": ek, "dhs": dhs, "sk": sk}
        return s

    # §7.2
    def accept(self, message):
        """Returns (session, plaintext); the device changes only on success."""
        if isinstance(message, (bytes, bytearray)):
            message = parse_message(bytes(message))
        if not isinstance(message, PreKeyMessage):
            fail("WrongType", expected=TAG_PREKEY_MESSAGE, found=TAG_RATCHET_MESSAGE)
        m = message
        if m.base_key in self.recent_base_keys:                       # 1
            fail("DuplicatePreKeyMessage")
        spk = next((x for x in self.spks if x[0] == m.spk_id), None)  # 2
        if spk is None:
            fail("UnknownSignedPreKey", id=m.spk_id)
        opk_secret = None
        if m.opk_id is not None:                                      # 3
            opk_secret = dict(self.opks).get(m.opk_id)
            if opk_secret is None:
                fail("UnknownOneTimePreKey", id=m.opk_id)
        spk_secret = spk[1]
        dhs = [DH(spk_secret, m.ik[32:]), DH(self.dh_secret, m.base_key), DH(spk_secret, m.base_key)]  # 4
        if opk_secret is not None:
            dhs.append(DH(opk_secret, m.base_key))
        sk = x3dh_sk(dhs)
        rm = m.inner
        if rm.N > MAX_SKIP:                                           # 5
            fail("TooFarAhead", skipped=rm.N)
        dh_out = DH(spk_secret, rm.K)                                 # 6
        rk, ckr = KDF_RK(sk, dh_out)
        keys, ck = derive_keys(ckr, 0, rm.N)
        mk, ck_next = chain_step(ck)
        s = Session()
        s.role = RESPONDER
        s.local_identity = self.identity_key
        s.remote_identity = m.ik
        s.base_key = m.base_key
        aad = s.AD + m.prekey_header() + rm.header()
        pt = open_message(mk, rm, aad)                                # 7
        # 8: commit
        if m.opk_id is not None:
            self.opks = [x for x in self.opks if x[0] != m.opk_id]
        self.recent_base_keys.append(m.base_key)
        while len(self.recent_base_keys) > MAX_RECENT_BASE_KEYS:
            self.recent_base_keys.pop(0)
        s.RK = rk
        s.DHr = rm.K
        s.PN = 0
        s.chains = [ReceivingChain(rm.K, ck_next, rm.N + 1, dict(keys))]
        s.trace = {
            "dh_ratchet": {"ratchet_private": spk_secret, "remote_ratchet_public": rm.K,
                           "dh_output": dh_out, "root_key_in": sk, "root_key_out": rk,
                           "chain_key_out": ckr},
            "skipped_stored": [(rm.K, i, k) for i, k in keys],
            "key_source": "chain", "message_key": mk, "skipped_keys_after": len(keys),
            "evicted": {"chains": [], "keys": []},   # one chain of at most MAX_SKIP keys
        }
        self.trace = {"dhs": dhs, "sk": sk}
        return s, pt

    # §10.3
    def to_bytes(self) -> bytes:
        b = bytearray([VERSION, TAG_DEVICE]) + self.sig_seed + self.dh_secret
        b += u32(self.next_spk_id) + u32(self.next_opk_id)
        b += u8(len(self.spks))
        for spk_id, secret, sig in self.spks:
            b += u32(spk_id) + secret + sig
        b += u16(len(self.opks))
        for opk_id, secret in self.opks:
            b += u32(opk_id) + secret
        b += u16(len(self.recent_base_keys))
        for k in self.recent_base_keys:
            b += k
        return bytes(b)

    @classmethod
    def from_bytes(cls, data: bytes):
        r = Reader(data, MAX_STATE_LEN)
        r.header(TAG_DEVICE)
        d = cls()
        d.sig_seed = r.take(32)
        d.dh_secret = r.take(32)
        d.next_spk_id = r.u32()
        d.next_opk_id = r.u32()
        n = r.u8()
        if not 1 <= n <= MAX_SIGNED_PREKEYS:
            fail("InvalidEncoding")
        prev = -1
        for _ in range(n):
            spk_id = r.u32()
            if spk_id <= prev or spk_id >= d.next_spk_id:
                fail("InvalidEncoding")
            d.spks.append((spk_id, r.take(32), r.take(64)))
            prev = spk_id
        n = r.u16()
        if n > MAX_ONE_TIME_PREKEYS:
            fail("InvalidEncoding")
        prev = -1
        for _ in range(n):
            opk_id = r.u32()
            if opk_id <= prev or opk_id >= d.next_opk_id:
                fail("InvalidEncoding")
            d.opks.append((opk_id, r.take(32)))
            prev = opk_id
        n = r.u16()
        if n > MAX_RECENT_BASE_KEYS:
            fail("InvalidEncoding")
        for _ in range(n):
            # §4: recent base keys inside saved state are not validated.
            d.recent_base_keys.append(r.take(32))
        r.finish()
        return d

    def seal(self, rng, storage_key):
        return seal_state(self.to_bytes(), storage_key, rng.draw(32))

    @classmethod
    def unseal(cls, data, storage_key):
        return cls.from_bytes(unseal_state(data, storage_key, TAG_DEVICE))


# ---------------------------------------------------------------------------
# §10.4 Sealed state
# ---------------------------------------------------------------------------

def seal_state(plain: bytes, storage_key: bytes, salt: bytes) -> bytes:
    inner_type = plain[1]
    head = bytes([VERSION, TAG_SEALED, inner_type]) + salt
    key, nonce = KN(salt, storage_key, L_SEALED)
    return head + Seal(key, nonce, head, plain)


def unseal_state(data: bytes, storage_key: bytes, expected_inner: int) -> bytes:
    # §10.4: TooLarge is checked on the *sealed* input (MAX_STATE_LEN).
    r = Reader(data, MAX_STATE_LEN)
    r.header(TAG_SEALED)
    inner = r.u8()
    if inner != expected_inner:
        fail("WrongType", expected=expected_inner, found=inner)
    salt = r.take(32)
    ct = r.rest()
    if len(ct) < 16:
        fail("Truncated")
    key, nonce = KN(salt, storage_key, L_SEALED)
    return Open(key, nonce, data[:35], ct)


# ---------------------------------------------------------------------------
# §15 Group messaging
# ---------------------------------------------------------------------------

def g_step(R): return SHA256(L_GROUP_STEP + R)
def g_derive(R): return SHA256(L_GROUP_DERIVE + R)
def digit(i, k): return (i >> (4 * (7 - k))) & 0xF


class GroupRatchet:
    """§15.4 hierarchical hash ratchet at index `index`: R[0..8]."""

    def __init__(self, R, index=0):
        assert len(R) == 8 and all(len(x) == 32 for x in R)
        self.R = list(R)
        self.index = index

    @classmethod
    def from_bytes256(cls, b, index):
        return cls([b[32 * k:32 * k + 32] for k in range(8)], index)

    def to_bytes256(self):
        return b"".join(self.R)

    def copy(self):
        return GroupRatchet(self.R, self.index)

    def increment(self):
        i = self.index
        assert i < U32_MAX
        k = max(k for k in range(8) if digit(i, k) != 15)
        self.R[k] = g_step(self.R[k])
        for m in range(k + 1, 8):
            self.R[m] = g_derive(self.R[m - 1])
        self.index = i + 1

    def jump(self, j):
        i = self.index
        assert j >= i
        if j == i:
            return
        for k in range(8):
            sh = 4 * (7 - k)
            if i >> sh == j >> sh:
                continue
            for _ in range(digit(j, k) - digit(i, k)):
                self.R[k] = g_step(self.R[k])
            for m in range(k + 1, 8):
                self.R[m] = g_derive(self.R[m - 1])
            i = (j >> sh) << sh
        self.index = j

    def key(self):
        return SHA256(L_GROUP_KEY + self.R[7])


def group_closed_form(R0, i):
    """§15.4 closed form: R_k(i) from the initial state R0 (index 0)."""
    out = []
    for k in range(8):
        if k == 0 or all(digit(i, m) == 0 for m in range(k)):
            base = R0[k]
        else:
            base = g_derive(out[k - 1])
        for _ in range(digit(i, k)):
            base = g_step(base)
        out.append(base)
    return out


class GroupMessage:
    """§15.5."""

    def __init__(self, group_id, chain_id, index, salt, ciphertext, signature):
        self.group_id, self.chain_id, self.index = group_id, chain_id, index
        self.salt, self.ciphertext, self.signature = salt, ciphertext, signature

    def header(self):
        return (bytes([VERSION, TAG_GROUP_MESSAGE]) + self.group_id + u32(self.chain_id)
                + u32(self.index) + self.salt)

    def signed_part(self):
        return self.header() + self.ciphertext

    def to_bytes(self):
        return self.signed_part() + self.signature

    @classmethod
    def parse(cls, data):
        # §15.5: TooLarge before parsing; then version and type (§4); then input
        # shorter than 138 bytes is Truncated. The fields after the type are fixed
        # width and carry no checks, so "Truncated at the first field that does not
        # fit" and "Truncated if len < 138" give the same error on every input.
        r = Reader(data, MAX_GROUP_MESSAGE_LEN)
        r.header(TAG_GROUP_MESSAGE)
        if len(data) < GROUP_MESSAGE_OVERHEAD:
            fail("Truncated")
        gid = r.take(32)
        cid = r.u32()
        idx = r.u32()
        salt = r.take(16)
        body = r.rest()
        return cls(gid, cid, idx, salt, body[:-64], body[-64:])


def group_message_keys(salt, k_index):
    return KN(salt, k_index, L_GROUP_MESSAGE_KEYS)


class GroupSender:
    """§15 sender chain: group id, chain id, ratchet at the next index, signing seed."""

    def __init__(self, group_id, chain_id, ratchet: GroupRatchet, seed):
        self.group_id, self.chain_id, self.ratchet, self.seed = group_id, chain_id, ratchet, seed
        self.trace = {}

    @classmethod
    def new(cls, rng, group_id):
        chain_id = int.from_bytes(rng.draw(4), "big")
        R = rng.draw(256)
        seed = rng.draw(32)
        return cls(group_id, chain_id, GroupRatchet.from_bytes256(R, 0), seed)

    def rotate(self, rng):
        """A fresh chain (new id, ratchet at 0, new signing key) for the same group."""
        fresh = GroupSender.new(rng, self.group_id)
        self.__dict__.update(fresh.__dict__)

    @property
    def index(self): return self.ratchet.index

    @property
    def signing_public(self): return ed25519_public(self.seed)

    def encrypt(self, rng, plaintext):
        if len(plaintext) > MAX_PLAINTEXT_LEN:
            fail("PlaintextTooLarge")
        if self.ratchet.index == U32_MAX:
            fail("ChainExhausted")
        k = self.ratchet.key()
        salt = rng.draw(16)
        key, nonce = group_message_keys(salt, k)
        m = GroupMessage(self.group_id, self.chain_id, self.ratchet.index, salt, b"", b"")
        m.ciphertext = Seal(key, nonce, m.header(), plaintext)
        signed_data = L_GROUP_SIGNATURE + m.signed_part()
        m.signature = Sign(self.seed, signed_data)
        self.trace = {"index": m.index, "message_key": k, "salt": salt, "aes_key": key,
                      "nonce": nonce, "header": m.header(), "ciphertext": m.ciphertext,
                      "signed_data": signed_data, "signature": m.signature,
                      "message": m.to_bytes()}
        self.ratchet.increment()
        return m.to_bytes()

    def distribution(self) -> bytes:
        return (bytes([VERSION, TAG_SENDER_KEY_DISTRIBUTION]) + self.group_id + u32(self.chain_id)
                + u32(self.ratchet.index) + self.ratchet.to_bytes256() + self.signing_public)

    def to_bytes(self):
        return (bytes([VERSION, TAG_GROUP_SENDER]) + self.group_id + u32(self.chain_id)
                + u32(self.ratchet.index) + self.ratchet.to_bytes256() + self.seed)

    @classmethod
    def from_bytes(cls, data):
        r = Reader(data, MAX_STATE_LEN)
        r.header(TAG_GROUP_SENDER)
        gid = r.take(32)
        cid = r.u32()
        idx = r.u32()
        R = r.take(256)
        seed = r.take(32)
        r.finish()
        return cls(gid, cid, GroupRatchet.from_bytes256(R, idx), seed)

    def seal(self, rng, storage_key):
        return seal_state(self.to_bytes(), storage_key, rng.draw(32))

    @classmethod
    def unseal(cls, data, storage_key):
        return cls.from_bytes(unseal_state(data, storage_key, TAG_GROUP_SENDER))


def parse_distribution(data):
    """§15.6 -> (group_id, chain_id, index, R bytes, signing public key)."""
    # §4 rule 1 / §15.6: no up-front length check; longer input is TrailingBytes.
    r = Reader(data)
    r.header(TAG_SENDER_KEY_DISTRIBUTION)
    gid = r.take(32)
    cid = r.u32()
    idx = r.u32()
    R = r.take(256)
    spk = r.ed25519_public()
    r.finish()
    return gid, cid, idx, R, spk


UNAUTHENTICATED = None


class GroupReceiver:
    """§15.8. `sender` is a 64-byte identity key or UNAUTHENTICATED (None)."""

    def __init__(self, group_id, chain_id, signing_public, sender, ratchet: GroupRatchet, cache=None):
        self.group_id, self.chain_id, self.signing_public = group_id, chain_id, signing_public
        self.sender = sender
        self.ratchet = ratchet            # at `next`
        self.cache = dict(cache or {})    # index -> K_index, all < next
        self.trace = {}

    @property
    def next(self): return self.ratchet.index

    @classmethod
    def accept(cls, distribution: bytes, remote_identity: bytes):
        gid, cid, idx, R, spk = parse_distribution(distribution)
        return cls(gid, cid, spk, remote_identity, GroupRatchet.from_bytes256(R, idx))

    @classmethod
    def import_unauthenticated(cls, distribution: bytes):
        gid, cid, idx, R, spk = parse_distribution(distribution)
        return cls(gid, cid, spk, UNAUTHENTICATED, GroupRatchet.from_bytes256(R, idx))

    def decrypt(self, data):
        """Returns (plaintext, sender mark). All or nothing: the receiver changes
        only in the commit at the end. `self.trace` records the intermediate values."""
        m = GroupMessage.parse(data) if isinstance(data, (bytes, bytearray)) else data
        if m.group_id != self.group_id or m.chain_id != self.chain_id:       # 1
            fail("UnknownGroupChain")
        if not verify_strict(self.signing_public, L_GROUP_SIGNATURE + m.signed_part(), m.signature):
            fail("InvalidSignature")                                            # 2
        j, next_before = m.index, self.next
        if j in self.cache:                                                     # 3
            kj = self.cache[j]
            key, nonce = group_message_keys(m.salt, kj)
            pt = Open(key, nonce, m.header(), m.ciphertext)
            del self.cache[j]
            self.trace = {"key_source": "cache", "message_key": kj, "next_before": next_before,
                          "skip_from": None, "skipped_cached": [], "evicted": []}
            return pt, self.sender
        if j < self.next:                                                       # 4
            fail("DuplicateMessage")
        if j == U32_MAX or j - self.next > MAX_GROUP_JUMP:                      # 5
            fail("GroupIndexOutOfRange", index=j)
        work = self.ratchet.copy()                                              # 6
        s = max(self.next, j - GROUP_SKIP_WINDOW)
        work.jump(s)
        skipped = []
        for i in range(s, j):
            skipped.append((i, work.key()))
            work.increment()
        kj = work.key()
        key, nonce = group_message_keys(m.salt, kj)
        pt = Open(key, nonce, m.header(), m.ciphertext)
        work.increment()                                                        # 7: commit
        self.ratchet = work
        self.cache.update(skipped)
        evicted = []
        while len(self.cache) > MAX_GROUP_SKIPPED_KEYS:
            evicted.append(min(self.cache))
            del self.cache[evicted[-1]]
        self.trace = {"key_source": "ratchet", "message_key": kj, "next_before": next_before,
                      "skip_from": s, "skipped_cached": skipped, "evicted": evicted}
        return pt, self.sender

    def to_bytes(self):
        b = bytearray([VERSION, TAG_GROUP_RECEIVER]) + self.group_id + u32(self.chain_id)
        b += self.signing_public
        b += b"\x00" if self.sender is None else b"\x01" + self.sender
        b += u32(self.next) + self.ratchet.to_bytes256()
        b += u16(len(self.cache))
        for i in sorted(self.cache):
            b += u32(i) + self.cache[i]
        return bytes(b)

    @classmethod
    def from_bytes(cls, data):
        r = Reader(data, MAX_STATE_LEN)
        r.header(TAG_GROUP_RECEIVER)
        gid = r.take(32)
        cid = r.u32()
        spk = r.ed25519_public()
        sender = r.identity() if r.flag() else UNAUTHENTICATED
        nxt = r.u32()
        R = r.take(256)
        n = r.u16()
        if n > MAX_GROUP_SKIPPED_KEYS:
            fail("InvalidEncoding")
        cache = {}
        prev = -1
        for _ in range(n):
            i = r.u32()
            if i <= prev or i >= nxt:
                fail("InvalidEncoding")
            cache[i] = r.take(32)
            prev = i
        r.finish()
        return cls(gid, cid, spk, sender, GroupRatchet.from_bytes256(R, nxt), cache)

    def seal(self, rng, storage_key):
        return seal_state(self.to_bytes(), storage_key, rng.draw(32))

    @classmethod
    def unseal(cls, data, storage_key):
        return cls.from_bytes(unseal_state(data, storage_key, TAG_GROUP_RECEIVER))


class GroupReceivers:
    """§15.9 per-group store, oldest first. Has no saved-state encoding in SPEC."""

    def __init__(self, group_id):
        self.group_id = group_id
        self.receivers = []

    def add(self, rcv: GroupReceiver):
        """§15.9 insert. Returns (outcome, evicted chain ids): outcome is "added" or
        "advanced". On an error the store is unchanged."""
        if rcv.group_id != self.group_id:
            fail("GroupMismatch")
        triple = (rcv.sender, rcv.chain_id, rcv.signing_public)
        for held in self.receivers:
            same_id = held.chain_id == rcv.chain_id
            same_key = held.signing_public == rcv.signing_public
            if (same_id or same_key) and (held.sender, held.chain_id, held.signing_public) != triple:
                fail("GroupChainConflict")
        for held in self.receivers:
            if (held.sender, held.chain_id, held.signing_public) == triple:
                if rcv.next > held.next:
                    # The held receiver keeps its cache and its place; the incoming
                    # receiver's cached keys are dropped.
                    held.ratchet = rcv.ratchet.copy()
                    return "advanced", []
                fail("GroupChainNotNewer")
        evicted = []
        mine = [h for h in self.receivers if h.sender == rcv.sender]
        if len(mine) >= MAX_CHAINS_PER_SENDER:
            self.receivers.remove(mine[0])
            evicted.append(mine[0].chain_id)
        if len(self.receivers) >= MAX_GROUP_RECEIVERS:
            evicted.append(self.receivers.pop(0).chain_id)
        self.receivers.append(rcv)
        return "added", evicted

    def decrypt(self, data):
        m = GroupMessage.parse(data)
        if m.group_id != self.group_id:
            fail("UnknownGroupChain")
        for held in self.receivers:
            if held.chain_id == m.chain_id:
                self.last_receiver = held
                return held.decrypt(m)
        fail("UnknownGroupChain")

    def remove_sender(self, sender):
        """Deletes every chain of `sender` (None: every unauthenticated import);
        returns how many went."""
        n = len(self.receivers)
        self.receivers = [h for h in self.receivers if h.sender != sender]
        return n - len(self.receivers)
