//! `[admin]`: the admin API changes the node, so off loopback it must ask for a token.

use super::invalid::invalid;
use super::Invalid;
use crate::admin::Admin;

pub(super) fn admin(admin: &Admin) -> Result<(), Invalid> {
    if let (Some(_), Some(file)) = (&admin.token, &admin.token_file) {
        return Err(invalid(
            file,
            "admin.token_file".into(),
            "set either `token` or `token_file`, not both",
        ));
    }
    if let Some(t) = &admin.token {
        if t.expose().trim().is_empty() {
            return Err(invalid(
                t.spanned(),
                "admin.token".into(),
                "the token is empty",
            ));
        }
    }
    if !admin.listen.ip().is_loopback() && admin.token.is_none() && admin.token_file.is_none() {
        return Err(Invalid::at(
            "admin.listen",
            format!(
                "{} is not a loopback address: the admin API changes the node, so off \
                 loopback it needs `token` or `token_file`",
                admin.listen
            ),
        ));
    }
    Ok(())
}
