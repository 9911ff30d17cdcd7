//! The HTTP API, the console and the command line: requests to a real server on a real port
//! (in-process or `tenantd serve`), its limits, its OpenAPI contract, roles and the audit trail.
//! One test binary; each module is one former test file.

#[path = "../support/mod.rs"]
mod support;

mod audit;
mod cli;
mod cli_stack;
mod console;
mod contract;
mod fuzz;
mod http;
mod job_ops;
mod listener;
mod ops_load;
mod roles;
mod surface;

/// The CSRF token a console page's forms carry (every page has one: the sign-out form).
fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    page[at..at + 64].to_string()
}
