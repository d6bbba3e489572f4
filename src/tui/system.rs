//! Machine state for the System pane: CPU, memory, free disk under runs/,
//! and the GPUs (through `nvidia-smi` when the NVIDIA driver is present).

use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuInfo {
    pub index: u32,
    pub name: String,
    pub utilization: f64,
    pub memory_used_mib: f64,
    pub memory_total_mib: f64,
    pub temperature_c: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SystemInfo {
    /// Busy share of all cores, percent.
    pub cpu_percent: Option<f64>,
    pub cores: usize,
    pub mem_used_bytes: u64,
    pub mem_total_bytes: u64,
    pub disk_free_bytes: u64,
    pub disk_total_bytes: u64,
    pub gpus: Vec<GpuInfo>,
    /// Why there are no GPU figures, when there are none.
    pub gpu_note: Option<String>,
}

/// Samples the machine; CPU needs two readings, GPUs are asked every 2 s.
#[derive(Debug, Default)]
pub struct Sampler {
    last_cpu: Option<(u64, u64)>,
    last_gpu: Option<Instant>,
    gpus: Vec<GpuInfo>,
    gpu_note: Option<String>,
}

impl Sampler {
    pub fn sample(&mut self, runs_dir: &Path) -> SystemInfo {
        let mut info = SystemInfo {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            ..Default::default()
        };
        if let Some((busy, total)) = cpu_ticks() {
            if let Some((b0, t0)) = self.last_cpu {
                let dt = total.saturating_sub(t0);
                if dt > 0 {
                    info.cpu_percent = Some(100.0 * busy.saturating_sub(b0) as f64 / dt as f64);
                }
            }
            self.last_cpu = Some((busy, total));
        }
        if let Some((used, total)) = memory() {
            (info.mem_used_bytes, info.mem_total_bytes) = (used, total);
        }
        if let Some((free, total)) = crate::store::space::disk_space(runs_dir) {
            (info.disk_free_bytes, info.disk_total_bytes) = (free, total);
        }
        if self
            .last_gpu
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(2))
        {
            self.last_gpu = Some(Instant::now());
            match gpus() {
                Ok(g) => (self.gpus, self.gpu_note) = (g, None),
                Err(note) => (self.gpus, self.gpu_note) = (Vec::new(), Some(note)),
            }
        }
        info.gpus = self.gpus.clone();
        info.gpu_note = self.gpu_note.clone();
        info
    }
}

/// (busy, total) jiffies over all CPUs.
fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// (used, total) bytes of RAM.
fn memory() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    };
    let total = field("MemTotal:")?;
    let available = field("MemAvailable:")?;
    Some((total.saturating_sub(available), total))
}

/// The GPUs as `nvidia-smi` reports them, or why there are none.
fn gpus() -> Result<Vec<GpuInfo>, String> {
    if !Path::new("/proc/driver/nvidia").exists() {
        return Err("no GPU (no NVIDIA driver on this machine)".into());
    }
    let out = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=index,name,utilization.gpu,memory.used,memory.total,temperature.gpu",
            "--format=csv,noheader,nounits",
        ])
        .output()
        .map_err(|e| format!("GPU present but nvidia-smi cannot run: {e}"))?;
    if !out.status.success() {
        return Err("GPU present but nvidia-smi failed".into());
    }
    Ok(parse_nvidia_smi(&String::from_utf8_lossy(&out.stdout)))
}

pub fn parse_nvidia_smi(text: &str) -> Vec<GpuInfo> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            Some(GpuInfo {
                index: f.first()?.parse().ok()?,
                name: f.get(1)?.to_string(),
                utilization: num(2),
                memory_used_mib: num(3),
                memory_total_mib: num(4),
                temperature_c: num(5),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvidia_smi_csv_is_read() {
        let g = parse_nvidia_smi("0, NVIDIA H100 80GB HBM3, 87, 40211, 81559, 64\n");
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].name, "NVIDIA H100 80GB HBM3");
        assert_eq!((g[0].utilization, g[0].temperature_c), (87.0, 64.0));
    }

    #[test]
    fn this_machine_reports_memory_and_disk() {
        let mut s = Sampler::default();
        let info = s.sample(Path::new("."));
        assert!(info.mem_total_bytes > 0 && info.disk_total_bytes > 0);
        assert!(info.gpus.is_empty() || info.gpu_note.is_none());
    }
}
