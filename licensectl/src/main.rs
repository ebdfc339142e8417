//! licensectl: the vendor's and the operator's side of license-gate. It
//! makes signing keys, mints licenses, publishes keys and revocation lists,
//! inspects tokens, and asks the filter's own core (the `license-gate`
//! crate, natively) what it would do with a request or a configuration.

mod check;
mod gate;
mod inspect;
mod keys;
mod mint;
mod quota;
mod source;
mod times;

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use jsonwebtoken::Algorithm;
use serde_json::Value;

use crate::keys::{Jwk, Jwks, PublicKey, SigningKey, alg_name};

#[derive(Parser)]
#[command(
    name = "licensectl",
    version,
    about = "Keys, licenses and revocation lists for license-gate, and the filter's own verdict on a request",
    after_help = "\
The vendor loop (the gateway trusts keys/es-2026.jwks.json: in keys.jwks, or served for keys.remote):
  licensectl keygen --alg ES256 --kid es-2026 --out keys
  licensectl mint --key keys/es-2026.key.pem --kid es-2026 --iss https://licenses.example.com \\
      --aud gateway.example.com --id lic-0001 --tenant acme --plan enterprise --expires-in 365d \\
      --claims-names istio/wasmplugin.yaml > license.jwt
  licensectl check --config istio/wasmplugin.yaml --jwks keys/es-2026.jwks.json \\
      --host api.example.com --path /api/reports < license.jwt
  curl -H \"Authorization: Bearer $(cat license.jwt)\" https://api.example.com/api/reports

Exit status: 0 done (check: the request goes upstream), 1 check: denied, config check or quota: refused,
2 any error (usage, unreadable file, bad input). Errors are one line on stderr."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make a signing key: KID.key.pem (private, PKCS#8, mode 0600), KID.pub.pem, KID.jwks.json
    #[command(after_help = "\
Example:
  licensectl keygen --alg ES256 --kid es-2026 --out keys
  licensectl keygen --alg PS256 --bits 2048 --kid ps1 --out keys

Never overwrites a file. KID.jwks.json (public, with kid, alg and use: sig) is what keys.jwks
or a keys.remote key server takes; KID.pub.pem fits keys.pem.")]
    Keygen(KeygenArgs),
    /// Mint a license: one compact JWT on stdout
    #[command(after_help = "\
Example:
  licensectl mint --key keys/es1.key.pem --kid es1 --iss https://licenses.example.com \\
      --aud gateway.example.com --id lic-0001 --tenant acme --plan enterprise \\
      --features reports,audit --deployments eu-prod-1 --expires-in 365d > license.jwt

TIME is RFC 3339 (2027-01-31T00:00:00Z) or unix seconds; DURATION is like 90d, 12h, 30m or 1h 30m.
iat is now, nbf is --not-before or now, and exp is nbf + --expires-in, --expires-at, or absent
with --no-expiry. The algorithm comes from the key: ES256 for P-256, ES384 for P-384, EdDSA for
Ed25519; an RSA key signs with --alg, else with the alg keygen recorded in KID.jwks.json beside
the key file, else RS256. --claims-names takes the gateway's configuration (plugin JSON,
WasmPlugin or Envoy YAML) and writes features, plan, tenant, the license id and the deployments
under the claim names it reads. The token is verified with license-gate's own verifier before it
is printed.")]
    Mint(Box<MintArgs>),
    /// Build a JWKS (public keys only) from key files, for keys.jwks or a keys.remote key server
    #[command(after_help = "\
Example:
  licensectl jwks keys/es1.pub.pem keys/rs1.key.pem > jwks.json
  licensectl jwks rs-2026=keys/new.pem keys/old.jwks.json > jwks.json

FILE is a PEM key, public or private (only its public half is written), or a JWKS/JWK JSON file
(.json; its public members are copied). The kid of a PEM key is its file name without .pem and
then without .key or .pub (keys/rs1.key.pem is rs1); KID=FILE gives another (the part before the
first '=' is the kid unless it holds a '/': write ./a=b.pem for a file named a=b.pem). The alg of
an RSA key is --alg, else the one keygen recorded in KID.jwks.json beside it, else RS256. Every key
is checked as license-gate compiles keys.")]
    Jwks(JwksArgs),
    /// Sign a revocation list (typ license-revocations+jwt) for revocation.remote
    #[command(after_help = "\
Example:
  licensectl revoke --key keys/es1.key.pem --kid es1 --iss https://licenses.example.com \\
      --id lic-0007 --id lic-0009:2027-01-31T00:00:00Z --next-update 1h > revocations.jwt

