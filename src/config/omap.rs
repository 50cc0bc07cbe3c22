//! An insertion-ordered string-keyed map with Python `dict` semantics: a new key
//! goes to the end, an existing key keeps its place when its value changes.
//! Option lists are small (tens of keys), so a vector with linear lookup wins.

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OMap<V> {
    entries: Vec<(String, V)>,
}

impl<V> Default for OMap<V> {
    fn default() -> Self {
        OMap {
            entries: Vec::new(),
        }
    }
}

impl<V> OMap<V> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.entries.iter().position(|(k, _)| k == key)
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.entries
            .iter_mut()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    pub fn insert(&mut self, key: impl Into<String>, value: V) {
        let key = key.into();
        match self.position(&key) {
            Some(i) => self.entries[i].1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// The entry for `key`, created with `make` at the end if absent.
    pub fn entry_or_insert_with(&mut self, key: &str, make: impl FnOnce() -> V) -> &mut V {
        let i = match self.position(key) {
            Some(i) => i,
            None => {
                self.entries.push((key.to_string(), make()));
                self.entries.len() - 1
            }
        };
        &mut self.entries[i].1
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&str, &V)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    pub fn key_at(&self, i: usize) -> &str {
        &self.entries[i].0
    }

    pub fn value_at(&self, i: usize) -> &V {
        &self.entries[i].1
    }

    pub fn set_at(&mut self, i: usize, value: V) {
        self.entries[i].1 = value;
    }
}

impl<V: Clone> OMap<V> {
    /// Python's `dict.update`.
    pub fn update(&mut self, other: &OMap<V>) {
        for (k, v) in other.iter() {
            self.insert(k, v.clone());
        }
    }
}

impl<V> IntoIterator for OMap<V> {
    type Item = (String, V);
    type IntoIter = std::vec::IntoIter<(String, V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<V> FromIterator<(String, V)> for OMap<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        let mut m = OMap::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}
