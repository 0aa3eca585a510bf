//! Dropping root after the capture sockets are open (live capture only).
//!
//! sipscope reads traffic that attackers write; once the packet sockets and listening ports are
//! open it needs no privilege at all. Running as root, it then becomes the user that ran `sudo`
//! (`SUDO_UID`/`SUDO_GID`), or `nobody`, or the user named with `--user`: supplementary groups
//! are cleared, then the group and the user ids are set, which also clears every capability.
//! Output files are created after the drop, as tcpdump does with `-Z`.
//!
//! Owns the change of identity only. The system calls are the second place in sipscope with
//! `unsafe` code: the standard library and rustix have no process-wide setuid/setgid.

use std::io;

/// Who to become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
}

/// The user and group ids of `name` from `/etc/passwd` (or `name` itself as `UID[:GID]`).
pub fn lookup(name: &str) -> io::Result<Identity> {
    if let Some((u, g)) = name.split_once(':')
        && let (Ok(uid), Ok(gid)) = (u.parse(), g.parse())
    {
        return Ok(Identity { uid, gid });
    }
    if let Ok(uid) = name.parse() {
        return Ok(Identity { uid, gid: uid });
    }
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            match f.as_slice() {
                [user, _, uid, gid, ..] if *user == name => Some(Identity {
                    uid: uid.parse().ok()?,
                    gid: gid.parse().ok()?,
                }),
                _ => None,
            }
        })
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no user {name}")))
}

/// Who a root process should become: `--user` if given, else the user that ran sudo, else
/// `nobody`. `None` when not root, or when asked to stay root (`--user root`).
pub fn target(user: Option<&str>) -> io::Result<Option<Identity>> {
    if sys::euid() != 0 {
        return Ok(None);
    }
    let who = match user {
        Some("root" | "0") => return Ok(None),
        Some(name) => lookup(name)?,
        None => {
            let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u32>().ok());
            match (env("SUDO_UID"), env("SUDO_GID")) {
                (Some(uid), Some(gid)) if uid != 0 => Identity { uid, gid },
                _ => lookup("nobody").unwrap_or(Identity {
                    uid: 65_534,
                    gid: 65_534,
                }),
            }
        }
    };
    Ok(Some(who))
}

/// Becomes `who` for good, and checks that root cannot be taken back.
pub fn become_user(who: Identity) -> io::Result<()> {
    sys::become_user(who.uid, who.gid)?;
    if sys::can_regain_root() {
        return Err(io::Error::other(
            "root privileges could be regained after the drop",
        ));
    }
    Ok(())
}

#[cfg(unix)]
#[allow(unsafe_code)]
mod sys {
    //! SAFETY (every block): plain libc calls with integer arguments or a null pointer and
    //! length zero (`setgroups`), as their manual pages document.
    use std::io;

    pub fn euid() -> u32 {
        // SAFETY: see the module doc.
        unsafe { libc::geteuid() }
    }

    fn check(r: libc::c_int) -> io::Result<()> {
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    pub fn become_user(uid: u32, gid: u32) -> io::Result<()> {
        // Groups first: after setuid there is no right left to change them.
        // SAFETY: see the module doc.
        check(unsafe { libc::setgroups(0, std::ptr::null()) })?;
        // SAFETY: see the module doc.
        check(unsafe { libc::setgid(gid) })?;
        // SAFETY: see the module doc. glibc applies it to every thread of the process.
        check(unsafe { libc::setuid(uid) })
    }

    pub fn can_regain_root() -> bool {
        // SAFETY: see the module doc.
        unsafe { libc::getuid() != 0 && libc::setuid(0) == 0 }
    }
}

#[cfg(not(unix))]
mod sys {
    pub fn euid() -> u32 {
        1
    }
    pub fn become_user(_uid: u32, _gid: u32) -> std::io::Result<()> {
        Ok(())
    }
    pub fn can_regain_root() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_by_name_or_number() {
        assert_eq!(lookup("root").unwrap(), Identity { uid: 0, gid: 0 });
        assert_eq!(
            lookup("1234").unwrap(),
            Identity {
                uid: 1234,
                gid: 1234
            }
        );
        assert_eq!(lookup("1234:99").unwrap(), Identity { uid: 1234, gid: 99 });
        assert!(lookup("no-such-user-here").is_err());
    }
}
