//! Semantic checks the schema cannot express: references, uniqueness, ranges, regexes, and each
//! section's own rules. One module per section; each reads the schema types and nothing here is
//! read by them, so the schema modules stay plain serde types.
//!
//! A check returns the first [`Invalid`] it finds: the key's path and what is wrong, with the
//! span when a spanned field holds it. `Config::parse` places the rest by path.

mod admin;
mod dns;
mod frontend;
mod invalid;
mod limits;
mod mux;
mod persist;
mod pool;
mod records;
mod sync;
mod tls;

use std::collections::HashSet;

use crate::config::Config;
use invalid::invalid;
pub(crate) use invalid::Invalid;
pub use invalid::SectionError;

pub(crate) fn validate(config: &Config) -> Result<(), Invalid> {
    let mut pool_names = HashSet::new();
    for (i, p) in config.pool.iter().enumerate() {
        if !pool_names.insert(p.name.get_ref().as_str()) {
            return Err(invalid(
                &p.name,
                format!("pool[{i}].name"),
                format!("duplicate pool name `{}`", p.name.get_ref()),
            ));
        }
        pool::pool(p, i)?;
    }
    if let Some(section) = &config.admin {
        admin::admin(section)?;
    }
    if let Some(section) = &config.dns {
        dns::dns(section)?;
    }
    if let Some(section) = &config.mux {
        mux::mux(section)?;
    }
    if let Some(section) = &config.agent {
        mux::agent(section)?;
    }
    if let Some(section) = &config.vrrp {
        section.validate().map_err(|e| Invalid {
            span: e.span,
            key: e.key,
            message: e.message,
        })?;
    }
    if let Some(section) = &config.bgp {
        section
            .validate()
            .and_then(|()| section.validate_dns(config.dns.as_ref()))
            .map_err(|e| Invalid {
                span: e.span,
                key: e.key,
                message: e.message,
            })?;
    }
    if let Some(section) = &config.sync {
        sync::sync(section)?;
    }
    let mut frontend_names = HashSet::new();
    for (i, fe) in config.frontend.iter().enumerate() {
        if !frontend_names.insert(fe.name.get_ref().as_str()) {
            return Err(invalid(
                &fe.name,
                format!("frontend[{i}].name"),
                format!("duplicate frontend name `{}`", fe.name.get_ref()),
            ));
        }
        frontend::frontend(fe, i, &pool_names)?;
    }
    Ok(())
}
