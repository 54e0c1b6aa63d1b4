//! The command line of `aether-vault` (installed as `vault`), as clap derive types: global
//! flags, the command trees (`agent`, `capability`, `policy`, `credential`, `audit`, `secret`,
//! `exec`, `completions`), and turning a clap parse failure into the right stream and exit code.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::output::Format;
use crate::config::{Mode, Overrides};
use crate::daemon::LogTarget;

/// The help heading of the flags every command accepts.
const GLOBAL: &str = "Global options";

/// Talk to the local aether-vault agent: request, validate, revoke and list capabilities;
/// start, stop and inspect the agent.
///
/// Exit codes: 0 success (granted, valid), 2 the agent said no (denied, invalid), 1 error.
#[derive(Debug, Parser)]
#[command(name = "aether-vault", version, propagate_version = true)]
pub struct Cli {
    /// Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of
    /// /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers].
    #[arg(long, global = true, value_name = "PATH", help_heading = GLOBAL)]
    pub socket_path: Option<PathBuf>,

    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table, help_heading = GLOBAL)]
    pub format: Format,

    /// Say more (on stderr), and ask the agent for detailed status.
    #[arg(short, long, global = true, help_heading = GLOBAL)]
    pub verbose: bool,

    /// Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else
    /// /etc/aether-vault/agent.yaml for root (not in development mode) or
    /// ~/.aether-vault/agent.yaml].
    #[arg(long, global = true, value_name = "FILE", help_heading = GLOBAL)]
    pub config: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run and manage the agent.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Request, validate, revoke and list capabilities.
    #[command(subcommand)]
    Capability(CapabilityCommand),
    /// Check, test and list policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Show and test the systemd credentials units get at start (LoadCredential=).
    #[command(subcommand)]
    Credential(CredentialCommand),
    /// Verify and read the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Read, write, list and delete secrets (each through a short-lived capability).
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Run a command with secrets in its environment (never printed).
    Exec(ExecArgs),
    /// Print the completion script for a shell to standard output (needs no agent).
    Completions(CompletionsArgs),
    /// Check the installation: socket, systemd units, file owners and modes, policies, users
    /// and groups they name, audit chain, keys, secrets backend; each finding with its fix
    /// (exit 0 no problem, warnings included; 1 a problem).
    Doctor(DoctorArgs),
}

/// `doctor`.
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// Configuration overrides, as `agent start` would apply them.
    #[command(flatten)]
    pub flags: ConfigFlags,
    /// The user the agent runs as, whose files these must be [default: the running agent's;
    /// else, for root with the system paths, aether-vault if it exists; else the caller].
    #[arg(long, value_name = "USER")]
    pub agent_user: Option<String>,
}

/// `completions`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// A shell `completions` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    /// Bash (bash-completion).
    Bash,
    /// Zsh.
    Zsh,
    /// Fish.
    Fish,
}

/// `secret …`
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Print a secret (or one field) or write it to a file (mode 0600).
    #[command(disable_version_flag = true)]
    Get(SecretGetArgs),
    /// Write a new version of a secret: `key=value` or `key=@file` pairs.
    Put(SecretPutArgs),
    /// List the names under a path.
    List(SecretPathArgs),
    /// Delete a secret (all versions).
    Delete(SecretPathArgs),
}

