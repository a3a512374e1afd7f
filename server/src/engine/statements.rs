//! Executable statements of dhcpd.conf run for one request or lease event (dhcp-eval(5),
//! dhcpd.conf(5) "EVENTS"): `set`/`unset` on the lease's variables, `log`, `execute`, and the
//! `if` statements and `on` bodies that hold them. Sans-IO: running a statement yields values
//! (log lines, commands to start, variable changes) that the caller returns to the driver or
//! writes into the lease.
//!
//! ISC executes a scope's statements in file order from the global scope inwards
//! (`execute_statements_in_scope`); so does [`run_scope`], following the scope's
//! [`Scope::steps`], with the taken bodies of `if` and `switch` executed where they stand.

use std::cell::{Cell, RefCell};

use crate::config::expr::{evaluate, Expr, PacketView, Value};
use crate::config::model::{
    ClassId, ComputedOption, Config, EventStatement, LeaseEvents, LogPriority, Scope, ScopeId,
    SpaceOption, Step, VariableStatement,
};

/// A command an `execute` statement asks the driver to start (never on the packet path).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub program: String,
    /// Each argument's bytes: data as is, a number in decimal (ISC `execute`).
    pub arguments: Vec<Vec<u8>>,
}

/// What running statements produced besides variable changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Executed {
    pub log_lines: Vec<(LogPriority, String)>,
    pub commands: Vec<Command>,
}

impl Executed {
    pub fn is_empty(&self) -> bool {
        self.log_lines.is_empty() && self.commands.is_empty()
    }

    pub fn extend(&mut self, other: Executed) {
        self.log_lines.extend(other.log_lines);
        self.commands.extend(other.commands);
    }
}

/// How deep function calls (and `config-option` lookups, which may evaluate expressions that
/// look options up again) may nest. ISC has no bound and overflows its stack; a deeper call
/// is null and logged once per reply.
pub(crate) const MAX_CALL_DEPTH: usize = 64;

/// What statements run inside function calls produced, handed to the caller.
#[derive(Default)]
pub(crate) struct Side {
    pub executed: Executed,
    /// Classes `add` statements put the request in, in order.
    pub added: Vec<ClassId>,
    /// A call went deeper than [`MAX_CALL_DEPTH`] (logged once).
    too_deep: bool,
}

/// A function call's caller, as its frame sees it.
trait Caller {
    /// Assigns `name` where a binding of it exists along the chain (ISC `find_binding` walks
    /// the outer scopes); false when none does.
    fn assign(&self, name: &str, value: Option<Value>) -> bool;
    /// Takes what a call produced.
    fn absorb(&self, side: Side);
}

/// The request seen through the variables the statements run so far have set or unset: the
/// lease's scope (ISC `lease->scope`), or a function call's argument scope whose outer scope
/// is the caller's (tree.c `expr_funcall`).
pub(crate) struct Env<'c, 'r> {
    pub config: &'c Config,
    pub request: &'r dyn PacketView,
    /// Changes in order; the last entry of a name wins (`None`: unset). In a call's frame:
    /// the arguments and the variables the body set that no outer scope has.
    pub changes: RefCell<Vec<(String, Option<Value>)>>,
    caller: Option<&'r dyn Caller>,
    depth: usize,
    /// The value of the `return` that ended this call.
    returned: RefCell<Option<Value>>,
    pub side: RefCell<Side>,
    /// The option statements executed so far (for `config-option`).
    pub options: RefCell<Vec<OptionStep<'c>>>,
    /// How deep `config-option` lookups nest right now.
    config_option_depth: Cell<usize>,
}

impl<'c, 'r> Env<'c, 'r> {
    pub fn new(config: &'c Config, request: &'r dyn PacketView) -> Self {
        Self {
            config,
            request,
            changes: RefCell::new(Vec::new()),
            caller: None,
            depth: 0,
            returned: RefCell::new(None),
            side: RefCell::new(Side::default()),
            options: RefCell::new(Vec::new()),
            config_option_depth: Cell::new(0),
        }
    }

