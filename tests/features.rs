//! `tests/ort_backend.rs` and `tests/rknn_backend.rs` compile to no test at all without their
//! features, so a plain `cargo test` would report them as passed with nothing run: this test
//! fails instead, naming the command that runs them.

#[test]
fn the_backend_features_are_on() {
    let missing: Vec<&str> = [
        ("ort", cfg!(feature = "ort")),
        ("rknn", cfg!(feature = "rknn")),
    ]
    .into_iter()
    .filter(|(_, on)| !on)
    .map(|(name, _)| name)
    .collect();
    assert!(
        missing.is_empty(),
        "built without --features {}: the backend tests (tests/ort_backend.rs, tests/rknn_backend.rs) \
         ran nothing. Run the test command, `bash tools/test.sh` (cargo test --features ort,rknn)",
        missing.join(",")
    );
}
