//! Parameter and option resolution through the scopes that apply to one client: host >
//! classes > pool > subnet > shared-network > global (dhcpd.conf(5), docs/spec/dhcpd-conf.md §2).
//!
//! Executable statements are evaluated per reply ([`ScopeStack::evaluate`]), as ISC executes
//! each scope's statements from the global one inwards (`execute_statements_in_scope`):
//!
//! - the taken body of an `if`/`elsif`/`else` acts as a scope just inside the one holding the
//!   statement (a later statement of a scope is more specific than an earlier one), so its
//!   parameters and constant options override that scope's and yield to inner scopes';
//! - computed options (`option NAME = EXPR;`, `default`, `prepend`, `append`) are applied in
//!   ISC's execution order, outermost scope first: `supersede` replaces, `default` sets only
//!   what no earlier statement set, `prepend`/`append` concatenate with the earlier value;
//! - `log` statements of every scope in effect produce log lines, outermost first.
//!
//! One difference of order remains: within one scope, plain statements are taken as written
//! before its `if` statements and its computed options (ISC runs them in file order), which
//! matters only when a scope sets the same thing again after an `if` that set it.

use std::sync::Arc;

use crate::config::expr::{evaluate, PacketView, Value};
use crate::config::model::{
    Conditional, Config, LogPriority, OptionForm, OptionValue, Scope, ScopeId,
};

use super::dynamic_hosts::DynamicHost;

/// The scopes that apply to one reply, most specific first, each at most once.
#[derive(Clone, Debug)]
pub(crate) struct ScopeStack<'c> {
    pub(crate) config: &'c Config,
    /// A host added over OMAPI: its statements' scope lives outside the configuration's arena
    /// and comes before every arena scope.
    dynamic_host: Option<Arc<DynamicHost>>,
    ids: Vec<ScopeId>,
    /// The options as ISC's execution leaves them, when a scope of the stack computes one
    /// (`None`: every option is a constant and the most specific scope's wins).
    resolved_options: Option<Vec<(u8, Vec<u8>)>>,
    /// The lines of the `log` statements executed for this reply, outermost scope first.
    log_lines: Vec<(LogPriority, String)>,
    /// `filename` and `server-name` when a scope of the stack gives one by an expression
    /// (`None`: the most specific constant).
    resolved_filename: Option<Option<Vec<u8>>>,
    resolved_server_name: Option<Option<Vec<u8>>>,
    /// The options of other spaces and the space parameters, when a scope of the stack sets
    /// any (`engine::encapsulation`).
    pub(crate) spaces: Option<Box<super::encapsulation::ResolvedSpaces>>,
}