/// `secret get`.
#[derive(Debug, Clone, Args)]
pub struct SecretGetArgs {
    /// The secret path (`db/primary` or `secret:/db/primary`); optional with --capability when
    /// the capability names one secret.
    pub path: Option<String>,
    /// Print only this field.
    #[arg(long)]
    pub field: Option<String>,
    /// A version (default the latest).
    #[arg(long)]
    pub version: Option<u64>,
    /// Redeem this capability instead of requesting one.
    #[arg(long, value_name = "ID")]
    pub capability: Option<String>,
    /// Write to this file (mode 0600) instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `secret put`.
#[derive(Debug, Clone, Args)]
pub struct SecretPutArgs {
    /// The secret path.
    pub path: String,
    /// `key=value` or `key=@file`.
    #[arg(required = true, value_name = "KEY=VALUE")]
    pub pairs: Vec<String>,
    /// Redeem this capability instead of requesting one.
    #[arg(long, value_name = "ID")]
    pub capability: Option<String>,
}

/// `secret list` and `secret delete`.
#[derive(Debug, Clone, Args)]
pub struct SecretPathArgs {
    /// The path.
    #[arg(default_value = "")]
    pub path: String,
    /// Redeem this capability instead of requesting one.
    #[arg(long, value_name = "ID")]
    pub capability: Option<String>,
}

/// `exec`.
#[derive(Debug, Clone, Args)]
pub struct ExecArgs {
    /// `ENV=secret:/PATH#field` (repeatable); the field may be left out when the secret has
    /// exactly one.
    #[arg(
        long = "secret",
        value_name = "ENV=secret:/PATH#FIELD",
        required = true
    )]
    pub secrets: Vec<String>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain across the log and its rotated files; names the first broken record
    /// (file, line, seq) and exits 1.
    Verify(AuditVerifyArgs),
    /// Show the latest records for people (or as JSON lines with --format json).
    Tail(AuditTailArgs),
}

/// `audit verify`.
#[derive(Debug, Clone, Args)]
pub struct AuditVerifyArgs {
    /// Log files, oldest first (default: the configured log and its rotated files; one FILE
    /// means that file and its rotated files).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The agent's seal file (default: audit.seal_file, else STATE_DIR/audit.seals).
    #[arg(long, value_name = "FILE")]
    pub seals: Option<PathBuf>,
    /// The agent's state directory: its signing key, and its seal file by default (default:
    /// the configured one).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The agent's public key, base64 as `agent status` shows it (default: from
    /// STATE_DIR/signing.key).
    #[arg(long, value_name = "KEY")]
    pub public_key: Option<String>,
    /// Check the hash chain alone, without the seals.
    #[arg(long)]
    pub no_seals: bool,
    /// Do not read seals from the journal.
    #[arg(long)]
    pub no_journal: bool,
}

/// `audit tail`.
#[derive(Debug, Clone, Args)]
pub struct AuditTailArgs {
    /// The log (default: the configured one).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// How many records to show first.
    #[arg(short = 'n', long, default_value_t = 10)]
    pub lines: usize,
    /// Keep showing records as they are written.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only records of this type (e.g. capability_request).
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
    /// Only records of this caller uid.
    #[arg(long)]
    pub uid: Option<u32>,
}

/// `policy …`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Lint policy files or directories offline, with the agent's own parser and checks (exit 1
    /// with file:line messages on any error).
    Check(PolicyCheckArgs),
    /// Show what the policy decides for a described caller: offline against a directory, or
    /// `--live` against the running agent's set (administrators only). Exit 0 allow, 2 deny.
    Test(PolicyTestArgs),
    /// Show the running agent's policy set: generation, files, rule counts, ignored files, last
    /// error (administrators only).
    List,
}

/// `policy check`.
#[derive(Debug, Clone, Args)]
pub struct PolicyCheckArgs {
    /// Files or directories (default: the configured policy directory).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// The mode whose fallback applies to an empty or missing directory (default: the
    /// configured mode).
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
}

