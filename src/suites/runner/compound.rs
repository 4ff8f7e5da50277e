//! Checks gathered as "atoms": a check of one resource, and the parts of checks made of more
//! than one: an `applies-if` condition, `all-of`, `any-of`, and manual controls (no resource
//! at all).
//!
//! Atoms are gathered in batches per resource kind, so twenty `all-of` checks over files still
//! cost one `stat`, and identical commands run once. Conditions are gathered first (they only
//! read, and are mostly cheap facts such as a package or a mount); a check whose condition
//! does not hold is `not-applicable` and its own atoms are never gathered, so a stock system
//! does not run the audit commands of a firewall or a desktop it does not have.

use std::time::Duration;

use crate::suites::model::Check;
use crate::suites::resources::{
    command_bytes, Outcome, Resource, COMMANDS_PER_EXEC, COMMAND_BYTES_PER_EXEC,
};
use crate::suites::result::Status;

/// What gathering an atom gave: its outcome and its share of the gather's time; `None`
/// while (or when never) gathered.
pub(super) type Gathered = Option<(Outcome, Duration)>;

/// How a check's verdict is made from its atoms.
enum Node {
    Leaf(usize),
    All(Vec<Node>),
    Any(Vec<Node>),
    Manual,
}

/// The atoms of the checks of a run, and how each check's verdict is made of them.
pub(super) struct Plan<'a> {
    /// Every atom: the resource and the timeout of the check it belongs to.
    pub atoms: Vec<(&'a Resource, Duration)>,
    /// Per atom: whether it is part of a condition (gathered first).
    condition: Vec<bool>,
    /// Per atom: whether its check sets its own `timeout` (such commands run alone).
    own_timeout: Vec<bool>,
    /// Per check: its index in the run, its condition and its body.
    checks: Vec<(usize, Option<Node>, Node)>,
}

impl<'a> Plan<'a> {
    /// Flattens the checks `which` (indices into `selected`) into atoms.
    pub fn new(selected: &[&'a Check], which: &[usize], default_timeout: Duration) -> Self {
        let mut plan = Plan {
            atoms: Vec::new(),
            condition: Vec::new(),
            own_timeout: Vec::new(),
            checks: Vec::new(),
        };
        for &i in which {
            let c = selected[i];
            let timeout = c.timeout.map(|t| t.0).unwrap_or(default_timeout);
            let first = plan.atoms.len();
            let cond = c.applies_if.as_ref().map(|r| plan.node(r, timeout, true));
            let body = plan.node(&c.resource, timeout, false);
            plan.own_timeout
                .extend((first..plan.atoms.len()).map(|_| c.timeout.is_some()));
            plan.checks.push((i, cond, body));
        }
        plan
    }

    fn node(&mut self, r: &'a Resource, timeout: Duration, condition: bool) -> Node {
        match r {
            Resource::AllOf(items) => Node::All(
                items
                    .iter()
                    .map(|r| self.node(r, timeout, condition))
                    .collect(),
            ),
            Resource::AnyOf(items) => Node::Any(
                items
                    .iter()
                    .map(|r| self.node(r, timeout, condition))
                    .collect(),
            ),
            Resource::Manual => Node::Manual,
            leaf => {
                self.atoms.push((leaf, timeout));
                self.condition.push(condition);
                Node::Leaf(self.atoms.len() - 1)
            }
        }
    }

    /// The atoms of every condition.
    pub fn condition_atoms(&self) -> Vec<usize> {
        (0..self.atoms.len())
            .filter(|&a| self.condition[a])
            .collect()
    }

    /// The atoms of the checks that need their own: those without a condition and those
    /// whose condition holds, given what the conditions' atoms gave.
    pub fn body_atoms(&self, gathered: &[Gathered]) -> Vec<usize> {
        let mut out = Vec::new();
        for (_, cond, body) in &self.checks {
            if cond
                .as_ref()
                .is_none_or(|c| eval(c, gathered).status == Status::Passed)
            {
                body.leaves(&mut out);
            }
        }
        out
    }

    /// The atoms `which` in batches: those gathered together (one kind; commands without a
    /// `timeout` of their own, at most [`COMMANDS_PER_EXEC`] of them and
    /// [`COMMAND_BYTES_PER_EXEC`] of script, so that the batch's time limit is the sum of the
    /// default ones) in one batch of at most `limit`, the others one each (identical command
    /// lines together).
    pub fn jobs(&self, which: &[usize], limit: usize) -> Vec<Vec<usize>> {
        let mut jobs: Vec<Vec<usize>> = Vec::new();
        for &a in which {
            let r = self.atoms[a].0;
            let most = if matches!(r, Resource::Command(_)) {
                COMMANDS_PER_EXEC
            } else {
                limit
            };
            let joins = |j: &Vec<usize>| {
                let other = self.atoms[j[0]].0;
                let shared_timeout = j.iter().chain([&a]).all(|&b| !self.own_timeout[b]);
                let bytes: usize = j
                    .iter()
                    .chain([&a])
                    .map(|&b| command_bytes(self.atoms[b].0))
                    .sum();
                j.len() < most
                    && (r.gathered_with(other)
                        || (shared_timeout
                            && bytes <= COMMAND_BYTES_PER_EXEC
                            && r.batches_with(other)))
            };
            match jobs.iter_mut().find(|j| joins(j)) {
                Some(job) => job.push(a),
                None => jobs.push(vec![a]),
            }
        }
        jobs
    }

    /// Each check's index, outcome and time from the atoms' outcomes and times.
    pub fn combine(&self, atoms: &[Gathered]) -> Vec<(usize, Outcome, Duration)> {
        self.checks
            .iter()
            .map(|(i, cond, body)| {
                let mut spent = time_of(body, atoms);
                if let Some(c) = cond {
                    spent += time_of(c, atoms);
                }
                (*i, verdict(cond.as_ref(), body, atoms), spent)
            })
            .collect()
    }
}

impl Node {
    fn leaves(&self, out: &mut Vec<usize>) {
        match self {
            Node::Leaf(a) => out.push(*a),
            Node::All(v) | Node::Any(v) => v.iter().for_each(|n| n.leaves(out)),
            Node::Manual => {}
        }
    }
}

fn time_of(n: &Node, atoms: &[Gathered]) -> Duration {
    match n {
        Node::Leaf(a) => atoms[*a].as_ref().map_or(Duration::ZERO, |g| g.1),
        Node::All(v) | Node::Any(v) => v.iter().map(|n| time_of(n, atoms)).sum(),
        Node::Manual => Duration::ZERO,
    }
}

fn verdict(cond: Option<&Node>, body: &Node, atoms: &[Gathered]) -> Outcome {
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

fn eval(n: &Node, atoms: &[Gathered]) -> Outcome {
    match n {
        Node::Leaf(a) => atoms[*a]
            .as_ref()
            .map_or_else(|| Outcome::error("not gathered", ""), |g| g.0.clone()),
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
