#!/usr/bin/env python3
"""Builds BENCHMARKS.md from one criterion run.

Reads target/criterion/**/new/{benchmark,estimates}.json (median of each
benchmark), computes every sotto figure as a ratio to its primitive floor and
to vodozemac, checks the goals of issues 7 and 12, adds the sizes of the
encodings (`opcount sizes`), and writes BENCHMARKS.md.

    cargo bench -p sotto-bench --features vodozemac -- --warm-up-time 1 --measurement-time 2
    python3 scripts/benchmarks.py            # writes BENCHMARKS.md
    python3 scripts/benchmarks.py --check    # also exits 1 if a goal is missed
    python3 scripts/benchmarks.py --callgrind  # adds instruction counts (needs valgrind)

    # The session layer alone, from its own run, into its section of the
    # existing BENCHMARKS.md (the other sections stay as they are):
    cargo bench -p sotto-bench --bench sessions
    python3 scripts/benchmarks.py --sessions-only --callgrind

Bench ids are operation/implementation/parameter, implementation being sotto,
vodozemac or floor (see benches/src/lib.rs).
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SIZES = [100, 1024, 65536]

# Primitive benchmarks (benches/benches/floor.rs), by short name.
PRIM = {
    "H": "hmac_sha256/floor/chain",
    "KM": "hkdf_sha256/floor/message_keys",
    "KR": "hkdf_sha256/floor/root",
    "KX": "hkdf_sha256/floor/x3dh",
    "G": "x25519/floor/keygen",
    "D": "x25519/floor/dh",
    "SIGN": "ed25519/floor/sign",
    "V": "ed25519/floor/verify_strict",
    "VK": "ed25519/floor/verify_strict_kem_prekey",
    "KP": "hkdf_sha256/floor/pqxdh",
    "MG": "ml_kem1024/floor/keygen",
    "ME": "ml_kem1024/floor/encapsulate",
    "MD": "ml_kem1024/floor/decapsulate",
    "MB": "ml_kem1024/floor/kem_binding",
    "MC": "ml_kem1024/floor/ek_check",
}
for n in SIZES:
    PRIM[f"S{n}"] = f"aes256gcm_seal/floor/{n}"
    PRIM[f"O{n}"] = f"aes256gcm_open/floor/{n}"

PRIM_TEXT = {
    "H": "HMAC-SHA256 (32-byte key, 22-byte label)",
    "KM": "HKDF-SHA256 (16-byte salt, 32-byte IKM, 44 bytes out)",
    "KR": "HKDF-SHA256 (32-byte salt, 32-byte IKM, 64 bytes out)",
    "KX": "HKDF-SHA256 (zero salt, 160-byte IKM, 32 bytes out: X3DH)",
    "KP": "HKDF-SHA256 (zero salt, 192-byte IKM, 32 bytes out: PQXDH)",
    "G": "X25519 key generation (one base-point multiplication)",
    "D": "X25519 Diffie-Hellman",
    "SIGN": "Ed25519 sign (58 bytes: a signed prekey)",
    "V": "Ed25519 strict verify (58 bytes: a signed prekey)",
    "VK": "Ed25519 strict verify (1,594 bytes: a KEM prekey)",
    "MG": "ML-KEM-1024 key generation from the 64-byte seed",
    "ME": "ML-KEM-1024 encapsulation (checked key)",
    "MD": "ML-KEM-1024 decapsulation (expanded key)",
    "MB": "KEM binding: SHA-256 of the 1,569-byte encoded key",
    "MC": "ML-KEM-1024 encapsulation key check (FIPS 203; at bundle decoding)",
}
for n in SIZES:
    PRIM_TEXT[f"S{n}"] = f"AES-256-GCM key setup + seal, {n} B, 154 B AAD"
    PRIM_TEXT[f"O{n}"] = f"AES-256-GCM key setup + open, {n} B, 154 B AAD"


def chain_msg(n, aead):
    """One message on an established chain: chain step, key expansion, AEAD."""
    return {"H": 2, "KM": 1, f"{aead}{n}": 1}


def add(*floors):
    out = {}
    for f in floors:
        for k, v in f.items():
            out[k] = out.get(k, 0) + v
    return out


# Floors of sotto's operations: which primitives each one cannot avoid.
# Read from src/ratchet/*.rs and src/x3dh.rs; see BENCHMARKS.md for the prose.
SEND_RATCHET = {"G": 1, "D": 1, "KR": 1}  # deferred new ratchet key at encrypt
RECV_RATCHET = {"D": 1, "KR": 1}  # new peer ratchet key at decrypt
# PQXDH with a one-time prekey and a one-time KEM prekey (SPEC §7.2, §7.3):
# both bundle signatures, base key, DH1-DH4, encapsulation and the KEM
# binding; the responder expands its stored seed and decapsulates.
PQ_INITIATE = add({"V": 1, "VK": 1, "G": 1, "D": 4, "ME": 1, "MB": 1, "KP": 1},
                  SEND_RATCHET, chain_msg(100, "S"))
PQ_ACCEPT = add({"D": 4, "MG": 1, "MD": 1, "MB": 1, "KP": 1}, RECV_RATCHET, chain_msg(100, "O"))
# Classical X3DH under the opt-in, with a one-time prekey.
INITIATE = add({"V": 1, "G": 1, "D": 4, "KX": 1}, SEND_RATCHET, chain_msg(100, "S"))
ACCEPT = add({"D": 4, "KX": 1}, RECV_RATCHET, chain_msg(100, "O"))
TURN = add(SEND_RATCHET, chain_msg(100, "S"), RECV_RATCHET, chain_msg(100, "O"))

# (label, sotto id, divisor, floor, vodozemac id, note)
ROWS = []
for n in SIZES:
    ROWS.append((f"encrypt {n} B", f"encrypt/sotto/{n}", 1, chain_msg(n, "S"),
                 f"encrypt/vodozemac/{n}", ""))
for n in SIZES:
    ROWS.append((f"decrypt {n} B", f"decrypt/sotto/{n}", 1, chain_msg(n, "O"),
                 f"decrypt/vodozemac/{n}", ""))
ROWS += [
    ("ping-pong turn (100 B, DH ratchet each message)", "pingpong/sotto/round_trip", 2,
     TURN, "pingpong/vodozemac/round_trip", "round trip / 2"),
    ("PQXDH initiate (verify bundle, PQXDH, first encrypt)", "pqxdh/sotto/initiate", 1,
     PQ_INITIATE, None, "one-time prekey and one-time KEM prekey"),
    ("PQXDH accept (PQXDH, first decrypt)", "pqxdh/sotto/accept", 1, PQ_ACCEPT, None,
     "ML-KEM key generation from the stored seed, then decapsulation"),
    ("X3DH initiate, classical opt-in (verify bundle, X3DH, first encrypt)",
     "x3dh_classical/sotto/initiate", 1, INITIATE, "x3dh_classical/vodozemac/initiate",
     "Olm: no bundle signature, 3 DH"),
    ("X3DH accept, classical opt-in (X3DH, first decrypt)", "x3dh_classical/sotto/accept", 1,
     ACCEPT, "x3dh_classical/vodozemac/accept", "Olm: 3 DH"),
    ("decrypt from skipped-key store (100 B)", "skipped_decrypt/sotto/10", 1,
     {"KM": 1, "O100": 1}, "skipped_decrypt/vodozemac/10", "10 keys stored"),
    ("session to_bytes", "session_state/sotto/to_bytes", 1, {}, None, ""),
    ("session from_bytes", "session_state/sotto/from_bytes", 1, {}, None,
     "validates both identity keys; the sending public key waits for the next encrypt"),
    ("session seal", "session_state/sotto/seal", 1, {}, "session_state/vodozemac/seal",
     "Olm: pickle + encrypt"),
    ("session unseal", "session_state/sotto/unseal", 1, {},
     "session_state/vodozemac/unseal", "Olm: decrypt + unpickle"),
]

# Group rows: floors measured next to them in benches/benches/group.rs.
GROUP_ROWS = [
    ("group encrypt 100 B", "group_encrypt/sotto/100", 1, {}, "group_encrypt/vodozemac/100",
     "floor: sign + 2 SHA-256 + HKDF + seal"),
    ("group decrypt 100 B", "group_decrypt/sotto/100", 1, {}, "group_decrypt/vodozemac/100",
     "floor: strict verify + 2 SHA-256 + HKDF + open"),
    ("group decrypt in order (jump 0)", "group_jump/sotto/0", 1, {}, None, ""),
    ("group decrypt after a 10,000 jump", "group_jump/sotto/10000", 1, {},
     "group_jump/vodozemac/10000", ""),
    ("group decrypt after the largest jump (2^24)", "group_jump/sotto/max", 1, {}, None, ""),
    ("group decrypt after 2^24 - 1 (most hashing)", "group_jump/sotto/worst", 1, {}, None, ""),
]


# The session layer (issue 13, benches/benches/sessions.rs): each layer call
# next to the bare Session calls it makes on the same states, measured in
# the same group (the `floor/` ids). (label, layer id, goal limit or None).
SESSION_ROWS = [
    ("encrypt to one device: `encrypt_to` / `Session::encrypt`", "sessions_encrypt/sotto/to",
     1.1),
    ("encrypt to a user with one device: fan-out `encrypt` / `Session::encrypt`",
     "sessions_encrypt/sotto/fanout", 1.1),
    ("decrypt on the active session / `Session::decrypt`", "sessions_decrypt/sotto/active", 1.1),
    ("decrypt that promotes an archived session / (failed try + decrypt)",
     "sessions_promote/sotto/archived", 1.1),
]
# opcount operations: (label, layer op, bare op, baseline of both or None
# for Ir(op, 0)).
SESSION_COUNTS = [
    ("encrypt to one device", "layer_to", "bare_encrypt", None),
    ("fan-out encrypt, one device", "layer_fanout", "bare_encrypt", None),
    ("decrypt on the active session", "layer_decrypt", "bare_decrypt", "_base"),
    ("decrypt promoting an archived session", "layer_promote", "bare_promote", "_base"),
]
SESSION_MISS = ("The layer's call and the bare session calls are measured one after the "
                "other in one group, each for about 5 s; the load of the shared machine "
                "moves by more than the goal's 10 % within seconds (compare the two "
                "measurements of the same bare `Session::encrypt`, `floor/to` and "
                "`floor/fanout`, in this run). The instruction counts below do not "
                "depend on load.")


def load(criterion_dir):
    results = {}
    for bench in criterion_dir.glob("**/new/benchmark.json"):
        meta = json.loads(bench.read_text())
        est = json.loads((bench.parent / "estimates.json").read_text())
        results[meta["full_id"]] = {
            "median": est["median"]["point_estimate"],
            "throughput": meta.get("throughput"),
        }
    return results


def fmt_time(ns):
    if ns is None:
        return "–"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def floor_time(results, floor):
    total = 0.0
    for k, count in floor.items():
        r = results.get(PRIM[k])
        if r is None:
            return None
        total += count * r["median"]
    return total


def floor_text(floor):
    parts = []
    order = ["V", "VK", "SIGN", "G", "D", "MG", "ME", "MD", "MB", "KP", "KX", "KR", "H", "KM"]
    order += [f"S{n}" for n in SIZES] + [f"O{n}" for n in SIZES]
    for k in order:
        if k in floor:
            name = {"V": "verify", "VK": "verify-KEM-prekey", "SIGN": "sign",
                    "G": "keygen", "D": "DH", "MG": "ML-KEM-keygen", "ME": "ML-KEM-encaps",
                    "MD": "ML-KEM-decaps", "MB": "KEM-binding", "KP": "HKDF-pqxdh",
                    "KX": "HKDF-x3dh", "KR": "HKDF-root", "H": "HMAC",
                    "KM": "HKDF-msg"}.get(k) or (("seal " if k[0] == "S" else "open ") + k[1:])
            parts.append(f"{floor[k]}×{name}" if floor[k] != 1 else name)
    return " + ".join(parts) if parts else "–"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(r):
    return "–" if r is None else f"{r:.2f}×"


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine():
    model = "unknown"
    for line in sh(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "rustc": sh(["rustc", "-V"]),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


# Why a goal can read as missed although sotto does no extra work: printed
# under the goals table for each goal this run missed.
MISS_REASONS = {
    "ping-pong turn": "The turn's asymmetric reference is measured in the same group, but "
    "one DH is about 40 µs and the machine's load moves by more than that within seconds. "
    "The instruction counts below (turn / (keygen + 2 DH)) do not depend on load.",
    "PQXDH initiate": "See the instruction counts below: they compare the handshake with "
    "its asymmetric floor without the machine's load.",
    "PQXDH accept": "See the instruction counts below: they compare the handshake with "
    "its asymmetric floor without the machine's load.",
    "classical X3DH handshake": "The handshake is the sum of two benchmarks (initiate, accept) "
    "compared with a third (the asymmetric reference), each about 3 s apart, so load "
    "changes between them show up directly; compare each half with the floor measured "
    "next to it in the table, and the instruction counts below, which show sotto does "
    "verify + 2 keygen + 10 DH and nothing else asymmetric.",
    "64 KiB encrypt": "At 64 KiB, encrypt adds to raw AES-256-GCM the copy of the "
    "plaintext into the output buffer (`output_buffer/floor/65536`) and the key "
    "derivation, about 10 % together on a quiet machine, so this goal sits at its limit "
    "and load noise decides it; compare sotto with its full floor "
    "(`encrypt/floor/65536`) in the table. Closing the rest would need an encrypt-in-place "
    "API over a caller's buffer.",
    "group decrypt after a 10,000 jump": "A jump also derives and stores the 32 keys "
    "below the target (one SHA-256 and one small allocation each), which the in-order "
    "decrypt does not.",
}


def goals(results, med):
    """Returns (goal, value text, passed or None when not measured)."""
    out = []

    def check(name, value, limit, text):
        if value is None:
            out.append((name, "not measured", None))
        else:
            out.append((name, text.format(value), value <= limit))

    def floor_of(inline_id, primitives):
        inline = med(inline_id)
        return inline if inline is not None else floor_time(results, primitives)

    for op in ("encrypt", "decrypt"):
        aead = "S" if op == "encrypt" else "O"
        s = med(f"{op}/sotto/100")
        check(f"{op} 100 B ≤ 1.3× floor",
              ratio(s, floor_of(f"{op}/floor/100", chain_msg(100, aead))), 1.3, "{:.2f}×")
        check(f"{op} 100 B faster than vodozemac", ratio(s, med(f"{op}/vodozemac/100")),
              0.999999, "{:.2f}× vodozemac")
    turn = med("pingpong/sotto/round_trip")
    asym = med("pingpong/floor/asymmetric")
    check("ping-pong turn ≤ 1.2× (keygen + 2 DH)",
          ratio(turn, asym if asym is not None else
                (lambda f: 2 * f if f else None)(floor_time(results, {"G": 1, "D": 2}))),
          1.2, "{:.2f}×")
    check("PQXDH initiate ≤ 1.2× floor (2 verify + 2 keygen + 5 DH + ML-KEM encaps + symmetric)",
          ratio(med("pqxdh/sotto/initiate"), floor_of("pqxdh/floor/initiate", PQ_INITIATE)),
          1.2, "{:.2f}×")
    check("PQXDH accept ≤ 1.2× floor (5 DH + ML-KEM keygen + decaps + symmetric)",
          ratio(med("pqxdh/sotto/accept"), floor_of("pqxdh/floor/accept", PQ_ACCEPT)),
          1.2, "{:.2f}×")
    i, a = med("x3dh_classical/sotto/initiate"), med("x3dh_classical/sotto/accept")
    hs = i + a if i is not None and a is not None else None
    check("classical X3DH handshake ≤ 1.2× (verify + 2 keygen + 10 DH)",
          ratio(hs, floor_of("x3dh_classical/floor/asymmetric", {"V": 1, "G": 2, "D": 10})),
          1.2, "{:.2f}×")
    enc = med("encrypt/sotto/65536")
    aes = med("encrypt/aes256gcm/65536") or med("aes256gcm_seal/floor/65536")
    share = ratio(aes, enc)
    if share is None:
        out.append(("64 KiB encrypt ≥ 90% of AES-256-GCM throughput", "not measured", None))
    else:
        out.append(("64 KiB encrypt ≥ 90% of AES-256-GCM throughput", f"{share:.1%}", share >= 0.9))
    g_enc = med("group_encrypt/sotto/100")
    g_dec = med("group_decrypt/sotto/100")
    check("group encrypt ≤ 1.2× (sign + symmetric floor)",
          ratio(g_enc, med("group_encrypt/floor/100")), 1.2, "{:.2f}×")
    check("group decrypt ≤ 1.2× (strict verify + symmetric floor)",
          ratio(g_dec, med("group_decrypt/floor/100")), 1.2, "{:.2f}×")
    check("group decrypt after a 10,000 jump ≤ 1.3× in-order decrypt",
          ratio(med("group_jump/sotto/10000"), med("group_jump/sotto/0")), 1.3, "{:.2f}×")
    return out


# Instruction counts (valgrind callgrind, load-independent) of one operation:
# (Ir(op, N) - Ir(baseline, N) or Ir(op, 0)) / N, with benches/src/bin/opcount.rs.
CALLGRIND_N = 10


def opcount():
    """Builds the operation counter (release, as the benchmarks)."""
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "sotto-bench", "--bin",
                    "opcount"], cwd=ROOT, check=True)
    return ROOT / "target" / "release" / "opcount"


def encoding_sizes():
    """(name, bytes) of the encodings the benchmarks use (`opcount sizes`)."""
    out = subprocess.run([str(opcount()), "sizes", "0"], capture_output=True, text=True,
                         check=True).stdout
    return [tuple(line.rsplit("\t", 1)) for line in out.splitlines() if "\t" in line]


def callgrind():
    binary = opcount()

    def ir(op, n):
        out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                              str(binary), op, str(n)], capture_output=True, text=True,
                             check=True).stderr
        for line in out.splitlines():
            if "Collected :" in line:
                return int(line.rsplit(":", 1)[1])
        raise RuntimeError(f"no callgrind total for {op}")

    def per_op(op, baseline=None):
        base = ir(baseline, CALLGRIND_N) if baseline else ir(op, 0)
        return (ir(op, CALLGRIND_N) - base) / CALLGRIND_N

    c = {op: per_op(op) for op in ("dh", "keygen", "verify", "verify_kem", "kem_keygen",
                                   "kem_encaps", "kem_decaps", "initiate",
                                   "initiate_classical", "pingpong", "encrypt_64k",
                                   "seal_64k")}
    c["accept"] = per_op("accept", "device_restore")
    c["accept_classical"] = per_op("accept_classical", "device_restore_classical")
    g, d, v, vk = c["keygen"], c["dh"], c["verify"], c["verify_kem"]
    mg, me, md = c["kem_keygen"], c["kem_encaps"], c["kem_decaps"]
    return [
        ("X25519 DH", d, None, None),
        ("X25519 keygen", g, None, None),
        ("Ed25519 strict verify (signed prekey)", v, None, None),
        ("Ed25519 strict verify (KEM prekey)", vk, None, None),
        ("ML-KEM-1024 keygen from seed", mg, None, None),
        ("ML-KEM-1024 encapsulate", me, None, None),
        ("ML-KEM-1024 decapsulate", md, None, None),
        ("ping-pong turn", c["pingpong"] / 2, g + 2 * d, "keygen + 2 DH"),
        ("PQXDH initiate", c["initiate"], v + vk + 2 * g + 5 * d + me,
         "2 verify + 2 keygen + 5 DH + encaps"),
        ("PQXDH accept", c["accept"], 5 * d + mg + md, "5 DH + ML-KEM keygen + decaps"),
        ("X3DH initiate (classical)", c["initiate_classical"], v + 2 * g + 5 * d,
         "verify + 2 keygen + 5 DH"),
        ("X3DH accept (classical)", c["accept_classical"], 5 * d, "5 DH"),
        ("X3DH handshake (classical)", c["initiate_classical"] + c["accept_classical"],
         v + 2 * g + 10 * d, "verify + 2 keygen + 10 DH"),
        ("encrypt 64 KiB", c["encrypt_64k"], c["seal_64k"], "AES-256-GCM seal 64 KiB"),
    ]


def session_counts():
    """Instructions per operation of the layer and of the bare calls."""
    binary = opcount()

    def ir(op, n):
        out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                              str(binary), op, str(n)], capture_output=True, text=True,
                             check=True).stderr
        for line in out.splitlines():
            if "Collected :" in line:
                return int(line.rsplit(":", 1)[1])
        raise RuntimeError(f"no callgrind total for {op}")

    def per_op(op, base):
        baseline = ir(op + base, CALLGRIND_N) if base else ir(op, 0)
        return (ir(op, CALLGRIND_N) - baseline) / CALLGRIND_N

    return [(label, per_op(layer, base), per_op(bare, base))
            for label, layer, bare, base in SESSION_COUNTS]


def session_section(results, med, callgrind_counts):
    """The session layer's section: its goals from this run, the times,
    and (with --callgrind) instruction counts. Returns (lines, goal rows)."""
    m = machine()
    lines = ["## The session layer against bare sessions", ""]
    w = lines.append
    w("Each call of the session layer (SPEC.md §16, `benches/benches/sessions.rs`) next to "
      "the bare `Session` calls it makes, on the same session states byte for byte (taken "
      "out of the saved records), measured right after it in the same criterion group "
      "(`floor/` ids): the issue's goal is ≤ 1.1× for each. "
      f"Run of {datetime.date.today().isoformat()}; load average when written {m['load']} "
      "(the machine is shared; the ratio, not the times, is the figure). Reproduce: "
      "`cargo bench -p sotto-bench --bench sessions`, then "
      "`python3 scripts/benchmarks.py --sessions-only --callgrind`.")
    w("")
    w("| Operation | layer | bare | layer / bare | Goal |")
    w("|---|---|---|---|---|")
    goal_rows = []
    for label, sid, limit in SESSION_ROWS:
        layer, bare = med(sid), med(sid.replace("/sotto/", "/floor/"))
        r = ratio(layer, bare)
        verdict = "not measured" if r is None else ("met" if r <= limit else "**missed**")
        w(f"| {label} | {fmt_time(layer)} | {fmt_time(bare)} | {fmt_ratio(r)} | "
          f"≤ {limit}×: {verdict} |")
        goal_rows.append((f"session layer: {label} ≤ {limit}×", fmt_ratio(r),
                          None if r is None else r <= limit))
    w("")
    if any(p is False for _, _, p in goal_rows):
        w("- **Missed in this run.** " + SESSION_MISS)
        w("")
    if callgrind_counts:
        w("Instructions per operation under callgrind (`opcount`, "
          f"{CALLGRIND_N} runs minus setup), independent of the machine's load:")
        w("")
        w("| Operation | layer | bare | layer / bare |")
        w("|---|---|---|---|")
        for label, layer, bare in callgrind_counts:
            w(f"| {label} | {layer:,.0f} | {bare:,.0f} | {layer / bare:.3f}× |")
        w("")
    return lines, goal_rows


def replace_section(text, section_lines):
    """Puts the session section in place of its previous version, or before
    the notes (`## What each floor contains`)."""
    title = section_lines[0]
    lines = text.split("\n")
    if title in lines:
        start = lines.index(title)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
    else:
        anchor = "## What each floor contains"
        start = end = lines.index(anchor) if anchor in lines else len(lines)
    return "\n".join(lines[:start] + section_lines + lines[end:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--criterion", default=str(ROOT / "target" / "criterion"))
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--check", action="store_true", help="exit 1 if a goal is missed")
    parser.add_argument("--callgrind", action="store_true",
                        help="also count instructions with valgrind (about a minute)")
    parser.add_argument("--sessions-only", action="store_true",
                        help="only rewrite the session layer's section of the existing file")
    args = parser.parse_args()

    results = load(pathlib.Path(args.criterion))
    if not results:
        sys.exit(f"no criterion results under {args.criterion}; run cargo bench first")

    def med(bench_id):
        r = results.get(bench_id)
        return r["median"] if r else None

    counts = session_counts() if args.callgrind else None
    if args.sessions_only:
        section, session_goals = session_section(results, med, counts)
        out = pathlib.Path(args.out)
        out.write_text(replace_section(out.read_text(), section))
        for name, value, passed in session_goals:
            print(f"{'MISSED' if passed is False else ('met' if passed else 'n/a'):7} "
                  f"{name}: {value}")
        if args.check and any(p is False for _, _, p in session_goals):
            sys.exit(1)
        return

    m = machine()
    lines = []
    w = lines.append
    w("# sotto benchmarks")
    w("")
    w("Generated by `scripts/benchmarks.py` from one criterion run (medians). "
      "Do not edit by hand; rerun the benchmarks and the script.")
    w("")
    w("## Machine")
    w("")
    w(f"- CPU: {m['cpu']}, {m['cores']} cores")
    w(f"- OS: {m['os']}; {m['rustc']}; profile `bench` (release, no LTO)")
    w(f"- Load average when the report was written: {m['load']}")
    w(f"- Date: {datetime.date.today().isoformat()}")
    w("")
    w("The machine is shared (2 cores), so absolute times vary between runs; the load "
      "average above says how busy it was. Compare ratios within this run, not "
      "absolute times across runs.")
    w("")
    w("## Reproduce")
    w("")
    w("```sh")
    w("cargo bench -p sotto-bench --features vodozemac -- --warm-up-time 1 --measurement-time 2")
    w("python3 scripts/benchmarks.py")
    w("```")
    w("")
    w("Without `--features vodozemac` the vodozemac columns are empty. "
      "CI only builds the benchmarks (`.ci/bench.sh`).")
    w("")

    w("## Goals")
    w("")
    w("| Goal | Measured | Result |")
    w("|---|---|---|")
    goal_rows = goals(results, med)
    for name, value, passed in goal_rows:
        verdict = "not measured" if passed is None else ("met" if passed else "**missed**")
        w(f"| {name} | {value} | {verdict} |")
    w("")
    for name, value, passed in goal_rows:
        if passed is False:
            reason = next((r for k, r in MISS_REASONS.items() if name.startswith(k)), None)
            w(f"- **{name}** missed ({value}). " + (reason or "No known cause: investigate."))
    if any(p is False for _, _, p in goal_rows):
        w("")

    w("## sotto against its floor and vodozemac")
    w("")
    w("Floor = the primitives the operation cannot avoid, called in sequence "
      "through the same crates and measured in the same criterion group, right "
      "before or after sotto (so both see the same machine load). "
      "Σ primitives = the same floor as a sum of the separately measured primitives "
      "(table below), measured minutes apart and so noisier as a ratio. "
      "vodozemac ratio < 1 means sotto is faster.")
    w("")
    w("| Operation | sotto | Floor | sotto / floor | Σ primitives | sotto / Σ | vodozemac | sotto / vodozemac | Floor made of | Note |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for label, sid, div, floor, vid, note in ROWS + GROUP_ROWS:
        s = med(sid)
        if s is None:
            continue
        s /= div
        inline = med(sid.replace("/sotto/", "/floor/"))
        inline = inline / div if inline is not None else None
        f = floor_time(results, floor) if floor else None
        v = med(vid) if vid else None
        if v is not None:
            v /= div
        w(f"| {label} | {fmt_time(s)} | {fmt_time(inline)} | {fmt_ratio(ratio(s, inline))} | "
          f"{fmt_time(f)} | {fmt_ratio(ratio(s, f))} | "
          f"{fmt_time(v)} | {fmt_ratio(ratio(s, v))} | {floor_text(floor)} | {note} |")
    w("")

    w("## Throughput at 64 KiB")
    w("")
    w("| | MiB/s |")
    w("|---|---|")
    for label, bid in [("sotto encrypt", "encrypt/sotto/65536"),
                       ("sotto decrypt", "decrypt/sotto/65536"),
                       ("vodozemac encrypt", "encrypt/vodozemac/65536"),
                       ("vodozemac decrypt", "decrypt/vodozemac/65536"),
                       ("AES-256-GCM seal, next to sotto encrypt", "encrypt/aes256gcm/65536"),
                       ("AES-256-GCM seal (floor)", "aes256gcm_seal/floor/65536"),
                       ("AES-256-GCM open (floor)", "aes256gcm_open/floor/65536"),
                       ("HMAC-SHA256 (for scale)", "hmac_sha256/floor/65536")]:
        t = med(bid)
        if t is not None:
            w(f"| {label} | {65536 / (t / 1e9) / 2**20:.0f} |")
    w("")

    w("## Primitives (the floor)")
    w("")
    w("| Primitive | Median |")
    w("|---|---|")
    for k, bid in PRIM.items():
        w(f"| {PRIM_TEXT[k]} | {fmt_time(med(bid))} |")
    for n in SIZES:
        w(f"| HMAC-SHA256, {n} B (for scale) | {fmt_time(med(f'hmac_sha256/floor/{n}'))} |")
    w("")

    w("## Sizes")
    w("")
    w("The encodings of this run's fixtures (`opcount sizes`; SPEC.md §5, §9, §10, §15).")
    w("")
    w("| Encoding | Bytes |")
    w("|---|---|")
    for name, n in encoding_sizes():
        w(f"| {name} | {int(n):,} |")
    w("")

    state = results.get("session_state/sotto/to_bytes")
    sealed = results.get("session_state/sotto/seal")
    olm = results.get("session_state/vodozemac/seal")
    sizes = []
    for name, r in [("sotto plain state", state), ("sotto sealed state", sealed),
                    ("vodozemac encrypted pickle", olm)]:
        if r and r.get("throughput"):
            sizes.append(f"{name} {r['throughput']['Bytes']} B")
    if sizes:
        w("State sizes of the benchmarked established session: " + ", ".join(sizes) + ".")
        w("")

    if args.callgrind:
        w("## Instruction counts (valgrind, independent of machine load)")
        w("")
        w("Instructions retired per operation under callgrind "
          f"(`benches/src/bin/opcount.rs`, {CALLGRIND_N} runs minus setup). "
          "Instructions are not cycles, but they show whether sotto does any "
          "asymmetric work beyond its floor, which wall time on a loaded machine cannot.")
        w("")
        w("| Operation | Instructions | Reference | Instructions of reference | Ratio |")
        w("|---|---|---|---|---|")
        for label, n, ref, ref_label in callgrind():
            if ref is None:
                w(f"| {label} | {n:,.0f} | | | |")
            else:
                w(f"| {label} | {n:,.0f} | {ref_label} | {ref:,.0f} | {n / ref:.2f}× |")
        w("")

    section, session_goals = session_section(results, med, counts)
    lines.extend(section)
    goal_rows += session_goals

    notes = ROOT / "benches" / "NOTES.md"
    if notes.exists():
        w(notes.read_text().rstrip())
        w("")

    # The bindings' call overhead comes from its own run
    # (bindings/bench/run.sh); carried over as it was written.
    overhead = ROOT / "bindings" / "bench" / "overhead.md"
    if overhead.exists():
        w(overhead.read_text().rstrip())
        w("")

    pathlib.Path(args.out).write_text("\n".join(lines))
    missed = [g for g in goal_rows if g[2] is False]
    for name, value, passed in goal_rows:
        print(f"{'MISSED' if passed is False else ('met' if passed else 'n/a'):7} {name}: {value}")
    if args.check and missed:
        sys.exit(1)


if __name__ == "__main__":
    main()
