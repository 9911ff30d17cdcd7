//! What a route of the table declares about who may call it: no token, or a token of at least
//! some role, and which of its requests need `admin` whatever that role is.

use axum::http::Method;

use crate::config::Role;

/// One route the API serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    /// In axum's and OpenAPI's shared syntax: `/v1/tenants/{id}`.
    pub path: &'static str,
    /// The role a token needs; `None`: the route needs no token.
    pub role: Option<Role>,
    /// Requests of the route that need `admin`.
    pub admin_when: Option<AdminWhen>,
}

impl Route {
    pub fn public(method: Method, path: &'static str) -> Self {
        Route {
            method,
            path,
            role: None,
            admin_when: None,
        }
    }

    pub fn needs(method: Method, path: &'static str, role: Role) -> Self {
        Route {
            method,
            path,
            role: Some(role),
            admin_when: None,
        }
    }

    pub fn admin_when(mut self, when: AdminWhen) -> Self {
        self.admin_when = Some(when);
        self
    }

    /// The role a request with this query string needs.
    pub fn role_for(&self, query: Option<&str>) -> Option<Role> {
        match self.admin_when {
            Some(when) if when.applies(query) => Some(Role::Admin),
            _ => self.role,
        }
    }

    /// Whether the route changes something (its refusals and successes are audited).
    pub fn mutates(&self) -> bool {
        !matches!(self.method, Method::GET | Method::HEAD | Method::OPTIONS)
    }

    /// The role as the OpenAPI document and the README state it.
    pub fn describe_role(&self) -> String {
        match (self.role, self.admin_when) {
            (None, _) => "none (no token)".to_string(),
            (Some(role), None) => role.to_string(),
            (Some(role), Some(when)) => format!("{role}; admin {}", when.describe()),
        }
    }
}

/// Requests of a route that only an admin may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminWhen {
    /// A deprovisioning without a final snapshot (`final_snapshot=false`) or forced
    /// (`force=true`).
    NoFinalSnapshot,
}

impl AdminWhen {
    pub fn applies(self, query: Option<&str>) -> bool {
        match self {
            AdminWhen::NoFinalSnapshot => {
                let pairs: Vec<(String, String)> =
                    serde_urlencoded::from_str(query.unwrap_or_default()).unwrap_or_default();
                pairs.iter().any(|(k, v)| {
                    (k == "final_snapshot" && v == "false") || (k == "force" && v == "true")
                })
            }
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            AdminWhen::NoFinalSnapshot => "with `final_snapshot=false` or `force=true`",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deletion_without_a_final_snapshot_needs_an_admin() {
        let delete = Route::needs(Method::DELETE, "/v1/tenants/{id}", Role::Operator)
            .admin_when(AdminWhen::NoFinalSnapshot);
        for (query, role) in [
            (None, Role::Operator),
            (Some("final_snapshot=true"), Role::Operator),
            (Some("final_snapshot=false"), Role::Admin),
            (Some("final_snapshot=false&force=true"), Role::Admin),
            (Some("force=true"), Role::Admin),
            (Some("force=false"), Role::Operator),
        ] {
            assert_eq!(delete.role_for(query), Some(role), "{query:?}");
        }
        assert!(delete.mutates());
        assert_eq!(
            delete.describe_role(),
            "operator; admin with `final_snapshot=false` or `force=true`"
        );
        assert_eq!(Route::public(Method::GET, "/healthz").role_for(None), None);
    }
}
