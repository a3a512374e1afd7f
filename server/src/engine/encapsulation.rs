//! Options of spaces other than dhcp in a reply (dhcp-options(5) "VENDOR ENCAPSULATED OPTIONS",
//! dhcpd.conf(5) `vendor-option-space`, `site-option-space`), as ISC 4.4 builds them
//! (common/options.c `store_options`, `hashed_option_space_encapsulate`, `store_option`,
//! `append_option`, `search_subencapsulation`; server/dhcp.c `ack_lease`/`dhcpinform` for the
//! site space):
//!
//! - the option statements of every scope in effect are executed outermost first into one
//!   option state per space (`supersede` replaces, `default` only sets, `prepend`/`append`
//!   concatenate), whatever scope sets `vendor-option-space`;
//! - an option whose type is exactly `encapsulate SPACE` and that has no value of its own is
//!   sent with every option of SPACE that has a value, each as code and length in the space's
//!   widths, in ISC's hash-table order, followed by the options of the spaces it carries in
//!   turn; option 43 (`E.`) carries the space `vendor-option-space` names. Nothing is sent when
//!   the space holds no value; a value of the option itself always wins;
//! - with `site-option-space`, DHCP option codes from the space's lowest code (at most 224,
//!   RFC 3942) up are taken from that space only.
//!
//! Which of these options go into a reply is then decided by the parameter request list as for
//! any option (`engine::options::priority_list`).

use crate::config::expr::{evaluate, PacketView, Value};
use crate::config::model::{OptionForm, OptionValue, Scope, SpaceOption};
use crate::config::options::OptionSpace;
use crate::config::spaces::{isc_option_hash, put_width, Encapsulated, OptionSpaces};

use super::options::{ReplyOptions, ReplyValue};
use super::scope::ScopeStack;

/// ISC's option hash table size (includes/dhcpd.h `OPTION_HASH_SIZE`).
const BUCKETS: usize = 17;

/// How deep encapsulations may nest before the search stops (a space carried, through other
/// spaces, by itself would recurse for ever in ISC).
const MAX_DEPTH: usize = 8;

/// Relay agent information (RFC 3046) and client FQDN (RFC 4702): ISC encodes their spaces by
/// functions of their own; the engine echoes 82 and answers 81 elsewhere.
const AGENT_OPTIONS: u32 = 82;
const FQDN: u32 = 81;

/// One space's options after executing the scopes: a value, or `None` for an expression that
/// evaluated to null (ISC keeps the option cache; it contributes nothing).
type SpaceValue = Option<Vec<u8>>;

/// One space's option state: ISC's hash buckets of (code, value).
type Buckets = Vec<Vec<(u32, SpaceValue)>>;

/// The option state of every space but dhcp for one reply, with the two space parameters.
#[derive(Clone, Debug, Default)]
pub(crate) struct ResolvedSpaces {
    /// Per space, ISC's buckets: within a bucket the option set first comes last (a new
    /// option goes to the head; a replaced one keeps its place).
    spaces: Vec<(OptionSpace, Buckets)>,
    vendor_space: Option<OptionSpace>,
    site_space: Option<OptionSpace>,
    /// The `agent` space's statements in execution order (code, form, value): ISC keeps that
    /// space as a list, not in buckets (server/stables.c `save_linked_option`), and the reply's
    /// list may start from the request's sub-options ([`relay_agent_chain`]). `None` when no
    /// statement set an agent option.
    agent: Option<Vec<(u32, OptionForm, SpaceValue)>>,
}

impl ResolvedSpaces {
    fn buckets(&self, space: OptionSpace) -> Option<&Buckets> {
        self.spaces
            .iter()
            .find(|(have, _)| *have == space)
            .map(|(_, buckets)| buckets)
    }

    /// `space`'s options in ISC's encapsulation order.
    fn options(&self, space: OptionSpace) -> impl Iterator<Item = (u32, &SpaceValue)> {
        self.buckets(space)
            .into_iter()
            .flat_map(|buckets| buckets.iter().flatten())
            .map(|(code, value)| (*code, value))
    }