    /// The final value of each variable changed, each name once.
    pub fn final_changes(&self) -> Vec<(String, Option<Value>)> {
        let mut out: Vec<(String, Option<Value>)> = Vec::new();
        for (name, value) in self.changes.borrow().iter() {
            match out.iter_mut().find(|(have, _)| have == name) {
                Some(slot) => slot.1 = value.clone(),
                None => out.push((name.clone(), value.clone())),
            }
        }
        out
    }

    /// The binding of `name` in this scope itself (a frame's arguments and locals; the lease
    /// scope's changes), `Some(None)` when it is bound without a value.
    fn own(&self, name: &str) -> Option<Option<Value>> {
        self.changes
            .borrow()
            .iter()
            .rev()
            .find(|(have, _)| have.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.clone())
    }

    /// `set NAME = …` / `define NAME …` (ISC: the binding found along the scopes, else a new
    /// one in this scope).
    fn set(&self, name: &str, value: Option<Value>) {
        let assigned = self.own(name).is_none()
            && self
                .caller
                .is_some_and(|caller| caller.assign(name, value.clone()));
        if !assigned {
            self.changes.borrow_mut().push((name.to_owned(), value));
        }
    }

    /// `unset NAME` (ISC: clears the binding found along the scopes; none, nothing).
    fn unset(&self, name: &str) {
        if self.caller.is_none() || self.own(name).is_some() {
            self.changes.borrow_mut().push((name.to_owned(), None));
        } else if let Some(caller) = self.caller {
            caller.assign(name, None);
        }
    }

    fn has_returned(&self) -> bool {
        self.returned.borrow().is_some()
    }

    fn log_error(&self, line: String) {
        self.side
            .borrow_mut()
            .executed
            .log_lines
            .push((LogPriority::Error, line));
    }

    /// Moves what calls produced so far into `executed`, in order.
    pub fn drain_into(&self, executed: &mut Executed) {
        let side = std::mem::take(&mut self.side.borrow_mut().executed);
        executed.extend(side);
    }

    /// Classes the executed `add` statements put the request in so far.
    pub fn added(&self) -> Vec<ClassId> {
        self.side.borrow().added.clone()
    }

    fn too_deep(&self, what: &str) {
        let mut side = self.side.borrow_mut();
        if !side.too_deep {
            side.too_deep = true;
            side.executed.log_lines.push((
                LogPriority::Error,
                format!("{what}: calls nested deeper than {MAX_CALL_DEPTH}; its value is null"),
            ));
        }
    }
}

impl Caller for Env<'_, '_> {
    fn assign(&self, name: &str, value: Option<Value>) -> bool {
        if self.own(name).is_some() {
            self.changes.borrow_mut().push((name.to_owned(), value));
            return true;
        }
        match self.caller {
            Some(caller) => caller.assign(name, value),
            None if self.request.variable(name).is_some() => {
                self.changes.borrow_mut().push((name.to_owned(), value));
                true
            }
            None => false,
        }
    }

    fn absorb(&self, other: Side) {
        let mut side = self.side.borrow_mut();
        side.executed.extend(other.executed);
        side.added.extend(other.added);
        side.too_deep |= other.too_deep;
    }
}

impl PacketView for Env<'_, '_> {
    fn option(&self, code: u8) -> Option<&[u8]> {
        self.request.option(code)
    }
    fn hardware(&self) -> (u8, &[u8]) {
        self.request.hardware()
    }
    fn known(&self) -> bool {
        self.request.known()
    }
    fn raw_packet(&self) -> &[u8] {
        self.request.raw_packet()
    }
    fn leased_address(&self) -> Option<std::net::Ipv4Addr> {
        self.request.leased_address()
    }
    fn host_decl_name(&self) -> Option<&str> {
        self.request.host_decl_name()
    }
    fn lease_time(&self) -> Option<u32> {
        self.request.lease_time()
    }
    fn in_class(&self, name: &str) -> bool {
        // ISC `classify` appends the class to the packet's: later `check`s see it.
        self.request.in_class(name)
            || self.side.borrow().added.iter().any(|class| {
                self.config
                    .classes
                    .get(class.0 as usize)
                    .is_some_and(|class| class.name == name)
            })
    }
    fn boot_field(&self, file: bool) -> Option<&[u8]> {
        self.request.boot_field(file)
    }
    fn variable(&self, name: &str) -> Option<Value> {
        match self.own(name) {
            Some(value) => value,
            None => self.request.variable(name),
        }
    }

