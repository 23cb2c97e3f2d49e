//! Public keys and signature values that must be rejected (SPEC.md §2):
//! small-order points, non-canonical encodings, and `S + L`.

/// The X25519 u-coordinates that give an all-zero output with any scalar,
/// as canonical encodings: 0, 1, and the order-8 point of RFC 7748.
pub const X25519_LOW_ORDER: [[u8; 32]; 3] = {
    let mut one = [0u8; 32];
    one[0] = 1;
    [[0u8; 32], one, X25519_ORDER_8]
};

/// An order-8 X25519 point (canonical); its X25519 output with any clamped
/// scalar is all zeros.
pub const X25519_ORDER_8: [u8; 32] = [
    0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
    0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00,
];

/// p = 2^255 - 19: not a canonical X25519 public key; as an Ed25519 `y`,
/// the non-canonical encoding of y = 0.
pub const P: [u8; 32] = {
    let mut p = [0xffu8; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    p
};

/// An X25519 key with the top bit set.
pub const X25519_HIGH_BIT: [u8; 32] = {
    let mut k = [0u8; 32];
    k[0] = 9;
    k[31] = 0x80;
    k
};

/// The Ed25519 identity point (small order).
pub const ED25519_SMALL_ORDER: [u8; 32] = {
    let mut k = [0u8; 32];
    k[0] = 1;
    k
};

/// The Ed25519 group order L, little-endian.
pub const ED25519_L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// Adds L to the `S` half of a 64-byte signature in place: the malleated
/// signature that non-strict verification may accept.
pub fn add_l_to_s(signature: &mut [u8]) {
    assert_eq!(signature.len(), 64, "a signature");
    let mut carry = 0u16;
    for (s, l) in signature[32..].iter_mut().zip(ED25519_L) {
        let sum = u16::from(*s) + u16::from(l) + carry;
        *s = sum.to_le_bytes()[0];
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "S + L fits in 32 bytes");
}