    fn has(&self, space: OptionSpace, code: u32) -> bool {
        self.buckets(space).is_some_and(|buckets| {
            buckets[isc_option_hash(code)]
                .iter()
                .any(|(have, _)| *have == code)
        })
    }

    fn slot(
        &mut self,
        space: OptionSpace,
        code: u32,
    ) -> (&mut Vec<(u32, SpaceValue)>, Option<usize>) {
        let index = match self.spaces.iter().position(|(have, _)| *have == space) {
            Some(index) => index,
            None => {
                self.spaces.push((space, vec![Vec::new(); BUCKETS]));
                self.spaces.len() - 1
            }
        };
        let bucket = &mut self.spaces[index].1[isc_option_hash(code)];
        let position = bucket.iter().position(|(have, _)| *have == code);
        (bucket, position)
    }

    /// ISC `set_option` for one statement.
    fn set(&mut self, space: OptionSpace, code: u32, form: OptionForm, value: SpaceValue) {
        let (bucket, position) = self.slot(space, code);
        match (form, position) {
            (OptionForm::Supersede, Some(index)) => bucket[index].1 = value,
            (OptionForm::Default, Some(_)) => {}
            (OptionForm::Prepend, Some(index)) => {
                bucket[index].1 = concat(value, bucket[index].1.take());
            }
            (OptionForm::Append, Some(index)) => {
                bucket[index].1 = concat(bucket[index].1.take(), value);
            }
            (_, None) => bucket.insert(0, (code, value)),
        }
    }
}

/// ISC `concat`: a null side gives the other side.
fn concat(first: SpaceValue, second: SpaceValue) -> SpaceValue {
    match (first, second) {
        (Some(mut first), Some(second)) => {
            first.extend_from_slice(&second);
            Some(first)
        }
        (first, second) => first.or(second),
    }
}

/// Whether `scope` holds anything of this module's.
fn has_space_statements(scope: &Scope) -> bool {
    !scope.space_options.is_empty()
        || scope.vendor_option_space.is_some()
        || scope.site_option_space.is_some()
}

impl ScopeStack<'_> {
    /// Whether a scope of the stack sets an option of another space or a space parameter.
    pub fn has_space_statements(&self) -> bool {
        self.scopes().any(has_space_statements)
    }

    /// Executes the option statements of other spaces and the space parameters of the stack's
    /// scopes for one request (call after [`ScopeStack::evaluate`], so that taken `if` bodies
    /// count).
    pub fn resolve_spaces(mut self, request: &dyn PacketView) -> Self {
        if !self.has_space_statements() {
            return self;
        }
        let mut resolved = ResolvedSpaces::default();
        let mut outermost_first: Vec<&Scope> = self.scopes().collect();
        outermost_first.reverse();
        // The option statements in the order they were executed (`ScopeStack::evaluate`),
        // else each scope's in file order, outermost scope first.
        let statements: Vec<&SpaceOption> = match &self.space_steps {
            Some(executed) => {
                let host = self.dynamic_host_scope();
                executed
                    .iter()
                    .copied()
                    .chain(
                        host.into_iter()
                            .flat_map(|scope| scope.space_options.iter()),
                    )
                    .collect()
            }
            None => outermost_first
                .iter()
                .flat_map(|scope| scope.space_options.iter())
                .collect(),
        };
        for option in statements {
            let value = match &option.value {
                OptionValue::Constant(bytes) => Some(bytes.clone()),
                OptionValue::Expression(expression) => match evaluate(expression, request) {
                    Value::Data(bytes) => Some(bytes),
                    _ => None,
                },
            };
            if option.space == OptionSpace::AGENT {
                resolved
                    .agent
                    .get_or_insert_with(Vec::new)
                    .push((option.code, option.form, value));
            } else {
                resolved.set(option.space, option.code, option.form, value);
            }
        }
        for scope in outermost_first {
            if let Some(space) = scope.vendor_option_space {
                resolved.vendor_space = Some(space);
            }
            if let Some(space) = scope.site_option_space {
                resolved.site_space = Some(space);
            }
        }
        self.spaces = Some(Box::new(resolved));
        self
    }
}

