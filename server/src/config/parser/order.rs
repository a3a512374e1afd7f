//! The execution order of a scope's statements (ISC `execute_statements` runs a group's
//! statement list in file order, so a later statement overrides an earlier one whatever its
//! kind). Each statement is parsed into its typed place in the [`Scope`]; this module records,
//! around each one, where it falls in [`Scope::steps`], and keeps the parameters written after
//! an `if` or `switch` in a continuation scope ([`Step::Parameters`]) so that they override
//! what the body before them set.

use super::{Block, Parser};
use crate::config::lexer::TokenKind;
use crate::config::model::{Scope, ScopeId, Step};

/// Lengths of a scope's statement lists before a statement is parsed.
#[derive(Clone, Copy)]
pub(super) struct Counts([usize; 12]);

impl Counts {
    pub(super) fn of(scope: &Scope) -> Self {
        Self([
            scope.options.len(),
            scope.computed_options.len(),
            scope.space_options.len(),
            scope.variables.len(),
            scope.logs.len(),
            scope.executes.len(),
            scope.events.len(),
            scope.switches.len(),
            scope.conditionals.len(),
            scope.defines.len(),
            scope.evaluations.len(),
            scope.adds.len(),
        ])
    }
}

/// Statements that set no parameter of the scope (declarations, options, executable
/// statements): never mirrored into a continuation scope.
const NOT_PARAMETERS: &[&str] = &[
    "option",
    "supersede",
    "default",
    "prepend",
    "append",
    "send",
    "if",
    "switch",
    "on",
    "set",
    "unset",
    "log",
    "execute",
    "return",
    "eval",
    "add",
    "break",
    "define",
    "include",
    "subnet",
    "shared-network",
    "pool",
    "range",
    "host",
    "group",
    "class",
    "subclass",
    "failover",
    "no",
    "key",
    "zone",
    "hardware",
    "fixed-address",
    "match",
    "spawn",
    "lease",
    "host-identifier",
    "uid",
    "authoritative",
    "not",
    "interface",
    "parse-vendor-option",
];

impl Parser {
    /// Parses one statement of `block` and records its place in the scope's execution order.
    pub(super) fn ordered_statement(&mut self, block: Block) -> super::ParseResult<()> {
        let parameter = match &self.peek().kind {
            TokenKind::Name(word) => !NOT_PARAMETERS.contains(&word.to_ascii_lowercase().as_str()),
            _ => false,
        };
        let start = self.position_marker();
        let counts = Counts::of(self.scope_mut(block.scope));
        let continuation = if parameter {
            self.continuation(block.scope)
        } else {
            None
        };
        // ISC's `break` ends the statement list it is in: what follows it in the same list
        // never runs. Declarations still count; statements go to a scope nothing runs.
        if self.scope_mut(block.scope).steps.contains(&Step::Break) && !self.is_declaration() {
            let dead = self.new_scope(block.scope);
            return self.parse_statement(Block {
                scope: dead,
                ..block
            });
        }
        self.parse_statement(block)?;
        self.record_steps(block.scope, counts);
        if let Some(target) = continuation {
            self.mirror_parameter(block, start, target);
        }
        Ok(())
    }

    fn is_declaration(&mut self) -> bool {
        match &self.peek().kind {
            TokenKind::Name(word) => matches!(
                word.to_ascii_lowercase().as_str(),
                "subnet"
                    | "shared-network"
                    | "pool"
                    | "range"
                    | "host"
                    | "group"
                    | "class"
                    | "subclass"
                    | "failover"
                    | "key"
                    | "zone"
                    | "include"
            ),
            _ => false,
        }
    }

    /// Appends to the scope's steps the statements the last statement added.
    fn record_steps(&mut self, id: ScopeId, before: Counts) {
        let after = Counts::of(self.scope_mut(id));
        let scope = self.scope_mut(id);
        let kinds: [fn(usize) -> Step; 12] = [
            Step::Option,
            Step::ComputedOption,
            Step::SpaceOption,
            Step::Variable,
            Step::Log,
            Step::Execute,
            Step::Event,
            Step::Switch,
            Step::Conditional,
            Step::Define,
            Step::Evaluate,
            Step::Add,
        ];
        for (kind, (from, to)) in kinds.iter().zip(before.0.iter().zip(after.0.iter())) {
            for index in *from..*to {
                scope.steps.push(kind(index));
            }
        }
    }

    /// The continuation scope a parameter written now goes to as well: the one after the last
    /// `if`/`switch` of the scope (made now if none yet), or `None` before any.
    fn continuation(&mut self, id: ScopeId) -> Option<ScopeId> {
        let last = self
            .scope_mut(id)
            .steps
            .iter()
            .rev()
            .find_map(|step| match step {
                Step::Parameters(target) => Some(Some(*target)),
                Step::Conditional(_) | Step::Switch(_) => Some(None),
                _ => None,
            })?;
        if let Some(target) = last {
            return Some(target);
        }
        let target = self.new_scope(id);
        self.scope_mut(id).steps.push(Step::Parameters(target));
        Some(target)
    }

    /// Parses the parameter statement just read a second time, into `target`: the same parse
    /// sets exactly the fields the statement sets, whatever the parameter. Its diagnostics
    /// were given by the first parse.
    fn mirror_parameter(&mut self, block: Block, start: (usize, usize), target: ScopeId) {
        if self.frames.len() != start.0 {
            return;
        }
        let end = self.position_marker();
        let warnings = self.config.warnings.len();
        let errors = self.errors.len();
        if let Some(frame) = self.frames.last_mut() {
            frame.position = start.1;
        }
        let _ = self.parse_statement(Block {
            scope: target,
            ..block
        });
        self.config.warnings.truncate(warnings);
        self.errors.truncate(errors);
        if self.position_marker() != end {
            if let Some(frame) = self.frames.last_mut() {
                frame.position = end.1;
            }
        }
    }
}