impl<'c> ScopeStack<'c> {
    /// `host`'s chain (up to where it joins the base chain), then the class scopes, then the
    /// chain of `base` (pool or subnet) up to the global scope.
    pub fn new(
        config: &'c Config,
        host: Option<ScopeId>,
        classes: &[ScopeId],
        base: ScopeId,
    ) -> Self {
        let base_chain = chain_ids(config, base);
        let mut ids = Vec::with_capacity(base_chain.len() + classes.len() + 4);
        if let Some(host) = host {
            for id in chain_ids(config, host) {
                if base_chain.contains(&id) {
                    break;
                }
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        for id in classes {
            if !ids.contains(id) && !base_chain.contains(id) {
                ids.push(*id);
            }
        }
        for id in base_chain {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Self {
            config,
            dynamic_host: None,
            ids,
            resolved_options: None,
            log_lines: Vec::new(),
            resolved_filename: None,
            resolved_server_name: None,
            spaces: None,
        }
    }

    /// Whether a scope of the stack holds statements that depend on the request (then
    /// [`Self::evaluate`] has work to do).
    pub fn has_executable_statements(&self) -> bool {
        let dynamic = self.dynamic_host.as_deref().map(|host| &host.scope);
        dynamic
            .into_iter()
            .chain(self.arena_scopes())
            .any(executable)
    }

    /// Executes the statements of the stack's scopes for one request: inserts the taken
    /// bodies of `if` statements, resolves computed options, runs `log` statements.
    pub fn evaluate(mut self, request: &dyn PacketView) -> Self {
        if !self.has_executable_statements() {
            return self;
        }
        let mut ids = Vec::with_capacity(self.ids.len() + 4);
        for id in &self.ids {
            ids.extend(taken_bodies(self.config, *id, request));
            ids.push(*id);
        }
        self.ids = ids;
        let outermost_first: Vec<&Scope> = {
            let mut scopes: Vec<&Scope> = self.scopes().collect();
            scopes.reverse();
            scopes
        };
        let computes = outermost_first
            .iter()
            .any(|scope| !scope.computed_options.is_empty());
        let resolved = computes.then(|| resolve_options(&outermost_first, request));
        let mut log_lines = Vec::new();
        for scope in &outermost_first {
            for statement in &scope.logs {
                if let Value::Data(text) = evaluate(&statement.text, request) {
                    log_lines.push((
                        statement.priority,
                        String::from_utf8_lossy(&text).into_owned(),
                    ));
                }
            }
        }
        self.resolved_options = resolved;
        self.log_lines = log_lines;
        self.resolved_filename = self.resolve_boot_field(request, |scope| {
            (
                scope.filename.as_deref(),
                scope.filename_expression.as_ref(),
            )
        });
        self.resolved_server_name = self.resolve_boot_field(request, |scope| {
            (
                scope.server_name.as_deref(),
                scope.server_name_expression.as_ref(),
            )
        });
        self
    }

    /// The most specific scope's `filename`/`server-name`, evaluated when it is an expression
    /// (null: none, as ISC's failed `evaluate_option_cache`); `None` when no scope of the stack
    /// uses an expression for it.
    fn resolve_boot_field(
        &self,
        request: &dyn PacketView,
        field: impl Fn(&Scope) -> (Option<&[u8]>, Option<&crate::config::expr::Expr>),
    ) -> Option<Option<Vec<u8>>> {
        if !self.scopes().any(|scope| field(scope).1.is_some()) {
            return None;
        }
        let innermost = self.scopes().find_map(|scope| match field(scope) {
            (_, Some(expression)) => {
                Some(evaluate(expression, request).as_data().map(<[u8]>::to_vec))
            }
            (Some(constant), None) => Some(Some(constant.to_vec())),
            (None, None) => None,
        });
        Some(innermost.flatten())
    }

    /// `filename`: the most specific scope's (dhcpd.conf(5)).
    pub fn filename(&self) -> Option<std::borrow::Cow<'_, [u8]>> {
        match &self.resolved_filename {
            Some(resolved) => resolved.as_deref().map(std::borrow::Cow::Borrowed),
            None => self
                .find(|scope| scope.filename.as_deref())
                .map(std::borrow::Cow::Borrowed),
        }
    }

    /// `server-name`: the most specific scope's (dhcpd.conf(5)).
    pub fn server_name(&self) -> Option<std::borrow::Cow<'_, [u8]>> {
        match &self.resolved_server_name {
            Some(resolved) => resolved.as_deref().map(std::borrow::Cow::Borrowed),
            None => self
                .find(|scope| scope.server_name.as_deref())
                .map(std::borrow::Cow::Borrowed),
        }
    }

    /// The lines the executed `log` statements wrote.
    pub fn log_lines(&self) -> &[(LogPriority, String)] {
        &self.log_lines
    }

    fn arena_scopes(&self) -> impl Iterator<Item = &Scope> + '_ {
        self.ids
            .iter()
            .filter_map(|id| self.config.scopes.get(id.0 as usize))
    }

    /// Puts the scope of a host added over OMAPI first (it is the most specific one).
    pub fn with_dynamic_host(mut self, host: Option<Arc<DynamicHost>>) -> Self {
        self.dynamic_host = host;
        self
    }

    pub fn scopes(&self) -> impl Iterator<Item = &Scope> + '_ {
        let dynamic = self.dynamic_host.as_deref().map(|host| &host.scope);
        dynamic.into_iter().chain(
            self.ids
                .iter()
                .filter_map(|id| self.config.scopes.get(id.0 as usize)),
        )
    }

    /// The most specific value of a parameter.
    pub fn find<'s, T>(&'s self, get: impl Fn(&'s Scope) -> Option<T>) -> Option<T> {
        self.scopes().find_map(get)
    }

    /// `authoritative;` resolved through the scopes; ISC's default is not authoritative.
    pub fn authoritative(&self) -> bool {
        self.find(|scope| scope.authoritative).unwrap_or(false)
    }

    /// The configured value of option `code`: the most specific scope that sets it, the last
    /// statement of that scope (docs/spec/dhcpd-conf.md §2).
    pub fn option(&self, code: u8) -> Option<&[u8]> {
        if let Some(resolved) = &self.resolved_options {
            return resolved
                .iter()
                .find(|(option, _)| *option == code)
                .map(|(_, value)| value.as_slice());
        }
        self.scopes().find_map(|scope| {
            scope
                .options
                .iter()
                .rev()
                .find(|(option, _)| *option == code)
                .map(|(_, value)| value.as_slice())
        })
    }

    /// Every configured option code, each once, in ascending code order.
    pub fn option_codes(&self) -> Vec<u8> {
        if let Some(resolved) = &self.resolved_options {
            let mut codes: Vec<u8> = resolved.iter().map(|(code, _)| *code).collect();
            codes.sort_unstable();
            return codes;
        }
        let mut codes: Vec<u8> = self
            .scopes()
            .flat_map(|scope| scope.options.iter().map(|(code, _)| *code))
            .collect();
        codes.sort_unstable();
        codes.dedup();
        codes
    }
}

