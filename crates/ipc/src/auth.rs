//! Who is on the other end of a Unix socket, and what they may do.

/// The peer's credentials as the kernel reported them (`SO_PEERCRED`) when it
/// connected: they cannot be forged by the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerCred {
    /// Effective user id.
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
    /// Process id, when the kernel gave one.
    pub pid: Option<i32>,
}

/// The authorization hook: asked once when a peer connects and once per control
/// command.
pub trait Authorize: Send + Sync + 'static {
    /// May this peer connect (subscribe, read)?
    fn may_connect(&self, peer: &PeerCred) -> bool;
    /// May this peer send control commands?
    fn may_control(&self, peer: &PeerCred) -> bool;
}

/// The default policy: root and members of `group` may connect; only root may send
/// control commands.
///
/// Membership counts the peer's effective gid and its supplementary groups, read from
/// `/proc/<pid>/status` (the kernel's `SO_PEERCRED` gives only the effective gid). A
/// peer whose status cannot be read counts with its effective gid alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupPolicy {
    /// The group whose members may connect (`aether` in a default install); `None`:
    /// root only.
    pub group: Option<u32>,
}

impl Authorize for GroupPolicy {
    fn may_connect(&self, peer: &PeerCred) -> bool {
        if peer.uid == 0 {
            return true;
        }
        let Some(group) = self.group else {
            return false;
        };
        if peer.gid == group {
            return true;
        }
        peer.pid
            .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
            .is_some_and(|status| supplementary_groups(&status).any(|g| g == group))
    }

    fn may_control(&self, peer: &PeerCred) -> bool {
        peer.uid == 0
    }
}

/// The `Groups:` line of `/proc/<pid>/status`; words that are not numbers are skipped.
fn supplementary_groups(status: &str) -> impl Iterator<Item = u32> + '_ {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .into_iter()
        .flat_map(|l| l.split_whitespace())
        .filter_map(|w| w.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_line() {
        let status = "Name:\tx\nGroups:\t4 24 1000 \nNSpid:\t1\n";
        assert_eq!(
            supplementary_groups(status).collect::<Vec<_>>(),
            [4, 24, 1000]
        );
        assert_eq!(supplementary_groups("Name: x\n").count(), 0);
        assert_eq!(
            supplementary_groups("Groups: a 7\n").collect::<Vec<_>>(),
            [7]
        );
    }

    #[test]
    fn policy() {
        let p = GroupPolicy { group: Some(500) };
        let root = PeerCred {
            uid: 0,
            gid: 0,
            pid: None,
        };
        let member = PeerCred {
            uid: 1000,
            gid: 500,
            pid: None,
        };
        let other = PeerCred {
            uid: 1000,
            gid: 1000,
            pid: None,
        };
        assert!(p.may_connect(&root) && p.may_control(&root));
        assert!(p.may_connect(&member) && !p.may_control(&member));
        assert!(!p.may_connect(&other));
        assert!(!GroupPolicy { group: None }.may_connect(&member));
    }
}
