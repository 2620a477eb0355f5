//! `bitdust-lab durability`: how likely a customer is to lose a block within a year, per erasure layout, from a
//! continuous-time Markov chain of its stripe set (issue 19, part 2; the analytic tier: the event-driven tier that
//! drives the real `Maintenance` state comes next and is checked against this one).
//!
//! All blocks of a customer live on the same n positions, so the unit of loss is the customer. The state j counts
//! positions without a usable fragment (0..m-1); m = n - k + 1 is absorbing (a block is lost). Rates, per year:
//! - failure j → j+1: (n - j) λ (a position's supplier leaves for good, or loses its disk);
//! - shock j → j+i: at rate ν every live position fails independently with probability q (correlated failures: a
//!   region, a provider, a bad release), binomially;
//! - repair j → j-1: j / E\[R\] when positions are repaired independently, 1 / E\[R\] when one at a time (bitdust's
//!   hire/fire replaces one position at a time: the pessimistic bound), E\[R\] = detection (fire-after) + hiring +
//!   rebuild. A customer never online long enough to fire has no repair at all (E\[R\] = ∞).
//!
//! Numerics (Stewart, "Probability, Markov Chains, Queues, and Simulation", 2009, ch. 10 on uniformization): the
//! transient probability of absorption by t is `[exp(Qt)]_{0,m}`, computed by uniformization over a step h with
//! Λh ≤ 1 (Λ ≥ max |q_ii|: P̂ = I + Q/Λ has only non-negative entries), a Poisson sum of P̂'s powers, then squaring
//! up to t. No subtraction happens anywhere, so a probability of 1e-30 keeps its relative precision. For the
//! birth-death case (no shocks) the mean time to data loss has a closed form with positive terms only, and the
//! stationary tail ("insensitivity": the count of positions under repair is binomial whatever the repair time's
//! distribution) gives a quick approximation; both check the chain in the tests.

use serde::Serialize;

/// How repairs proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Repair {
    /// Every missing position is repaired at once: j / E\[R\].
    Parallel,
    /// One position at a time: 1 / E\[R\].
    Serial,
    /// None (the customer is never online for fire-after at a stretch).
    None,
}

/// One customer's stripe set and what happens to it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Model {
    /// Data shards.
    pub k: u16,
    /// Total shards (positions).
    pub n: u16,
    /// Permanent failures per position per year.
    pub lambda: f64,
    /// Mean time to repair one position, years.
    pub repair_years: f64,
    /// How repairs proceed.
    pub repair: Repair,
    /// Correlated failures per year.
    pub shock_rate: f64,
    /// Share of positions a correlated failure takes (each independently).
    pub shock_share: f64,
}

impl Model {
    /// The absorbing state: this many positions lost loses a block.
    pub fn m(&self) -> usize {
        usize::from(self.n - self.k + 1)
    }

    fn repair_rate(&self, j: usize) -> f64 {
        match self.repair {
            _ if j == 0 || !self.repair_years.is_finite() || self.repair_years <= 0.0 => 0.0,
            Repair::Parallel => j as f64 / self.repair_years,
            Repair::Serial => 1.0 / self.repair_years,
            Repair::None => 0.0,
        }
    }

    /// The generator Q, (m+1) × (m+1), rows summing to 0; row m (absorbed) is zero.
    pub fn generator(&self) -> Vec<Vec<f64>> {
        let m = self.m();
        let n = usize::from(self.n);
        let mut q = vec![vec![0.0; m + 1]; m + 1];
        for j in 0..m {
            let live = n - j;
            q[j][j + 1] += live as f64 * self.lambda;
            if j > 0 {
                q[j][j - 1] += self.repair_rate(j);
            }
            if self.shock_rate > 0.0 && self.shock_share > 0.0 {
                for i in 1..=live {
                    let p = binomial(live, i)
                        * self.shock_share.powi(i as i32)
                        * (1.0 - self.shock_share).powi((live - i) as i32);
                    q[j][(j + i).min(m)] += self.shock_rate * p;
                }
            }
            let out: f64 = (0..=m).filter(|&c| c != j).map(|c| q[j][c]).sum();
            q[j][j] = -out;
        }
        q
    }

    /// Probability that a block is lost within `years`, starting with every position whole.
    pub fn loss_probability(&self, years: f64) -> f64 {
        let q = self.generator();
        transient(&q, years)[0][self.m()]
    }