/// `policy test`.
#[derive(Debug, Clone, Args)]
pub struct PolicyTestArgs {
    /// The resource, e.g. `secret:/db/primary`.
    #[arg(long)]
    pub resource: String,
    /// Actions, comma-separated or repeated.
    #[arg(
        long = "action",
        alias = "actions",
        value_name = "A[,B]",
        required = true,
        value_delimiter = ',',
        num_args = 1
    )]
    pub actions: Vec<String>,
    /// The caller's uid.
    #[arg(long, conflicts_with = "user")]
    pub uid: Option<u32>,
    /// The caller's user name.
    #[arg(long)]
    pub user: Option<String>,
    /// A group the caller is in (repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// The caller's systemd unit.
    #[arg(long)]
    pub unit: Option<String>,
    /// The caller's executable.
    #[arg(long)]
    pub exe: Option<PathBuf>,
    /// Policy directory to test offline (default: the configured one).
    #[arg(long, value_name = "DIR", conflicts_with = "live")]
    pub dir: Option<PathBuf>,
    /// Offline: the mode whose fallback applies when no rule is loaded (default: the
    /// configured mode).
    #[arg(long, value_enum, conflicts_with = "live")]
    pub mode: Option<Mode>,
    /// Ask the running agent, with the set it has in force.
    #[arg(long)]
    pub live: bool,
}

/// `credential …`
#[derive(Debug, Subcommand)]
pub enum CredentialCommand {
    /// Show the credential mappings the running agent has in force (administrators only).
    List,
    /// Show what a start of a unit would get for a credential: offline from the policy
    /// files, or `--live` from the running agent, which also asks the secrets backend
    /// (administrators only). Exit 0 it would be delivered, 2 refused.
    Test(CredentialTestArgs),
}

/// `credential test`.
#[derive(Debug, Clone, Args)]
pub struct CredentialTestArgs {
    /// The unit, e.g. `billing.service`.
    #[arg(long)]
    pub unit: String,
    /// The credential id, as in `LoadCredential=ID:…`.
    #[arg(long)]
    pub id: String,
    /// Policy directory to test offline (default: the configured one).
    #[arg(long, value_name = "DIR", conflicts_with = "live")]
    pub dir: Option<PathBuf>,
    /// Ask the running agent, with the set it has in force and its secrets backend.
    #[arg(long)]
    pub live: bool,
}

/// `agent …`
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Run the agent in the foreground (until SIGTERM/SIGINT or `agent stop`).
    Start(StartArgs),
    /// Ask the running agent to stop, and wait until it has (admin).
    Stop,
    /// Show the agent's status (`--verbose`: detailed, admin).
    Status,
    /// Reload the policy files (admin).
    Reload,
    /// Check the agent's health: exit 0 healthy, 1 unhealthy, 2 no agent answers.
    Health,
    /// Print the agent's metrics (Prometheus/OpenMetrics text).
    Metrics,
    /// Show the effective configuration, check it with `--validate`, or show the running
    /// agent's with `--running`.
    Config(ConfigArgs),
}

/// Flags that override the configuration file and environment.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigFlags {
    /// Operating mode (sets TTL, connection and log defaults).
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    /// Directory of policy files.
    #[arg(long, value_name = "DIR")]
    pub policy_dir: Option<PathBuf>,
    /// Directory for the agent's state (signing key).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Audit log file (JSON lines).
    #[arg(long, value_name = "FILE")]
    pub audit_file: Option<PathBuf>,
    /// Log level.
    #[arg(long, value_name = "LEVEL", value_parser = ["trace", "debug", "info", "warn", "error"])]
    pub log_level: Option<String>,
    /// systemd credentials socket to bind when systemd passes none named `credentials`
    /// (`credentials.socket_path`); an empty value binds none.
    #[arg(long, value_name = "PATH")]
    pub credentials_socket: Option<String>,
    /// A label for where the agent runs (`region`), e.g. us-west-2: shown in `agent status`
    /// and written into every audit record; decides nothing.
    #[arg(long, value_name = "REGION", value_parser = parse_region)]
    pub region: Option<String>,
}

/// Why `--enable-ha` (which upstream's deployment examples pass to `agent start`) is refused,
/// and what to do instead.
pub fn no_ha() -> String {
    format!("--enable-ha: {}", crate::config::NO_HA)
}

