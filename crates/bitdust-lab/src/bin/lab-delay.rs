//! `lab-delay`: the NAT lab's latency emulator (the lab's kernel has no `netem` queueing discipline).
//!
//! Binds a netfilter queue (NFQUEUE, see `nfnetlink_queue(7)` and iptables-extensions `NFQUEUE`), holds every
//! packet the firewall sends to it for a fixed delay, then accepts it, in arrival order. The lab script routes
//! a router's inbound packets here with `iptables -t mangle -A PREROUTING -i wan -j NFQUEUE --queue-bypass`,
//! so packets pass undelayed whenever this program is not running.
//!
//! usage: lab-delay QUEUE_NUM DELAY_MS   (runs until killed; Linux only, root)

#[cfg(target_os = "linux")]
fn main() {
    if let Err(e) = linux::run() {
        eprintln!("lab-delay: {e}");
        std::process::exit(1);
    }
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("lab-delay: Linux only");
    std::process::exit(1);
}

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::VecDeque;
    use std::time::{Duration, Instant};

    /// Packets held at most (beyond it the kernel drops or, with `--queue-bypass`, passes them).
    const MAX_HELD: u32 = 65_536;

    pub fn run() -> Result<(), String> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let [queue, delay] = args.as_slice() else {
            return Err("usage: lab-delay QUEUE_NUM DELAY_MS".into());
        };
        let queue: u16 = queue.parse().map_err(|e| format!("queue number {queue:?}: {e}"))?;
        let delay = Duration::from_millis(delay.parse().map_err(|e| format!("delay {delay:?}: {e}"))?);
        let mut q = nfq::Queue::open().map_err(|e| format!("open netfilter queue: {e}"))?;
        q.bind(queue).map_err(|e| format!("bind queue {queue}: {e}"))?;
        q.set_queue_max_len(queue, MAX_HELD).map_err(|e| format!("queue length: {e}"))?;
        q.set_copy_range(queue, 64).map_err(|e| format!("copy range: {e}"))?;
        q.set_fail_open(queue, true).map_err(|e| format!("fail open: {e}"))?;
        q.set_recv_enobufs(false).map_err(|e| format!("enobufs: {e}"))?;
        q.set_nonblocking(true);
        let mut held: VecDeque<(Instant, nfq::Message)> = VecDeque::new();
        loop {
            loop {
                match q.recv() {
                    Ok(mut msg) => {
                        msg.set_verdict(nfq::Verdict::Accept);
                        held.push_back((Instant::now() + delay, msg));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(format!("receive: {e}")),
                }
            }
            let now = Instant::now();
            while held.front().is_some_and(|(due, _)| *due <= now) {
                if let Some((_, msg)) = held.pop_front() {
                    q.verdict(msg).map_err(|e| format!("verdict: {e}"))?;
                }
            }
            let next = held.front().map_or(Duration::from_millis(1), |(due, _)| due.saturating_duration_since(now));
            std::thread::sleep(next.min(Duration::from_millis(1)));
        }
    }
}
