"""sotto protocol version 2, written from SPEC.md (§1-§15) alone.

An independent second implementation of the sotto protocol, used to check that
SPEC.md is precise enough for interoperability. Section numbers in comments
refer to SPEC.md. Nothing here is constant time or zeroizes memory: it is a
conformance model, not a library to ship.

Randomness never comes from the OS: every operation that the spec says "draws"
bytes takes an `rng` whose `draw(n)` returns the next n bytes (see `Draws`,
`SeededRng`, `FailingRng`). An RNG that cannot answer raises
`SottoError("RandomnessUnavailable")`.

Every public operation is all or nothing: it works on a copy and commits only
on success, so on any error the objects passed in are unchanged (§12).

Primitives: `cryptography` (X25519, Ed25519 signing, AES-GCM, HKDF), hashlib,
hmac, `kyber-py` (ML-KEM-1024, FIPS 203 internal functions), and a pure-Python
Ed25519 point arithmetic for the strict verification of §2.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import hmac as _hmac

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF as _HKDF
from kyber_py.ml_kem import ML_KEM_1024


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

VERSION = 0x02

# §4 type tags
TAG_RATCHET_MESSAGE = 0x01
TAG_PREKEY_MESSAGE = 0x02
TAG_GROUP_MESSAGE = 0x03
TAG_DISTRIBUTION = 0x04
TAG_IDENTITY_KEY = 0x10
TAG_SIGNED_PREKEY = 0x11
TAG_ONE_TIME_PREKEY = 0x12
TAG_PREKEY_BUNDLE = 0x13
TAG_KEM_PREKEY = 0x14
TAG_SESSION = 0x20
TAG_DEVICE = 0x21
TAG_GROUP_SENDER = 0x22
TAG_GROUP_RECEIVER = 0x23
TAG_GROUP_STORE = 0x24
TAG_SEALED = 0x30

U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1

# §6
MAX_SIGNED_PREKEYS = 4
MAX_BASE_KEYS_PER_SIGNED_PREKEY = 1000
MAX_ONE_TIME_PREKEYS = 1000
MAX_LAST_RESORT_KEM_PREKEYS = 4
MAX_ONE_TIME_KEM_PREKEYS = 100

# §8.7
MAX_SKIP = 1000
MAX_SKIPPED_KEYS_PER_CHAIN = 1000
MAX_SKIPPED_KEYS = 2000
MAX_RECEIVING_CHAINS = 5
MAX_PLAINTEXT_LEN = 262144
MAX_MESSAGE_LEN = 263866

# §10.1, §10.5
MAX_STATE_LEN = 16777216
MAX_SEAL_CONTEXT_LEN = 1024

# §15.10
GROUP_SKIP_WINDOW = 32
MAX_GROUP_SKIPPED_KEYS = 256
MAX_GROUP_JUMP = 2**24
MAX_CHAINS_PER_SENDER = 4
MAX_UNAUTHENTICATED_CHAINS_PER_OWNER = 4
MAX_UNAUTHENTICATED_GROUP_CHAINS = 256
MAX_GROUP_RECEIVERS = 1024
MAX_GROUP_MESSAGE_LEN = 262310

# ML-KEM-1024 sizes (§2)
KEM_EK_LEN = 1568
KEM_CT_LEN = 1568
KEM_ALG_MLKEM1024 = 0x01
KEM_KIND_ONE_TIME = 0x00
KEM_KIND_LAST_RESORT = 0x01

# §3 labels
L_X3DH = b"sotto v2 x3dh"
L_PQXDH = b"sotto v2 pqxdh"
L_KEM_BINDING = b"sotto v2 kem binding"
L_ROOT = b"sotto v2 root"
L_CHAIN_MESSAGE = b"sotto v2 chain message"
L_CHAIN_NEXT = b"sotto v2 chain next"
L_MESSAGE_KEYS = b"sotto v2 message keys"
L_SIGNED_PREKEY = b"sotto v2 signed prekey"
L_KEM_PREKEY = b"sotto v2 kem prekey"
L_FINGERPRINT = b"sotto v2 fingerprint"
L_SEALED = b"sotto v2 sealed state"
L_GROUP_STEP = b"sotto v2 group step"
L_GROUP_DERIVE = b"sotto v2 group derive"
L_GROUP_KEY = b"sotto v2 group key"
L_GROUP_MESSAGE_KEYS = b"sotto v2 group message keys"
L_GROUP_MESSAGE = b"sotto v2 group message"
L_GROUP_CHAIN_OWNER = b"sotto v2 group chain owner"
L_GROUP_OWNER_SIGNATURE = b"sotto v2 group owner signature"

# §7.1 policies and §10.2 key agreements
POST_QUANTUM_REQUIRED = "PostQuantumRequired"
CLASSICAL_ALLOWED = "ClassicalAllowed"
X3DH, PQXDH = 0x00, 0x01
INITIATOR, RESPONDER = 0x00, 0x01


def u8(x): return bytes([x])
def u16(x): return x.to_bytes(2, "big")
def u32(x): return x.to_bytes(4, "big")
def u64(x): return x.to_bytes(8, "big")


def bump(generation):
    """§10.1: +1, saturating at 2^64 - 1."""
    return min(generation + 1, U64_MAX)


# ---------------------------------------------------------------------------
# RNGs (§1: draws are in a specified order)
# ---------------------------------------------------------------------------

class Draws:
    """Replays recorded draws in order, checking each one's size."""

    def __init__(self, draws):
        self.draws = [bytes.fromhex(d) if isinstance(d, str) else bytes(d) for d in draws]
        self.log = []

    def draw(self, n):
        if not self.draws:
            raise AssertionError("RNG: no recorded draw left for %d bytes" % n)
        d = self.draws.pop(0)
        if len(d) != n:
            raise AssertionError("RNG: recorded draw has %d bytes, %d wanted" % (len(d), n))
        self.log.append(d)
        return d

    def exhausted(self):
        return not self.draws


class SeededRng:
    """Deterministic test RNG (SHA-256 in counter mode over a label). Logs draws."""

    def __init__(self, label):
        self.seed = hashlib.sha256(label.encode() if isinstance(label, str) else label).digest()
        self.counter = 0
        self.log = []

    def draw(self, n):
        out = b""
        while len(out) < n:
            out += hashlib.sha256(self.seed + self.counter.to_bytes(8, "big")).digest()
            self.counter += 1
        out = out[:n]
        self.log.append(out)
        return out


class FailingRng:
    """An RNG that fails (§1: RandomnessUnavailable)."""

    def draw(self, n):
        fail("RandomnessUnavailable")


# ---------------------------------------------------------------------------
# §2 Primitives
# ---------------------------------------------------------------------------

P25519 = 2**255 - 19


def X25519(k: bytes, p: bytes) -> bytes:
    """RFC 7748 X25519 (clamping inside). Returns the raw 32 bytes, even all-zero."""
    try:
        return X25519PrivateKey.from_private_bytes(k).exchange(X25519PublicKey.from_public_bytes(p))
    except ValueError:
        # OpenSSL refuses to return the all-zero output of a low-order point.
        return bytes(32)


def DH(k: bytes, p: bytes) -> bytes:
    out = X25519(k, p)
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


def SHA512(m: bytes) -> bytes:
    return hashlib.sha512(m).digest()


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
    return len(b) == 32 and int.from_bytes(b, "little") < P25519  # implies bit 255 is 0


# --- Ed25519 (RFC 8032) point arithmetic, for the strict rules of §2 --------