/// `--region`: a label per [`crate::config::check_region`].
pub fn parse_region(s: &str) -> Result<String, String> {
    crate::config::check_region(s).map(|()| s.to_string())
}

impl ConfigFlags {
    /// The configuration overrides these flags and an explicit `--socket-path` make.
    pub fn overrides(&self, socket_path: Option<PathBuf>) -> Overrides {
        Overrides {
            mode: self.mode,
            socket_path,
            log_level: self.log_level.clone(),
            state_dir: self.state_dir.clone(),
            policy_dir: self.policy_dir.clone(),
            audit_file: self.audit_file.clone(),
            credentials_socket: self.credentials_socket.as_ref().map(PathBuf::from),
            region: self.region.clone(),
        }
    }
}

/// `agent start`.
#[derive(Debug, Clone, Args)]
pub struct StartArgs {
    /// Configuration overrides.
    #[command(flatten)]
    pub flags: ConfigFlags,
    /// Where operational logs go.
    #[arg(long, value_enum, default_value_t = LogTarget::Auto)]
    pub log_target: LogTarget,
}

/// `agent config`.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// Only check the configuration: print `Configuration is valid` or the error.
    #[arg(long, conflicts_with = "running")]
    pub validate: bool,
    /// Show the running agent's effective configuration and where each value came from
    /// (administrators only).
    #[arg(long)]
    pub running: bool,
    /// Configuration overrides, as `agent start` would apply them.
    #[command(flatten)]
    pub flags: ConfigFlags,
}

/// `capability …`
#[derive(Debug, Subcommand)]
pub enum CapabilityCommand {
    /// Ask the agent for a capability (exit 0 granted, 2 denied, 1 error).
    Request(RequestArgs),
    /// Check a capability, using it once (exit 0 valid, 2 invalid, 1 error).
    Validate(ValidateArgs),
    /// Revoke a capability.
    Revoke(RevokeArgs),
    /// List capabilities (yours; an admin sees all).
    List(ListArgs),
    /// Show one capability (yours; an admin sees any), without using it.
    Show(ShowArgs),
    /// Check that the agent answers, and show counts.
    Status,
}

/// `capability request`.
#[derive(Debug, Clone, Args)]
pub struct RequestArgs {
    /// The resource, e.g. `secret:/db/primary`.
    #[arg(long)]
    pub resource: String,
    /// Actions wanted; comma-separated and/or repeated (`--action read,write --action delete`).
    #[arg(
        long = "action",
        visible_alias = "actions",
        value_name = "ACTION",
        required = true,
        value_delimiter = ',',
        num_args = 1
    )]
    pub actions: Vec<String>,
    /// Lifetime: seconds (300) or a duration (5m, 1h30m, 90s) [default: the agent's, per
    /// mode]; a grant shorter than asked is noted on stderr with the limit that shortened it.
    #[arg(
        long,
        value_name = "TTL",
        value_parser = super::ttl::parse_ttl,
        allow_hyphen_values = true
    )]
    pub ttl: Option<i64>,
    /// Number of uses allowed [default: the agent's].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(0..))]
    pub max_uses: Option<i64>,
    /// A label for the requester, recorded with the capability (not trusted for decisions).
    #[arg(long, value_name = "LABEL")]
    pub identity: Option<String>,
    /// Why the capability is wanted (recorded).
    #[arg(long)]
    pub purpose: Option<String>,
    /// Restrictions as JSON, e.g. `{"ipAddresses":["10.0.0.0/8"]}`.
    #[arg(long, value_name = "JSON")]
    pub constraints: Option<String>,
    /// Free-form context as JSON (recorded).
    #[arg(long, value_name = "JSON")]
    pub context: Option<String>,
    /// Also write the agent's JSON response to FILE (mode 0600) when granted.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `capability validate`.
