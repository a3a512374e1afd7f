//! Parameter and option resolution through the scopes that apply to one client: host >
//! classes > pool > subnet > shared-network > global (dhcpd.conf(5), docs/spec/dhcpd-conf.md §2).
//!
//! Executable statements are evaluated per reply ([`ScopeStack::evaluate`]), as ISC executes
//! each scope's statements in file order from the global scope inwards
//! (`execute_statements_in_scope`, `execute_statements`):
//!
//! - the taken body of an `if`/`switch` acts as a scope just inside the one holding the
//!   statement, and the parameters written after the statement in that scope come again after
//!   the body (`config::model::Step::Parameters`), so the later statement wins;
//! - option statements of every form are applied in execution order as ISC's `set_option`
//!   does: `supersede` replaces, `default` sets only what no earlier statement set,
//!   `prepend`/`append` concatenate with the earlier value; values are evaluated once all
//!   statements ran, with the variables as they left them;
//! - `log` and `execute` statements run, `set` and `unset` change the lease's variables, which
//!   later expressions see; `on` statements are collected for the lease's events
//!   ([`ScopeStack::run_commit`]).

use std::sync::Arc;

use crate::config::expr::{evaluate, PacketView, Value};
use crate::config::model::{
    Config, EventStatement, LeaseEvents, OptionForm, OptionValue, Scope, ScopeId, SpaceOption,
};

use super::statements::{run_event, run_option_steps, run_scope, Env, Executed, OptionStep, Run};

use super::dynamic_hosts::DynamicHost;

/// The scopes that apply to one reply, most specific first, each at most once.
#[derive(Clone, Debug)]
pub(crate) struct ScopeStack<'c> {
    pub(crate) config: &'c Config,
    /// A host added over OMAPI: its statements' scope lives outside the configuration's arena
    /// and comes before every arena scope.
    dynamic_host: Option<Arc<DynamicHost>>,
    ids: ScopeChain,
    /// How many of `ids`, at the end, are the base chain (pool or subnet up to the global
    /// scope): the classes' scopes run after them.
    base_len: usize,
    /// The classes `add` statements put the request in (ISC `classify` from
    /// `add_statement`), in order.
    added_classes: Vec<crate::config::model::ClassId>,
    /// The options as ISC's execution leaves them, when a scope of the stack computes one
    /// (`None`: every option is a constant and the most specific scope's wins).
    resolved_options: Option<Vec<(u8, Vec<u8>)>>,
    /// What the `log` and `execute` statements run for this reply produced.
    executed: Executed,
    /// The `on` statements executed, in execution order.
    events: Vec<&'c EventStatement>,
    /// The `set`/`unset` changes of this reply, in order.
    variable_changes: Vec<(String, Option<Value>)>,
    /// `filename` and `server-name` when a scope of the stack gives one by an expression
    /// (`None`: the most specific constant).
    resolved_filename: Option<Option<Vec<u8>>>,
    resolved_server_name: Option<Option<Vec<u8>>>,
    /// `ddns-hostname`, `ddns-domainname` and `ddns-rev-domainname`, the same way.
    resolved_ddns: [Option<Option<Vec<u8>>>; 3],
    /// The options of other spaces and the space parameters, when a scope of the stack sets
    /// any (`engine::encapsulation`).
    pub(crate) spaces: Option<Box<super::encapsulation::ResolvedSpaces>>,
    /// The option statements of other spaces the configuration's scopes executed, in order
    /// (`None`: not evaluated; each scope's in file order, outermost scope first).
    pub(crate) space_steps: Option<Vec<&'c SpaceOption>>,
}

/// The DDNS text parameters that may be given by an expression.
#[derive(Clone, Copy, Debug)]
pub(crate) enum DdnsText {
    Hostname = 0,
    DomainName = 1,
    RevDomainName = 2,
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
        let mut ids = ScopeChain::new();
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
        let before_base = ids.len();
        for id in base_chain {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        let base_len = ids.len() - before_base;
        Self {
            config,
            dynamic_host: None,
            ids,
            base_len,
            added_classes: Vec::new(),
            resolved_options: None,
            executed: Executed::default(),
            events: Vec::new(),
            variable_changes: Vec::new(),
            resolved_filename: None,
            resolved_server_name: None,
            resolved_ddns: [None, None, None],
            spaces: None,
            space_steps: None,
        }
    }

    /// Whether a scope of the stack holds statements that depend on the request (then
    /// [`Self::evaluate`] has work to do).
    pub fn has_executable_statements(&self) -> bool {
        let dynamic = self.dynamic_host.as_deref().map(|host| &host.scope);
        dynamic
            .into_iter()
            .chain(self.arena_scopes())
            .any(Scope::has_executable_statements)
    }