ED_P = P25519
ED_L = 2**252 + 27742317777372353535851937790883648493
ED_D = (-121665 * pow(121666, ED_P - 2, ED_P)) % ED_P
ED_SQRT_M1 = pow(2, (ED_P - 1) // 4, ED_P)
_ED_IDENTITY = (0, 1, 1, 0)


def _ed_add(P, Q):
    # Extended twisted Edwards coordinates (X, Y, Z, T), a = -1 (RFC 8032 §5.1.4).
    X1, Y1, Z1, T1 = P
    X2, Y2, Z2, T2 = Q
    A = (Y1 - X1) * (Y2 - X2) % ED_P
    B = (Y1 + X1) * (Y2 + X2) % ED_P
    C = 2 * T1 * T2 * ED_D % ED_P
    Dd = 2 * Z1 * Z2 % ED_P
    E, F, G, H = B - A, Dd - C, Dd + C, B + A
    return (E * F % ED_P, G * H % ED_P, F * G % ED_P, E * H % ED_P)


def _ed_mul(s, P):
    Q = _ED_IDENTITY
    while s > 0:
        if s & 1:
            Q = _ed_add(Q, P)
        P = _ed_add(P, P)
        s >>= 1
    return Q


def _ed_neg(P):
    X, Y, Z, T = P
    return ((-X) % ED_P, Y, Z, (-T) % ED_P)


def _ed_is_identity(P):
    X, Y, Z, _ = P
    return X % ED_P == 0 and (Y - Z) % ED_P == 0


def _ed_encode(P):
    X, Y, Z, _ = P
    zi = pow(Z, ED_P - 2, ED_P)
    x, y = X * zi % ED_P, Y * zi % ED_P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _ed_decode(b: bytes):
    """RFC 8032 §5.1.3 point decoding; None if it fails (y >= p, no square root, -0)."""
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


ED_B = _ed_decode((4 * pow(5, ED_P - 2, ED_P) % ED_P).to_bytes(32, "little"))


def _ed_small_order(P):
    return _ed_is_identity(_ed_mul(8, P))


@functools.lru_cache(maxsize=65536)
def ed25519_public_valid(b: bytes) -> bool:
    """§2: decodes, canonical (re-encodes to the same bytes), not of small order."""
    P = _ed_decode(b)
    return P is not None and _ed_encode(P) == b and not _ed_small_order(P)


def _ed_expand_scalar(seed: bytes) -> int:
    """The clamped Ed25519 signing scalar of a seed (RFC 8032 §5.1.5)."""
    a = bytearray(SHA512(seed)[:32])
    a[0] &= 248
    a[31] &= 127
    a[31] |= 64
    return int.from_bytes(a, "little")


def ed25519_public(seed: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()


def Sign(seed: bytes, m: bytes) -> bytes:
    """RFC 8032 Ed25519, pure, no context (deterministic)."""
    return Ed25519PrivateKey.from_private_bytes(seed).sign(m)


def verify_strict(A_bytes: bytes, m: bytes, sig: bytes) -> bool:
    """§2 Verify, steps 1-4, in pure Python."""
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
    k = int.from_bytes(SHA512(R_bytes + A_bytes + m), "little") % ED_L
    check = _ed_add(_ed_mul(S, ED_B), _ed_mul(k, _ed_neg(A)))
    return _ed_encode(check) == R_bytes              # 4


def Verify(pk, m, sig):
    if not verify_strict(pk, m, sig):
        fail("InvalidSignature")


# --- §2.1 the identity key for key agreement --------------------------------

def IdX(seed: bytes) -> bytes:
    """The X25519 secret of an identity: SHA512(seed)[0..32], unreduced, unclamped."""
    return SHA512(seed)[:32]


def IdU(A: bytes) -> bytes:
    """Montgomery u = (1 + y) / (1 - y) mod p of an Ed25519 public key."""
    y = int.from_bytes(A, "little") & ((1 << 255) - 1)
    u = (1 + y) * pow((1 - y) % P25519, P25519 - 2, P25519) % P25519
    return u.to_bytes(32, "little")


# --- ML-KEM-1024 (FIPS 203 internal functions, via kyber-py) ----------------

@functools.lru_cache(maxsize=4096)
def KemKeyGen(d: bytes, z: bytes):
    """ML-KEM.KeyGen_internal(d, z) -> (ek, dk)."""
    return ML_KEM_1024._keygen_internal(d, z)


def KemEncaps(ek: bytes, m: bytes):
    """ML-KEM.Encaps_internal(ek, m) -> (ct, ss)."""
    ss, ct = ML_KEM_1024._encaps_internal(ek, m)
    return ct, ss


def KemDecaps(dk: bytes, ct: bytes) -> bytes:
    """ML-KEM.Decaps (implicit rejection)."""
    return ML_KEM_1024.decaps(dk, ct)


@functools.lru_cache(maxsize=4096)
def kem_ek_valid(ek: bytes) -> bool:
    """FIPS 203 §7.2 modulus check: every 12-bit coefficient of ek[0..1536] is < q."""
    if len(ek) != KEM_EK_LEN:
        return False
    for j in range(0, 1536, 3):
        b0, b1, b2 = ek[j], ek[j + 1], ek[j + 2]
        if (b0 | ((b1 & 0x0F) << 8)) >= 3329 or ((b1 >> 4) | (b2 << 4)) >= 3329:
            return False
    return True


def EncodeKEM(ek: bytes) -> bytes:
    return u8(KEM_ALG_MLKEM1024) + ek


def kem_from_seed(seed64: bytes):
    """sotto stores a KEM secret as d || z (§2); -> (ek, dk)."""
    return KemKeyGen(seed64[:32], seed64[32:])


# ---------------------------------------------------------------------------
# §4 Decoding: one pass, each field checked as soon as it is read
# ---------------------------------------------------------------------------

class Reader:
    def __init__(self, data: bytes, max_len: int | None = None):
        data = bytes(data)
        if max_len is not None and len(data) > max_len:
            fail("TooLarge")                        # rule 1, before anything else
        self.data = data
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
    def u64(self): return int.from_bytes(self.take(8), "big")

    def version(self):
        v = self.u8()
        if v != VERSION:
            fail("UnsupportedVersion", found=v)

    def header(self, expected_tag):
        self.version()
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

    def kem_ek(self):
        b = self.take(KEM_EK_LEN)
        if not kem_ek_valid(b):
            fail("InvalidPublicKey")
        return b

    def remaining(self):
        return len(self.data) - self.pos

    def rest(self):
        b = self.data[self.pos:]
        self.pos = len(self.data)
        return b

    def finish(self):
        if self.pos != len(self.data):
            fail("TrailingBytes")


def _strictly_increasing(prev, value, bound):
    """Ids or indices: strictly increasing and below `bound` (InvalidEncoding)."""
    if value <= prev or value >= bound:
        fail("InvalidEncoding")
    return value


# ---------------------------------------------------------------------------
# §5 Keys
# ---------------------------------------------------------------------------

def identity_key_to_bytes(ik: bytes) -> bytes:
    return bytes([VERSION, TAG_IDENTITY_KEY]) + ik


def identity_key_from_bytes(data: bytes) -> bytes:
    r = Reader(data)
    r.header(TAG_IDENTITY_KEY)
    ik = r.ed25519_public()
    r.finish()
    return ik


def fingerprint(ik: bytes) -> bytes:
    return SHA256(L_FINGERPRINT + ik)


def fingerprint_display(fp: bytes) -> str:
    h = fp.hex()
    return " ".join(h[i:i + 8] for i in range(0, 64, 8))


def signed_prekey_data(spk_id, spk_pub):
    return L_SIGNED_PREKEY + u32(spk_id) + spk_pub


def kem_prekey_data(kem_id, kind, ek):
    return L_KEM_PREKEY + u32(kem_id) + u8(kind) + EncodeKEM(ek)


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


class KemPreKey:
    """§5.5: id, kind, ek, signature (alg is always ML-KEM-1024)."""

    def __init__(self, kem_id, kind, ek, sig):
        self.id, self.kind, self.ek, self.sig = kem_id, kind, ek, sig

    def body(self):
        return u32(self.id) + u8(self.kind) + u8(KEM_ALG_MLKEM1024) + self.ek + self.sig

    def to_bytes(self):
        return bytes([VERSION, TAG_KEM_PREKEY]) + self.body()

    @classmethod
    def read(cls, r: Reader):
        kem_id = r.u32()
        kind = r.u8()
        if kind not in (KEM_KIND_ONE_TIME, KEM_KIND_LAST_RESORT):
            fail("InvalidEncoding")
        alg = r.u8()
        if alg != KEM_ALG_MLKEM1024:
            fail("InvalidEncoding")
        ek = r.kem_ek()
        sig = r.take(64)
        return cls(kem_id, kind, ek, sig)

    @classmethod
    def from_bytes(cls, data):
        r = Reader(data)
        r.header(TAG_KEM_PREKEY)
        k = cls.read(r)
        r.finish()
        return k

    def __eq__(self, other):
        return isinstance(other, KemPreKey) and self.to_bytes() == other.to_bytes()


class PreKeyBundle:
    """§5.6. `opk` is None or (id, public); `kem` is None or a KemPreKey."""

    def __init__(self, ik, spk_id, spk_pub, spk_sig, opk=None, kem=None):
        self.ik, self.spk_id, self.spk_pub, self.spk_sig = ik, spk_id, spk_pub, spk_sig
        self.opk, self.kem = opk, kem

    def to_bytes(self):
        b = bytes([VERSION, TAG_PREKEY_BUNDLE]) + self.ik + u32(self.spk_id) + self.spk_pub + self.spk_sig
        b += b"\x00" if self.opk is None else b"\x01" + u32(self.opk[0]) + self.opk[1]
        b += b"\x00" if self.kem is None else b"\x01" + self.kem.body()
        return b

    @classmethod
    def from_bytes(cls, data):
        r = Reader(data)
        r.header(TAG_PREKEY_BUNDLE)
        ik = r.ed25519_public()
        spk_id = r.u32()
        spk_pub = r.x25519_public()
        spk_sig = r.take(64)
        opk = None
        if r.flag():
            opk_id = r.u32()
            opk = (opk_id, r.x25519_public())
        kem = KemPreKey.read(r) if r.flag() else None
        r.finish()
        return cls(ik, spk_id, spk_pub, spk_sig, opk, kem)

    def verify(self, expected_ik: bytes | None = None) -> "VerifiedBundle":
        """§5.7, in order: identity, signed prekey signature, KEM prekey signature."""
        if expected_ik is not None and not _hmac.compare_digest(self.ik, expected_ik):
            fail("IdentityMismatch")
        Verify(self.ik, signed_prekey_data(self.spk_id, self.spk_pub), self.spk_sig)
        if self.kem is not None:
            Verify(self.ik, kem_prekey_data(self.kem.id, self.kem.kind, self.kem.ek), self.kem.sig)
        return VerifiedBundle(self)


class VerifiedBundle:
    """Only `PreKeyBundle.verify` makes one (§5.7: only a verified bundle starts a session)."""

    def __init__(self, bundle: PreKeyBundle):
        self.bundle = bundle


def kem_binding(ek: bytes | None) -> bytes:
    """§7.4 KB: over EncodeKEM(ek) for PQXDH, over the byte 0x00 for X3DH."""
    return SHA256(L_KEM_BINDING + (EncodeKEM(ek) if ek is not None else b"\x00"))


# ---------------------------------------------------------------------------
# §9 Wire formats
# ---------------------------------------------------------------------------

class RatchetMessage:
    """§9.1."""

    def __init__(self, K, PN, N, salt, ciphertext=b""):
        self.K, self.PN, self.N, self.salt, self.ciphertext = K, PN, N, salt, ciphertext

    def header(self):
        return bytes([VERSION, TAG_RATCHET_MESSAGE]) + self.K + u32(self.PN) + u32(self.N) + self.salt

    def to_bytes(self):
        return self.header() + self.ciphertext

    @classmethod
    def _read_after_tag(cls, r: Reader):
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

    @classmethod
    def parse(cls, data, embedded=False):
        r = Reader(data, None if embedded else MAX_MESSAGE_LEN)
        r.header(TAG_RATCHET_MESSAGE)
        return cls._read_after_tag(r)


class PreKeyMessage:
    """§9.2. `opk_id` None or a u32; `kem` None or (kem_id, ct)."""

    def __init__(self, ik, base_key, spk_id, opk_id, kem, inner: RatchetMessage):
        self.ik, self.base_key, self.spk_id = ik, base_key, spk_id
        self.opk_id, self.kem, self.inner = opk_id, kem, inner

    def prekey_header(self):
        b = bytes([VERSION, TAG_PREKEY_MESSAGE]) + self.ik + self.base_key + u32(self.spk_id)
        b += b"\x00" if self.opk_id is None else b"\x01" + u32(self.opk_id)
        b += b"\x00" if self.kem is None else b"\x01" + u32(self.kem[0]) + self.kem[1]
        return b

    def to_bytes(self):
        return self.prekey_header() + self.inner.to_bytes()

    @classmethod
    def _read_after_tag(cls, r: Reader):
        ik = r.ed25519_public()
        base_key = r.x25519_public()
        spk_id = r.u32()
        opk_id = r.u32() if r.flag() else None
        kem = None
        if r.flag():
            kem_id = r.u32()
            kem = (kem_id, r.take(KEM_CT_LEN))
        inner = RatchetMessage.parse(r.rest(), embedded=True)
        return cls(ik, base_key, spk_id, opk_id, kem, inner)

    @classmethod
    def parse(cls, data):
        r = Reader(data, MAX_MESSAGE_LEN)
        r.header(TAG_PREKEY_MESSAGE)
        return cls._read_after_tag(r)


def parse_message(data: bytes):
    """§9.2 dispatch: length, version, then byte 1 (0x02 prekey, 0x01 ratchet)."""
    r = Reader(data, MAX_MESSAGE_LEN)
    r.version()
    tag = r.u8()
    if tag == TAG_PREKEY_MESSAGE:
        return PreKeyMessage._read_after_tag(r)
    if tag == TAG_RATCHET_MESSAGE:
        return RatchetMessage._read_after_tag(r)
    fail("WrongType", expected=TAG_RATCHET_MESSAGE, found=tag)


# ---------------------------------------------------------------------------
# §8 Double Ratchet
# ---------------------------------------------------------------------------

def KDF_RK(rk, dh_out):
    okm = HKDF(rk, dh_out, L_ROOT, 64)
    return okm[:32], okm[32:]


def chain_step(ck):
    """§8.3 -> (MK at this index, CK for the next index)."""
    return HMAC(ck, L_CHAIN_MESSAGE), HMAC(ck, L_CHAIN_NEXT)


def derive_keys(ck, a, b):
    """Message keys a..b (b excluded) of a chain at index a with key ck -> ([(i, mk)], ck at b)."""
    out = []
    for i in range(a, b):
        mk, ck = chain_step(ck)
        out.append((i, mk))
    return out, ck


def _stored(ratchet_key, keys):
    return [{"ratchet_public": ratchet_key, "message_number": i, "message_key": mk} for i, mk in keys]


def message_aead(mk, salt):
    return KN(salt, mk, L_MESSAGE_KEYS)


class ReceivingChain:
    def __init__(self, ratchet_key, ck, next_index, skipped=None):
        self.ratchet_key = ratchet_key
        self.ck = ck                          # None for closed chains
        self.next = next_index
        self.skipped = dict(skipped or {})    # index -> message key, kept in index order


class SendingChain:
    def __init__(self, secret, ck, ns):
        self.secret, self.ck, self.ns = secret, ck, ns
        self.public = pub(secret)             # stored with the secret (§8.5)


class PendingPreKey:
    """§7.2 step 7: (spk_id, opk_id or None, (kem_id, ct) or None)."""

    def __init__(self, spk_id, opk_id, kem):
        self.spk_id, self.opk_id, self.kem = spk_id, opk_id, kem


class Session:
    """§8.1. `trace` records the intermediates of the last successful operation."""

    def __init__(self):
        self.generation = 0
        self.role = None
        self.key_agreement = None
        self.local_identity = None
        self.remote_identity = None
        self.kem_binding = None
        self.base_key = None
        self.pending = None
        self.RK = None
        self.DHr = None
        self.sending = None
        self.PN = 0
        self.chains = []                      # ReceivingChain, oldest first
        self.trace = {}

    @property
    def AD(self):
        if self.role == INITIATOR:
            ids = self.local_identity + self.remote_identity
        else:
            ids = self.remote_identity + self.local_identity
        return ids + self.kem_binding

    def current_chain(self):
        return self.chains[-1] if self.chains else None

    def skipped_count(self):
        return sum(len(c.skipped) for c in self.chains)

    def _commit(self, work):
        self.__dict__.update(work.__dict__)

    # ---- §8.5 Encrypt --------------------------------------------------

    def encrypt(self, rng, plaintext: bytes) -> bytes:
        work = copy.deepcopy(self)
        out = work._encrypt(rng, bytes(plaintext))
        self._commit(work)
        return out

    def _encrypt(self, rng, plaintext):
        if len(plaintext) > MAX_PLAINTEXT_LEN:                        # 1
            fail("PlaintextTooLarge")
        if self.sending is not None and self.sending.ns == U32_MAX:   # 2
            fail("ChainExhausted")
        new_secret = rng.draw(32) if self.sending is None else None   # 3
        salt = rng.draw(16)                                           # 4
        trace = {"dh_ratchet": None}
        if new_secret is not None:                                    # 5
            dh_out = DH(new_secret, self.DHr)
            rk_out, cks = KDF_RK(self.RK, dh_out)
            trace["dh_ratchet"] = {"ratchet_private": new_secret, "ratchet_public": pub(new_secret),
                                   "remote_ratchet_public": self.DHr, "dh_output": dh_out,
                                   "root_key_in": self.RK, "root_key_out": rk_out,
                                   "chain_key_out": cks}
            self.RK = rk_out
            self.sending = SendingChain(new_secret, cks, 0)
        s = self.sending
        mk, ck_next = chain_step(s.ck)                               # 6
        rm = RatchetMessage(s.public, self.PN, s.ns, salt)
        prefix = b""
        if self.pending is not None:
            p = self.pending
            pm = PreKeyMessage(self.local_identity, self.base_key, p.spk_id, p.opk_id, p.kem, rm)
            prefix = pm.prekey_header()
        aad = self.AD + prefix + rm.header()
        key, nonce = message_aead(mk, salt)
        rm.ciphertext = Seal(key, nonce, aad, plaintext)
        trace.update(kind="prekey" if self.pending is not None else "ratchet",
                     chain_key=s.ck, message_key=mk, next_chain_key=ck_next, salt=salt,
                     aes_key=key, nonce=nonce, aad=aad, header=rm.header(),
                     ciphertext=rm.ciphertext, message_number=s.ns, previous_chain_length=self.PN)
        s.ck, s.ns = ck_next, s.ns + 1                                # 7
        self.generation = bump(self.generation)
        out = prefix + rm.to_bytes()                                  # 8
        trace["message"] = out
        self.trace = trace
        return out

    # ---- §8.6 Decrypt --------------------------------------------------

    def decrypt(self, message):
        """-> (plaintext, peer identity). All or nothing; never draws."""
        if isinstance(message, (bytes, bytearray)):
            message = parse_message(bytes(message))
        work = copy.deepcopy(self)
        pt = work._decrypt(message)
        self._commit(work)
        return pt, self.remote_identity

    def _decrypt(self, msg):
        prefix = b""
        if isinstance(msg, PreKeyMessage):
            if not _hmac.compare_digest(msg.ik, self.remote_identity):
                fail("IdentityMismatch")
            if self.role != RESPONDER or msg.base_key != self.base_key:
                fail("SessionMismatch")
            prefix = msg.prekey_header()
            msg = msg.inner
        self.trace = {"dh_ratchet": None, "skipped_stored": []}
        pt = self._decrypt_ratchet(msg, self.AD + prefix + msg.header())
        self.pending = None                                           # 3
        self._enforce_bounds()                                        # 4
        self.generation = bump(self.generation)
        return pt

    def _open(self, mk, m, aad):
        key, nonce = message_aead(mk, m.salt)
        return Open(key, nonce, aad, m.ciphertext)

    def _decrypt_ratchet(self, m: RatchetMessage, aad):
        trace = self.trace
        chain = next((c for c in self.chains if c.ratchet_key == m.K), None)  # keys distinct (§10.2)
        if chain is not None:                                         # 1
            if m.N in chain.skipped:                                  # 1.1
                mk = chain.skipped[m.N]
                pt = self._open(mk, m, aad)
                del chain.skipped[m.N]
                trace.update(key_source="skipped", message_key=mk)
                return pt
            if chain is self.current_chain() and m.N >= chain.next:   # 1.2
                if m.N - chain.next > MAX_SKIP:
                    fail("TooFarAhead", skipped=m.N - chain.next)
                if m.N == U32_MAX:
                    fail("ChainExhausted")
                keys, ck = derive_keys(chain.ck, chain.next, m.N)
                mk, ck_next = chain_step(ck)
                pt = self._open(mk, m, aad)
                chain.skipped.update(keys)
                chain.ck, chain.next = ck_next, m.N + 1
                trace["skipped_stored"] = _stored(chain.ratchet_key, keys)
                trace.update(key_source="chain", message_key=mk)
                return pt
            if chain is not self.current_chain() and m.N >= chain.next:  # 1.3
                fail("SessionDiverged")
            fail("DuplicateMessage")                                  # 1.4
        # 2: a ratchet key this session does not know
        if self.sending is None:                                      # 2.1
            fail("SessionDiverged")
        cur = self.current_chain()                                    # 2.2
        c = cur.next if cur is not None else 0
        closing = max(m.PN - c, 0) if cur is not None else 0
        if closing + m.N > MAX_SKIP:
            fail("TooFarAhead", skipped=closing + m.N)
        dh_out = DH(self.sending.secret, m.K)                         # 2.3
        rk_out, ckr = KDF_RK(self.RK, dh_out)
        new_keys, ck = derive_keys(ckr, 0, m.N)
        mk, ck_next = chain_step(ck)
        closing_keys = derive_keys(cur.ck, c, m.PN)[0] if cur is not None else []
        key, nonce = message_aead(mk, m.salt)                         # 2.4
        try:
            pt = Open(key, nonce, aad, m.ciphertext)
        except SottoError:
            fail("SessionDiverged")
        trace["dh_ratchet"] = {"ratchet_private": self.sending.secret, "remote_ratchet_public": m.K,
                               "dh_output": dh_out, "root_key_in": self.RK, "root_key_out": rk_out,
                               "chain_key_out": ckr}
        if cur is not None:
            cur.skipped.update(closing_keys)
            cur.ck = None
            cur.next = max(c, m.PN)
            trace["skipped_stored"] += _stored(cur.ratchet_key, closing_keys)
        self.chains.append(ReceivingChain(m.K, ck_next, m.N + 1, dict(new_keys)))
        trace["skipped_stored"] += _stored(m.K, new_keys)
        self.RK = rk_out
        self.DHr = m.K
        self.PN = self.sending.ns
        self.sending = None
        trace.update(key_source="chain", message_key=mk)
        return pt

    def _enforce_bounds(self):
        """§8.7, in order: chains, then per chain, then the total. Records what went:
        `evicted.keys` groups consecutive deletions of one rule on one chain."""
        evicted_chains, evicted_keys = [], []
        while len(self.chains) > MAX_RECEIVING_CHAINS:
            evicted_chains.append(self.chains.pop(0).ratchet_key)
        for ch in self.chains:
            while len(ch.skipped) > MAX_SKIPPED_KEYS_PER_CHAIN:
                i = min(ch.skipped)
                del ch.skipped[i]
                evicted_keys.append(("per_chain", ch.ratchet_key, i))
        while self.skipped_count() > MAX_SKIPPED_KEYS:
            ch = next(c for c in self.chains if c.skipped)
            i = min(ch.skipped)
            del ch.skipped[i]
            evicted_keys.append(("total", ch.ratchet_key, i))
        groups = []
        for rule, key, i in evicted_keys:
            g = groups[-1] if groups else None
            if g is not None and g["rule"] == rule and g["ratchet_public"] == key:
                g["count"] += 1
                g["lowest"], g["highest"] = min(g["lowest"], i), max(g["highest"], i)
            else:
                groups.append({"rule": rule, "ratchet_public": key, "count": 1, "lowest": i, "highest": i})
        self.trace["evicted"] = {"chains": evicted_chains, "keys": groups}

    # ---- §10.2 Saved state ----------------------------------------------

    def to_bytes(self) -> bytes:
        b = bytearray([VERSION, TAG_SESSION]) + u64(self.generation)
        b += u8(self.role) + u8(self.key_agreement)
        b += self.local_identity + self.remote_identity + self.kem_binding + self.base_key
        if self.pending is None:
            b += b"\x00"
        else:
            p = self.pending
            b += b"\x01" + u32(p.spk_id)
            b += b"\x00" if p.opk_id is None else b"\x01" + u32(p.opk_id)
            b += b"\x00" if p.kem is None else b"\x01" + u32(p.kem[0]) + p.kem[1]
        b += self.RK + self.DHr
        if self.sending is None:
            b += b"\x00"
        else:
            b += b"\x01" + self.sending.secret + self.sending.ck + u32(self.sending.ns)
        b += u32(self.PN) + u8(len(self.chains))
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
        s.generation = r.u64()
        s.role = r.u8()
        if s.role not in (INITIATOR, RESPONDER):
            fail("InvalidEncoding")
        s.key_agreement = r.u8()
        if s.key_agreement not in (X3DH, PQXDH):
            fail("InvalidEncoding")
        s.local_identity = r.ed25519_public()
        s.remote_identity = r.ed25519_public()
        s.kem_binding = r.take(32)
        s.base_key = r.take(32)
        if r.flag():
            if s.role != INITIATOR:
                fail("InvalidEncoding")
            spk_id = r.u32()
            opk_id = r.u32() if r.flag() else None
            has_kem = r.flag()
            if has_kem != (s.key_agreement == PQXDH):
                fail("InvalidEncoding")
            kem = None
            if has_kem:
                kem_id = r.u32()
                kem = (kem_id, r.take(KEM_CT_LEN))
            s.pending = PendingPreKey(spk_id, opk_id, kem)
        s.RK = r.take(32)
        s.DHr = r.x25519_public()
        if r.flag():
            secret = r.take(32)
            ck = r.take(32)
            s.sending = SendingChain(secret, ck, r.u32())
        s.PN = r.u32()
        count = r.u8()
        if count > MAX_RECEIVING_CHAINS:
            fail("InvalidEncoding")
        total = 0
        for n in range(count):
            key = r.take(32)
            has_ck = r.flag()
            if has_ck != (n == count - 1):
                fail("InvalidEncoding")
            ck = r.take(32) if has_ck else None
            nxt = r.u32()
            kc = r.u16()
            total += kc
            if kc > MAX_SKIPPED_KEYS_PER_CHAIN or total > MAX_SKIPPED_KEYS:
                fail("InvalidEncoding")
            skipped, prev = {}, -1
            for _ in range(kc):
                prev = _strictly_increasing(prev, r.u32(), nxt)
                skipped[prev] = r.take(32)
            s.chains.append(ReceivingChain(key, ck, nxt, skipped))
        r.finish()
        if s.chains and s.chains[-1].ratchet_key != s.DHr:          # after TrailingBytes
            fail("InvalidEncoding")
        if len({c.ratchet_key for c in s.chains}) != len(s.chains):
            fail("InvalidEncoding")
        return s


# ---------------------------------------------------------------------------
# §6 Device, §7 key agreement
# ---------------------------------------------------------------------------

class SignedPreKeyRec:
    def __init__(self, spk_id, created, secret, signature, base_keys=None):
        self.id, self.created, self.secret, self.signature = spk_id, created, secret, signature
        self.base_keys = list(base_keys or [])   # in the order recorded

    @property
    def public(self):
        return pub(self.secret)


class LastResortRec:
    def __init__(self, kem_id, created, seed, signature):
        self.id, self.created, self.seed, self.signature = kem_id, created, seed, signature


class KemOneTimeRec:
    def __init__(self, kem_id, seed, signature):
        self.id, self.seed, self.signature = kem_id, seed, signature


class Device:
    """§6. Every operation is all or nothing and adds 1 to the generation on success."""

    def __init__(self):
        self.generation = 0
        self.seed = None
        self.next_spk_id = 1
        self.next_opk_id = 1
        self.next_kem_id = 1
        self.spks = []            # SignedPreKeyRec, oldest first, last is current
        self.opks = {}            # id -> secret, increasing ids
        self.last_resort = []     # LastResortRec, oldest first, last is current
        self.kem_otks = []        # KemOneTimeRec, increasing ids
        self.trace = {}

    # ---- helpers ---------------------------------------------------------

    @property
    def identity(self) -> bytes:
        return ed25519_public(self.seed)

    def _commit(self, work):
        self.__dict__.update(work.__dict__)

    def _run(self, fn, *args):
        work = copy.deepcopy(self)
        out = fn(work, *args)
        self._commit(work)
        return out

    def _new_spk(self, secret, now):
        spk_id = self.next_spk_id
        sig = Sign(self.seed, signed_prekey_data(spk_id, pub(secret)))
        self.next_spk_id += 1
        return SignedPreKeyRec(spk_id, now, secret, sig)

    def _kem_sig(self, kem_id, kind, seed64):
        ek, _ = kem_from_seed(seed64)
        return Sign(self.seed, kem_prekey_data(kem_id, kind, ek))

    def _new_last_resort(self, seed64, now):
        kem_id = self.next_kem_id
        self.next_kem_id += 1
        return LastResortRec(kem_id, now, seed64, self._kem_sig(kem_id, KEM_KIND_LAST_RESORT, seed64))

    # ---- public prekeys ---------------------------------------------------

    def signed_prekey(self, spk_id=None) -> bytes:
        """The encoded signed prekey (§5.3); the current one by default."""
        rec = self.spks[-1] if spk_id is None else next(s for s in self.spks if s.id == spk_id)
        return signed_prekey_to_bytes(rec.id, rec.public, rec.signature)

    def one_time_prekeys(self):
        return [one_time_prekey_to_bytes(i, pub(s)) for i, s in self.opks.items()]

    def kem_prekey(self, kem_id=None) -> KemPreKey:
        """A KEM prekey (§5.5); the current last-resort one by default."""
        if kem_id is None:
            rec, kind = self.last_resort[-1], KEM_KIND_LAST_RESORT
        else:
            rec = next((k for k in self.last_resort if k.id == kem_id), None)
            kind = KEM_KIND_LAST_RESORT
            if rec is None:
                rec = next(k for k in self.kem_otks if k.id == kem_id)
                kind = KEM_KIND_ONE_TIME
        ek, _ = kem_from_seed(rec.seed)
        return KemPreKey(rec.id, kind, ek, rec.signature)

    def bundle(self, opk_id=None, kem_id="last_resort", spk_id=None) -> PreKeyBundle:
        """A bundle as a server would assemble it (§5.6). kem_id: an id, "last_resort", or None."""
        spk = self.spks[-1] if spk_id is None else next(s for s in self.spks if s.id == spk_id)
        opk = None if opk_id is None else (opk_id, pub(self.opks[opk_id]))
        kem = None if kem_id is None else self.kem_prekey(None if kem_id == "last_resort" else kem_id)
        return PreKeyBundle(self.identity, spk.id, spk.public, spk.signature, opk, kem)

    def base_key_counts(self):
        """§6: how many base keys each signed prekey has recorded."""
        return {s.id: len(s.base_keys) for s in self.spks}

    # ---- §6 operations ----------------------------------------------------

    @classmethod
    def new(cls, rng, now):
        seed = rng.draw(32)
        spk_secret = rng.draw(32)
        kem_seed = rng.draw(64)
        d = cls()
        d.seed = seed
        d.spks = [d._new_spk(spk_secret, now)]
        d.last_resort = [d._new_last_resort(kem_seed, now)]
        return d                          # next ids 2, 1, 2; generation 0

    def rotate_signed_prekey(self, rng, now):
        return self._run(Device._rotate_signed_prekey, rng, now)

    def _rotate_signed_prekey(self, rng, now):
        if self.next_spk_id == U32_MAX:
            fail("TooManyPreKeys")
        secret = rng.draw(32)
        self.spks.append(self._new_spk(secret, now))
        while len(self.spks) - 1 > MAX_SIGNED_PREKEYS - 1:
            self.spks.pop(0)
        self.generation = bump(self.generation)
        return self.signed_prekey()

    def remove_signed_prekey(self, spk_id):
        return self._run(Device._remove_signed_prekey, spk_id)

    def _remove_signed_prekey(self, spk_id):
        old = [s for s in self.spks[:-1] if s.id == spk_id]
        if not old:
            fail("UnknownSignedPreKey", id=spk_id)
        self.spks.remove(old[0])
        self.generation = bump(self.generation)

    def generate_one_time_prekeys(self, rng, count):
        return self._run(Device._generate_one_time_prekeys, rng, count)

    def _generate_one_time_prekeys(self, rng, count):
        if len(self.opks) + count > MAX_ONE_TIME_PREKEYS or self.next_opk_id + count > U32_MAX:
            fail("TooManyPreKeys")
        if count == 0:
            return []
        secrets = [rng.draw(32) for _ in range(count)]
        out = []
        for s in secrets:
            self.opks[self.next_opk_id] = s
            out.append(one_time_prekey_to_bytes(self.next_opk_id, pub(s)))
            self.next_opk_id += 1
        self.generation = bump(self.generation)
        return out

    def rotate_last_resort_kem_prekey(self, rng, now):
        return self._run(Device._rotate_last_resort_kem_prekey, rng, now)

    def _rotate_last_resort_kem_prekey(self, rng, now):
        if self.next_kem_id == U32_MAX:
            fail("TooManyPreKeys")
        seed64 = rng.draw(64)
        self.last_resort.append(self._new_last_resort(seed64, now))
        while len(self.last_resort) - 1 > MAX_LAST_RESORT_KEM_PREKEYS - 1:
            self.last_resort.pop(0)
        self.generation = bump(self.generation)
        return self.kem_prekey()

    def remove_last_resort_kem_prekey(self, kem_id):
        return self._run(Device._remove_last_resort_kem_prekey, kem_id)

    def _remove_last_resort_kem_prekey(self, kem_id):
        old = [k for k in self.last_resort[:-1] if k.id == kem_id]
        if not old:
            fail("UnknownKemPreKey", id=kem_id)
        self.last_resort.remove(old[0])
        self.generation = bump(self.generation)

    def generate_one_time_kem_prekeys(self, rng, count):
        return self._run(Device._generate_one_time_kem_prekeys, rng, count)

    def _generate_one_time_kem_prekeys(self, rng, count):
        if len(self.kem_otks) + count > MAX_ONE_TIME_KEM_PREKEYS or self.next_kem_id + count > U32_MAX:
            fail("TooManyPreKeys")
        if count == 0:
            return []
        seeds = [rng.draw(64) for _ in range(count)]
        out = []
        for s in seeds:
            kid = self.next_kem_id
            self.next_kem_id += 1
            self.kem_otks.append(KemOneTimeRec(kid, s, self._kem_sig(kid, KEM_KIND_ONE_TIME, s)))
            out.append(self.kem_prekey(kid))
        self.generation = bump(self.generation)
        return out

    def reset_prekeys_after_restore(self, rng, now, last_generation):
        return self._run(Device._reset_prekeys_after_restore, rng, now, last_generation)

    def _reset_prekeys_after_restore(self, rng, now, last_generation):
        if self.next_spk_id == U32_MAX or self.next_kem_id == U32_MAX:
            fail("TooManyPreKeys")
        spk_secret = rng.draw(32)
        kem_seed = rng.draw(64)
        self.spks = [self._new_spk(spk_secret, now)]
        self.last_resort = [self._new_last_resort(kem_seed, now)]
        self.opks = {}
        self.kem_otks = []
        self.generation = bump(max(self.generation, last_generation))
        return self.signed_prekey(), self.kem_prekey()

    # ---- §7.2 Initiator ---------------------------------------------------

    def initiate(self, rng, verified: VerifiedBundle, policy=POST_QUANTUM_REQUIRED) -> Session:
        """-> a new initiator Session. The device does not change."""
        if not isinstance(verified, VerifiedBundle):
            raise TypeError("initiate needs a bundle that passed PreKeyBundle.verify")
        b = verified.bundle
        if b.kem is None and policy == POST_QUANTUM_REQUIRED:         # 1
            fail("PostQuantumRequired")
        ek_secret = rng.draw(32)                                      # 2
        m = rng.draw(32) if b.kem is not None else None
        dh1 = DH(IdX(self.seed), b.spk_pub)                           # 3
        dh2 = DH(ek_secret, IdU(b.ik))
        dh3 = DH(ek_secret, b.spk_pub)
        dh4 = DH(ek_secret, b.opk[1]) if b.opk is not None else b""
        ct = ss = b""
        if b.kem is not None:                                         # 4
            ct, ss = KemEncaps(b.kem.ek, m)
        info = L_PQXDH if b.kem is not None else L_X3DH               # 5
        ikm = b"\xff" * 32 + dh1 + dh2 + dh3 + dh4 + ss
        sk = HKDF(bytes(32), ikm, info, 32)
        s = Session()                                                 # 6, 7
        s.role = INITIATOR
        s.key_agreement = PQXDH if b.kem is not None else X3DH
        s.local_identity = self.identity
        s.remote_identity = b.ik
        s.kem_binding = kem_binding(b.kem.ek if b.kem is not None else None)
        s.base_key = pub(ek_secret)
        s.pending = PendingPreKey(b.spk_id, b.opk[0] if b.opk is not None else None,
                                  (b.kem.id, ct) if b.kem is not None else None)
        s.RK = sk
        s.DHr = b.spk_pub
        s.trace = {"base_key_private": ek_secret, "base_key_public": s.base_key, "kem_m": m,
                   "dh1": dh1, "dh2": dh2, "dh3": dh3, "dh4": dh4 or None,
                   "kem_ciphertext": ct or None, "kem_shared_secret": ss or None,
                   "kdf_salt": bytes(32), "kdf_input": ikm, "info": info, "sk": sk,
                   "kem_binding_info": L_KEM_BINDING, "kem_binding": s.kem_binding,
                   "associated_data": s.AD}
        return s

    # ---- §7.3 Responder ---------------------------------------------------

    def accept(self, message, policy=POST_QUANTUM_REQUIRED):
        """-> (Session, plaintext, peer identity). The device changes only on success."""
        if isinstance(message, (bytes, bytearray)):
            # The prekey message decoder (§9.2 fields): any other type is WrongType{expected:
            # 0x02} (SPEC-FINDINGS B1: §7.3 does not say which decoder accept uses).
            message = PreKeyMessage.parse(bytes(message))
        work = copy.deepcopy(self)
        session, pt = work._accept(message, policy)
        self._commit(work)
        return session, pt, session.remote_identity

    def _accept(self, pm: PreKeyMessage, policy):
        if pm.kem is None and policy == POST_QUANTUM_REQUIRED:        # 1
            fail("PostQuantumRequired")
        spk = next((s for s in self.spks if s.id == pm.spk_id), None)  # 2
        if spk is None:
            fail("UnknownSignedPreKey", id=pm.spk_id)
        if pm.base_key in spk.base_keys:                              # 3
            fail("DuplicatePreKeyMessage")
        if pm.opk_id is not None and pm.opk_id not in self.opks:      # 4
            fail("UnknownOneTimePreKey", id=pm.opk_id)
        kem_rec, kem_one_time = None, False
        if pm.kem is not None:                                        # 5
            kem_rec = next((k for k in self.kem_otks if k.id == pm.kem[0]), None)
            kem_one_time = kem_rec is not None
            if kem_rec is None:
                kem_rec = next((k for k in self.last_resort if k.id == pm.kem[0]), None)
            if kem_rec is None:
                fail("UnknownKemPreKey", id=pm.kem[0])
        replayable = pm.opk_id is None and not kem_one_time
        if replayable and len(spk.base_keys) >= MAX_BASE_KEYS_PER_SIGNED_PREKEY:  # 6
            fail("SignedPreKeyExhausted", id=pm.spk_id)
        dh1 = DH(spk.secret, IdU(pm.ik))                              # 7
        dh2 = DH(IdX(self.seed), pm.base_key)
        dh3 = DH(spk.secret, pm.base_key)
        dh4 = DH(self.opks[pm.opk_id], pm.base_key) if pm.opk_id is not None else b""
        ss, ek = b"", None
        if pm.kem is not None:
            ek, dk = kem_from_seed(kem_rec.seed)
            ss = KemDecaps(dk, pm.kem[1])
        info = L_PQXDH if pm.kem is not None else L_X3DH
        ikm = b"\xff" * 32 + dh1 + dh2 + dh3 + dh4 + ss
        sk = HKDF(bytes(32), ikm, info, 32)
        s = Session()
        s.role = RESPONDER
        s.key_agreement = PQXDH if pm.kem is not None else X3DH
        s.local_identity = self.identity
        s.remote_identity = pm.ik
        s.kem_binding = kem_binding(ek)
        s.base_key = pm.base_key
        m = pm.inner
        if m.N > MAX_SKIP:                                            # 8
            fail("TooFarAhead", skipped=m.N)
        dh_r = DH(spk.secret, m.K)                                    # 9
        rk, ckr = KDF_RK(sk, dh_r)
        keys, ck = derive_keys(ckr, 0, m.N)
        mk, ck_next = chain_step(ck)
        aad = s.AD + pm.prekey_header() + m.header()                  # 10
        key, nonce = message_aead(mk, m.salt)
        pt = Open(key, nonce, aad, m.ciphertext)
        if pm.opk_id is not None:                                     # 11
            del self.opks[pm.opk_id]
        if kem_one_time:
            self.kem_otks.remove(kem_rec)
        if replayable:
            spk.base_keys.append(pm.base_key)
        self.generation = bump(self.generation)
        s.RK = rk
        s.DHr = m.K
        s.chains = [ReceivingChain(m.K, ck_next, m.N + 1, dict(keys))]
        s.trace = {"dh1": dh1, "dh2": dh2, "dh3": dh3, "dh4": dh4 or None,
                   "kem_shared_secret": ss or None, "kdf_salt": bytes(32), "kdf_input": ikm,
                   "info": info, "sk": sk, "kem_binding_info": L_KEM_BINDING,
                   "kem_binding": s.kem_binding, "associated_data": s.AD,
                   "receive": {"dh_ratchet": {"ratchet_private": spk.secret,
                                              "remote_ratchet_public": m.K, "dh_output": dh_r,
                                              "root_key_in": sk, "root_key_out": rk,
                                              "chain_key_out": ckr},
                               "key_source": "chain", "message_key": mk,
                               "skipped_stored": _stored(m.K, keys)}}
        return s, pt

    # ---- §10.3 Saved state --------------------------------------------------

    def to_bytes(self) -> bytes:
        b = bytearray([VERSION, TAG_DEVICE]) + u64(self.generation) + self.seed
        b += u32(self.next_spk_id) + u32(self.next_opk_id) + u32(self.next_kem_id)
        b += u8(len(self.spks))
        for s in self.spks:
            b += u32(s.id) + u64(s.created) + s.secret + s.signature + u16(len(s.base_keys))
            for k in s.base_keys:
                b += k
        b += u16(len(self.opks))
        for i in sorted(self.opks):
            b += u32(i) + self.opks[i]
        b += u8(len(self.last_resort))
        for k in self.last_resort:
            b += u32(k.id) + u64(k.created) + k.seed + k.signature
        b += u16(len(self.kem_otks))
        for k in self.kem_otks:
            b += u32(k.id) + k.seed + k.signature
        return bytes(b)

    @classmethod
    def from_bytes(cls, data: bytes):
        r = Reader(data, MAX_STATE_LEN)
        r.header(TAG_DEVICE)
        d = cls()
        d.generation = r.u64()
        d.seed = r.take(32)
        d.next_spk_id = r.u32()
        d.next_opk_id = r.u32()
        d.next_kem_id = r.u32()
        n = r.u8()
        if not 1 <= n <= MAX_SIGNED_PREKEYS:
            fail("InvalidEncoding")
        prev = -1
        for _ in range(n):
            prev = _strictly_increasing(prev, r.u32(), d.next_spk_id)
            created = r.u64()
            secret = r.take(32)
            sig = r.take(64)
            nb = r.u16()
            if nb > MAX_BASE_KEYS_PER_SIGNED_PREKEY:
                fail("InvalidEncoding")
            d.spks.append(SignedPreKeyRec(prev, created, secret, sig, [r.take(32) for _ in range(nb)]))
        n = r.u16()
        if n > MAX_ONE_TIME_PREKEYS:
            fail("InvalidEncoding")
        prev = -1
        for _ in range(n):
            prev = _strictly_increasing(prev, r.u32(), d.next_opk_id)
            d.opks[prev] = r.take(32)
        n = r.u8()
        if not 1 <= n <= MAX_LAST_RESORT_KEM_PREKEYS:
            fail("InvalidEncoding")
        prev = -1
        for _ in range(n):
            prev = _strictly_increasing(prev, r.u32(), d.next_kem_id)
            created = r.u64()
            seed = r.take(64)
            d.last_resort.append(LastResortRec(prev, created, seed, r.take(64)))
        n = r.u16()
        if n > MAX_ONE_TIME_KEM_PREKEYS:
            fail("InvalidEncoding")
        prev = -1
        for _ in range(n):
            prev = _strictly_increasing(prev, r.u32(), d.next_kem_id)
            seed = r.take(64)
            d.kem_otks.append(KemOneTimeRec(prev, seed, r.take(64)))
        r.finish()
        if {k.id for k in d.last_resort} & {k.id for k in d.kem_otks}:   # after TrailingBytes
            fail("InvalidEncoding")
        return d


# ---------------------------------------------------------------------------
# §10.5 Sealed state
# ---------------------------------------------------------------------------

SEAL_OVERHEAD = 3 + 32 + 16


def seal(rng, plain: bytes, storage_key: bytes, context: bytes, trace=None) -> bytes:
    """§10.5. `plain` is a plain state encoding; its type tag becomes inner_type."""
    if len(context) > MAX_SEAL_CONTEXT_LEN:
        fail("TooLarge")
    if len(plain) + SEAL_OVERHEAD > MAX_STATE_LEN:
        fail("TooLarge")
    salt = rng.draw(32)
    head = bytes([VERSION, TAG_SEALED, plain[1]]) + salt
    key, nonce = KN(salt, storage_key, L_SEALED)
    aad = head + u16(len(context)) + context
    if trace is not None:
        trace.update(salt=salt, aes_key=key, nonce=nonce, aad=aad)
    return head + Seal(key, nonce, aad, plain)


def open_sealed(data: bytes, storage_key: bytes, context: bytes, expected_inner: int) -> bytes:
    """-> the plain state bytes (the caller decodes them with their own rules)."""
    if len(context) > MAX_SEAL_CONTEXT_LEN:
        fail("TooLarge")
    r = Reader(data, MAX_STATE_LEN)
    r.header(TAG_SEALED)
    inner = r.u8()
    if inner != expected_inner:
        fail("WrongType", expected=expected_inner, found=inner)
    salt = r.take(32)
    if r.remaining() < 16:
        fail("Truncated")
    ct = r.rest()
    key, nonce = KN(salt, storage_key, L_SEALED)
    return Open(key, nonce, bytes(data[:35]) + u16(len(context)) + context, ct)



def open_state(data, storage_key, context, cls):
    """Opens a sealed state and decodes it as `cls` (§10.5, plain state rules last)."""
    return cls.from_bytes(open_sealed(data, storage_key, context, cls.TAG))


Session.TAG = TAG_SESSION
Device.TAG = TAG_DEVICE


# ---------------------------------------------------------------------------
# §15 Group messaging
# ---------------------------------------------------------------------------

def g_step(R): return SHA256(L_GROUP_STEP + R)
def g_derive(m, R): return SHA256(L_GROUP_DERIVE + u8(m) + R)
def g_key(R): return SHA256(L_GROUP_KEY + R)
def digit(i, k): return (i >> (4 * (7 - k))) & 0xF


class GroupRatchet:
    """§15.4: R_0 .. R_7 at index `index`."""

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
        for m in range(k + 1, 8):
            self.R[m] = g_derive(m, self.R[k])     # from the *current* R_k
        self.R[k] = g_step(self.R[k])
        self.index = i + 1

    def jump(self, j):
        """§15.4 jump; `last_jump` = (steps, derivations) it cost."""
        i = self.index
        assert j >= i
        steps = derives = 0
        for k in range(8):
            s = 4 * (7 - k)
            if i >> s == j >> s:
                continue
            for _ in range(digit(j, k) - digit(i, k) - 1):
                self.R[k] = g_step(self.R[k])
                steps += 1
            for m in range(k + 1, 8):
                self.R[m] = g_derive(m, self.R[k])
                derives += 1
            self.R[k] = g_step(self.R[k])
            steps += 1
            i = (j >> s) << s
        self.index = j
        self.last_jump = (steps, derives)

    def key(self):
        return g_key(self.R[7])


def group_closed_form(R0, i):
    """§15.4 closed form R_k(i) = Step^{d_k(i)}(B_k(i)), from the initial state R0."""
    def base(k):
        above = [h for h in range(k) if digit(i, h) != 0]
        if not above:
            return R0[k]
        h = max(above)
        x = base(h)
        for _ in range(digit(i, h) - 1):
            x = g_step(x)
        return g_derive(k, x)

    out = []
    for k in range(8):
        x = base(k)
        for _ in range(digit(i, k)):
            x = g_step(x)
        out.append(x)
    return out


def group_message_aead(salt, k_index):
    return KN(salt, k_index, L_GROUP_MESSAGE_KEYS)


class GroupMessage:
    """§15.5."""

    def __init__(self, group_id, chain, index, salt, ciphertext=b"", signature=b""):
        self.group_id, self.chain, self.index = group_id, chain, index
        self.salt, self.ciphertext, self.signature = salt, ciphertext, signature

    def header(self):
        return bytes([VERSION, TAG_GROUP_MESSAGE]) + self.group_id + self.chain + u32(self.index) + self.salt

    def signed_part(self):
        return self.header() + self.ciphertext      # ciphertext includes its tag

    def to_bytes(self):
        return self.signed_part() + self.signature

    @classmethod
    def parse(cls, data):
        r = Reader(data, MAX_GROUP_MESSAGE_LEN)
        r.header(TAG_GROUP_MESSAGE)
        gid = r.take(32)
        chain = r.ed25519_public()
        if len(r.data) < 166:
            fail("Truncated")
        idx = r.u32()
        salt = r.take(16)
        body = r.rest()
        return cls(gid, chain, idx, salt, body[:-64], body[-64:])


def owner_proof_data(group_id, chain, owner):
    return L_GROUP_CHAIN_OWNER + group_id + chain + owner


def owner_signature_data(group_id, chain):
    return L_GROUP_OWNER_SIGNATURE + group_id + chain


class Distribution:
    """§15.6 sender key distribution (486 bytes)."""

    def __init__(self, group_id, chain, owner, owner_proof, owner_signature, index, R: bytes):
        self.group_id, self.chain, self.owner = group_id, chain, owner
        self.owner_proof, self.owner_signature = owner_proof, owner_signature
        self.index, self.R = index, R

    def to_bytes(self):
        return (bytes([VERSION, TAG_DISTRIBUTION]) + self.group_id + self.chain + self.owner
                + self.owner_proof + self.owner_signature + u32(self.index) + self.R)

    @classmethod
    def from_bytes(cls, data):
        r = Reader(data)
        r.header(TAG_DISTRIBUTION)
        gid = r.take(32)
        chain = r.ed25519_public()
        owner = r.ed25519_public()
        proof = r.take(64)
        signature = r.take(64)
        idx = r.u32()
        R = r.take(256)
        r.finish()
        return cls(gid, chain, owner, proof, signature, idx, R)

    def verify_signatures(self):
        """§15.7: the owner proof (chain key), then the owner signature (identity key)."""
        Verify(self.chain, owner_proof_data(self.group_id, self.chain, self.owner), self.owner_proof)
        Verify(self.owner, owner_signature_data(self.group_id, self.chain), self.owner_signature)


class GroupSender:
    """§15.11/§15.12 sender chain."""

    TAG = TAG_GROUP_SENDER

    def __init__(self):
        self.generation = 0
        self.group_id = self.owner = self.seed = None
        self.owner_proof = self.owner_signature = None
        self.ratchet = None
        self.trace = {}

    @property
    def chain(self):
        return ed25519_public(self.seed)

    @property
    def index(self):
        return self.ratchet.index

    def _fresh(self, rng, device):
        R = rng.draw(256)
        seed = rng.draw(32)
        self.ratchet = GroupRatchet.from_bytes256(R, 0)
        self.seed = seed
        self.owner_proof = Sign(seed, owner_proof_data(self.group_id, self.chain, self.owner))
        self.owner_signature = Sign(device.seed, owner_signature_data(self.group_id, self.chain))

    @classmethod
    def new(cls, rng, group_id, device):
        """A new chain of `device`'s identity (its seed signs the owner signature)."""
        s = cls()
        s.group_id, s.owner = group_id, device.identity
        s._fresh(rng, device)
        return s

    def rotate(self, rng, device):
        if not _hmac.compare_digest(device.identity, self.owner):
            fail("GroupOwnerMismatch")                      # before any draw (§15.12)
        work = copy.deepcopy(self)
        work._fresh(rng, device)
        work.generation = bump(work.generation)
        self.__dict__.update(work.__dict__)

    def distribution(self) -> bytes:
        return Distribution(self.group_id, self.chain, self.owner, self.owner_proof,
                            self.owner_signature, self.ratchet.index,
                            self.ratchet.to_bytes256()).to_bytes()

    def encrypt(self, rng, plaintext: bytes) -> bytes:
        if len(plaintext) > MAX_PLAINTEXT_LEN:
            fail("PlaintextTooLarge")
        if self.ratchet.index == U32_MAX:
            fail("ChainExhausted")
        salt = rng.draw(16)
        k = self.ratchet.key()
        key, nonce = group_message_aead(salt, k)
        m = GroupMessage(self.group_id, self.chain, self.ratchet.index, salt)
        m.ciphertext = Seal(key, nonce, m.header(), bytes(plaintext))
        signed = L_GROUP_MESSAGE + m.signed_part()
        m.signature = Sign(self.seed, signed)
        out = m.to_bytes()
        self.trace = {"index": m.index, "levels": list(self.ratchet.R), "message_key": k,
                      "salt": salt, "aes_key": key, "nonce": nonce, "header": m.header(),
                      "ciphertext": m.ciphertext, "signed_data": signed,
                      "signature": m.signature, "message": out}
        r = self.ratchet.copy()
        r.increment()
        self.ratchet = r
        self.generation = bump(self.generation)
        return out

    def to_bytes(self):
        return (bytes([VERSION, TAG_GROUP_SENDER]) + u64(self.generation) + self.group_id + self.owner
                + self.seed + self.owner_proof + self.owner_signature + u32(self.ratchet.index)
                + self.ratchet.to_bytes256())

    @classmethod
    def from_bytes(cls, data):
        r = Reader(data, MAX_STATE_LEN)
        r.header(TAG_GROUP_SENDER)
        s = cls()
        s.generation = r.u64()
        s.group_id = r.take(32)
        s.owner = r.ed25519_public()
        s.seed = r.take(32)
        s.owner_proof = r.take(64)
        s.owner_signature = r.take(64)
        idx = r.u32()
        s.ratchet = GroupRatchet.from_bytes256(r.take(256), idx)
        r.finish()
        return s


class GroupReceiver:
    """§15.8. `authenticated` is the sender mark; `owner` the owner or claimed owner."""

    TAG = TAG_GROUP_RECEIVER

    def __init__(self, group_id, chain, owner, authenticated, ratchet: GroupRatchet, cache=None,
                 generation=0, read=0):
        self.generation = generation
        self.group_id, self.chain, self.owner = group_id, chain, owner
        self.authenticated = authenticated
        self.ratchet = ratchet                 # at `next`
        self.read = read                       # 1 + highest index decrypted, 0 if none
        self.cache = dict(cache or {})         # index -> K_index, all < next
        self.trace = {}

    @property
    def next(self):
        return self.ratchet.index

    @property
    def mark(self):
        return ("Authenticated" if self.authenticated else "Unauthenticated", self.owner)

    @classmethod
    def from_distribution(cls, dist: Distribution, authenticated: bool):
        return cls(dist.group_id, dist.chain, dist.owner, authenticated,
                   GroupRatchet.from_bytes256(dist.R, dist.index))

    @classmethod
    def install(cls, plaintext: bytes, peer_identity: bytes, group_id: bytes):
        """§15.7 authenticated, standalone: the caller gives the expected group id."""
        d = Distribution.from_bytes(plaintext)
        if d.group_id != group_id:
            fail("GroupMismatch")
        if not _hmac.compare_digest(d.owner, peer_identity):
            fail("GroupOwnerMismatch")
        d.verify_signatures()
        return cls.from_distribution(d, True)

    @classmethod
    def receive_distribution(cls, session: "Session", message, group_id: bytes):
        """Decrypt and install in one call; the session changes only if both succeed."""
        work = copy.deepcopy(session)
        pt, peer = work.decrypt(message)
        rcv = cls.install(pt, peer, group_id)
        session.__dict__.update(work.__dict__)
        return rcv

    @classmethod
    def import_unauthenticated(cls, data: bytes, group_id: bytes):
        d = Distribution.from_bytes(data)
        if d.group_id != group_id:
            fail("GroupMismatch")
        d.verify_signatures()
        return cls.from_distribution(d, False)

    def decrypt(self, data):
        """-> (plaintext, mark). All or nothing."""
        m = GroupMessage.parse(data) if isinstance(data, (bytes, bytearray)) else data
        work = copy.deepcopy(self)
        pt = work._decrypt(m)
        self.__dict__.update(work.__dict__)
        return pt, self.mark

    def _decrypt(self, m: GroupMessage):
        if m.group_id != self.group_id or m.chain != self.chain:               # 1
            fail("UnknownGroupChain")
        Verify(self.chain, L_GROUP_MESSAGE + m.signed_part(), m.signature)     # 2
        j = m.index
        next_before = self.next
        if j in self.cache:                                                    # 3
            kj = self.cache[j]
            key, nonce = group_message_aead(m.salt, kj)
            pt = Open(key, nonce, m.header(), m.ciphertext)
            del self.cache[j]
            self.read = max(self.read, j + 1)
            self.generation = bump(self.generation)
            self.trace = {"key_source": "cache", "message_key": kj, "next_before": next_before,
                          "skip_from": None, "skipped_cached": [], "evicted": [],
                          "next_after": self.next}
            return pt
        if j < self.next:                                                      # 4
            fail("DuplicateMessage")
        if j == U32_MAX or j - self.next > MAX_GROUP_JUMP:                     # 5
            fail("GroupIndexOutOfRange", index=j)
        work = self.ratchet.copy()                                             # 6
        s = max(self.next, j - GROUP_SKIP_WINDOW)
        work.jump(s)
        skipped = []
        for i in range(s, j):
            skipped.append((i, work.key()))
            work.increment()
        kj = work.key()
        key, nonce = group_message_aead(m.salt, kj)
        pt = Open(key, nonce, m.header(), m.ciphertext)
        work.increment()                                                       # 7
        self.ratchet = work
        self.cache.update(skipped)
        evicted = []
        while len(self.cache) > MAX_GROUP_SKIPPED_KEYS:
            evicted.append(min(self.cache))
            del self.cache[evicted[-1]]
        self.read = max(self.read, j + 1)
        self.generation = bump(self.generation)
        self.trace = {"key_source": "ratchet", "message_key": kj, "next_before": next_before,
                      "skip_from": s, "skipped_cached": [k for _, k in skipped],
                      "evicted": evicted, "next_after": self.next}
        return pt

    def to_bytes(self):
        b = bytearray([VERSION, TAG_GROUP_RECEIVER]) + u64(self.generation) + self.group_id
        b += self.chain + self.owner + u8(1 if self.authenticated else 0)
        b += u32(self.next) + u32(self.read) + self.ratchet.to_bytes256() + u16(len(self.cache))
        for i in sorted(self.cache):
            b += u32(i) + self.cache[i]
        return bytes(b)

    @classmethod
    def from_bytes(cls, data):
        r = Reader(data, MAX_STATE_LEN)
        r.header(TAG_GROUP_RECEIVER)
        gen = r.u64()
        gid = r.take(32)
        chain = r.ed25519_public()
        owner = r.ed25519_public()
        auth = r.flag()
        nxt = r.u32()
        read = r.u32()
        if read > nxt:
            fail("InvalidEncoding")
        R = r.take(256)
        n = r.u16()
        if n > MAX_GROUP_SKIPPED_KEYS:
            fail("InvalidEncoding")
        cache, prev = {}, -1
        for _ in range(n):
            prev = _strictly_increasing(prev, r.u32(), nxt)
            cache[prev] = r.take(32)
        r.finish()
        return cls(gid, chain, owner, auth, GroupRatchet.from_bytes256(R, nxt), cache, gen, read)


ADDED, ADVANCED, UPGRADED, UNCHANGED = "Added", "Advanced", "Upgraded", "Unchanged"


class GroupReceivers:
    """§15.9 per-group store, oldest first."""

    TAG = TAG_GROUP_STORE

    def __init__(self, group_id, generation=0):
        self.generation = generation
        self.group_id = group_id
        self.receivers = []
        self.trace = {}

    def _run(self, fn, *args):
        work = copy.deepcopy(self)
        out = fn(work, *args)
        self.__dict__.update(work.__dict__)
        return out

    def find(self, chain):
        return next((h for h in self.receivers if h.chain == chain), None)

    # ---- §15.7 installing ---------------------------------------------------

    def install(self, plaintext: bytes, peer_identity: bytes):
        """Authenticated install from a decrypted plaintext -> outcome."""
        return self.insert(GroupReceiver.install(plaintext, peer_identity, self.group_id))

    def receive_distribution(self, session: Session, message):
        """Decrypt a pairwise message and install what it carries, all or nothing."""
        work_session = copy.deepcopy(session)
        pt, peer = work_session.decrypt(message)
        work = copy.deepcopy(self)
        outcome = work.install(pt, peer)
        session.__dict__.update(work_session.__dict__)
        self.__dict__.update(work.__dict__)
        return outcome

    def import_unauthenticated(self, data: bytes):
        return self.insert(GroupReceiver.import_unauthenticated(data, self.group_id))

    # ---- §15.9 insertion --------------------------------------------------------

    def insert(self, rcv: GroupReceiver):
        return self._run(GroupReceivers._insert, rcv)

    def _insert(self, R: GroupReceiver):
        self.trace = {"evicted": []}
        if R.group_id != self.group_id:                                        # 1
            fail("GroupMismatch")
        H = self.find(R.chain)
        if H is not None:                                                      # 2
            if not _hmac.compare_digest(H.owner, R.owner):                     # 2.1
                fail("GroupChainConflict")
            if not R.authenticated:                                            # 2.2, 2.3
                return UNCHANGED
            if H.authenticated:                                                # 2.4
                lo, hi = (H, R) if H.next <= R.next else (R, H)
                probe = lo.ratchet.copy()
                probe.jump(hi.next)
                if not _hmac.compare_digest(probe.to_bytes256(), hi.ratchet.to_bytes256()):
                    fail("GroupChainConflict")
                if R.next <= H.next:
                    return UNCHANGED
                H.ratchet = R.ratchet.copy()
                H.generation = bump(H.generation)
                self.generation = bump(self.generation)
                return ADVANCED
            p = max(R.next, H.read)                                            # 2.5
            walker = R.ratchet.copy()
            cache = {}
            for c in sorted(H.cache):
                if c < R.next:
                    cache[c] = H.cache[c]
                elif c < p:
                    walker.jump(c)
                    cache[c] = walker.key()
            ratchet = R.ratchet.copy()
            ratchet.jump(p)
            H.ratchet, H.cache, H.authenticated = ratchet, cache, True
            H.generation = bump(H.generation)
            self.generation = bump(self.generation)
            return UPGRADED
        self._add_new(R)                                                       # 3
        self.generation = bump(self.generation)
        return ADDED

    def _add_new(self, R):
        def evict(h):
            self.receivers.remove(h)
            self.trace["evicted"].append(h.chain)

        def unauth():
            return [h for h in self.receivers if not h.authenticated]

        if R.authenticated:
            mine = [h for h in self.receivers if h.authenticated and h.owner == R.owner]
            if len(mine) >= MAX_CHAINS_PER_SENDER:
                evict(mine[0])
            if len(self.receivers) >= MAX_GROUP_RECEIVERS:
                u = unauth()
                evict(u[0] if u else self.receivers[0])
        else:
            claimed = [h for h in unauth() if h.owner == R.owner]
            if len(claimed) >= MAX_UNAUTHENTICATED_CHAINS_PER_OWNER:
                evict(claimed[0])
            u = unauth()
            if len(u) >= MAX_UNAUTHENTICATED_GROUP_CHAINS:
                evict(u[0])
            if len(self.receivers) >= MAX_GROUP_RECEIVERS:
                u = unauth()
                if not u:
                    fail("GroupStoreFull")
                evict(u[0])
        self.receivers.append(R)

    # ---- decrypt, removal ---------------------------------------------------------

    def decrypt(self, data):
        """-> (plaintext, mark). All or nothing on the store and the receiver."""
        m = GroupMessage.parse(data) if isinstance(data, (bytes, bytearray)) else data
        return self._run(GroupReceivers._decrypt, m)

    def _decrypt(self, m):
        if m.group_id != self.group_id:
            fail("UnknownGroupChain")
        H = self.find(m.chain)
        if H is None:
            fail("UnknownGroupChain")
        pt, mark = H.decrypt(m)
        self.trace = H.trace
        self.generation = bump(self.generation)
        return pt, mark

    def remove_owner(self, identity):
        before = len(self.receivers)
        kept = [h for h in self.receivers if h.owner != identity]
        if len(kept) != before:
            self.receivers = kept
            self.generation = bump(self.generation)
        return before - len(kept)

    # ---- §15.11 saved state ---------------------------------------------------------

    def to_bytes(self):
        b = bytearray([VERSION, TAG_GROUP_STORE]) + u64(self.generation) + self.group_id
        b += u16(len(self.receivers))
        for h in self.receivers:
            e = h.to_bytes()
            b += u16(len(e)) + e
        return bytes(b)

    @classmethod
    def from_bytes(cls, data):
        r = Reader(data, MAX_STATE_LEN)
        r.header(TAG_GROUP_STORE)
        gen = r.u64()
        st = cls(r.take(32), gen)
        n = r.u16()
        if n > MAX_GROUP_RECEIVERS:
            fail("InvalidEncoding")
        for _ in range(n):
            length = r.u16()
            st.receivers.append(GroupReceiver.from_bytes(r.take(length)))   # exactly `length` bytes
        r.finish()
        chains = [h.chain for h in st.receivers]                           # after TrailingBytes
        if any(h.group_id != st.group_id for h in st.receivers) or len(set(chains)) != len(chains):
            fail("InvalidEncoding")
        per_kind = {}
        for h in st.receivers:
            per_kind[(h.authenticated, h.owner)] = per_kind.get((h.authenticated, h.owner), 0) + 1
        if any(c > (MAX_CHAINS_PER_SENDER if auth else MAX_UNAUTHENTICATED_CHAINS_PER_OWNER)
               for (auth, _), c in per_kind.items()):
            fail("InvalidEncoding")
        if sum(1 for h in st.receivers if not h.authenticated) > MAX_UNAUTHENTICATED_GROUP_CHAINS:
            fail("InvalidEncoding")
        return st