#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// The capability id (`cap_…`).
    pub id: String,
    /// Facts for the capability's constraints as JSON, e.g. `{"ipAddress":"10.1.2.3"}`.
    #[arg(long, value_name = "JSON")]
    pub context: Option<String>,
}

/// `capability show`.
#[derive(Debug, Clone, Args)]
pub struct ShowArgs {
    /// The capability id (`cap_…`).
    pub id: String,
}

/// `capability revoke`.
#[derive(Debug, Clone, Args)]
pub struct RevokeArgs {
    /// The capability id (`cap_…`).
    pub id: String,
    /// Why (recorded in the audit log).
    #[arg(long)]
    pub reason: Option<String>,
}

/// A capability's status, for `capability list --status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFilter {
    /// Neither revoked nor expired.
    Active,
    /// Revoked.
    Revoked,
    /// Past its expiry.
    Expired,
}

impl StatusFilter {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusFilter::Active => "active",
            StatusFilter::Revoked => "revoked",
            StatusFilter::Expired => "expired",
        }
    }
}

/// A capability's type, for `capability list --type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindFilter {
    /// Read.
    Read,
    /// Write.
    Write,
    /// Delete.
    Delete,
    /// Execute.
    Execute,
    /// Admin.
    Admin,
}

impl KindFilter {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            KindFilter::Read => "read",
            KindFilter::Write => "write",
            KindFilter::Delete => "delete",
            KindFilter::Execute => "execute",
            KindFilter::Admin => "admin",
        }
    }
}

/// What `capability list --sort-by` orders by (the wire's `sortBy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortBy {
    /// When it was issued.
    #[value(name = "issued_at", alias = "issued-at")]
    IssuedAt,
    /// When it expires.
    #[value(name = "expires_at", alias = "expires-at")]
    ExpiresAt,
    /// Its id.
    Id,
    /// Its type.
    Type,
    /// Its resource.
    Resource,
    /// Its holder's identity label.
    Identity,
}

impl SortBy {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SortBy::IssuedAt => "issued_at",
            SortBy::ExpiresAt => "expires_at",
            SortBy::Id => "id",
            SortBy::Type => "type",
            SortBy::Resource => "resource",
            SortBy::Identity => "identity",
        }
    }
}

/// `capability list --sort-order` (the wire's `sortOrder`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortOrder {
    /// Smallest, earliest first.
    Asc,
    /// Largest, latest first.
    Desc,
}

impl SortOrder {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SortOrder::Asc => "asc",
            SortOrder::Desc => "desc",
        }
    }
}

/// `capability list`.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Only capabilities with this status.
    #[arg(long, value_enum)]
    pub status: Option<StatusFilter>,
    /// Only capabilities for this resource.
    #[arg(long)]
    pub resource: Option<String>,
    /// Only capabilities with this identity label.
    #[arg(long, value_name = "LABEL")]
    pub identity: Option<String>,
    /// Only capabilities of this type.
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub kind: Option<KindFilter>,
    /// Only capabilities from this issuer.
    #[arg(long)]
    pub issuer: Option<String>,
    /// Only capabilities held by this uid (admin).
    #[arg(long)]
    pub uid: Option<u32>,
    /// At most this many.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Skip this many first.
    #[arg(long, value_name = "N")]
    pub offset: Option<usize>,
    /// Order by this field (without it: newest first).
    #[arg(long, value_enum, value_name = "FIELD")]
    pub sort_by: Option<SortBy>,
    /// The order: asc (the default with --sort-by) or desc.
    #[arg(long, value_enum, value_name = "ORDER")]
    pub sort_order: Option<SortOrder>,
    /// Leave out the header line of the table (for scripts that read the columns).
    #[arg(long)]
    pub no_headers: bool,
}