    /// tree.c `expr_funcall`: the arguments are evaluated in the caller's scope and bound in
    /// a new scope whose outer scope is the caller's; the body runs until a `return` with a
    /// value. ISC's error lines are logged, and the value is null.
    fn call(&self, name: &str, arguments: &[Expr]) -> Value {
        let function = match self.variable(name) {
            Some(Value::Function(index)) => self.config.functions.get(index),
            Some(_) => {
                self.log_error(format!("{name}: not a function."));
                return Value::Null;
            }
            None => None,
        };
        let Some(function) = function else {
            self.log_error(format!("{name}: no such function."));
            return Value::Null;
        };
        if self.depth >= MAX_CALL_DEPTH {
            self.too_deep(name);
            return Value::Null;
        }
        let mut locals = Vec::new();
        for (parameter, argument) in function.parameters.iter().zip(arguments) {
            let value = match evaluate(argument, self) {
                Value::Null => None,
                value => Some(value),
            };
            locals.push((parameter.clone(), value));
        }
        if arguments.len() > function.parameters.len() {
            self.log_error(format!("{name}: too many arguments."));
            return Value::Null;
        }
        if arguments.len() < function.parameters.len() {
            self.log_error(format!("{name}: too few arguments."));
            return Value::Null;
        }
        let frame = Env {
            config: self.config,
            request: self,
            changes: RefCell::new(locals),
            caller: Some(self),
            depth: self.depth + 1,
            returned: RefCell::new(None),
            side: RefCell::new(Side::default()),
            options: RefCell::new(Vec::new()),
            config_option_depth: Cell::new(0),
        };
        let mut run = Run::default();
        if let Some(body) = self.config.scopes.get(function.body.0 as usize) {
            run_steps(self.config, body, &frame, &mut run);
        }
        let mut side = frame.side.take();
        let mut executed = run.executed;
        executed.extend(std::mem::take(&mut side.executed));
        side.executed = executed;
        let returned = frame.returned.take();
        self.absorb(side);
        // ISC: a body that ends without a value leaves the caller without one (it then reads
        // a null pointer); here the value is null.
        returned.unwrap_or(Value::Null)
    }

    /// tree.c `expr_config_option`: the option as the statements executed so far set it,
    /// evaluated now.
    fn config_option(&self, code: u8) -> Option<Vec<u8>> {
        if self.caller.is_some() {
            return self.request.config_option(code);
        }
        let steps: Vec<OptionStep<'_>> = self
            .options
            .borrow()
            .iter()
            .copied()
            .filter(|step| step.code() == code)
            .collect();
        let depth = self.config_option_depth.get();
        if depth >= MAX_CALL_DEPTH {
            self.too_deep("config-option");
            return None;
        }
        self.config_option_depth.set(depth + 1);
        let value = super::scope::fold_options(&steps, self)
            .into_iter()
            .find(|(have, _)| *have == code)
            .map(|(_, value)| value);
        self.config_option_depth.set(depth);
        value
    }
}

/// What expressions see at a lease event without a packet (`on expiry`): the lease's
/// address, hardware address and variables; every option is absent (ISC evaluates them with
/// no packet).
pub(crate) struct LeaseView<'a> {
    pub lease: &'a crate::lease::record::Lease,
    hardware: Vec<u8>,
}

impl<'a> LeaseView<'a> {
    pub fn new(lease: &'a crate::lease::record::Lease) -> Self {
        let hardware = lease
            .hardware
            .map(|hardware| hardware.address().to_vec())
            .unwrap_or_default();
        Self { lease, hardware }
    }
}

impl PacketView for LeaseView<'_> {
    fn option(&self, _code: u8) -> Option<&[u8]> {
        None
    }
    fn hardware(&self) -> (u8, &[u8]) {
        (
            self.lease.hardware.map_or(0, |hardware| hardware.htype),
            &self.hardware,
        )
    }
    fn known(&self) -> bool {
        false
    }
    fn leased_address(&self) -> Option<std::net::Ipv4Addr> {
        Some(self.lease.address)
    }
    fn variable(&self, name: &str) -> Option<Value> {
        let extra = self.lease.extra.as_deref()?;
        let (_, written) = extra.variables.iter().find(|(have, _)| have == name)?;
        value_of_written(written)
    }
}

