//! Test doubles shared by the unit tests of the host-independent modules.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use crate::cache::SharedStore;

/// Shared data with Envoy's CAS semantics: every write gets a fresh CAS; a
/// write with a stale CAS is refused; a write without one always lands.
#[derive(Default)]
pub struct Store {
    pub map: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    last_cas: Cell<u32>,
}

impl SharedStore for Store {
    fn get(&self, key: &str) -> Option<(Vec<u8>, Option<u32>)> {
        self.map.borrow().get(key).map(|(v, c)| (v.clone(), Some(*c)))
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        let mut map = self.map.borrow_mut();
        if let (Some((_, current)), Some(cas)) = (map.get(key), cas)
            && *current != cas
        {
            return false;
        }
        self.last_cas.set(self.last_cas.get() + 1);
        map.insert(key.to_string(), (value.to_vec(), self.last_cas.get()));
        true
    }
}
