//! The kernel maps of the fast path behind one small trait ([`FastPathMaps`]): an aya
//! implementation over the loaded program's maps, and an in-memory fake so that map
//! synchronisation is unit-tested without root (STYLE.md §6).

use std::collections::HashMap;

use aya::maps::{Array, HashMap as BpfHashMap, MapData, MapError};
use server_common::fastpath::{
    FastPathConfig, LeaseKey, LeaseValue, Template, RELATIONSHIP_SERVES,
};

/// Errors of a map update.
#[derive(Debug, thiserror::Error)]
pub enum MapsError {
    #[error("the XDP object has no map `{0}`")]
    MissingMap(&'static str),
    #[error("map update: {0}")]
    Map(#[from] MapError),
    #[error("all {0} template slots are in use")]
    TemplatesFull(u32),
}

/// What userspace keeps in the kernel for the fast path.
pub trait FastPathMaps {
    fn set_config(&mut self, config: &FastPathConfig) -> Result<(), MapsError>;
    fn set_interface_mac(&mut self, ifindex: u32, mac: [u8; 6]) -> Result<(), MapsError>;
    fn put_template(&mut self, index: u32, template: &Template) -> Result<(), MapsError>;
    fn remove_template(&mut self, index: u32) -> Result<(), MapsError>;
    fn put_lease(&mut self, key: &LeaseKey, value: &LeaseValue) -> Result<(), MapsError>;
    fn remove_lease(&mut self, key: &LeaseKey) -> Result<(), MapsError>;
    /// Whether failover relationship slot `index` answers renewals (`LeaseValue::relationship`
    /// = index + 1).
    fn set_relationship(&mut self, index: u32, serves: bool) -> Result<(), MapsError>;
    /// The kernel's view of a lease (after kernel renewals, `ends` moved).
    fn lease(&self, key: &LeaseKey) -> Option<LeaseValue>;
}

/// The maps of a loaded `server-ebpf` object.
pub struct AyaMaps {
    config: Array<MapData, FastPathConfig>,
    leases: BpfHashMap<MapData, LeaseKey, LeaseValue>,
    templates: Array<MapData, Template>,
    interface_macs: BpfHashMap<MapData, u32, [u8; 8]>,
    relationships: Array<MapData, u32>,
}

impl AyaMaps {
    /// Takes the fast-path maps out of `ebpf` (the statistics and ring buffer stay).
    pub fn take(ebpf: &mut aya::Ebpf) -> Result<Self, MapsError> {
        let mut take = |name: &'static str| ebpf.take_map(name).ok_or(MapsError::MissingMap(name));
        Ok(Self {
            config: Array::try_from(take("CONFIG")?)?,
            leases: BpfHashMap::try_from(take("LEASES")?)?,
            templates: Array::try_from(take("TEMPLATES")?)?,
            interface_macs: BpfHashMap::try_from(take("INTERFACE_MACS")?)?,
            relationships: Array::try_from(take("RELATIONSHIPS")?)?,
        })
    }
}

impl std::fmt::Debug for AyaMaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AyaMaps")
    }
}

impl FastPathMaps for AyaMaps {
    fn set_config(&mut self, config: &FastPathConfig) -> Result<(), MapsError> {
        Ok(self.config.set(0, *config, 0)?)
    }

    fn set_interface_mac(&mut self, ifindex: u32, mac: [u8; 6]) -> Result<(), MapsError> {
        let mut value = [0u8; 8];
        value[..6].copy_from_slice(&mac);
        Ok(self.interface_macs.insert(ifindex, value, 0)?)
    }

    fn put_template(&mut self, index: u32, template: &Template) -> Result<(), MapsError> {
        Ok(self.templates.set(index, template, 0)?)
    }

    /// An array slot cannot be deleted: it is emptied (length 0, which the kernel passes up),
    /// although no published lease refers to it any more.
    fn remove_template(&mut self, index: u32) -> Result<(), MapsError> {
        Ok(self.templates.set(index, Template::EMPTY, 0)?)
    }

    fn put_lease(&mut self, key: &LeaseKey, value: &LeaseValue) -> Result<(), MapsError> {
        Ok(self.leases.insert(key, value, 0)?)
    }

    fn remove_lease(&mut self, key: &LeaseKey) -> Result<(), MapsError> {
        match self.leases.remove(key) {
            Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    fn set_relationship(&mut self, index: u32, serves: bool) -> Result<(), MapsError> {
        let value = if serves { RELATIONSHIP_SERVES } else { 0 };
        Ok(self.relationships.set(index, value, 0)?)
    }

    fn lease(&self, key: &LeaseKey) -> Option<LeaseValue> {
        self.leases.get(key, 0).ok()
    }
}

/// In-memory stand-in for the kernel maps.
#[derive(Default)]
pub struct FakeMaps {
    pub config: Option<FastPathConfig>,
    pub interface_macs: HashMap<u32, [u8; 6]>,
    pub templates: HashMap<u32, Template>,
    pub leases: HashMap<LeaseKey, LeaseValue>,
    /// Relationship slot → serves renewals.
    pub relationships: HashMap<u32, bool>,
}

impl std::fmt::Debug for FakeMaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeMaps")
            .field("templates", &self.templates.len())
            .field("leases", &self.leases.len())
            .finish()
    }
}

impl FastPathMaps for FakeMaps {
    fn set_config(&mut self, config: &FastPathConfig) -> Result<(), MapsError> {
        self.config = Some(*config);
        Ok(())
    }

    fn set_interface_mac(&mut self, ifindex: u32, mac: [u8; 6]) -> Result<(), MapsError> {
        self.interface_macs.insert(ifindex, mac);
        Ok(())
    }

    fn put_template(&mut self, index: u32, template: &Template) -> Result<(), MapsError> {
        self.templates.insert(index, *template);
        Ok(())
    }

    fn remove_template(&mut self, index: u32) -> Result<(), MapsError> {
        self.templates.remove(&index);
        Ok(())
    }

    fn put_lease(&mut self, key: &LeaseKey, value: &LeaseValue) -> Result<(), MapsError> {
        self.leases.insert(*key, *value);
        Ok(())
    }

    fn remove_lease(&mut self, key: &LeaseKey) -> Result<(), MapsError> {
        self.leases.remove(key);
        Ok(())
    }

    fn set_relationship(&mut self, index: u32, serves: bool) -> Result<(), MapsError> {
        self.relationships.insert(index, serves);
        Ok(())
    }

    fn lease(&self, key: &LeaseKey) -> Option<LeaseValue> {
        self.leases.get(key).copied()
    }
}