/// What running statements collects besides the variables (kept in the [`Env`]).
#[derive(Default)]
pub(crate) struct Run<'c> {
    /// Log lines and commands of `log` and `execute`.
    pub executed: Executed,
    /// The `on` statements executed, in order.
    pub events: Vec<&'c EventStatement>,
    /// Every scope run (taken bodies and parameter continuations included), outermost first.
    pub scopes: Vec<ScopeId>,
    /// The option statements executed, in order (`engine::scope` folds them as ISC's
    /// `set_option` does).
    pub options: Vec<OptionStep<'c>>,
    /// The option statements of other spaces executed, in order.
    pub space_options: Vec<&'c SpaceOption>,
}

/// An option statement as executed.
#[derive(Clone, Copy, Debug)]
pub(crate) enum OptionStep<'c> {
    /// `option NAME VALUE;` with a constant value: replaces what was set.
    Plain(u8, &'c [u8]),
    Computed(&'c ComputedOption),
}

impl OptionStep<'_> {
    pub fn code(&self) -> u8 {
        match self {
            OptionStep::Plain(code, _) => *code,
            OptionStep::Computed(option) => option.code,
        }
    }
}

/// Runs scope `id`: its statements in file order (ISC `execute_statements`), the taken bodies
/// of its `if` and `switch` statements where they stand.
pub(crate) fn run_scope<'c>(config: &'c Config, id: ScopeId, env: &Env<'c, '_>, run: &mut Run<'c>) {
    let Some(scope) = config.scopes.get(id.0 as usize) else {
        return;
    };
    run.scopes.push(id);
    run_steps(config, scope, env, run);
}

/// The option statements of a scope outside the configuration's arena (an OMAPI host's), in
/// file order.
pub(crate) fn run_option_steps<'c>(scope: &'c Scope, run: &mut Run<'c>) {
    for step in &scope.steps {
        push_option_step(scope, *step, run);
    }
}

fn push_option_step<'c>(scope: &'c Scope, step: Step, run: &mut Run<'c>) -> bool {
    match step {
        Step::Option(index) => {
            if let Some((code, value)) = scope.options.get(index) {
                run.options.push(OptionStep::Plain(*code, value));
            }
        }
        Step::ComputedOption(index) => {
            if let Some(option) = scope.computed_options.get(index) {
                run.options.push(OptionStep::Computed(option));
            }
        }
        Step::SpaceOption(index) => run.space_options.extend(scope.space_options.get(index)),
        _ => return false,
    }
    true
}

fn run_steps<'c>(config: &'c Config, scope: &'c Scope, env: &Env<'c, '_>, run: &mut Run<'c>) {
    for step in &scope.steps {
        run_step(config, scope, *step, env, run);
        env.drain_into(&mut run.executed);
        if *step == Step::Break || env.has_returned() {
            return;
        }
    }
}

