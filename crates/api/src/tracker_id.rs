//! Tracker lock ids. Tracker addresses a lock by its id alone
//! (`GET /api/v1alpha1/unlock/{id}`), while baton finds a record by its key.
//! Rather than scan the table for an id, the id carries its key:
//! `<lock id>.<key in unpadded base64url>`. Reading it is one `GetItem` on
//! the key, then a comparison with the grant's lock id; an id whose key
//! part was altered names another key, whose grant has another lock id.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

/// A Tracker id taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerId {
    pub lock_id: String,
    pub key: String,
}

impl TrackerId {
    /// The id Tracker clients get for grant `lock_id` of `key`.
    pub fn encode(lock_id: &str, key: &str) -> String {
        format!("{lock_id}.{}", URL_SAFE_NO_PAD.encode(key.as_bytes()))
    }

    /// Takes an id apart; `None` when it is not one this API made.
    pub fn decode(id: &str) -> Option<TrackerId> {
        let (lock_id, key) = id.split_once('.')?;
        if lock_id.is_empty() || lock_id.len() > 64 {
            return None;
        }
        let key = String::from_utf8(URL_SAFE_NO_PAD.decode(key).ok()?).ok()?;
        (!key.is_empty()).then(|| TrackerId {
            lock_id: lock_id.to_owned(),
            key,
        })
    }

    /// Whether `lock_id` is this id's grant, compared in constant time
    /// (the lock id is the credential that releases it).
    pub fn names(&self, lock_id: &str) -> bool {
        bool::from(self.lock_id.as_bytes().ct_eq(lock_id.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_key_and_refuse_garbage() {
        let id = TrackerId::encode("3f2b", "deploy/prod ünïcode");
        assert!(!id.contains('/') && !id.contains('='), "{id}");
        let back = TrackerId::decode(&id).unwrap();
        assert_eq!(back.key, "deploy/prod ünïcode");
        assert!(back.names("3f2b") && !back.names("3f2c"));
        for bad in ["", "nodot", ".a2V5", "abc.", "abc.!!!", "abc./w"] {
            assert_eq!(TrackerId::decode(bad), None, "{bad}");
        }
    }
}
