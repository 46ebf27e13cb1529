//! Why a request to a registry failed, said once and by its root cause.
//!
//! A transport failure arrives as a chain: oci-client's error wraps
//! reqwest's ("error sending request for url (...)"), which wraps hyper's
//! ("client error (Connect)"), the connector's ("dns error") and at the
//! bottom the io error that says what went wrong ("failed to lookup address
//! information: Name or service not known"). Only the top is in the
//! error's own message, so this walks the chain and names the kind of
//! failure (a DNS lookup, a connection) with the host it was for.

use std::error::Error;

/// A registry request's failure in words: `dns lookup of HOST failed:
/// CAUSE`, `connect to HOST failed: CAUSE`, or otherwise every distinct
/// message of the chain, each once.
pub fn describe(host: &str, error: &(dyn Error + 'static)) -> String {
    let messages = crate::state::error_chain::messages(error);
    let innermost = messages.last().cloned().unwrap_or_default();
    if messages.iter().any(|m| is_dns_failure(m)) {
        return format!("dns lookup of {host} failed: {innermost}");
    }
    if messages.iter().any(|m| m == "tcp connect error") {
        return format!("connect to {host} failed: {innermost}");
    }
    messages.join(": ")
}

/// The host a registry address names, without its port.
pub fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split_once(']').map_or(registry, |(host, _)| host);
    }
    registry.split_once(':').map_or(registry, |(host, _)| host)
}

/// hyper-util's connector calls a resolver failure "dns error"; glibc's
/// getaddrinfo says "failed to lookup address information".
fn is_dns_failure(message: &str) -> bool {
    message == "dns error" || message.starts_with("failed to lookup address information")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error with a message and an optional source, to build chains.
    #[derive(Debug)]
    struct Link(&'static str, Option<Box<Link>>);

    impl std::fmt::Display for Link {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Link {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|l| l as &(dyn Error + 'static))
        }
    }

    fn chain(messages: &[&'static str]) -> Link {
        messages
            .iter()
            .rev()
            .fold(None, |inner, m| Some(Link(m, inner.map(Box::new))))
            .unwrap()
    }

    #[test]
    fn a_resolver_failure_is_named_a_dns_lookup_of_the_host() {
        let error = chain(&[
            "error sending request for url (https://registry.invalid/v2/)",
            "client error (Connect)",
            "dns error",
            "failed to lookup address information: Name or service not known",
        ]);
        assert_eq!(
            describe("registry.invalid", &error),
            "dns lookup of registry.invalid failed: failed to lookup address information: \
             Name or service not known"
        );
    }

    #[test]
    fn a_refused_connection_is_named_with_its_cause() {
        let error = chain(&[
            "error sending request for url (http://127.0.0.1:1/v2/)",
            "client error (Connect)",
            "tcp connect error",
            "Connection refused (os error 111)",
        ]);
        assert_eq!(
            describe("127.0.0.1", &error),
            "connect to 127.0.0.1 failed: Connection refused (os error 111)"
        );
    }

    #[test]
    fn any_other_chain_says_each_message_once() {
        let error = chain(&["server said no: teapot", "teapot"]);
        assert_eq!(describe("r", &error), "server said no: teapot");
    }

    #[test]
    fn the_host_drops_the_port() {
        assert_eq!(host_of("registry:5000"), "registry");
        assert_eq!(host_of("[::1]:5000"), "::1");
        assert_eq!(host_of("index.docker.io"), "index.docker.io");
    }
}
