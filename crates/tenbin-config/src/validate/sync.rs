//! `[sync]`: a key long enough to authenticate frames, given once; something to do; sane
//! bounds and timers.

use std::collections::HashSet;

use super::invalid::{invalid, Invalid};
use crate::sync::{SyncSection, MIN_SYNC_KEY};

pub(crate) fn sync(s: &SyncSection) -> Result<(), Invalid> {
    match (&s.key, &s.key_file) {
        (Some(_), Some(file)) => {
            return Err(invalid(
                file,
                "sync.key_file".into(),
                "set either `key` or `key_file`, not both",
            ))
        }
        (None, None) => {
            return Err(Invalid::at(
                "sync",
                "needs `key` or `key_file`: every frame is authenticated with it",
            ))
        }
        (Some(k), None) if k.expose().len() < MIN_SYNC_KEY => {
            return Err(invalid(
                k.spanned(),
                "sync.key".into(),
                format!("must be at least {MIN_SYNC_KEY} bytes long"),
            ))
        }
        _ => {}
    }
    if s.listen.is_none() && s.peers.is_empty() {
        return Err(Invalid::at(
            "sync",
            "needs `listen`, `peers` or both: with neither there is nothing to sync",
        ));
    }
    let mut seen = HashSet::new();
    for (i, p) in s.peers.iter().enumerate() {
        if !seen.insert(*p.get_ref()) {
            return Err(invalid(
                p,
                format!("sync.peers[{i}]"),
                format!("{} is listed twice", p.get_ref()),
            ));
        }
        if Some(*p.get_ref()) == s.listen {
            return Err(invalid(
                p,
                format!("sync.peers[{i}]"),
                "is this node's own listen address",
            ));
        }
    }
    if *s.queue.get_ref() == 0 {
        return Err(invalid(&s.queue, "sync.queue".into(), "must be at least 1"));
    }
    if s.name.is_empty() || s.name.len() > 255 {
        return Err(Invalid::at("sync.name", "must be 1 to 255 bytes long"));
    }
    if s.keepalive.is_zero() {
        return Err(Invalid::at("sync.keepalive", "must be above zero"));
    }
    if s.dead_after <= s.keepalive {
        return Err(Invalid::at(
            "sync.dead_after",
            format!(
                "must be longer than keepalive ({:?}), or an idle peer is given up",
                s.keepalive
            ),
        ));
    }
    Ok(())
}
