//! Live progress: a thread that redraws one status line on the terminal
//! (stderr), or prints JSON status lines (stdout) with `--json`, until stopped.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Off,
    /// One line redrawn in place on the terminal.
    Terminal,
    /// A line per update, for logs (stderr is no terminal).
    Lines,
    Json,
}

impl Mode {
    /// JSON status lines (stdout) with `--json`; a redrawn line on a
    /// terminal; elsewhere nothing, unless `CAIRN_PROGRESS_FPS` asks for
    /// lines anyway (as restic's `RESTIC_PROGRESS_FPS`).
    pub fn choose(json: bool, quiet: bool) -> Mode {
        if json {
            Mode::Json
        } else if quiet {
            Mode::Off
        } else if std::io::stderr().is_terminal() {
            Mode::Terminal
        } else if fps().is_some() {
            Mode::Lines
        } else {
            Mode::Off
        }
    }
}

/// `CAIRN_PROGRESS_FPS`: status updates per second (fractions allowed,
/// e.g. 0.1 for one every ten seconds), if set and valid.
fn fps() -> Option<f64> {
    let v = std::env::var("CAIRN_PROGRESS_FPS").ok()?;
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite() && *f > 0.0)
}

/// The time between two updates: `CAIRN_PROGRESS_FPS` (at most 60 a
/// second), else 5 a second on a terminal and one a second in JSON.
fn tick(mode: Mode) -> Duration {
    match fps() {
        Some(f) => Duration::from_secs_f64(1.0 / f.min(60.0)),
        None if mode == Mode::Json => Duration::from_millis(1000),
        None => Duration::from_millis(200),
    }
}

/// The terminal's width in columns (stderr's), if it is a terminal.
pub fn terminal_width() -> Option<usize> {
    let size = rustix::termios::tcgetwinsize(std::io::stderr()).ok()?;
    (size.ws_col > 0).then_some(size.ws_col as usize)
}

/// `line` cut to `width` characters: a long path in it loses its start
/// (`…` marks the cut), the rest is kept.
pub fn fit(line: &str, width: usize) -> String {
    let n = line.chars().count();
    if n <= width {
        return line.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let keep = width - 1;
    let tail: String = line.chars().skip(n - keep).collect();
    format!("…{tail}")
}

pub struct Reporter {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
    mode: Mode,
}

/// What a status callback produces each tick.
pub enum Status {
    Line(String),
    Json(serde_json::Value),
}

impl Reporter {
    /// Call `status(elapsed)` every tick and show the result.
    pub fn start(mode: Mode, status: impl Fn(Duration) -> Status + Send + 'static) -> Reporter {
        let stop = Arc::new(AtomicBool::new(false));
        if mode == Mode::Off {
            return Reporter {
                stop,
                handle: None,
                mode,
            };
        }
        let s = stop.clone();
        let tick = tick(mode);
        let handle = std::thread::spawn(move || {
            let start = Instant::now();
            let mut next = start + tick;
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(tick.min(Duration::from_millis(50)));
                if Instant::now() < next {
                    continue;
                }
                next += tick;
                match status(start.elapsed()) {
                    Status::Line(l) if mode == Mode::Lines => eprintln!("{l}"),
                    Status::Line(l) => {
                        // One line, cut to the terminal: a wrapped line
                        // would not be redrawn in place.
                        let l = match terminal_width() {
                            Some(w) => fit(&l, w.saturating_sub(1)),
                            None => l,
                        };
                        let mut e = std::io::stderr().lock();
                        let _ = write!(e, "\r\x1b[K{l}");
                        let _ = e.flush();
                    }
                    Status::Json(v) => crate::output::json_line(&v),
                }
            }
            // In a log, the last figures too, however short the run.
            if mode == Mode::Lines {
                if let Status::Line(l) = status(start.elapsed()) {
                    eprintln!("{l}");
                }
            }
        });
        Reporter {
            stop,
            handle: Some(handle),
            mode,
        }
    }

    pub fn finish(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
            if self.mode == Mode::Terminal {
                eprint!("\r\x1b[K");
            }
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.stop_now();
    }
}

pub fn eta(done: u64, total: u64, elapsed: Duration) -> Option<u64> {
    if done == 0 || total <= done {
        return None;
    }
    let rate = done as f64 / elapsed.as_secs_f64().max(0.001);
    Some(((total - done) as f64 / rate) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_lose_their_start() {
        assert_eq!(fit("short", 10), "short");
        assert_eq!(fit("abcdefghij", 5), "…ghij");
        assert_eq!(fit("/home/ünïcödé", 5), "…cödé");
        assert_eq!(fit("abc", 0), "");
    }
}