    /// Mean time to data loss, years, for the birth-death chain (no shocks): Σ_i (Σ_{l≤i} π̃_l) / (β_i π̃_i), with
    /// π̃_0 = 1, π̃_l = Π_{r=1..l} β_{r-1} / δ_r (only positive terms). Infinite without failures; `None` with
    /// shocks (not a birth-death chain) or without repair (then π̃ is undefined; use [`Model::loss_probability`]).
    pub fn mttdl_years(&self) -> Option<f64> {
        if self.shock_rate > 0.0 || (self.m() > 1 && self.repair_rate(1) == 0.0) {
            return None;
        }
        let n = usize::from(self.n);
        let beta = |j: usize| (n - j) as f64 * self.lambda;
        let mut pi = vec![1.0f64];
        for l in 1..self.m() {
            let prev = pi[l - 1];
            pi.push(prev * beta(l - 1) / self.repair_rate(l));
        }
        let mut total = 0.0;
        let mut cumulative = 0.0;
        for (i, p) in pi.iter().enumerate() {
            cumulative += p;
            total += cumulative / (beta(i) * p);
        }
        Some(total)
    }

    /// The stationary approximation for independent repairs: each position is under repair with probability
    /// ρ = λE\[R\] / (1 + λE\[R\]) whatever the repair time's distribution, and loss happens when the m-th fails
    /// while m-1 are under repair: P ≈ years · (n - m + 1) λ · C(n, m-1) ρ^(m-1) (1-ρ)^(n-m+1).
    pub fn stationary_approximation(&self, years: f64) -> f64 {
        let (n, m) = (usize::from(self.n), self.m());
        let x = self.lambda * self.repair_years;
        let rho = x / (1.0 + x);
        years
            * (n - m + 1) as f64
            * self.lambda
            * binomial(n, m - 1)
            * rho.powi((m - 1) as i32)
            * (1.0 - rho).powi((n - m + 1) as i32)
    }
}

/// C(n, i) as a float.
fn binomial(n: usize, i: usize) -> f64 {
    (0..i).fold(1.0, |acc, r| acc * (n - r) as f64 / (r + 1) as f64)
}

fn multiply(a: &[Vec<f64>], b: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let s = a.len();
    let mut out = vec![vec![0.0; s]; s];
    for i in 0..s {
        for (l, a_il) in a[i].iter().enumerate() {
            if *a_il == 0.0 {
                continue;
            }
            for j in 0..s {
                out[i][j] += a_il * b[l][j];
            }
        }
    }
    out
}

/// exp(Q t) by uniformization and squaring (see the module's notes).
pub fn transient(q: &[Vec<f64>], t: f64) -> Vec<Vec<f64>> {
    let s = q.len();
    let identity: Vec<Vec<f64>> = (0..s).map(|i| (0..s).map(|j| f64::from(u8::from(i == j))).collect()).collect();
    let lambda = q.iter().enumerate().map(|(i, r)| -r[i]).fold(0.0f64, f64::max);
    if lambda == 0.0 || t <= 0.0 {
        return identity;
    }
    // the step: Λh ≤ 1, h = t / 2^squarings
    let mut squarings = 0u32;
    while lambda * t / f64::from(2u32).powi(squarings as i32) > 1.0 && squarings < 200 {
        squarings += 1;
    }
    let h = t / f64::from(2u32).powi(squarings as i32);
    let p_hat: Vec<Vec<f64>> = (0..s).map(|i| (0..s).map(|j| identity[i][j] + q[i][j] / lambda).collect()).collect();
    // Σ_i e^{-Λh} (Λh)^i / i! P̂^i, to a tail far below 1e-40 (Λh ≤ 1: 40 terms)
    let x = lambda * h;
    let mut weight = (-x).exp();
    let mut power = identity.clone();
    let mut sum: Vec<Vec<f64>> = power.iter().map(|r| r.iter().map(|v| v * weight).collect()).collect();
    for i in 1..=40 {
        power = multiply(&power, &p_hat);
        weight *= x / f64::from(i);
        for (row, prow) in sum.iter_mut().zip(&power) {
            for (v, p) in row.iter_mut().zip(prow) {
                *v += weight * p;
            }
        }
    }
    for _ in 0..squarings {
        sum = multiply(&sum, &sum);
    }
    sum
}

/// One row of the report.
#[derive(Debug, Serialize)]
pub struct Row {
    /// The layout, `RS(k, n)`.
    pub layout: String,
    /// Stored bytes per byte of data (n / k).
    pub overhead: f64,
    /// Probability of losing a block within a year.
    pub loss_per_year: f64,
    /// The same with one position at a time repaired.
    pub loss_per_year_serial: f64,
    /// The same with no repair (a customer never online for fire-after at a stretch).
    pub loss_per_year_no_repair: f64,
    /// Without correlated failures: mean years to data loss (closed form), and the stationary approximation of the
    /// yearly loss (both check the chain).
    pub independent: (Option<f64>, f64),
}

/// The report: the assumptions and one row per layout.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Permanent failures per position per year.
    pub lambda: f64,
    /// Mean time to repair a position, hours.
    pub repair_hours: f64,
    /// Correlated failures per year, and the share of positions each takes.
    pub shock: (f64, f64),
    /// Per layout.
    pub rows: Vec<Row>,
}

