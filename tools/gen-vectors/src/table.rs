//! Negative vectors as tables. A row is one step (the operation, the
//! fixtures it runs on by name, its input) with its `name`, the `mutation`
//! that made the input from a valid value (in words, naming SPEC fields),
//! and the `error` SPEC.md fixes. Before a row is written, the model must
//! fail it with exactly that error (rows with `"error": null` pin a
//! boundary that must pass); every other implementation is then checked
//! on it as the generator goes. Fixtures are `load` steps, so that large
//! ones can be recipes.

use serde_json::{Value, json};
use testkit::model::Refusal;

use crate::rec::Rec;

/// A table being written: its fixtures and rows.
pub(crate) struct Table {
    fixtures: Rec,
    rows: Rec,
    names: Vec<(String, String)>,
}

impl Table {
    /// A table whose rows draw from `SHA256(label)`.
    pub(crate) fn new(label: &str) -> Self {
        Self {
            fixtures: Rec::new(&format!("{label} fixtures")),
            rows: Rec::new(label),
            names: Vec::new(),
        }
    }

    /// A fixture: the state `bytes` under `name`.
    pub(crate) fn fixture(&mut self, name: &str, bytes: &[u8]) {
        self.load(json!({ "op": "load", "name": name, "state": testkit::hex::hex(bytes) }));
    }

    /// A fixture built by a recipe from earlier fixtures.
    pub(crate) fn fixture_recipe(&mut self, name: &str, recipe: Value) {
        self.load(json!({ "op": "load", "name": name, "recipe": recipe }));
    }

    fn load(&mut self, step: Value) {
        self.fixtures.ok(step);
        self.rows.reset_world(&self.fixtures.world);
    }

    /// A fixture's bytes.
    pub(crate) fn state(&self, name: &str) -> Vec<u8> {
        self.fixtures.state(name)
    }

    /// A row that must fail with `error` (or pass, with `None`).
    pub(crate) fn row(&mut self, name: &str, mutation: &str, step: Value, error: Option<Refusal>) {
        assert!(
            self.names.iter().all(|(n, _)| n != name),
            "two rows named {name}"
        );
        let what = step.to_string();
        let got = self.rows.step(step);
        match (&got, &error) {
            (Err(e), Some(want)) if e == want => {}
            (Ok(_), None) => {}
            (Err(e), _) => panic!("model: row {name} fails with {e}, want {error:?}: {what}"),
            (Ok(_), Some(want)) => panic!("model: row {name} passes, want {want}"),
        }
        // Rows do not change the fixtures.
        self.rows.reset_world(&self.fixtures.world);
        self.names.push((name.to_owned(), mutation.to_owned()));
    }

    /// A failing row.
    pub(crate) fn fails(&mut self, name: &str, mutation: &str, step: Value, error: Refusal) {
        self.row(name, mutation, step, Some(error));
    }

    /// The fixtures (load steps) and the rows.
    pub(crate) fn finish(self) -> (Value, Vec<Value>) {
        let rows = self
            .rows
            .steps
            .into_iter()
            .zip(self.names)
            .map(|(mut step, (name, mutation))| {
                let mut row = json!({ "name": name, "mutation": mutation });
                for (k, v) in step.as_object_mut().expect("an object") {
                    row[k] = v.take();
                }
                row
            })
            .collect();
        (self.fixtures.into_steps(), rows)
    }
}