ID:EXP gives the license's own expiry (RFC 3339 or unix seconds): the gateway drops the entry once
the license has expired anyway. EXP starts after the first colon that a TIME follows; an id that
holds colons and no such TIME is taken whole, and a final colon (urn:lic:7:) marks an id with no
EXP whose last part is digits. An EXP in the past is refused (it would revoke nothing). The list is issued now (iat); next_update is now +
--next-update (default 1d). Sign it with one of the gateway's verification keys and an issuer it
trusts. The list is read back with license-gate's own parser before it is printed.")]
    Revoke(RevokeArgs),
    /// Show a token's header and claims, with times in RFC 3339 and relative to now (no verification)
    #[command(after_help = "\
Example:
  licensectl inspect \"$(cat license.jwt)\"
  licensectl inspect < license.jwt
  licensectl inspect --json - < license.jwt | jq .claims

Nothing is verified: use check for the gateway's verdict. Problems the gateway refuses a token for
before looking at any key (a member named twice, a time claim that is not a NumericDate) are
listed as warnings.")]
    Inspect(InspectArgs),
    /// Decide a request with the filter's own core: outcome, reason, status, features, upstream headers
    #[command(after_help = "\
Example:
  licensectl check --config istio/wasmplugin.yaml --path /api/reports --host api.example.com \\
      --jwks jwks.json --revocations revocations.jwt < license.jwt
  licensectl check --config plugin.json --method POST --path /admin --node-id eu-prod-1 --json TOKEN

The token travels in the first token source of the configuration (authorization: Bearer by
default); --no-token sends none. --jwks and --revocations are what keys.remote and
revocation.remote would have fetched; without them the request is decided as before the first
fetch. --node-id, --node-cluster and --node-metadata are Envoy's node, for binding.identity.
Exit status: 0 when the request goes upstream (allow, grace, open, and dry_run), 1 when it is
denied, 2 on a usage or configuration error.")]
    Check(Box<CheckArgs>),
    /// Rate-limiter configuration for the plans' quotas: Envoy's local or global limiter, or Istio
    #[command(after_help = "\
Example:
  licensectl quota --config plugin.json --tenants 5000 > quota-filter.yaml
  licensectl quota --config istio/wasmplugin.yaml --format istio | kubectl apply -f -
  licensectl quota --config plugin.json --format global > ratelimit-service.yaml
  licensectl quota --config plugin.json --format global-filter --service-cluster ratelimit

The plans' quotas ({\"quota\": {\"requests_per_second\": 50, \"burst\": 100}}, inherited like
features) become one token bucket per tenant of each plan, keyed on the x-license-plan and
x-license-tenant headers license-gate sets (it removes client copies on every route).
local: an envoy.filters.http.local_ratelimit http_filters item, to put after the license-gate Wasm
filter and before the router; its buckets are per Envoy process (N replicas: N times the rate).
global: the rate-limit service's configuration (one count across replicas; fixed one-second
windows, so no burst); global-filter: Envoy's envoy.filters.http.ratelimit filter for it.
istio: an EnvoyFilter inserting the local limiter before the router of the gateway the WasmPlugin
selects. Requests with no plan quota (open routes, planless licenses without default_plan, plans
without a quota) share the default bucket (--default-requests-per-second, --default-burst).
Refused (exit 1, one line): a configuration license-gate refuses, one with no quota, and a
manifest where a limiter on those headers would run before the gate or the gate fails open.")]
    Quota(QuotaArgs),
    /// Configuration commands
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Clone, Copy, ValueEnum)]
enum QuotaFormat {
    Local,
    Global,
    GlobalFilter,
    Istio,
}

#[derive(Args)]
struct QuotaArgs {
    /// The plugin configuration JSON, or a WasmPlugin / Envoy YAML holding it
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    #[arg(long, value_enum, default_value = "local")]
    format: QuotaFormat,
    /// Tenants whose buckets the local limiter keeps, per plan (max_dynamic_descriptors)
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    tenants: u32,
    /// Cap the default bucket (requests with no tenant bucket, open routes included) at R a second;
    /// default: no cap
    #[arg(long, value_name = "R", requires = "default_burst", value_parser = clap::value_parser!(u32).range(1..=1_000_000_000))]
    default_requests_per_second: Option<u32>,
    /// The default bucket's size, with --default-requests-per-second
    #[arg(long, value_name = "B", requires = "default_requests_per_second", value_parser = clap::value_parser!(u32).range(1..=1_000_000_000))]
    default_burst: Option<u32>,
    /// The rate-limit service's Envoy cluster (global-filter)
    #[arg(long, value_name = "NAME", default_value = "ratelimit", value_parser = plain_name)]
    service_cluster: String,
    /// The EnvoyFilter's namespace (istio; default: the WasmPlugin's, else istio-system)
    #[arg(long, value_name = "NS", value_parser = plain_name)]
    namespace: Option<String>,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Whether the filter accepts a configuration: "ok", or the line on_configure logs
    #[command(after_help = "\
Example:
  licensectl config check plugin.json
  licensectl config check istio/wasmplugin.yaml

FILE is the plugin configuration JSON, a WasmPlugin (spec.pluginConfig) or an Envoy YAML holding
the Wasm filter (its configuration StringValue). Prints \"ok\" and exits 0 when license-gate
accepts it; else prints the one line on_configure logs and exits 1
(license-gate: config: rules[2].require.all: ...). Exit status 2: the file cannot be read.")]
    Check(ConfigCheckArgs),
}