/// Adds to `available` (the configured dhcp options of a reply, code and value) what the other
/// spaces contribute: the site space's options in place of the dhcp options from its lowest
/// code up, and each encapsulating option that has no value of its own, from its space.
pub(crate) fn add_space_options(scopes: &ScopeStack<'_>, available: &mut ReplyOptions) {
    let Some(resolved) = scopes.spaces.as_deref() else {
        return;
    };
    let layouts = &scopes.config.option_spaces;
    let site = resolved
        .site_space
        .filter(|space| *space != OptionSpace::DHCP)
        .and_then(|space| Some((space, layouts.layout(space)?.site_code_min)));
    if let Some((space, minimum)) = site {
        // ISC `store_options`: a code at or above the cutoff is looked up in the site space.
        available.retain(|(code, _)| *code < minimum);
        for (code, value) in resolved.options(space) {
            let (Ok(code), Some(value)) = (u8::try_from(code), value) else {
                continue;
            };
            if code >= minimum && !value.is_empty() {
                set_available(available, code, ReplyValue::from_slice(value));
            }
        }
    }
    let mut candidates: Vec<(u8, OptionSpace)> = Vec::new();
    let mut consider = |space: OptionSpace, below: Option<u8>, above: Option<u8>| {
        let Some(layout) = layouts.layout(space) else {
            return;
        };
        for (code, target) in &layout.encapsulating {
            let Ok(code) = u8::try_from(*code) else {
                continue;
            };
            if below.is_some_and(|limit| code >= limit)
                || above.is_some_and(|limit| code < limit)
                || matches!(u32::from(code), AGENT_OPTIONS | FQDN)
            {
                continue;
            }
            let carried = match target {
                Encapsulated::Space(carried) => *carried,
                Encapsulated::VendorOptionSpace => match resolved.vendor_space {
                    Some(carried) => carried,
                    None => continue,
                },
            };
            candidates.push((code, carried));
        }
    };
    match site {
        Some((space, minimum)) => {
            consider(OptionSpace::DHCP, Some(minimum), None);
            consider(space, None, Some(minimum));
        }
        None => consider(OptionSpace::DHCP, None, None),
    }
    // Without a parameter request list ISC lists the carried spaces' options in space order and
    // option 43 last (`cons_options`); keep that order here.
    candidates.sort_by_key(|(code, carried)| (*code == 43, carried.0, *code));
    for (code, carried) in candidates {
        if available.iter().any(|(have, _)| *have == code) {
            continue;
        }
        if let Some(bytes) = encapsulate(layouts, resolved, carried, 0) {
            available.push((code, ReplyValue::from_vec(bytes)));
        }
    }
}

/// One relay agent sub-option of a reply: code and value (`None`: an expression that evaluated
/// to null, which keeps its place and sends nothing).
pub(crate) type AgentSubOption = (u32, SpaceValue);

/// The relay agent sub-options of a reply when a scope in effect sets an `agent` option
/// (dhcpd.conf(5) `option agent.NAME`), as ISC 4.4 builds them: the reply's agent list starts
/// as the request's sub-options `echoed` (server/dhcp.c `maybe_return_agent_options`, called by
/// `ack_lease` and `dhcpinform` before any statement runs; `None` when the request carried no
/// option 82, or carried only what was stashed on its lease), and the statements execute into
/// that same list in order (`set_option`, `save_linked_option`): `option`/`supersede` replaces
/// the value of a sub-option already there, keeping its place, and appends a new one at the
/// end; `default` only adds a missing one; `prepend`/`append` concatenate. `None` when no
/// statement of the scopes set an agent option: the request's option 82 is then echoed as
/// received (RFC 3046 §2.2).
pub(crate) fn relay_agent_chain(
    scopes: &ScopeStack<'_>,
    echoed: Option<&[u8]>,
) -> Option<Vec<AgentSubOption>> {
    let statements = scopes.spaces.as_deref()?.agent.as_ref()?;
    let mut chain: Vec<AgentSubOption> = echoed
        .map(super::packet::agent_sub_options)
        .unwrap_or_default()
        .into_iter()
        .map(|(code, value)| (u32::from(code), Some(value)))
        .collect();
    for (code, form, value) in statements {
        let position = chain.iter().position(|(have, _)| have == code);
        match (form, position) {
            (OptionForm::Supersede, Some(index)) => chain[index].1 = value.clone(),
            (OptionForm::Default, Some(_)) => {}
            (OptionForm::Prepend, Some(index)) => {
                chain[index].1 = concat(value.clone(), chain[index].1.take());
            }
            (OptionForm::Append, Some(index)) => {
                chain[index].1 = concat(chain[index].1.take(), value.clone());
            }
            (_, None) => chain.push((*code, value.clone())),
        }
    }
    Some(chain)
}