fn chain_ids(config: &Config, start: ScopeId) -> Vec<ScopeId> {
    let mut ids = Vec::new();
    let mut next = Some(start);
    while let Some(id) = next {
        // A cycle would be a validation bug; stop rather than loop.
        if ids.contains(&id) {
            break;
        }
        let Some(scope) = config.scopes.get(id.0 as usize) else {
            break;
        };
        ids.push(id);
        next = scope.parent;
    }
    ids
}

/// Whether `scope` holds statements evaluated per request.
fn executable(scope: &Scope) -> bool {
    !scope.conditionals.is_empty()
        || !scope.computed_options.is_empty()
        || !scope.logs.is_empty()
        || scope.filename_expression.is_some()
        || scope.server_name_expression.is_some()
}

/// The bodies of `id`'s `if` statements that `request` takes, most specific first: a later
/// statement before an earlier one, a nested body before the body holding it.
fn taken_bodies(config: &Config, id: ScopeId, request: &dyn PacketView) -> Vec<ScopeId> {
    let mut bodies = Vec::new();
    let Some(scope) = config.scopes.get(id.0 as usize) else {
        return bodies;
    };
    for conditional in scope.conditionals.iter().rev() {
        if let Some(body) = taken_branch(conditional, request) {
            bodies.extend(taken_bodies(config, body, request));
            bodies.push(body);
        }
    }
    bodies
}

/// ISC `statement.c` `if_statement`: the first branch whose condition is true; a false or
/// null condition passes to the next one; `else` has no condition.
fn taken_branch(conditional: &Conditional, request: &dyn PacketView) -> Option<ScopeId> {
    conditional
        .branches
        .iter()
        .find(|branch| {
            branch
                .condition
                .as_ref()
                .is_none_or(|condition| evaluate(condition, request).is_true())
        })
        .map(|branch| branch.body)
}

/// The options after executing the option statements of `scopes`, outermost first (ISC
/// `execute_statements`: `supersede` replaces, `default` sets only an option nothing set yet,
/// `prepend`/`append` concatenate; an expression that evaluates to null sets nothing).
fn resolve_options(scopes: &[&Scope], request: &dyn PacketView) -> Vec<(u8, Vec<u8>)> {
    let mut options: Vec<(u8, Vec<u8>)> = Vec::new();
    for scope in scopes {
        for (code, value) in &scope.options {
            set_option(&mut options, *code, value.clone());
        }
        for computed in &scope.computed_options {
            let value = match &computed.value {
                OptionValue::Constant(bytes) => bytes.clone(),
                OptionValue::Expression(expression) => match evaluate(expression, request) {
                    Value::Data(bytes) => bytes,
                    _ => continue,
                },
            };
            let earlier = options.iter().position(|(code, _)| *code == computed.code);
            match (computed.form, earlier) {
                (OptionForm::Supersede, _) | (OptionForm::Default, None) => {
                    set_option(&mut options, computed.code, value)
                }
                (OptionForm::Default, Some(_)) => {}
                (OptionForm::Prepend, Some(index)) => {
                    let mut joined = value;
                    joined.extend_from_slice(&options[index].1);
                    options[index].1 = joined;
                }
                (OptionForm::Append, Some(index)) => options[index].1.extend_from_slice(&value),
                (OptionForm::Prepend | OptionForm::Append, None) => {
                    set_option(&mut options, computed.code, value)
                }
            }
        }
    }
    options
}

fn set_option(options: &mut Vec<(u8, Vec<u8>)>, code: u8, value: Vec<u8>) {
    match options.iter_mut().find(|(have, _)| *have == code) {
        Some(slot) => slot.1 = value,
        None => options.push((code, value)),
    }
}
