//! `--filter KEY=VALUE[,VALUE...]` for `aether monitor`.
//!
//! Keys are `kind`, `pid`, `uid` and `exe`. Values of one key are alternatives; keys
//! given together must all match. `loss` and `malformed` events always pass: a view
//! that hides its own blind spots would lie.

use std::collections::HashSet;

use aether_events::{Event, EventKind};

/// Why a filter did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// Not of the form `KEY=VALUE`.
    #[error("filter {0:?} is not KEY=VALUE (keys: kind, pid, uid, exe)")]
    Syntax(String),
    /// An unknown key.
    #[error("unknown filter key {0:?} (keys: kind, pid, uid, exe)")]
    Key(String),
    /// A value that does not fit its key.
    #[error("bad value {value:?} for filter {key}: {why}")]
    Value {
        /// The key.
        key: &'static str,
        /// The value.
        value: String,
        /// What is wrong.
        why: String,
    },
}

/// A parsed set of filters. The default passes everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    kinds: Option<HashSet<&'static str>>,
    pids: Option<HashSet<u32>>,
    uids: Option<HashSet<u32>>,
    exes: Option<Vec<String>>,
}

fn numbers(key: &'static str, values: &str) -> Result<HashSet<u32>, FilterError> {
    values
        .split(',')
        .map(|v| {
            v.trim().parse::<u32>().map_err(|e| FilterError::Value {
                key,
                value: v.to_string(),
                why: e.to_string(),
            })
        })
        .collect()
}

/// Matches `text` against `pattern`, where `*` stands for any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return false;
    };
    if parts.len() == 1 {
        return pattern == text;
    }
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in parts.iter().take(parts.len() - 1).skip(1) {
        match rest.find(mid) {
            Some(at) => rest = &rest[at + mid.len()..],
            None => return false,
        }
    }
    true
}

impl Filter {
    /// Parses `KEY=VALUE[,VALUE...]` specs; a key given twice adds alternatives.
    pub fn parse<S: AsRef<str>>(specs: &[S]) -> Result<Filter, FilterError> {
        let mut f = Filter::default();
        for spec in specs {
            let spec = spec.as_ref();
            let Some((key, values)) = spec.split_once('=') else {
                return Err(FilterError::Syntax(spec.to_string()));
            };
            if values.is_empty() {
                return Err(FilterError::Syntax(spec.to_string()));
            }
            match key.trim() {
                "kind" => {
                    let set = f.kinds.get_or_insert_with(HashSet::new);
                    for v in values.split(',') {
                        let v = v.trim();
                        let Some(name) = EventKind::NAMES.iter().find(|n| **n == v) else {
                            return Err(FilterError::Value {
                                key: "kind",
                                value: v.to_string(),
                                why: format!("kinds are {}", EventKind::NAMES.join(", ")),
                            });
                        };
                        set.insert(name);
                    }
                }
                "pid" => f
                    .pids
                    .get_or_insert_with(HashSet::new)
                    .extend(numbers("pid", values)?),
                "uid" => f
                    .uids
                    .get_or_insert_with(HashSet::new)
                    .extend(numbers("uid", values)?),
                "exe" => f
                    .exes
                    .get_or_insert_with(Vec::new)
                    .extend(values.split(',').map(|v| v.trim().to_string())),
                other => return Err(FilterError::Key(other.to_string())),
            }
        }
        Ok(f)
    }