/// Computes the report for `layouts` ((k, n) pairs).
pub fn report(layouts: &[(u16, u16)], lambda: f64, repair_hours: f64, shock: (f64, f64)) -> Report {
    let rows = layouts
        .iter()
        .map(|&(k, n)| {
            let base = Model {
                k,
                n,
                lambda,
                repair_years: repair_hours / (365.25 * 24.0),
                repair: Repair::Parallel,
                shock_rate: shock.0,
                shock_share: shock.1,
            };
            Row {
                layout: format!("RS({k}, {n})"),
                overhead: f64::from(n) / f64::from(k),
                loss_per_year: base.loss_probability(1.0),
                loss_per_year_serial: Model { repair: Repair::Serial, ..base }.loss_probability(1.0),
                loss_per_year_no_repair: Model { repair: Repair::None, ..base }.loss_probability(1.0),
                independent: {
                    let calm = Model { shock_rate: 0.0, ..base };
                    (calm.mttdl_years(), calm.stationary_approximation(1.0))
                },
            }
        })
        .collect();
    Report { lambda, repair_hours, shock, rows }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(k: u16, n: u16, lambda: f64, repair_years: f64, repair: Repair) -> Model {
        Model { k, n, lambda, repair_years, repair, shock_rate: 0.0, shock_share: 0.0 }
    }

    #[test]
    fn without_repair_two_copies_are_lost_when_both_fail() {
        // RS(1, 2): lost when both positions failed, (1 - e^{-λt})^2
        for (lambda, t) in [(0.1, 1.0), (2.0, 0.5), (1e-4, 1.0)] {
            let exact = (-f64::exp_m1(-lambda * t)).powi(2);
            let chain = model(1, 2, lambda, f64::INFINITY, Repair::None).loss_probability(t);
            assert!((chain / exact - 1.0).abs() < 1e-9, "λ {lambda}: {chain} vs {exact}");
        }
        // RS(2, 4) without repair: three of four gone, Σ_{i≥3} C(4,i) p^i (1-p)^(4-i)
        let p = -f64::exp_m1(-0.3);
        let exact = 4.0 * p.powi(3) * (1.0 - p) + p.powi(4);
        let chain = model(2, 4, 0.3, f64::INFINITY, Repair::None).loss_probability(1.0);
        assert!((chain / exact - 1.0).abs() < 1e-9, "{chain} vs {exact}");
    }

    #[test]
    fn with_repair_the_chain_agrees_with_the_mean_time_to_loss_and_the_stationary_tail() {
        // the Storj whitepaper's churn assumption (10%/month, λ ≈ 1.2/yr) and a 1.1-day repair
        let repair = 1.1 / 365.25;
        for (k, n) in [(2, 4), (4, 8), (3, 10), (8, 16), (16, 32)] {
            let m = model(k, n, 1.2, repair, Repair::Parallel);
            let p = m.loss_probability(1.0);
            let from_mttdl = -f64::exp_m1(-1.0 / m.mttdl_years().unwrap());
            let stationary = m.stationary_approximation(1.0);
            assert!(p > 0.0 && p < 1e-3, "RS({k},{n}): {p}");
            assert!((p / from_mttdl - 1.0).abs() < 0.05, "RS({k},{n}): chain {p} vs MTTDL {from_mttdl}");
            assert!((p / stationary - 1.0).abs() < 0.1, "RS({k},{n}): chain {p} vs stationary {stationary}");
        }
        // tiny probabilities keep their precision (nothing is subtracted)
        let tiny = model(16, 32, 1.2, repair, Repair::Parallel).loss_probability(1.0);
        assert!(tiny > 1e-31 && tiny < 1e-28, "{tiny}");
    }

    #[test]
    fn serial_repair_and_shocks_only_make_it_worse_and_repair_only_better() {
        let repair = 1.1 / 365.25;
        for (k, n) in [(2, 4), (3, 10), (8, 16)] {
            let parallel = model(k, n, 1.2, repair, Repair::Parallel);
            let p = parallel.loss_probability(1.0);
            let serial = Model { repair: Repair::Serial, ..parallel }.loss_probability(1.0);
            let none = Model { repair: Repair::None, ..parallel }.loss_probability(1.0);
            let shocked = Model { shock_rate: 1.0, shock_share: 0.1, ..parallel }.loss_probability(1.0);
            assert!(p <= serial && serial < none && p < shocked, "RS({k},{n}): {p} {serial} {none} {shocked}");
        }
        // a shock that takes every position loses everything at its rate
        let all = Model { shock_rate: 0.5, shock_share: 1.0, ..model(3, 10, 0.0, repair, Repair::Parallel) };
        assert!((all.loss_probability(1.0) / -f64::exp_m1(-0.5) - 1.0).abs() < 1e-9);
    }
}
