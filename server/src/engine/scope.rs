//! Parameter and option resolution through the scopes that apply to one client: host >
//! classes > pool > subnet > shared-network > global (dhcpd.conf(5), docs/spec/dhcpd-conf.md §2).

use std::sync::Arc;

use crate::config::model::{Config, Scope, ScopeId};

use super::dynamic_hosts::DynamicHost;

/// The scopes that apply to one reply, most specific first, each at most once.
#[derive(Clone, Debug)]
pub(crate) struct ScopeStack<'c> {
    config: &'c Config,
    /// A host added over OMAPI: its statements' scope lives outside the configuration's arena
    /// and comes before every arena scope.
    dynamic_host: Option<Arc<DynamicHost>>,
    ids: Vec<ScopeId>,
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
        }
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
