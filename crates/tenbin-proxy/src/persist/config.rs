//! From validated `[pool.persistence]` to the runtime [`PersistConfig`].

use std::collections::BTreeMap;
use std::sync::Arc;

use tenbin_config::persist::{PersistMode as Mode, Persistence as Section, SameSite};

use super::{InsertOptions, PersistConfig, PersistMode, Persistence, SetCookieAttrs};

impl PersistConfig {
    pub fn from_config(p: &Section) -> Self {
        let mode = match *p.mode.get_ref() {
            Mode::Source => PersistMode::Source,
            Mode::CookieInsert => PersistMode::CookieInsert,
            Mode::CookieRewrite => PersistMode::CookieRewrite,
            Mode::CookiePassive => PersistMode::CookiePassive,
            Mode::CookiePrefix => PersistMode::CookiePrefix,
            Mode::CookieHash => PersistMode::CookieHash,
            Mode::UrlParam => PersistMode::UrlParam,
            Mode::Header => PersistMode::Header,
            Mode::TlsSession => PersistMode::TlsSession,
        };
        let name = [&p.cookie, &p.param, &p.header]
            .into_iter()
            .flatten()
            .next()
            .map(|s| s.get_ref().clone())
            .unwrap_or_default();
        PersistConfig {
            mode,
            name,
            insert: InsertOptions {
                indirect: p.indirect,
                nocache: p.nocache,
                content_types: p.insert_content_types.clone(),
                attrs: SetCookieAttrs {
                    domain: p.domain.as_ref().map(|d| d.get_ref().clone()),
                    httponly: p.httponly,
                    secure: p.secure,
                    samesite: p.samesite.map(|s| match s {
                        SameSite::Strict => "Strict",
                        SameSite::Lax => "Lax",
                        SameSite::None => "None",
                    }),
                },
                maxidle: p.maxidle,
                maxlife: p.maxlife,
            },
            append_to_redirects: p.append_to_redirects,
            learn: p.learn,
            source_prefix_v4: *p.source_prefix_v4.get_ref(),
            source_prefix_v6: *p.source_prefix_v6.get_ref(),
            tableless: p.tableless,
            table_size: *p.table_size.get_ref(),
            idle_timeout: p.idle_timeout,
            redispatch: p.redispatch,
        }
    }
}

/// One [`Persistence`] (one table) per pool that configures HTTP persistence, by pool name;
/// share it between every frontend that uses the pool. `tls-session` pools are left to
/// passthrough, which builds its own.
pub fn from_config(config: &tenbin_config::Config) -> BTreeMap<String, Arc<Persistence>> {
    config
        .pool
        .iter()
        .filter_map(|pool| {
            let p = pool.persistence.as_ref()?;
            (*p.mode.get_ref() != Mode::TlsSession).then(|| {
                let rt = Persistence::new(PersistConfig::from_config(p));
                (pool.name.get_ref().clone(), Arc::new(rt))
            })
        })
        .collect()
}

/// The per-pool-index persistence of an HTTP frontend whose pools are `pools`.
pub fn for_pools(
    all: &BTreeMap<String, Arc<Persistence>>,
    pools: &[crate::pool::Pool],
) -> Vec<Option<Arc<Persistence>>> {
    pools.iter().map(|p| all.get(p.name()).cloned()).collect()
}
