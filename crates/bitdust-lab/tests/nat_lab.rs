//! The NAT lab (`lab/test-nat.sh`) as part of the test suite: network namespaces with endpoint-independent and
//! symmetric NAT routers, hole punching, relays, a link cut mid-upload, loss and latency, a relay stopped.
//!
//! It needs Linux, root, and `ip`, `nft`, `iptables`, `python3` (`.ci/run` installs them). Not root: skipped
//! with a message. Root without the tools: fails, naming what to install.

use std::path::Path;
use std::process::Command;

fn have(tool: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success())
}

#[test]
fn nat_lab_backup_restore_hole_punching_and_faults() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = cfg!(target_os = "linux") && unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("nat lab skipped: it needs Linux and root (network namespaces)");
        return;
    }
    let missing: Vec<&str> = ["ip", "nft", "iptables", "python3"].into_iter().filter(|t| !have(t)).collect();
    assert!(missing.is_empty(), "the NAT lab needs {missing:?}: apt-get install iproute2 nftables iptables python3");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_lab-delay")).parent().expect("binary folder");
    // `cargo test --workspace` builds bitdust beside lab-delay (the bitdust package has integration tests)
    assert!(
        bin_dir.join("bitdust").exists(),
        "bitdust is not built beside lab-delay: run `cargo build -p bitdust` (or the whole workspace's tests)"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../lab/test-nat.sh");
    let status = Command::new("bash").arg(&script).arg(bin_dir).status().expect("run lab/test-nat.sh");
    assert!(status.success(), "lab/test-nat.sh failed: {status}");
}