/// The signature algorithms license-gate verifies with.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Alg {
    #[value(name = "RS256")]
    Rs256,
    #[value(name = "RS384")]
    Rs384,
    #[value(name = "RS512")]
    Rs512,
    #[value(name = "PS256")]
    Ps256,
    #[value(name = "PS384")]
    Ps384,
    #[value(name = "PS512")]
    Ps512,
    #[value(name = "ES256")]
    Es256,
    #[value(name = "ES384")]
    Es384,
    #[value(name = "EdDSA")]
    EdDsa,
}

impl Alg {
    fn algorithm(self) -> Algorithm {
        match self {
            Alg::Rs256 => Algorithm::RS256,
            Alg::Rs384 => Algorithm::RS384,
            Alg::Rs512 => Algorithm::RS512,
            Alg::Ps256 => Algorithm::PS256,
            Alg::Ps384 => Algorithm::PS384,
            Alg::Ps512 => Algorithm::PS512,
            Alg::Es256 => Algorithm::ES256,
            Alg::Es384 => Algorithm::ES384,
            Alg::EdDsa => Algorithm::EdDSA,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Bits {
    #[value(name = "2048")]
    B2048,
    #[value(name = "3072")]
    B3072,
    #[value(name = "4096")]
    B4096,
}

#[derive(Args)]
struct KeygenArgs {
    /// The algorithm the key signs for
    #[arg(long, value_enum, ignore_case = true)]
    alg: Alg,
    /// RSA modulus size (RS* and PS* only)
    #[arg(long, value_enum)]
    bits: Option<Bits>,
    /// The key id; also the files' name
    #[arg(long)]
    kid: String,
    /// The directory to write to (created if missing)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

#[derive(Args)]
#[command(group(ArgGroup::new("expiry").required(true).args(["expires_in", "expires_at", "no_expiry"])))]
struct MintArgs {
    /// The private key file (PEM: PKCS#8, or PKCS#1 / SEC1)
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The kid put in the token's header: the gateway picks its key by it
    #[arg(long)]
    kid: String,
    /// For an RSA key: RS256, RS384, RS512, PS256, PS384 or PS512
    #[arg(long, value_enum, ignore_case = true)]
    alg: Option<Alg>,
    /// The issuer (iss): one of the gateway's issuers
    #[arg(long, value_name = "ISS")]
    iss: String,
    /// An audience (aud); repeat for several
    #[arg(long, value_name = "AUD")]
    aud: Vec<String>,
    /// The license id (claims.license_id, default jti): what revoke names
    #[arg(long, value_name = "ID")]
    id: Option<String>,
    /// The subject (sub)
    #[arg(long, value_name = "SUB")]
    sub: Option<String>,
    /// Features granted, comma-separated (claims.features)
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    features: Option<Vec<String>>,
    /// The plan (claims.plan): the gateway adds the plan's features, inherited ones too
    #[arg(long, value_name = "PLAN")]
    plan: Option<String>,
    /// The tenant (claims.tenant)
    #[arg(long, value_name = "T")]
    tenant: Option<String>,
    /// Deployments the license is bound to, comma-separated (binding.claim): exact, * or *.suffix
    #[arg(long, value_name = "D1,D2", value_delimiter = ',')]
    deployments: Option<Vec<String>>,
    /// Valid from (nbf); default now
    #[arg(long, value_name = "TIME", value_parser = times::parse_time)]
    not_before: Option<u64>,
    /// Valid for this long after nbf (exp = nbf + DURATION)
    #[arg(long, value_name = "DURATION", value_parser = times::parse_duration)]
    expires_in: Option<u64>,
    /// Valid until (exp)
    #[arg(long, value_name = "TIME", value_parser = times::parse_time)]
    expires_at: Option<u64>,
    /// No exp: a perpetual license
    #[arg(long)]
    no_expiry: bool,
    /// Any other claim, its value in JSON (tier='"gold"', seats=25); repeatable
    #[arg(long, value_name = "NAME=JSON")]
    claim: Vec<String>,
    /// The gateway's configuration, for its claim names (claims.*, binding.claim)
    #[arg(long, value_name = "FILE")]
    claims_names: Option<PathBuf>,
}

#[derive(Args)]
struct JwksArgs {
    /// Key files: PEM (public or private) or JWKS/JWK JSON; KID=FILE names the kid
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
    /// The alg of the RSA keys among the files
    #[arg(long, value_enum, ignore_case = true)]
    alg: Option<Alg>,
}

#[derive(Args)]
struct RevokeArgs {
    /// The private key file that signs the list (one of the gateway's keys)
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The kid put in the list's header
    #[arg(long)]
    kid: String,
    /// For an RSA key: RS256, RS384, RS512, PS256, PS384 or PS512
    #[arg(long, value_enum, ignore_case = true)]
    alg: Option<Alg>,
    /// The issuer (iss): one the gateway trusts
    #[arg(long, value_name = "ISS")]
    iss: String,
    /// A revoked license id, with its expiry if known; repeatable
    #[arg(long = "id", value_name = "ID[:EXP]", required = true)]
    ids: Vec<String>,
    /// When the next list is due (next_update = now + DURATION)
    #[arg(long, value_name = "DURATION", value_parser = times::parse_duration, default_value = "1d")]
    next_update: u64,
}

#[derive(Args)]
struct InspectArgs {
    /// The token; - or nothing reads it from stdin
    #[arg(value_name = "TOKEN|-")]
    token: Option<String>,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CheckArgs {
    /// The plugin configuration JSON, or a WasmPlugin / Envoy YAML holding it
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    #[arg(long, default_value = "GET")]
    method: String,
    /// :path, query string included
    #[arg(long, default_value = "/")]
    path: String,
    /// :authority
    #[arg(long, value_name = "HOST", default_value = "localhost")]
    host: String,
    /// The gateway's clock for this request; default now
    #[arg(long, value_name = "TIME", value_parser = times::parse_time)]
    at: Option<u64>,
    /// Envoy's node id (binding.identity node_id)
    #[arg(long, value_name = "ID")]
    node_id: Option<String>,
    /// Envoy's node cluster (binding.identity node_cluster)
    #[arg(long, value_name = "C")]
    node_cluster: Option<String>,
    /// A node metadata entry (binding.identity {"metadata": KEY}); repeatable
    #[arg(long, value_name = "KEY=VALUE")]
    node_metadata: Vec<String>,
    /// A request header; repeatable
    #[arg(long, value_name = "NAME:VALUE")]
    header: Vec<String>,
    /// The JWKS keys.remote would have fetched
    #[arg(long, value_name = "FILE")]
    jwks: Option<PathBuf>,
    /// The revocation list revocation.remote would have fetched
    #[arg(long, value_name = "FILE")]
    revocations: Option<PathBuf>,
    /// Send no token (and read none from stdin)
    #[arg(long, conflicts_with = "token")]
    no_token: bool,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
    /// The token; - or nothing reads it from stdin
    #[arg(value_name = "TOKEN|-")]
    token: Option<String>,
}

#[derive(Args)]
struct ConfigCheckArgs {
    /// The plugin configuration JSON, or a WasmPlugin / Envoy YAML holding it
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    let result = match cli.command {
        Command::Keygen(args) => keygen(&args),
        Command::Mint(args) => mint(&args),
        Command::Jwks(args) => jwks(&args),
        Command::Revoke(args) => revoke(&args),
        Command::Inspect(args) => inspect(&args),
        Command::Check(args) => check(&args),
        Command::Quota(args) => quota(&args),
        Command::Config(ConfigCommand::Check(args)) => config_check(&args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("licensectl: {}", one_line(&message));
            ExitCode::from(2)
        }
    }
}

/// clap's own output for --help and --version; every other parse error on
/// one line, exit status 2.
fn usage_error(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = error.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            ExitCode::from(2)
        }
        _ => {
            let text = error.render().to_string();
            // The message up to the usage block, without clap's "error: ".
            let message: Vec<&str> = text
                .lines()
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            let message = message.join(" ").replace(" tip: ", "; tip: ");
            let message = message.strip_prefix("error: ").unwrap_or(&message);
            eprintln!("licensectl: {message} (see --help)");
            ExitCode::from(2)
        }
    }
}

fn one_line(message: &str) -> String {
    message.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

fn warn(message: &str) {
    eprintln!("licensectl: warning: {}", one_line(message));
}

fn print(text: &str) -> Result<ExitCode, String> {
    let mut out = std::io::stdout().lock();
    // A closed pipe (| head) is not an error worth a message.
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    Ok(ExitCode::SUCCESS)
}

/// The key's file name: letters, digits, '.', '_' and '-'.
fn check_kid_file_name(kid: &str) -> Result<(), String> {
    let fine = !kid.is_empty()
        && !kid.starts_with('.')
        && kid.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if fine {
        Ok(())
    } else {
        Err(format!(
            "--kid \"{kid}\": keygen names files after the kid, so it takes letters, digits, '.', '_' and '-' (not first '.')"
        ))
    }
}

fn keygen(args: &KeygenArgs) -> Result<ExitCode, String> {
    let alg = args.alg.algorithm();
    check_kid_file_name(&args.kid)?;
    let rsa = keys::RSA_ALGORITHMS.contains(&alg);
    let bits = match (args.bits, rsa) {
        (Some(_), false) => return Err(format!("--bits is for RSA keys; {} keys have a fixed size", alg_name(alg))),
        (Some(Bits::B2048), true) => 2048,
        (Some(Bits::B4096), true) => 4096,
        _ => 3072,
    };
    let paths = ["key.pem", "pub.pem", "jwks.json"].map(|ext| args.out.join(format!("{}.{ext}", args.kid)));
    if let Some(existing) = paths.iter().find(|p| p.exists()) {
        return Err(format!("{} exists: keygen never overwrites a file", existing.display()));
    }
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create {}: {}", args.out.display(), keys::io_reason(&e)))?;
    let key = SigningKey::generate(alg, bits)?;
    let public = key.public();
    let jwks = Jwks { keys: vec![public.jwk(&args.kid, alg)] };
    let [private_path, public_path, jwks_path] = &paths;
    write_new(private_path, key.to_pkcs8_pem()?.as_bytes(), 0o600)?;
    write_new(public_path, public.to_pem()?.as_bytes(), 0o644)?;
    write_new(jwks_path, jwks.to_json()?.as_bytes(), 0o644)?;
    print(&format!(
        "{}  private key ({}, {}): keep it secret\n{}  public key (keys.pem)\n{}  public JWKS (keys.jwks, keys.remote)\n",
        private_path.display(),
        alg_name(alg),
        public.describe().trim_start_matches("an ").trim_start_matches("a "),
        public_path.display(),
        jwks_path.display()
    ))
}

/// Writes a file that must not exist yet, with this mode.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| format!("cannot create {}: {}", path.display(), keys::io_reason(&e)))?;
    file.write_all(contents).map_err(|e| format!("cannot write {}: {}", path.display(), keys::io_reason(&e)))
}

fn mint(args: &MintArgs) -> Result<ExitCode, String> {
    let key = SigningKey::read(&args.key)?;
    let alg = keys::signing_alg(&key.public(), args.alg.map(Alg::algorithm), &args.key)?;
    let gateway = args
        .claims_names
        .as_deref()
        .map(|path| {
            let config = source::load(path)?;
            gate::gateway(&config).map_err(|e| format!("--claims-names {}: {e}", path.display()))
        })
        .transpose()?;
    let names = gateway.as_ref().map(|g| g.names.clone()).unwrap_or_default();
    let expiry = match (args.expires_in, args.expires_at, args.no_expiry) {
        (Some(seconds), _, _) => mint::Expiry::After(seconds),
        (_, Some(at), _) => mint::Expiry::At(at),
        _ => mint::Expiry::Never,
    };
    let license = mint::License {
        iss: args.iss.clone(),
        aud: args.aud.clone(),
        id: args.id.clone(),
        sub: args.sub.clone(),
        features: args.features.as_ref().map(|f| f.iter().filter(|s| !s.is_empty()).cloned().collect()),
        plan: args.plan.clone(),
        tenant: args.tenant.clone(),
        deployments: args.deployments.as_ref().map(|d| d.iter().filter(|s| !s.is_empty()).cloned().collect()),
        not_before: args.not_before,
        expiry: Some(expiry),
        extra: args.claim.clone(),
    };
    let now = times::now();
    let claims = mint::claims(&license, &names, now)?;
    let token = mint::sign_license(&key, alg, &args.kid, &claims, &names)?;
    if let Some(gateway) = &gateway {
        for warning in gateway_warnings(gateway, &license, token.len()) {
            warn(&warning);
        }
    }
    if let Some(exp) = claims.get("exp").and_then(Value::as_u64)
        && exp <= now
    {
        warn(&format!("the license {} ({})", times::expiry(exp, now), times::rfc3339(exp)));
    }
    print(&format!("{token}\n"))
}

/// What makes a gateway of this configuration refuse or ignore a part of the license.
fn gateway_warnings(gateway: &gate::Gateway, license: &mint::License, token_len: usize) -> Vec<String> {
    let mut warnings = Vec::new();
    if !gateway.issuers.contains(&license.iss) {
        warnings.push(format!(
            "--iss {} is not one of the configuration's issuers ({}): the gateway refuses it (issuer_mismatch)",
            license.iss,
            gateway.issuers.join(", ")
        ));
    }
    if !gateway.audiences.is_empty() && !license.aud.iter().any(|a| gateway.audiences.contains(a)) {
        warnings.push(format!(
            "no --aud names one of the configuration's audiences ({}): the gateway refuses it (audience_mismatch)",
            gateway.audiences.join(", ")
        ));
    }
    if let Some(plan) = &license.plan
        && !gateway.plans.contains(plan)
    {
        warnings.push(format!("--plan {plan} is not a plan of the configuration: it grants no feature there"));
    }
    if license.deployments.is_some() && !gateway.names.binding {
        warnings.push("the configuration has no binding: its gateway does not look at --deployments".into());
    }
    if token_len > gateway.max_token_bytes {
        warnings.push(format!(
            "the token is {token_len} bytes, over the configuration's max_token_bytes ({}): the gateway refuses it (malformed)",
            gateway.max_token_bytes
        ));
    }
    warnings
}

fn jwks(args: &JwksArgs) -> Result<ExitCode, String> {
    let requested = args.alg.map(Alg::algorithm);
    let mut document = Jwks { keys: Vec::new() };
    let mut sources: Vec<String> = Vec::new();
    let mut rsa_seen = false;
    for arg in &args.files {
        let (kid, file) = match arg.split_once('=') {
            Some((kid, file)) if !kid.contains('/') && !kid.is_empty() => (Some(kid.to_string()), PathBuf::from(file)),
            _ => (None, PathBuf::from(arg)),
        };
        let found = if file.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
            jwks_file(&file, kid)?
        } else {
            let key = PublicKey::read(&file)?;
            let rsa = matches!(key, PublicKey::Rsa(_));
            rsa_seen |= rsa;
            let alg = keys::signing_alg(&key, requested.filter(|_| rsa), &file)?;
            let kid = kid
                .or_else(|| keys::kid_from_file_name(&file))
                .ok_or_else(|| format!("{}: no kid in the file name; write KID={}", file.display(), file.display()))?;
            vec![key.jwk(&kid, alg)]
        };
        for jwk in found {
            check_jwk(&jwk, &file)?;
            if let Some(kid) = &jwk.kid
                && let Some(i) = document.keys.iter().position(|k| k.kid.as_ref() == Some(kid))
            {
                let earlier = sources.get(i).cloned().unwrap_or_default();
                return Err(format!("kid \"{kid}\" twice: {earlier} and {}", file.display()));
            }
            sources.push(file.display().to_string());
            document.keys.push(jwk);
        }
    }
    if requested.is_some() && !rsa_seen {
        return Err("--alg is for RSA keys, and no RSA PEM key was given".into());
    }
    let json = document.to_json()?;
    // The document as keys.remote reads it: every key usable.
    let set = license_gate::keys::KeySet::from_jwks_document(json.as_bytes(), license_gate::keys::ASYMMETRIC)
        .map_err(|e| format!("license-gate would refuse this JWKS: {e}"))?;
    if set.len() != document.keys.len() {
        return Err("license-gate would leave keys of this JWKS out".into());
    }
    print(&json)
}

/// The public members of the keys in a JWKS (`{"keys": [...]}`) or JWK file.
fn jwks_file(path: &Path, kid: Option<String>) -> Result<Vec<Jwk>, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {}", path.display(), keys::io_reason(&e)))?;
    let value: Value = serde_json::from_slice(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    let items = match &value {
        Value::Object(map) if map.contains_key("keys") => match map.get("keys") {
            Some(Value::Array(items)) => items.clone(),
            _ => return Err(format!("{}: keys is not an array", path.display())),
        },
        Value::Object(_) => vec![value.clone()],
        _ => return Err(format!("{}: not a JWKS or a JWK", path.display())),
    };
    if kid.is_some() && items.len() != 1 {
        return Err(format!("{}: KID= names one key, and the file holds {}", path.display(), items.len()));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let text = |name: &str| item.get(name).and_then(Value::as_str).map(str::to_string);
            let kty = text("kty").ok_or_else(|| format!("{}: keys[{i}] has no kty", path.display()))?;
            if !matches!(kty.as_str(), "RSA" | "EC" | "OKP") {
                return Err(format!("{}: keys[{i}] is a \"{kty}\" key, not a public signing key", path.display()));
            }
            Ok(Jwk {
                kty,
                kid: kid.clone().or_else(|| text("kid")),
                key_use: text("use"),
                alg: text("alg"),
                crv: text("crv"),
                n: text("n"),
                e: text("e"),
                x: text("x"),
                y: text("y"),
            })
        })
        .collect()
}

/// A key as license-gate compiles an inline JWKS key.
fn check_jwk(jwk: &Jwk, file: &Path) -> Result<(), String> {
    let config = serde_json::json!({"issuers": ["licensectl"], "keys": {"jwks": {"keys": [jwk]}}});
    let bytes = serde_json::to_vec(&config).map_err(|e| e.to_string())?;
    match license_gate::config::Config::from_json(&bytes) {
        Ok(_) => Ok(()),
        Err(e) if e.field == "keys" => {
            Err(format!("{}: an encryption key (use: enc), not a signing key", file.display()))
        }
        Err(e) => Err(format!(
            "{}: license-gate would refuse this key: {}{}",
            file.display(),
            e.field
                .strip_prefix("keys.jwks.keys[0]")
                .map(|f| f.trim_start_matches('.'))
                .filter(|f| !f.is_empty())
                .map(|f| format!("{f}: "))
                .unwrap_or_default(),
            e.message
        )),
    }
}

fn revoke(args: &RevokeArgs) -> Result<ExitCode, String> {
    let key = SigningKey::read(&args.key)?;
    let alg = keys::signing_alg(&key.public(), args.alg.map(Alg::algorithm), &args.key)?;
    let now = times::now();
    let revoked = args.ids.iter().map(|id| mint::parse_revoked(id, now)).collect::<Result<Vec<_>, _>>()?;
    let payload = mint::revocation_claims(&args.iss, &revoked, now, args.next_update)?;
    let document = mint::sign_revocations(&key, alg, &args.kid, &payload)?;
    let summary: Vec<String> = revoked
        .iter()
        .map(|r| match r.exp {
            Some(exp) => format!("{} (until {})", r.id, times::rfc3339(exp)),
            None => r.id.clone(),
        })
        .collect();
    eprintln!("licensectl: revoked {}", summary.join(", "));
    print(&format!("{document}\n"))
}

/// For a token argument that names a file: how to pass its contents.
fn file_hint(arg: Option<&str>) -> String {
    match arg {
        Some(arg) if arg != "-" && Path::new(arg).is_file() => {
            format!(" ({arg} is a file: pass its contents, - < {arg})")
        }
        _ => String::new(),
    }
}

/// A token from the argument, or from stdin for `-` or none; `None` when
/// stdin holds nothing.
fn read_token(arg: Option<&str>) -> Result<Option<String>, String> {
    let raw = match arg {
        Some(token) if token != "-" => token.to_string(),
        _ => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprintln!("licensectl: reading the token from stdin (end with Ctrl-D)");
            }
            let mut text = String::new();
            stdin.lock().read_to_string(&mut text).map_err(|e| format!("cannot read stdin: {e}"))?;
            text
        }
    };
    let token = raw.trim();
    let token = match token.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("bearer ") => token.get(7..).unwrap_or_default().trim(),
        _ => token,
    };
    Ok((!token.is_empty()).then(|| token.to_string()))
}

