//! Kill points: named places in every operation's transaction path where
//! the crash-safety driver (tests/crash.rs) makes a child process kill
//! itself. Compiled in only with the `test-hooks` feature.

/// One place in an operation's transaction path.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Point {
    /// The operation (for example `"encrypt"`).
    pub op: &'static str,
    /// The place in it (for example `"before-commit"`).
    pub at: &'static str,
}

/// The hook a store calls at every point.
#[cfg(feature = "test-hooks")]
pub(crate) type Hook = Option<Box<dyn FnMut(Point) + Send>>;

/// Without the feature there is no hook.
#[cfg(not(feature = "test-hooks"))]
pub(crate) type Hook = ();

/// Calls the hook, if any, at `op`/`at`.
#[cfg(feature = "test-hooks")]
pub(crate) fn hit(hook: &mut Hook, op: &'static str, at: &'static str) {
    if let Some(hook) = hook {
        hook(Point { op, at });
    }
}

/// Without the feature: nothing.
#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub(crate) fn hit(_: &mut Hook, _: &'static str, _: &'static str) {}