/// ISC `linked_option_space_encapsulate`: option 82's payload from `chain`, each sub-option
/// with a value as code and length in the agent space's widths (`append_option` leaves out an
/// empty value unless the sub-option is `zerolen`). `None` when nothing was written: the reply
/// then carries no option 82.
pub(crate) fn encode_relay_agent_chain(
    layouts: &OptionSpaces,
    chain: &[AgentSubOption],
) -> Option<Vec<u8>> {
    let layout = layouts.layout(OptionSpace::AGENT)?;
    let mut out = Vec::new();
    for (code, value) in chain {
        let Some(value) = value else {
            continue;
        };
        if value.is_empty() && !layout.zero_length.contains(code) {
            continue;
        }
        put_width(&mut out, *code, layout.code_width);
        put_width(&mut out, value.len() as u32, layout.length_width);
        out.extend_from_slice(value);
    }
    (!out.is_empty()).then_some(out)
}

fn set_available(available: &mut ReplyOptions, code: u8, value: ReplyValue) {
    match available.iter_mut().find(|(have, _)| *have == code) {
        Some(slot) => slot.1 = value,
        None => available.push((code, value)),
    }
}

/// ISC `hashed_option_space_encapsulate`: `space`'s options with a value, each with its code
/// and length in the space's widths (ISC `append_option`: an empty value is left out unless
/// the option is `zerolen`), then the spaces carried by options of `space` that have no value
/// of their own (`search_subencapsulation`). `None` when nothing was written.
fn encapsulate(
    layouts: &OptionSpaces,
    resolved: &ResolvedSpaces,
    space: OptionSpace,
    depth: usize,
) -> Option<Vec<u8>> {
    let layout = layouts.layout(space)?;
    // ISC returns at once when no statement stored an option of this space in the reply's
    // option state (no hash table for it): a space holding nothing itself carries no other
    // space either, so `option vendor.X code N = encapsulate S;` sends option 125 only when
    // some option of the `vendor` space has a value too.
    if depth > MAX_DEPTH || resolved.buckets(space).is_none() {
        return None;
    }
    let mut out = Vec::new();
    let mut any = false;
    let mut append = |out: &mut Vec<u8>, code: u32, value: &[u8]| {
        put_width(out, code, layout.code_width);
        put_width(out, value.len() as u32, layout.length_width);
        out.extend_from_slice(value);
        any = true;
    };
    for (code, value) in resolved.options(space) {
        let Some(value) = value else {
            continue;
        };
        if value.is_empty() && !layout.zero_length.contains(&code) {
            continue;
        }
        append(&mut out, code, value);
    }
    for (index, carried) in layouts.spaces.iter().enumerate() {
        let Some((carrier_space, code)) = carried.carried_by else {
            continue;
        };
        if carrier_space != space || resolved.has(space, code) {
            continue;
        }
        if let Some(sub) = encapsulate(layouts, resolved, OptionSpace(index as u16), depth + 1) {
            if !sub.is_empty() {
                append(&mut out, code, &sub);
            }
        }
    }
    any.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::spaces::SpaceLayout;

    fn layouts() -> OptionSpaces {
        let mut spaces = vec![SpaceLayout::default(); 4];
        // 0: dhcp, carrying space 2 in option 122 and the vendor space in 43.
        spaces[0] = SpaceLayout {
            code_width: 1,
            length_width: 1,
            encapsulating: vec![
                (43, Encapsulated::VendorOptionSpace),
                (122, Encapsulated::Space(OptionSpace(2))),
            ],
            site_code_min: 128,
            ..SpaceLayout::default()
        };
        // 1: a two-byte space, carried by option 5 of space 2.
        spaces[1] = SpaceLayout {
            code_width: 2,
            length_width: 2,
            carried_by: Some((OptionSpace(2), 5)),
            site_code_min: 224,
            ..SpaceLayout::default()
        };
        spaces[2] = SpaceLayout {
            code_width: 1,
            length_width: 1,
            carried_by: Some((OptionSpace::DHCP, 122)),
            zero_length: vec![9],
            site_code_min: 224,
            ..SpaceLayout::default()
        };
        // 3: a site space whose lowest code is 230.
        spaces[3] = SpaceLayout {
            code_width: 1,
            length_width: 1,
            site_code_min: 224,
            ..SpaceLayout::default()
        };
        OptionSpaces { spaces }
    }

    fn resolved(statements: &[(u16, u32, OptionForm, &[u8])]) -> ResolvedSpaces {
        let mut resolved = ResolvedSpaces::default();
        for (space, code, form, value) in statements {
            resolved.set(OptionSpace(*space), *code, *form, Some(value.to_vec()));
        }
        resolved
    }

    #[test]
    fn suboptions_follow_iscs_hash_order_and_widths() {
        let spaces = layouts();
        // Codes 18 and 1 share bucket 1: the later one comes first; 17 is in bucket 0.
        let state = resolved(&[
            (2, 1, OptionForm::Supersede, b"a"),
            (2, 18, OptionForm::Supersede, b"bc"),
            (2, 17, OptionForm::Supersede, b""),
            (2, 9, OptionForm::Supersede, b""),
            (1, 300, OptionForm::Supersede, &[1, 2, 3]),
        ]);
        let bytes = encapsulate(&spaces, &state, OptionSpace(2), 0).unwrap();
        // Space 1 is carried by space 2 only because space 2 holds an option itself.
        let alone = resolved(&[(1, 300, OptionForm::Supersede, &[1, 2, 3])]);
        assert_eq!(encapsulate(&spaces, &alone, OptionSpace(2), 0), None);
        assert_eq!(
            bytes,
            [
                18, 2, b'b', b'c', // bucket 1, newest first
                1, 1, b'a', //
                9, 0, // zerolen
                // space 1 through option 5: code and length in two bytes each
                5, 7, 0x01, 0x2c, 0, 3, 1, 2, 3,
            ]
        );
        assert_eq!(
            encapsulate(&spaces, &ResolvedSpaces::default(), OptionSpace(2), 0),
            None
        );
    }

    #[test]
    fn a_value_of_the_carrying_option_wins_and_forms_combine() {
        let spaces = layouts();
        let mut state = resolved(&[
            (2, 5, OptionForm::Supersede, b"own"),
            (1, 1, OptionForm::Supersede, b"x"),
            (2, 2, OptionForm::Supersede, b"b"),
            (2, 2, OptionForm::Append, b"c"),
            (2, 2, OptionForm::Prepend, b"a"),
            (2, 2, OptionForm::Default, b"z"),
            (2, 3, OptionForm::Default, b"d"),
        ]);
        let bytes = encapsulate(&spaces, &state, OptionSpace(2), 0).unwrap();
        assert_eq!(
            bytes,
            [2, 3, b'a', b'b', b'c', 3, 1, b'd', 5, 3, b'o', b'w', b'n']
        );
        // A null value keeps the option's place but sends nothing.
        state.set(OptionSpace(2), 3, OptionForm::Supersede, None);
        let bytes = encapsulate(&spaces, &state, OptionSpace(2), 0).unwrap();
        assert_eq!(bytes, [2, 3, b'a', b'b', b'c', 5, 3, b'o', b'w', b'n']);
    }
}