fn run_step<'c>(
    config: &'c Config,
    scope: &'c Scope,
    step: Step,
    env: &Env<'c, '_>,
    run: &mut Run<'c>,
) {
    let options = run.options.len();
    if push_option_step(scope, step, run) {
        env.options
            .borrow_mut()
            .extend(run.options[options..].iter().copied());
        return;
    }
    match step {
        Step::Variable(index) => match scope.variables.get(index) {
            Some(VariableStatement::Set(name, expression)) => {
                // ISC `set`: a value that cannot be computed leaves the variable unset.
                let value = match evaluate(expression, env) {
                    Value::Null => None,
                    value => Some(value),
                };
                env.set(name, value);
            }
            Some(VariableStatement::Unset(name)) => env.unset(name),
            None => {}
        },
        Step::Define(index) => {
            if let Some(function) = scope.defines.get(index).and_then(|index| {
                config
                    .functions
                    .get(*index)
                    .map(|function| (index, function))
            }) {
                env.set(&function.1.name, Some(Value::Function(*function.0)));
            }
        }
        Step::Evaluate(index) => {
            let Some(evaluation) = scope.evaluations.get(index) else {
                return;
            };
            let value = evaluate(&evaluation.expression, env);
            // execute.c: `return` stores the value only for a function call, and only a
            // value that could be computed ends it.
            if evaluation.returns && env.caller.is_some() && value != Value::Null {
                *env.returned.borrow_mut() = Some(value);
            }
        }
        Step::Add(index) => {
            if let Some(class) = scope.adds.get(index) {
                env.side.borrow_mut().added.push(*class);
            }
        }
        Step::Log(index) => {
            let Some(statement) = scope.logs.get(index) else {
                return;
            };
            let text = evaluate(&statement.text, env);
            env.drain_into(&mut run.executed);
            if let Value::Data(text) = text {
                run.executed.log_lines.push((
                    statement.priority,
                    String::from_utf8_lossy(&text).into_owned(),
                ));
            }
        }
        Step::Execute(index) => {
            let Some(statement) = scope.executes.get(index) else {
                return;
            };
            let arguments = statement
                .arguments
                .iter()
                .map(|argument| match evaluate(argument, env) {
                    Value::Data(bytes) => bytes,
                    Value::Number(number) => number.to_string().into_bytes(),
                    Value::Boolean(flag) => flag.to_string().into_bytes(),
                    // ISC passes an empty argument for a value it cannot compute.
                    Value::Null | Value::Function(_) => Vec::new(),
                })
                .collect();
            env.drain_into(&mut run.executed);
            run.executed.commands.push(Command {
                program: statement.command.clone(),
                arguments,
            });
        }
        Step::Event(index) => run.events.extend(scope.events.get(index)),
        Step::Switch(index) => {
            let Some(switch) = scope.switches.get(index) else {
                return;
            };
            let mut segment = taken_case(switch, env);
            while let Some(index) = segment {
                let Some(current) = switch.segments.get(index) else {
                    break;
                };
                run_scope(config, current.body, env, run);
                if env.has_returned() {
                    break;
                }
                segment = (!current.breaks).then_some(index + 1);
            }
        }
        Step::Conditional(index) => {
            let Some(conditional) = scope.conditionals.get(index) else {
                return;
            };
            let taken = conditional.branches.iter().find(|branch| {
                branch
                    .condition
                    .as_ref()
                    .is_none_or(|condition| evaluate(condition, env).is_true())
            });
            if let Some(branch) = taken {
                run_scope(config, branch.body, env, run);
            }
        }
        Step::Parameters(id) => run_scope(config, id, env, run),
        Step::Break | Step::Option(_) | Step::ComputedOption(_) | Step::SpaceOption(_) => {}
    }
}

/// Where `switch` starts (ISC `find_matching_case`): the first `case` whose value equals the
/// subject's, else `default`; a subject that evaluates to null takes `default`.
fn taken_case(switch: &crate::config::model::Switch, env: &Env<'_, '_>) -> Option<usize> {
    let subject = evaluate(&switch.subject, env);
    if subject != Value::Null {
        for (value, index) in &switch.cases {
            if evaluate(value, env) == subject {
                return Some(*index);
            }
        }
    }
    switch.default
}

/// Runs the body of the last `on` statement in `events` that names `event`, with the variables
/// of `env`: each `on` statement executed replaces the body the lease keeps for the events it
/// names (ISC `execute_statements`, `on_star`). `on` statements inside it are not run.
pub(crate) fn run_event<'c>(
    config: &'c Config,
    events: &[&'c EventStatement],
    event: impl Fn(&LeaseEvents) -> bool,
    env: &Env<'c, '_>,
) -> Executed {
    let mut run = Run::default();
    if let Some(statement) = events
        .iter()
        .rev()
        .find(|statement| event(&statement.events))
    {
        run_scope(config, statement.body, env, &mut run);
    }
    run.executed
}