/// Whether a command line asks for high availability (`--enable-ha`, before any `--`): checked
/// before clap parses it, so that the answer is [`no_ha`] rather than clap's "unexpected
/// argument" (with its "similar argument: --version"), and without a flag that the completion
/// scripts would offer.
pub fn asks_for_ha(args: impl IntoIterator<Item = std::ffi::OsString>) -> bool {
    args.into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .take_while(|a| a != "--")
        .any(|a| a == "--enable-ha" || a.starts_with("--enable-ha="))
}

/// The refusal of `--enable-ha` as a clap error of `command` (printed and exited like any
/// refused command line).
pub fn ha_refusal(mut command: clap::Command) -> clap::Error {
    command.build();
    command.error(clap::error::ErrorKind::ArgumentConflict, no_ha())
}

/// Reports a command line clap refused: `--help`/`--version` go to stdout and exit 0; anything
/// else is printed as `Error: …` on stderr and exits 1 (2 is reserved for a "no" from the agent),
/// and, when the command line asked for `--format json|yaml`, also as `{"error": …, "code":
/// "USAGE"}` on stdout (the first line of clap's message).
pub fn report_parse_error(e: &clap::Error) -> u8 {
    if e.exit_code() == 0 {
        let _ = e.print();
        return 0;
    }
    let text = parse_error_text(e);
    let format = requested_format(std::env::args_os().skip(1));
    if format != Format::Table {
        let payload = super::error::error_payload(
            &parse_error_summary(&text),
            super::error::parse_error_code(),
        );
        print!("{}", super::output::render(format, &payload, String::new));
    }
    eprint!("{text}");
    1
}

/// A refused command line's message on one line, for `{"error": …}`: clap's text up to the
/// usage, without the `Error: ` prefix, its lines joined.
pub fn parse_error_summary(text: &str) -> String {
    let text = text.strip_prefix("Error: ").unwrap_or(text);
    let head = text.split("\n\n").next().unwrap_or_default();
    head.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `--format` a command line asks for, read without clap (which refused it): the last
/// `--format X` or `--format=X` before any `--`; the table form when none or an unknown one.
pub fn requested_format(args: impl IntoIterator<Item = std::ffi::OsString>) -> Format {
    let mut format = Format::Table;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let arg = arg.to_string_lossy().into_owned();
        let value = match arg.as_str() {
            "--" => break,
            "--format" => args.next().map(|v| v.to_string_lossy().into_owned()),
            other => other.strip_prefix("--format=").map(str::to_string),
        };
        if let Some(v) = value {
            format = Format::from_str(&v, true).unwrap_or(Format::Table);
        }
    }
    format
}