fn inspect(args: &InspectArgs) -> Result<ExitCode, String> {
    let token = read_token(args.token.as_deref())?.ok_or("no token: give TOKEN, or one on stdin")?;
    let decoded = inspect::decode(&token).map_err(|e| format!("{e}{}", file_hint(args.token.as_deref())))?;
    let now = times::now();
    if args.json { print(&inspect::json(&decoded, now)?) } else { print(&inspect::text(&decoded, now)) }
}

fn check(args: &CheckArgs) -> Result<ExitCode, String> {
    let plugin = source::load(&args.config)?;
    let config = gate::compile(&plugin).map_err(|line| {
        if plugin.origin == args.config.display().to_string() { line } else { format!("{}: {line}", plugin.origin) }
    })?;
    let token = if args.no_token { None } else { read_token(args.token.as_deref())? };
    let request = check::Request {
        method: args.method.clone(),
        path: args.path.clone(),
        host: args.host.clone(),
        headers: args.header.clone(),
        token,
        at: args.at.unwrap_or_else(times::now),
        node_id: args.node_id.clone(),
        node_cluster: args.node_cluster.clone(),
        node_metadata: args.node_metadata.clone(),
        jwks: args.jwks.clone(),
        revocations: args.revocations.clone(),
    };
    let mut report = check::run(config, &request)?;
    if let Some(arg) = args.token.as_deref().filter(|a| *a != "-" && Path::new(a).is_file()) {
        report.notes.push(format!("the token argument {arg} is a file: pass its contents (- < {arg})"));
    }
    if args.json {
        print(&check::json(&report)?)?;
    } else {
        print(&check::text(&report))?;
    }
    Ok(if report.forwarded() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// A cluster or namespace name: printable, no spaces, quotes or '#' (it goes
/// into generated YAML, comments included).
fn plain_name(value: &str) -> Result<String, String> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic() && !b"\"'#\\".contains(&b)) {
        return Err("a name of printable characters without spaces, quotes or '#'".into());
    }
    Ok(value.to_string())
}

