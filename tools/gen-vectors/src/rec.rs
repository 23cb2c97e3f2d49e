//! Recording scripts: each step runs on the model (with a seeded ChaCha20
//! stream, its draws logged), is written with its result, and is replayed
//! at once on every other implementation the verifier knows, with the
//! recorded draws: the first difference aborts the generator.

use serde_json::{Value, json};
use testkit::hex::hex;
use testkit::model::Refusal;
use testkit::model::rand::Stream;
use testkit::rng::named_seed;
use testkit::vectors::api::{Api, R};
use testkit::vectors::model_api::ModelApi;
use testkit::vectors::script::{self, Output, World};
use testkit::vectors::trace;

/// The other implementations, each with its own world.
struct Other {
    api: Box<dyn Api>,
    world: World,
}

/// A script being recorded.
pub(crate) struct Rec {
    /// The model's states.
    pub(crate) world: World,
    /// The recorded steps.
    pub(crate) steps: Vec<Value>,
    /// The model's randomness.
    pub(crate) rng: Stream,
    /// Whether successful steps carry the model's trace.
    pub(crate) traced: bool,
    /// If set, traces keep only these fields.
    pub(crate) trace_fields: Option<&'static [&'static str]>,
    others: Vec<Other>,
}

impl Rec {
    /// A script drawing from the stream seeded by `SHA256(label)`.
    pub(crate) fn new(label: &str) -> Self {
        Self {
            world: World::default(),
            steps: Vec::new(),
            rng: Stream::new(named_seed(label)),
            traced: false,
            trace_fields: None,
            others: testkit::vectors::implementations()
                .into_iter()
                .filter(|a| a.name() != "model")
                .map(|api| Other {
                    api,
                    world: World::default(),
                })
                .collect(),
        }
    }

    /// Runs and records a step; returns its result.
    pub(crate) fn step(&mut self, step: Value) -> R<Output> {
        self.step_from(step, None)
    }

    /// Runs and records a step whose random bytes are `chosen` instead of
    /// the stream's (all of them must be drawn).
    pub(crate) fn step_chosen(&mut self, step: Value, chosen: Vec<u8>) -> R<Output> {
        self.step_from(step, Some(chosen))
    }

    fn step_from(&mut self, mut step: Value, chosen: Option<Vec<u8>>) -> R<Output> {
        let (result, drawn) = match chosen {
            None => {
                let r = script::execute(&ModelApi, &self.world, &step, &mut self.rng);
                (r, self.rng.take())
            }
            Some(bytes) => {
                let mut src = Chosen {
                    bytes,
                    pos: 0,
                    log: Vec::new(),
                };
                let r = script::execute(&ModelApi, &self.world, &step, &mut src);
                assert_eq!(src.pos, src.bytes.len(), "chosen bytes left over");
                (r, src.log)
            }
        };
        let result = result.unwrap_or_else(|e| panic!("malformed step {step}: {e}"));
        let op = step["op"].as_str().expect("an op").to_owned();
        assert!(
            script::draws(&op) || drawn.is_empty(),
            "{op} drew without recording draws"
        );
        script::record(&mut step, &result, script::draws(&op).then_some(drawn));
        if self.traced
            && result.is_ok()
            && let Some(mut t) = trace::of(&self.world, &step).expect("a trace")
        {
            if let (Some(keep), Some(fields)) = (self.trace_fields, t.as_object_mut()) {
                fields.retain(|k, _| keep.contains(&k.as_str()));
            }
            if t.as_object().is_none_or(|f| !f.is_empty()) {
                step["trace"] = t;
            }
        }
        if let Ok(o) = &result {
            for (n, b) in &o.states {
                self.world.states.insert(n.clone(), b.clone());
            }
        }
        for other in &mut self.others {
            if let Err(e) = script::check(other.api.as_ref(), &mut other.world, &step) {
                panic!("DISAGREEMENT at step {} ({op}): {e}", self.steps.len());
            }
        }
        self.steps.push(step.clone());
        result
    }

    /// A step that must succeed; its outputs.
    pub(crate) fn ok(&mut self, step: Value) -> Output {
        let what = step.to_string();
        self.step(step)
            .unwrap_or_else(|e| panic!("model refused {what}: {e}"))
    }

    /// A step that must fail with `error`.
    pub(crate) fn fails(&mut self, step: Value, error: &Refusal) {
        let what = step.to_string();
        match self.step(step) {
            Err(e) if e == *error => {}
            Err(e) => panic!("model: {what} failed with {e}, want {error}"),
            Ok(_) => panic!("model accepted {what}, want {error}"),
        }
    }

    /// Every implementation's world becomes `world` (the same bytes).
    pub(crate) fn reset_world(&mut self, world: &World) {
        self.world = world.clone();
        for other in &mut self.others {
            other.world = world.clone();
        }
    }

    /// A named state.
    pub(crate) fn state(&self, name: &str) -> Vec<u8> {
        self.world.get(name).expect("a state").to_vec()
    }

    /// The last step (to add explanations to it).
    pub(crate) fn last(&mut self) -> &mut Value {
        self.steps.last_mut().expect("a step")
    }

    /// The recorded steps.
    pub(crate) fn into_steps(self) -> Value {
        Value::Array(self.steps)
    }
}

/// Chosen bytes handed out in order, each draw logged.
struct Chosen {
    bytes: Vec<u8>,
    pos: usize,
    log: Vec<Vec<u8>>,
}

impl testkit::model::rand::Source for Chosen {
    fn fill(&mut self, out: &mut [u8]) {
        out.copy_from_slice(&self.bytes[self.pos..self.pos + out.len()]);
        self.pos += out.len();
        self.log.push(out.to_vec());
    }
}

/// A hex output of a step.
pub(crate) fn out(o: &Output, key: &str) -> Vec<u8> {
    testkit::hex::unhex(o.out[key].as_str().expect("a hex output")).expect("hex")
}

/// One vector file.
pub(crate) fn file(area: &str, description: &str, seed_label: &str, vectors: Vec<Value>) -> Value {
    json!({
        "area": area, "format": testkit::vectors::FORMAT, "description": description,
        "generator": "cargo run -p sotto-gen-vectors -- test-vectors",
        "seed_label": seed_label, "seed": hex(&named_seed(seed_label)),
        "vectors": vectors,
    })
}

/// An error without fields.
pub(crate) fn e(name: &str) -> Refusal {
    testkit::model::refusal(name)
}

/// An error with fields.
pub(crate) fn ef(name: &str, fields: Value) -> Refusal {
    testkit::model::refusal_with(name, fields)
}
