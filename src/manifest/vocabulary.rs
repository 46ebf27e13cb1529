//! The words of the manifest language that name things of the host:
//! capabilities and signals. One list each, read by validation and by spec
//! generation alike.

/// Linux capabilities berth knows by name (without the CAP_ prefix).
pub const CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Signal names accepted for `stopSignal` (with or without the SIG prefix).
pub const SIGNALS: &[&str] = &[
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

/// A Linux capability berth knows, by its kernel number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Capability(u8);

impl Capability {
    /// Parses `NET_ADMIN`, `net_admin` or `CAP_NET_ADMIN`; `ALL` is not one
    /// capability (callers handle it).
    pub fn parse(name: &str) -> Option<Self> {
        let upper = name.to_ascii_uppercase();
        let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
        CAPABILITIES
            .iter()
            .position(|c| *c == bare)
            .map(|bit| Capability(bit as u8))
    }

    /// Every capability berth knows, in kernel order.
    pub fn all() -> impl Iterator<Item = Capability> {
        (0..CAPABILITIES.len()).map(|bit| Capability(bit as u8))
    }

    /// The kernel's bit number.
    pub fn bit(self) -> u32 {
        u32::from(self.0)
    }

    /// `CAP_NET_ADMIN`, as OCI specs name it.
    pub fn oci_name(self) -> String {
        format!("CAP_{}", CAPABILITIES[usize::from(self.0)])
    }
}

/// A signal, by number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal(i32);

impl Signal {
    pub const TERM: Signal = Signal(15);
    pub const KILL: Signal = Signal(9);
    /// The first real-time signal on Linux (glibc reserves the two below it).
    const RTMIN: i32 = 34;

    /// Parses `SIGTERM`, `term`, `15` or `RTMIN+3`.
    pub fn parse(text: &str) -> Option<Self> {
        if let Ok(number) = text.parse::<i32>() {
            return (1..=64).contains(&number).then_some(Signal(number));
        }
        let upper = text.to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        if let Some(offset) = name.strip_prefix("RTMIN+") {
            let offset: i32 = offset.parse().ok()?;
            return (0..=30)
                .contains(&offset)
                .then_some(Signal(Self::RTMIN + offset));
        }
        SIGNALS
            .iter()
            .position(|s| *s == name)
            .map(|i| Signal(i as i32 + 1))
    }

    pub fn number(self) -> i32 {
        self.0
    }
}

/// Whether `signal` names a signal: by name (with or without `SIG`), by
/// number, or as `RTMIN+N`.
pub fn is_signal(signal: &str) -> bool {
    Signal::parse(signal).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_by_name_number_and_realtime_offset() {
        assert_eq!(Signal::parse("SIGTERM"), Some(Signal::TERM));
        assert_eq!(Signal::parse("term"), Some(Signal::TERM));
        assert_eq!(Signal::parse("9"), Some(Signal::KILL));
        assert_eq!(Signal::parse("SIGUSR1").map(Signal::number), Some(10));
        assert_eq!(Signal::parse("RTMIN+2").map(Signal::number), Some(36));
        for bad in ["", "0", "65", "SIGNOPE", "RTMIN+31", "-1"] {
            assert_eq!(Signal::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn capabilities_parse_in_any_spelling_and_keep_kernel_order() {
        let admin = Capability::parse("net_admin").unwrap();
        assert_eq!(Capability::parse("CAP_NET_ADMIN"), Some(admin));
        assert_eq!(admin.bit(), 12);
        assert_eq!(admin.oci_name(), "CAP_NET_ADMIN");
        assert_eq!(Capability::parse("ALL"), None);
        assert_eq!(Capability::all().count(), CAPABILITIES.len());
        assert_eq!(Capability::all().next().unwrap().oci_name(), "CAP_CHOWN");
    }
}