/// A value as ISC writes a lease variable (`db.c` `write_binding_scope`): printable data
/// quoted, other data in colon-hex, numbers as `%N`, booleans as `true`/`false`.
pub fn written_form(value: &Value) -> Option<String> {
    let mut out = Vec::new();
    match value {
        Value::Data(bytes) => {
            if bytes.iter().all(|byte| (0x20..=0x7e).contains(byte)) {
                crate::lease::file::write::quote_into(bytes, &mut out);
            } else {
                crate::lease::file::write::hex_into(bytes, &mut out);
            }
        }
        Value::Number(number) => out.extend_from_slice(format!("%{number}").as_bytes()),
        Value::Boolean(flag) => out.extend_from_slice(flag.to_string().as_bytes()),
        // db.c `write_binding_scope`: "persistent functions not supported".
        Value::Null | Value::Function(_) => return None,
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// The value of a lease variable as the lease file reader keeps it (a quoted string with
/// ISC's escapes, `%N`, `true`/`false`).
pub fn value_of_written(text: &str) -> Option<Value> {
    if let Some(number) = text.strip_prefix('%') {
        return number.parse::<i64>().ok().map(|n| Value::Number(n as u32));
    }
    match text {
        "true" => return Some(Value::Boolean(true)),
        "false" => return Some(Value::Boolean(false)),
        _ => {}
    }
    let inner = text.strip_prefix('"')?.strip_suffix('"')?.as_bytes();
    let mut bytes = Vec::with_capacity(inner.len());
    let mut index = 0;
    while index < inner.len() {
        match inner[index] {
            b'\\' => {
                let octal = inner
                    .get(index + 1..index + 4)
                    .filter(|digits| digits.iter().all(|digit| (b'0'..=b'7').contains(digit)));
                match octal {
                    Some(digits) => {
                        let value = digits
                            .iter()
                            .fold(0u32, |acc, digit| acc * 8 + u32::from(digit - b'0'));
                        bytes.push(value as u8);
                        index += 4;
                    }
                    None => {
                        bytes.extend(inner.get(index + 1).copied());
                        index += 2;
                    }
                }
            }
            byte => {
                bytes.push(byte);
                index += 1;
            }
        }
    }
    Some(Value::Data(bytes))
}

/// Applies the variable changes of executed statements to a lease's variables (kept in their
/// written form, `LeaseExtra::variables`).
pub fn apply_variables(variables: &mut Vec<(String, String)>, changes: &[(String, Option<Value>)]) {
    for (name, value) in changes {
        match value.as_ref().and_then(written_form) {
            Some(written) => match variables.iter_mut().find(|(have, _)| have == name) {
                Some(slot) => slot.1 = written,
                None => variables.push((name.clone(), written)),
            },
            None => variables.retain(|(have, _)| have != name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_forms_read_back() {
        for value in [
            Value::Data(b"plain \"quoted\" \\ text".to_vec()),
            Value::Data(vec![0, 1, 0xff]),
            Value::Number(300),
            Value::Boolean(true),
        ] {
            let written = written_form(&value).expect("written");
            let read = if written.contains(':') && !written.starts_with('"') {
                // Colon-hex is what the lease file reader turns into a quoted string.
                let bytes: Vec<u8> = written
                    .split(':')
                    .map(|byte| u8::from_str_radix(byte, 16).expect("hex"))
                    .collect();
                let mut quoted = Vec::new();
                crate::lease::file::write::quote_into(&bytes, &mut quoted);
                value_of_written(&String::from_utf8(quoted).expect("ascii"))
            } else {
                value_of_written(&written)
            };
            assert_eq!(read, Some(value), "{written}");
        }
        assert_eq!(written_form(&Value::Number(7)).as_deref(), Some("%7"));
        assert_eq!(
            written_form(&Value::Data(b"ab".to_vec())).as_deref(),
            Some("\"ab\"")
        );
    }

    #[test]
    fn changes_replace_and_remove_variables() {
        let mut variables = vec![
            ("keep".to_string(), "\"k\"".to_string()),
            ("gone".to_string(), "%1".to_string()),
        ];
        apply_variables(
            &mut variables,
            &[
                ("gone".to_string(), None),
                ("new".to_string(), Some(Value::Boolean(false))),
                ("keep".to_string(), Some(Value::Number(2))),
            ],
        );
        assert_eq!(
            variables,
            vec![
                ("keep".to_string(), "%2".to_string()),
                ("new".to_string(), "false".to_string()),
            ]
        );
    }
}