fn quota(args: &QuotaArgs) -> Result<ExitCode, String> {
    let refused = |line: String| {
        eprintln!("licensectl: {}", one_line(&line));
        Ok(ExitCode::from(1))
    };
    let plugin = source::load(&args.config)?;
    let config = match gate::compile(&plugin) {
        Ok(config) => config,
        Err(line) => return refused(line),
    };
    let manifests = source::manifests(&args.config)?;
    if let Err(why) = quota::check_order(&manifests) {
        return refused(format!("{}: {why}", args.config.display()));
    }
    let mut plans = Vec::new();
    let mut unlimited = Vec::new();
    for (name, plan) in config.policy.plans.iter() {
        match plan.quota {
            Some(q) => plans.push((name.to_string(), q)),
            None => unlimited.push(name.to_string()),
        }
    }
    if plans.is_empty() {
        return refused(format!(
            "{}: no plan has a quota (plans.<name>.quota: {{\"requests_per_second\": N, \"burst\": M}}): nothing to limit",
            plugin.origin
        ));
    }
    let default = match (args.default_requests_per_second, args.default_burst) {
        (Some(rate), Some(burst)) if burst < rate => {
            return Err("--default-burst must be at least --default-requests-per-second".into());
        }
        (Some(requests_per_second), Some(burst)) => Some(license_gate::plans::Quota { requests_per_second, burst }),
        _ => None,
    };
    let plugin_object = manifests.wasm_plugins.first();
    let metadata =
        |field: &str| plugin_object.and_then(|p| p.get("metadata")).and_then(|m| m.get(field)).and_then(Value::as_str);
    let selector = match (plugin_object, plugin_object.and_then(|p| p.pointer("/spec/selector/matchLabels"))) {
        (None, _) => vec![("istio".to_string(), "ingressgateway".to_string())],
        (Some(_), Some(Value::Object(labels))) if !labels.is_empty() => {
            let mut selector = Vec::new();
            for (k, v) in labels {
                let Some(v) = v.as_str() else {
                    return refused(format!("{}: spec.selector.matchLabels.{k} is not a string", plugin.origin));
                };
                selector.push((k.clone(), v.to_string()));
            }
            selector
        }
        (Some(_), _) if matches!(args.format, QuotaFormat::Istio) => {
            return refused(format!(
                "{}: the WasmPlugin has no spec.selector.matchLabels: the EnvoyFilter must select exactly the gateways the plugin runs on (targetRefs are not supported)",
                plugin.origin
            ));
        }
        (Some(_), _) => Vec::new(),
    };
    let settings = quota::Settings {
        plans,
        unlimited,
        tenants: args.tenants,
        default,
        namespace: args
            .namespace
            .clone()
            .or_else(|| metadata("namespace").map(str::to_string))
            .unwrap_or_else(|| "istio-system".into()),
        selector,
        service_cluster: args.service_cluster.clone(),
    };
    let format = match args.format {
        QuotaFormat::Local => quota::Format::Local,
        QuotaFormat::Global => quota::Format::Global,
        QuotaFormat::GlobalFilter => quota::Format::GlobalFilter,
        QuotaFormat::Istio => quota::Format::Istio,
    };
    print(&quota::render(format, &settings))
}

fn config_check(args: &ConfigCheckArgs) -> Result<ExitCode, String> {
    let plugin = source::load(&args.file)?;
    match gate::compile(&plugin) {
        Ok(_) => print("ok\n"),
        Err(line) => {
            print(&format!("{line}\n"))?;
            Ok(ExitCode::from(1))
        }
    }
}
