//! uniffi's generator, built from this workspace: `generate --library
//! <libsotto_uniffi.so> --language kotlin|swift|python --out-dir <dir>`.

fn main() {
    uniffi::uniffi_bindgen_main();
}