    /// Whether `ev` passes.
    pub fn matches(&self, ev: &Event) -> bool {
        if matches!(ev.kind, EventKind::Loss(_) | EventKind::Malformed(_)) {
            return true;
        }
        if let Some(kinds) = &self.kinds
            && !kinds.contains(ev.kind_name())
        {
            return false;
        }
        let task = ev.task();
        if let Some(pids) = &self.pids {
            let parent = match &ev.kind {
                EventKind::Fork(f) => Some(f.parent_pid),
                _ => None,
            };
            let hit = task.is_some_and(|t| pids.contains(&t.pid) || pids.contains(&t.tid))
                || parent.is_some_and(|p| pids.contains(&p));
            if !hit {
                return false;
            }
        }
        if let Some(uids) = &self.uids {
            let extra: Vec<u32> = match &ev.kind {
                EventKind::Exec(e) => e.details.euid.into_iter().collect(),
                EventKind::ProcessFound(e) => e.details.euid.into_iter().collect(),
                EventKind::Uid(c) => vec![c.real, c.effective],
                _ => Vec::new(),
            };
            let hit = task.and_then(|t| t.uid).is_some_and(|u| uids.contains(&u))
                || extra.iter().any(|u| uids.contains(u));
            if !hit {
                return false;
            }
        }
        if let Some(exes) = &self.exes {
            let Some(exe) = task.and_then(|t| t.exe.as_deref()) else {
                return false;
            };
            let base = exe.rsplit('/').next().unwrap_or(exe);
            let hit = exes.iter().any(|p| {
                if p.contains('/') {
                    glob(p, exe)
                } else {
                    glob(p, base)
                }
            });
            if !hit {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aether_events::{Exec, Fork, ForkKind, Loss, LossCause, ProcessDetails, Task};

    fn exec(pid: u32, uid: u32, exe: &str) -> Event {
        Event {
            seq: 0,
            time_ns: 0,
            cpu: None,
            kind: EventKind::Exec(Exec {
                task: Task {
                    pid,
                    tid: pid,
                    uid: Some(uid),
                    exe: Some(exe.into()),
                    ..Task::default()
                },
                details: ProcessDetails::default(),
            }),
        }
    }

    #[test]
    fn keys_combine_and_values_alternate() {
        let f = Filter::parse(&["kind=exec,exit", "uid=0", "exe=/usr/bin/*"]).unwrap();
        assert!(f.matches(&exec(1, 0, "/usr/bin/true")));
        assert!(!f.matches(&exec(1, 1000, "/usr/bin/true")));
        assert!(!f.matches(&exec(1, 0, "/bin/true")));
        let f = Filter::parse(&["exe=true"]).unwrap();
        assert!(f.matches(&exec(1, 0, "/usr/bin/true")));
        assert!(!f.matches(&exec(1, 0, "/usr/bin/truex")));
        let f = Filter::parse(&["pid=7,8"]).unwrap();
        assert!(f.matches(&exec(8, 0, "/x")));
        assert!(!f.matches(&exec(9, 0, "/x")));
    }

    #[test]
    fn fork_matches_on_its_parent_pid() {
        let f = Filter::parse(&["pid=7"]).unwrap();
        let ev = Event {
            seq: 0,
            time_ns: 0,
            cpu: None,
            kind: EventKind::Fork(Fork {
                task: Task {
                    pid: 9,
                    tid: 9,
                    ..Task::default()
                },
                fork_kind: ForkKind::Process,
                parent_pid: 7,
                parent_tid: 7,
                parent: None,
            }),
        };
        assert!(f.matches(&ev));
    }

    #[test]
    fn loss_always_passes() {
        let f = Filter::parse(&["kind=exec", "pid=1"]).unwrap();
        let ev = Event {
            seq: 0,
            time_ns: 0,
            cpu: None,
            kind: EventKind::Loss(Loss {
                cause: LossCause::QueueOverflow,
                count: Some(1),
                lost_cpu: None,
            }),
        };
        assert!(f.matches(&ev));
    }

    #[test]
    fn bad_filters_say_what_is_wrong() {
        assert!(matches!(
            Filter::parse(&["kind"]),
            Err(FilterError::Syntax(_))
        ));
        assert!(matches!(
            Filter::parse(&["pid="]),
            Err(FilterError::Syntax(_))
        ));
        assert!(matches!(
            Filter::parse(&["colour=red"]),
            Err(FilterError::Key(_))
        ));
        assert!(matches!(
            Filter::parse(&["kind=forks"]),
            Err(FilterError::Value { key: "kind", .. })
        ));
        assert!(matches!(
            Filter::parse(&["pid=x"]),
            Err(FilterError::Value { key: "pid", .. })
        ));
    }

    #[test]
    fn glob_matches() {
        assert!(glob("/usr/*/true", "/usr/bin/true"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "aXbYc"));
        assert!(!glob("a*b*c", "aXcYb"));
        assert!(!glob("ab*ba", "aba"));
    }
}