    /// Executes the statements of the stack's scopes for one request, outermost scope first
    /// (`engine::statements::run_scope`): inserts the taken bodies of `if` statements just
    /// inside the scope holding them, applies `set`/`unset`, runs `log` and `execute`,
    /// collects the `on` statements, and resolves computed options, `filename` and
    /// `server-name` with the variables as the statements left them.
    pub fn evaluate(mut self, request: &dyn PacketView) -> Self {
        if !self.has_executable_statements() {
            return self;
        }
        let config = self.config;
        let env = Env::new(config, request);
        let mut run = Run::default();
        let (more_specific, base) = self.ids.split_at(self.ids.len() - self.base_len);
        for id in base.iter().rev() {
            run_scope(config, *id, &env, &mut run);
        }
        // server/dhcp.c `ack_lease` runs the packet's classes after the subnet's and pool's
        // statements, the last one first: a class an `add` there appended runs before the
        // classes matched; one added later (by a class or host) is only a member.
        for class in env.added().iter().rev() {
            if let Some(class) = config.classes.get(class.0 as usize) {
                run_scope(config, class.scope, &env, &mut run);
            }
        }
        for id in more_specific.iter().rev() {
            run_scope(config, *id, &env, &mut run);
        }
        // An OMAPI host's statements come last: its scope is the most specific.
        let host = self.dynamic_host.clone();
        let mut host_run = Run::default();
        if let Some(host) = host.as_deref() {
            run_option_steps(&host.scope, &mut host_run);
        }
        let steps: Vec<OptionStep<'_>> = run
            .options
            .iter()
            .chain(host_run.options.iter())
            .copied()
            .collect();
        // `config-option` reads the statements of the configuration executed above (an OMAPI
        // host's options are not among them).
        self.resolved_options = Some(fold_options(&steps, &env));
        run.scopes.reverse();
        self.ids = ScopeChain::from_vec(run.scopes);
        self.space_steps = Some(run.space_options);
        self.resolved_filename = self.resolve_boot_field(&env, |scope| {
            (
                scope.filename.as_deref(),
                scope.filename_expression.as_ref(),
            )
        });
        self.resolved_server_name = self.resolve_boot_field(&env, |scope| {
            (
                scope.server_name.as_deref(),
                scope.server_name_expression.as_ref(),
            )
        });
        self.resolved_ddns = [
            self.resolve_boot_field(&env, |scope| {
                (
                    scope.ddns.hostname.as_deref().map(str::as_bytes),
                    scope.ddns.hostname_expression.as_ref(),
                )
            }),
            self.resolve_boot_field(&env, |scope| {
                (
                    scope.ddns.domain_name.as_deref().map(str::as_bytes),
                    scope.ddns.domain_name_expression.as_ref(),
                )
            }),
            self.resolve_boot_field(&env, |scope| {
                (
                    scope.ddns.rev_domain_name.as_deref().map(str::as_bytes),
                    scope.ddns.rev_domain_name_expression.as_ref(),
                )
            }),
        ];
        env.drain_into(&mut run.executed);
        self.executed = run.executed;
        self.events = run.events;
        self.added_classes = env.added();
        self.variable_changes = env.changes.into_inner();
        self
    }

    /// The classes executed `add` statements put the request in, in order (billed as the
    /// classes matched, ISC `ack_lease`).
    pub fn added_classes(&self) -> &[crate::config::model::ClassId] {
        &self.added_classes
    }

    /// What the executed `log` and `execute` statements produced for this reply.
    pub fn executed(&self) -> &Executed {
        &self.executed
    }

    /// Runs the `on commit` body in effect (ISC `ack_lease` on a DHCPACK): their logs and
    /// commands, and every variable change of this request (its `set`s and theirs), for the
    /// lease record.
    pub fn run_commit(&self, request: &dyn PacketView) -> (Executed, Vec<(String, Option<Value>)>) {
        self.run_event(request, |events| events.commit)
    }

    /// The `on` statements executed for this reply, in order (the lease keeps the last
    /// `on expiry` and `on release` bodies, `engine::lease_events`).
    pub fn events(&self) -> &[&'c EventStatement] {
        &self.events
    }

