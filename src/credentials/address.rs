//! Who a credential request says it is for: the address the service manager binds its end of
//! the connection to before it connects, `\0<random>/unit/<UNIT>/<ID>` (an abstract socket
//! name; systemd's `load_credential`). The address is only a claim: any process can bind any
//! free abstract name. [`super::decide`] believes it only for a root process that is in that
//! unit's cgroup.

use std::os::fd::BorrowedFd;

use super::names::{check_credential_id, check_unit_name};

/// What the caller's address names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddress {
    /// The unit being started (`billing.service`).
    pub unit: String,
    /// The credential asked for (`db-password`).
    pub id: String,
}

/// Why a caller's address names no credential request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The caller did not bind its socket before connecting.
    #[error("the caller's socket has no address (systemd binds \\0RANDOM/unit/UNIT/ID)")]
    Unnamed,
    /// The caller bound its socket to a file system path.
    #[error("the caller's socket is bound to the path {0:?}, not to an abstract address")]
    Pathname(String),
    /// The address could not be read.
    #[error("the caller's address could not be read: {0}")]
    Unreadable(String),
    /// An abstract address that is not `RANDOM/unit/UNIT/ID` with a valid unit and id.
    #[error("the caller's address \"{address}\" is not RANDOM/unit/UNIT/ID: {why}")]
    Malformed {
        /// The address, control characters escaped.
        address: String,
        /// What is wrong with it.
        why: String,
    },
}

/// Reads the abstract name `fd`'s peer bound (`getpeername`), without its leading NUL.
pub fn peer_name(fd: BorrowedFd<'_>) -> Result<Vec<u8>, AddressError> {
    use std::os::fd::AsRawFd;
    let addr: nix::sys::socket::UnixAddr = nix::sys::socket::getpeername(fd.as_raw_fd())
        .map_err(|e| AddressError::Unreadable(e.to_string()))?;
    if let Some(name) = addr.as_abstract() {
        return Ok(name.to_vec());
    }
    match addr.path() {
        Some(p) => Err(AddressError::Pathname(p.display().to_string())),
        None => Err(AddressError::Unnamed),
    }
}

/// Parses an abstract name (without its leading NUL) as `RANDOM/unit/UNIT/ID`.
pub fn parse(name: &[u8]) -> Result<PeerAddress, AddressError> {
    let shown = || crate::oplog::clean(&String::from_utf8_lossy(name)).into_owned();
    let malformed = |why: String| AddressError::Malformed {
        address: shown(),
        why,
    };
    let text = std::str::from_utf8(name).map_err(|_| malformed("it is not UTF-8".into()))?;
    let Some((random, rest)) = text.split_once("/unit/") else {
        return Err(malformed("it has no /unit/".into()));
    };
    if random.is_empty() || random.contains('/') {
        return Err(malformed(
            "it does not start with one random component".into(),
        ));
    }
    let Some((unit, id)) = rest.split_once('/') else {
        return Err(malformed("it names no credential id after the unit".into()));
    };
    check_unit_name(unit).map_err(malformed)?;
    check_credential_id(id).map_err(malformed)?;
    Ok(PeerAddress {
        unit: unit.to_string(),
        id: id.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemds_addresses_parse() {
        assert_eq!(
            parse(b"cb71216a688e531d/unit/credtest.service/dbpass"),
            Ok(PeerAddress {
                unit: "credtest.service".into(),
                id: "dbpass".into()
            })
        );
        let a = parse(b"1/unit/getty@tty1.service/with space").unwrap();
        assert_eq!(
            (a.unit.as_str(), a.id.as_str()),
            ("getty@tty1.service", "with space")
        );
    }

    #[test]
    fn anything_else_is_malformed_and_says_why() {
        for (name, why) in [
            (&b"x/unit/billing.service"[..], "no credential id"),
            (b"/unit/billing.service/pw", "random component"),
            (b"a/b/unit/billing.service/pw", "random component"),
            (b"x/units/billing.service/pw", "no /unit/"),
            (b"x/unit/billing/pw", "no type suffix"),
            (b"x/unit/billing.service/a/b", "'/'"),
            (b"x/unit/billing.service/", "empty"),
            (b"x/unit/billing.service/pw\0", "printable"),
            (b"x/unit/bill\xffing.service/pw", "not UTF-8"),
            (b"", "no /unit/"),
        ] {
            let e = parse(name).unwrap_err();
            let text = e.to_string();
            assert!(text.contains(why), "{name:?}: {text}");
            assert!(!text.contains('\0'), "escaped: {text}");
        }
    }

    #[test]
    fn a_socketpair_has_no_name() {
        use std::os::fd::AsFd;
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_eq!(peer_name(a.as_fd()), Err(AddressError::Unnamed));
    }
}
