//! Checks made of more than one resource: an `applies-if` condition, `all-of`, `any-of`, and
//! manual controls (no resource at all).
//!
//! Their resources ("atoms") are gathered in batches per resource kind, like single checks,
//! so twenty `all-of` checks over files still cost one `stat`. The condition's atoms are
//! gathered in the same round as the check's own (they only read), and the verdict is put
//! together afterwards: a condition that does not hold makes the check `not-applicable`.

use std::time::Duration;

use crate::suites::model::Check;
use crate::suites::resources::{Outcome, Resource};
use crate::suites::result::Status;

/// How a check's verdict is made from its atoms.
enum Node {
    Leaf(usize),
    All(Vec<Node>),
    Any(Vec<Node>),
    Manual,
}

/// The atoms of the compound checks of a run, and how each check's verdict is made of them.
pub(super) struct Plan<'a> {
    /// Every atom: the resource and the timeout of the check it belongs to.
    pub atoms: Vec<(&'a Resource, Duration)>,
    /// Per compound check: its index in the run, its condition and its body.
    checks: Vec<(usize, Option<Node>, Node)>,
}

impl<'a> Plan<'a> {
    /// Flattens the checks `which` (indices into `selected`) into atoms.
    pub fn new(selected: &[&'a Check], which: &[usize], default_timeout: Duration) -> Self {
        let mut plan = Plan {
            atoms: Vec::new(),
            checks: Vec::new(),
        };
        for &i in which {
            let c = selected[i];
            let timeout = c.timeout.map(|t| t.0).unwrap_or(default_timeout);
            let cond = c.applies_if.as_ref().map(|r| plan.node(r, timeout));
            let body = plan.node(&c.resource, timeout);
            plan.checks.push((i, cond, body));
        }
        plan
    }

    fn node(&mut self, r: &'a Resource, timeout: Duration) -> Node {
        match r {
            Resource::AllOf(items) => {
                Node::All(items.iter().map(|r| self.node(r, timeout)).collect())
            }
            Resource::AnyOf(items) => {
                Node::Any(items.iter().map(|r| self.node(r, timeout)).collect())
            }
            Resource::Manual => Node::Manual,
            leaf => {
                self.atoms.push((leaf, timeout));
                Node::Leaf(self.atoms.len() - 1)
            }
        }
    }

    /// The atoms in batches: those of one batchable kind together (at most `limit`), the
    /// others one each.
    pub fn jobs(&self, limit: usize) -> Vec<Vec<usize>> {
        let mut jobs: Vec<Vec<usize>> = Vec::new();
        for (a, (r, _)) in self.atoms.iter().enumerate() {
            match r.batch_key() {
                Some(key) => match jobs
                    .iter_mut()
                    .find(|j| self.atoms[j[0]].0.batch_key() == Some(key) && j.len() < limit)
                {
                    Some(job) => job.push(a),
                    None => jobs.push(vec![a]),
                },
                None => jobs.push(vec![a]),
            }
        }
        jobs
    }

    /// Each compound check's index, outcome and time from the atoms' outcomes and times.
    pub fn combine(&self, atoms: &[(Outcome, Duration)]) -> Vec<(usize, Outcome, Duration)> {
        self.checks
            .iter()
            .map(|(i, cond, body)| {
                let mut spent = Duration::ZERO;
                let mut time = |n: &Node| spent += time_of(n, atoms);
                if let Some(c) = cond {
                    time(c);
                }
                time(body);
                (*i, verdict(cond.as_ref(), body, atoms), spent)
            })
            .collect()
    }
}

fn time_of(n: &Node, atoms: &[(Outcome, Duration)]) -> Duration {
    match n {
        Node::Leaf(a) => atoms[*a].1,
        Node::All(v) | Node::Any(v) => v.iter().map(|n| time_of(n, atoms)).sum(),
        Node::Manual => Duration::ZERO,
    }
}

fn verdict(cond: Option<&Node>, body: &Node, atoms: &[(Outcome, Duration)]) -> Outcome {
    if let Some(cond) = cond {
        let c = eval(cond, atoms);
        match c.status {
            Status::Passed => {}
            Status::Failed => {
                return Outcome {
                    status: Status::NotApplicable,
                    expected: None,
                    actual: None,
                    message: format!("not applicable: {}", c.message),
                    output: c.output,
                }
            }
            _ => {
                return Outcome {
                    message: format!("could not evaluate applies-if: {}", c.message),
                    ..c
                }
            }
        }
    }
    eval(body, atoms)
}

fn eval(n: &Node, atoms: &[(Outcome, Duration)]) -> Outcome {
    match n {
        Node::Leaf(a) => atoms[*a].0.clone(),
        Node::Manual => Outcome {
            status: Status::NotReviewed,
            expected: None,
            actual: None,
            message: "a manual control: review it by hand and record an attestation".into(),
            output: String::new(),
        },
        Node::All(items) => {
            let parts: Vec<Outcome> = items.iter().map(|n| eval(n, atoms)).collect();
            let status = if parts.iter().any(|o| o.status == Status::Error) {
                Status::Error
            } else if parts.iter().all(|o| o.status == Status::Passed) {
                Status::Passed
            } else {
                Status::Failed
            };
            // A failure names only what did not hold; a pass names everything.
            let shown: Vec<&Outcome> = if status == Status::Passed {
                parts.iter().collect()
            } else {
                parts.iter().filter(|o| o.status == status).collect()
            };
            joined(status, &shown, "; ")
        }
        Node::Any(items) => {
            let parts: Vec<Outcome> = items.iter().map(|n| eval(n, atoms)).collect();
            if let Some(ok) = parts.iter().find(|o| o.status == Status::Passed) {
                return ok.clone();
            }
            let status = if parts.iter().any(|o| o.status == Status::Error) {
                Status::Error
            } else {
                Status::Failed
            };
            let all: Vec<&Outcome> = parts.iter().collect();
            let mut o = joined(status, &all, " | ");
            o.message = format!("none of the alternatives held: {}", o.message);
            o
        }
    }
}

fn joined(status: Status, parts: &[&Outcome], sep: &str) -> Outcome {
    let list = |f: &dyn Fn(&Outcome) -> Option<String>| {
        let v: Vec<String> = parts.iter().filter_map(|o| f(o)).collect();
        (!v.is_empty()).then(|| v.join(sep))
    };
    Outcome {
        status,
        expected: list(&|o| o.expected.clone()),
        actual: list(&|o| o.actual.clone()),
        message: list(&|o| Some(o.message.clone())).unwrap_or_default(),
        output: parts
            .iter()
            .filter(|o| !o.output.is_empty())
            .map(|o| o.output.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    }
}