/// The text of a refused command line, starting with `Error: `.
pub fn parse_error_text(e: &clap::Error) -> String {
    let text = e.render().to_string();
    if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        return format!("Error: a command is required\n\n{text}");
    }
    match text.strip_prefix("error: ") {
        Some(rest) => format!("Error: {rest}"),
        None => format!("Error: {text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("vault").chain(args.iter().copied()))
    }

    #[test]
    fn the_format_of_a_refused_command_line() {
        let f = |args: &[&str]| requested_format(args.iter().map(std::ffi::OsString::from));
        assert_eq!(
            f(&["capability", "request", "--format", "json"]),
            Format::Json
        );
        assert_eq!(f(&["--format=yaml", "agent", "x"]), Format::Yaml);
        assert_eq!(f(&["agent", "status"]), Format::Table);
        assert_eq!(f(&["--format", "xml"]), Format::Table);
        assert_eq!(f(&["exec", "--", "--format", "json"]), Format::Table);
    }

    #[test]
    fn a_refused_command_line_in_one_line() {
        let e = parse(&["capability", "request", "--format", "json"]).unwrap_err();
        let summary = parse_error_summary(&parse_error_text(&e));
        assert!(
            summary.starts_with("the following required arguments were not provided:")
                && summary.contains("--resource <RESOURCE>")
                && !summary.contains('\n')
                && !summary.contains("Usage"),
            "{summary}"
        );
    }

    #[test]
    fn enable_ha_is_found_before_any_double_dash() {
        let f = |args: &[&str]| asks_for_ha(args.iter().map(std::ffi::OsString::from));
        assert!(f(&["agent", "start", "--mode", "standard", "--enable-ha"]));
        assert!(f(&["agent", "start", "--enable-ha=true"]));
        assert!(!f(&["agent", "start"]));
        assert!(!f(&[
            "exec",
            "--secret",
            "A=secret:/a#b",
            "--",
            "tool",
            "--enable-ha"
        ]));
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn actions_split_on_commas_and_repeat() {
        let cli = parse(&[
            "capability",
            "request",
            "--resource",
            "secret:/x",
            "--action",
            "read,write",
            "--action",
            "delete",
        ])
        .unwrap();
        let Command::Capability(CapabilityCommand::Request(r)) = cli.command else {
            panic!()
        };
        assert_eq!(r.actions, vec!["read", "write", "delete"]);
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let cli = parse(&[
            "capability",
            "request",
            "--resource",
            "r",
            "--action",
            "read",
            "--format",
            "json",
            "--socket-path",
            "/x",
            "-v",
        ])
        .unwrap();
        assert_eq!(cli.format, Format::Json);
        assert_eq!(cli.socket_path, Some(PathBuf::from("/x")));
        assert!(cli.verbose);

        let cli = parse(&["--format", "yaml", "agent", "status", "--verbose"]).unwrap();
        assert_eq!(cli.format, Format::Yaml);
        assert!(cli.verbose);
        assert!(matches!(cli.command, Command::Agent(AgentCommand::Status)));
    }

    #[test]
    fn start_takes_the_upstream_flags() {
        let cli = parse(&[
            "agent",
            "start",
            "--mode",
            "development",
            "--socket-path",
            "/tmp/x/agent.sock",
            "--config",
            "/etc/a.yaml",
            "--log-target",
            "stderr",
            "--log-level",
            "debug",
        ])
        .unwrap();
        assert_eq!(cli.config, Some(PathBuf::from("/etc/a.yaml")));
        let Command::Agent(AgentCommand::Start(s)) = cli.command else {
            panic!()
        };
        assert_eq!(s.flags.mode, Some(Mode::Development));
        assert_eq!(s.log_target, LogTarget::Stderr);
        assert_eq!(s.flags.log_level.as_deref(), Some("debug"));
        assert!(parse(&["agent", "start", "--log-level", "loud"]).is_err());
    }

    #[test]
    fn list_filters_parse() {
        let cli = parse(&[
            "capability",
            "list",
            "--status",
            "active",
            "--type",
            "write",
            "--limit",
            "5",
        ])
        .unwrap();
        let Command::Capability(CapabilityCommand::List(l)) = cli.command else {
            panic!()
        };
        assert_eq!(l.status, Some(StatusFilter::Active));
        assert_eq!(l.kind.map(KindFilter::as_str), Some("write"));
        assert_eq!(l.limit, Some(5));
        assert!(parse(&["capability", "list", "--status", "gone"]).is_err());
    }

    #[test]
    fn bad_command_lines_exit_1_with_error_prefix_and_help_exits_0() {
        let e = parse(&["capability", "request", "--resource", "r"]).unwrap_err();
        assert!(
            parse_error_text(&e).starts_with("Error: "),
            "{}",
            parse_error_text(&e)
        );
        assert_ne!(e.exit_code(), 0);
        assert!(
            parse(&[
                "capability",
                "request",
                "--resource",
                "r",
                "--action",
                "read",
                "--ttl",
                "-5"
            ])
            .is_err()
        );
        assert_eq!(parse(&["--help"]).unwrap_err().exit_code(), 0);
        let e = parse(&["capability"]).unwrap_err();
        assert_ne!(e.exit_code(), 0);
        assert!(parse_error_text(&e).starts_with("Error: a command is required\n\n"));
    }
}
