//! A real sshd on 127.0.0.1 for tests that pull or push over ssh: its own host key, client key,
//! authorized_keys and config in a temporary directory, listening on a free port, killed on
//! drop.
//!
//! ```ignore
//! let sshd = common::sshd::Sshd::start(); // panics with the fix when sshd is missing
//! let source = format!("root@127.0.0.1:{}/", dir.display());
//! std::fs::write(host_config, format!("sources = [\"{source}\"]\n{}", sshd.zbk_config()));
//! ssh(&sshd.ssh_args(), "root@127.0.0.1", "true");
//! ```
//!
//! The client logs in as root (the tests run as root) with `sshd.key_path`; `ssh_args()` gives
//! ssh(1) the key, the port, batch mode and no known-hosts bookkeeping; `zbk_config()` gives
//! the same as an `[ssh]` table for a host's c/zbk.toml.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

/// A running sshd; dropping it kills it.
pub struct Sshd {
    pub port: u16,
    /// The client's private key, authorized for root.
    pub key_path: PathBuf,
    authorized: PathBuf,
    child: Child,
    dir: tempfile::TempDir,
}

/// Runs ssh-keygen to make a passphrase-less ed25519 key at `path`.
fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "zbk-test", "-f"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ssh-keygen ({e}): apt-get install openssh-client"));
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The PATH of the sessions this sshd runs. The server a test logs in to is this machine, with
/// the same zfs-fuse daemon: the zfs calls a client makes there (`zbk replicate`'s `receive`,
/// `set mountpoint=none`, `create`) mount and unmount on it like any other here, so on zfs-fuse
/// they take the machine's mount lock too (a wrapper that runs the real zfs under it, first on
/// PATH); an unmount racing another mount wedges the daemon for everyone. Calls that never mount
/// (listings, properties read, holds, send) run as they are.
fn session_path(dir: &Path) -> String {
    let system = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    if super::flavour() == super::Flavour::OpenZfs {
        return system.to_string();
    }
    let real = Command::new("sh")
        .args(["-c", "command -v zfs"])
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|path| !path.is_empty())
        .expect("zfs not found: install zfs-fuse (or run tests/run.sh)");
    let bin = dir.join("zfs-under-mount-lock");
    std::fs::create_dir_all(&bin).unwrap();
    let wrapper = bin.join("zfs");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n# The real zfs, under the machine's zfs-fuse mount lock when the call may mount or unmount.\n\
             case $1 in list|get|send|hold|holds|release|snapshot|version) exec {real} \"$@\" ;; esac\n\
             exec flock {lock} {real} \"$@\"\n",
            lock = super::MOUNT_LOCK,
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("{}:{system}", bin.display())
}

impl Sshd {
    /// Starts sshd and waits until it accepts connections.
    pub fn start() -> Sshd {
        assert!(
            Path::new(SSHD).is_file(),
            "{SSHD} not found: apt-get install openssh-server (or run tests/run.sh)"
        );
        // sshd refuses to start without its privilege-separation directory.
        std::fs::create_dir_all("/run/sshd").expect("mkdir /run/sshd");
        let dir = tempfile::Builder::new()
            .prefix("zbk-sshd-")
            .tempdir()
            .expect("tempdir");
        let host_key = dir.path().join("host_key");
        let key_path = dir.path().join("client_key");
        keygen(&host_key);
        keygen(&key_path);
        let authorized = dir.path().join("authorized_keys");
        std::fs::copy(key_path.with_extension("pub"), &authorized).expect("authorized_keys");
        let session_path = session_path(dir.path());
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = super::free_port();
            let config = dir.path().join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
                     PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\nStrictModes no\nUsePAM no\n\
                     PidFile {}\nLogLevel ERROR\nSetEnv PATH={session_path} HOME={}\n",
                    host_key.display(),
                    authorized.display(),
                    dir.path().join("sshd.pid").display(),
                    // The session's shell reads ~/.bashrc (Debian's bash does under sshd):
                    // the machine's own, whatever it runs, has no place in a test's logins.
                    dir.path().display()
                ),
            )
            .unwrap();
            let log = dir.path().join("sshd.log");
            let mut child = Command::new(SSHD)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {SSHD}: {e}"));
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Sshd {
                        port,
                        key_path,
                        authorized,
                        child,
                        dir,
                    };
                }
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
        }
        panic!("sshd did not start listening on 127.0.0.1: {last_log}");
    }

    /// The options ssh(1) needs to log in here, before the destination.
    pub fn ssh_args(&self) -> Vec<String> {
        [
            "-i",
            self.key_path.to_str().unwrap(),
            "-p",
            &self.port.to_string(),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "LogLevel=ERROR",
        ]
        .map(String::from)
        .to_vec()
    }

    /// The same as an `[ssh]` table for a host's c/zbk.toml (see zbk.toml(5)).
    pub fn zbk_config(&self) -> String {
        format!(
            "\n[ssh]\nport = {}\nidentity = \"{}\"\noptions = [\"StrictHostKeyChecking=no\", \"UserKnownHostsFile=/dev/null\", \"LogLevel=ERROR\"]\n",
            self.port,
            self.key_path.display()
        )
    }

    /// Authorizes one more public key line (`ssh-ed25519 AAAA... comment`).
    pub fn authorize(&self, line: &str) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.authorized)
            .unwrap();
        writeln!(f, "{}", line.trim_end()).unwrap();
    }

    /// The temporary directory holding the keys and the config.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