    fn run_event(
        &self,
        request: &dyn PacketView,
        event: impl Fn(&LeaseEvents) -> bool,
    ) -> (Executed, Vec<(String, Option<Value>)>) {
        let env = Env::new(self.config, request);
        *env.changes.borrow_mut() = self.variable_changes.clone();
        let mut executed = run_event(self.config, &self.events, event, &env);
        env.drain_into(&mut executed);
        (executed, env.final_changes())
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

    /// A DDNS text parameter: the most specific scope's, evaluated when it is an expression.
    pub fn ddns_text(&self, field: DdnsText) -> Option<String> {
        if let Some(resolved) = &self.resolved_ddns[field as usize] {
            return resolved
                .as_deref()
                .map(|bytes| String::from_utf8_lossy(bytes).into_owned());
        }
        self.find(|scope| match field {
            DdnsText::Hostname => scope.ddns.hostname.clone(),
            DdnsText::DomainName => scope.ddns.domain_name.clone(),
            DdnsText::RevDomainName => scope.ddns.rev_domain_name.clone(),
        })
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

    fn arena_scopes(&self) -> impl Iterator<Item = &Scope> + '_ {
        self.ids
            .iter()
            .filter_map(|id| self.config.scopes.get(id.0 as usize))
    }

    /// The scope of a host added over OMAPI, if the stack has one.
    pub(crate) fn dynamic_host_scope(&self) -> Option<&Scope> {
        self.dynamic_host.as_deref().map(|host| &host.scope)
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
    pub fn option_codes(&self) -> OptionCodes {
        if let Some(resolved) = &self.resolved_options {
            let mut codes: OptionCodes = resolved.iter().map(|(code, _)| *code).collect();
            codes.sort_unstable();
            return codes;
        }
        let mut codes: OptionCodes = self
            .scopes()
            .flat_map(|scope| scope.options.iter().map(|(code, _)| *code))
            .collect();
        codes.sort_unstable();
        codes.dedup();
        codes
    }
}

/// Option codes of a reply in the making; a configuration rarely sets more than a few dozen.
pub(crate) type OptionCodes = smallvec::SmallVec<[u8; 64]>;

/// A request's scopes, most specific first: a host, its group, a few classes, the pool, the
/// subnet, its shared network and the global scope fit without touching the heap.
type ScopeChain = smallvec::SmallVec<[ScopeId; 12]>;

fn chain_ids(config: &Config, start: ScopeId) -> ScopeChain {
    let mut ids = ScopeChain::new();
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

/// An option's value as ISC's option state holds it while statements run (`set_option`): the
/// statement's value, or the concatenation `append`/`prepend` made, evaluated only when the
/// reply is built (`evaluate_option_cache` in `cons_options`).
enum Lazy<'a> {
    Value(&'a OptionValue),
    Constant(&'a [u8]),
    Concat(Box<Lazy<'a>>, Box<Lazy<'a>>, bool),
}

impl Lazy<'_> {
    /// The value, or `None` when an expression evaluates to null (ISC `expr_concat` fails
    /// when either side does).
    fn evaluate(&self, request: &dyn PacketView) -> Option<Vec<u8>> {
        match self {
            Lazy::Constant(bytes) => Some(bytes.to_vec()),
            Lazy::Value(OptionValue::Constant(bytes)) => Some(bytes.clone()),
            Lazy::Value(OptionValue::Expression(expression)) => match evaluate(expression, request)
            {
                Value::Data(bytes) => Some(bytes),
                _ => None,
            },
            Lazy::Concat(first, second, domain_list) => {
                let first = first.evaluate(request)?;
                let second = second.evaluate(request)?;
                if *domain_list {
                    // ISC `expr_concat_dclist`; a malformed list fails the evaluation.
                    crate::config::options::concat_domain_lists(&first, &second)
                } else {
                    Some([first, second].concat())
                }
            }
        }
    }

    /// ISC `set_option` turns an empty constant into no expression, and `make_concat` of no
    /// expression and another is the other.
    fn is_empty_constant(&self) -> bool {
        match self {
            Lazy::Constant(bytes) => bytes.is_empty(),
            Lazy::Value(OptionValue::Constant(bytes)) => bytes.is_empty(),
            _ => false,
        }
    }
}

/// The options after executing the option statements `steps` in order (ISC `set_option`:
/// `supersede` replaces, `default` sets only an option no statement set yet, `prepend`/`append`
/// concatenate with what was set), evaluated once all statements ran; an option whose value
/// evaluates to null is not sent.
pub(crate) fn fold_options(
    steps: &[OptionStep<'_>],
    request: &dyn PacketView,
) -> Vec<(u8, Vec<u8>)> {
    let mut state: Vec<(u8, Lazy<'_>)> = Vec::new();
    for step in steps {
        let (code, form, value, domain_list) = match step {
            OptionStep::Plain(code, bytes) => {
                (*code, OptionForm::Supersede, Lazy::Constant(bytes), false)
            }
            OptionStep::Computed(option) => (
                option.code,
                option.form,
                Lazy::Value(&option.value),
                option.compressed_domain_list,
            ),
        };
        let earlier = state.iter().position(|(have, _)| *have == code);
        match (form, earlier) {
            (OptionForm::Default, Some(_)) => {}
            (OptionForm::Supersede, Some(index)) => state[index].1 = value,
            (_, None) => state.push((code, value)),
            (OptionForm::Prepend | OptionForm::Append, Some(index)) => {
                let old = std::mem::replace(&mut state[index].1, Lazy::Constant(&[]));
                state[index].1 = if old.is_empty_constant() {
                    value
                } else if value.is_empty_constant() {
                    old
                } else if form == OptionForm::Prepend {
                    Lazy::Concat(Box::new(value), Box::new(old), domain_list)
                } else {
                    Lazy::Concat(Box::new(old), Box::new(value), domain_list)
                };
            }
        }
    }
    state
        .into_iter()
        .filter_map(|(code, value)| Some((code, value.evaluate(request)?)))
        .collect()
}
