/**
 * The startup options a restore must repeat: what the backed-up mongod ran with (its `getCmdLineOpts`) that changes
 * how its files are read (storage layout, cache, encryption at rest) or who may talk to it (keyFile, authorization).
 * Recorded in the replica-set manifest as `startupOptions`, keyed by mongod's configuration-file name
 * (`storage.directoryPerDB`, `security.keyFile`, ...); a secret is never recorded, only the path of the file holding
 * it. Every mongod a restore starts gets the `every` options (mongod refuses a dbpath whose recorded layout or
 * encryption differs); the final replica-set start also gets the `final` ones, so the restored cluster comes up with
 * access control. A target map member may override any of them (`"options"`, e.g. the key file's path on the new
 * host; `null` leaves one out). Workflow-safe (pure).
 */

/** A recorded option's value, as the configuration file has it. */
export type StartupOptionValue = string | number | boolean;

/** `startupOptions` of a replica-set manifest: configuration-file name → value. */
export type StartupOptions = Record<string, StartupOptionValue>;

/** A target map member's overrides: a value replaces the recorded one, `null` leaves the option out. */
export type StartupOptionOverrides = Record<string, StartupOptionValue | null>;

interface CarriedOption {
  /** mongod's command-line flag. */
  flag: string;
  /** `switch`: a flag without value, given when true; `value`: flag and value. */
  form: 'switch' | 'value';
  /** `every`: every start (temporary standalone runs too); `final`: the replica-set start only. */
  when: 'every' | 'final';
  /** Values a restore can carry (a clusterAuthMode needing TLS cannot be: cutpoint does not carry TLS settings). */
  allowed?: readonly string[];
}

/**
 * Every option cutpoint carries, by configuration-file name. Storage layout and encryption apply to every start:
 * mongod refuses a dbpath whose `storage.bson` layout differs, and an encrypted dbpath cannot be read without its key.
 * Access control applies to the final start only: the temporary standalone runs are local and must let the restore
 * write the replica-set metadata. PSMDB's Vault and KMIP key management are carried by their non-secret settings.
 */
export const CARRIED_STARTUP_OPTIONS: Readonly<Record<string, CarriedOption>> = {
  'storage.directoryPerDB': { flag: '--directoryperdb', form: 'switch', when: 'every' },
  'storage.wiredTiger.engineConfig.directoryForIndexes': { flag: '--wiredTigerDirectoryForIndexes', form: 'switch', when: 'every' },
  'storage.wiredTiger.engineConfig.cacheSizeGB': { flag: '--wiredTigerCacheSizeGB', form: 'value', when: 'every' },
  'security.enableEncryption': { flag: '--enableEncryption', form: 'switch', when: 'every' },
  'security.encryptionKeyFile': { flag: '--encryptionKeyFile', form: 'value', when: 'every' },
  'security.encryptionCipherMode': { flag: '--encryptionCipherMode', form: 'value', when: 'every' },
  'security.vault.serverName': { flag: '--vaultServerName', form: 'value', when: 'every' },
  'security.vault.port': { flag: '--vaultPort', form: 'value', when: 'every' },
  'security.vault.tokenFile': { flag: '--vaultTokenFile', form: 'value', when: 'every' },
  'security.vault.secret': { flag: '--vaultSecret', form: 'value', when: 'every' },
  'security.vault.serverCAFile': { flag: '--vaultServerCAFile', form: 'value', when: 'every' },
  'security.kmip.serverName': { flag: '--kmipServerName', form: 'value', when: 'every' },
  'security.kmip.port': { flag: '--kmipPort', form: 'value', when: 'every' },
  'security.kmip.clientCertificateFile': { flag: '--kmipClientCertificateFile', form: 'value', when: 'every' },
  'security.kmip.serverCAFile': { flag: '--kmipServerCAFile', form: 'value', when: 'every' },
  'security.kmip.keyIdentifier': { flag: '--kmipKeyIdentifier', form: 'value', when: 'every' },
  'security.keyFile': { flag: '--keyFile', form: 'value', when: 'final' },
  'security.clusterAuthMode': { flag: '--clusterAuthMode', form: 'value', when: 'final', allowed: ['keyFile', 'sendKeyFile'] },
  'security.authorization': { flag: '--auth', form: 'switch', when: 'final', allowed: ['enabled', 'disabled'] },
};

/** The value at a dotted path of a parsed configuration document, or undefined. */
function at(doc: unknown, path: string): unknown {
  let v: unknown = doc;
  for (const k of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

/**
 * The options to record, from a node's `getCmdLineOpts.parsed`. A keyFile implies authorization, as in mongod. A
 * switch is recorded only when on; defaults are left out, so a backup of a default node records `{}`.
 */
export function startupOptionsFrom(parsed: unknown): StartupOptions {
  const out: StartupOptions = {};
  for (const [name, o] of Object.entries(CARRIED_STARTUP_OPTIONS)) {
    const v = at(parsed, name);
    if (v === undefined || v === null) continue;
    if (o.form === 'switch' && name !== 'security.authorization') {
      if (v === true || v === 'true') out[name] = true;
      continue;
    }
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[name] = v;
    else if (typeof v === 'object' && typeof (v as { valueOf(): unknown }).valueOf() === 'number') out[name] = Number(v);
  }
  if (out['security.keyFile'] !== undefined && out['security.authorization'] === undefined) out['security.authorization'] = 'enabled';
  return out;
}

/**
 * Checks a target map member's `options` (untrusted JSON): an object of carried option names to a string, number,
 * boolean or null. Errors name the member and the option.
 */
export function parseStartupOverrides(value: unknown, where: string): StartupOptionOverrides {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error(`${where}.options must be an object of startup options, got ${JSON.stringify(value)}`);
  const out: StartupOptionOverrides = {};
  for (const [name, v] of Object.entries(value as Record<string, unknown>)) {
    const o = CARRIED_STARTUP_OPTIONS[name];
    if (!o) throw new Error(`${where}.options: "${name}" is not a startup option a restore carries (carried: ${Object.keys(CARRIED_STARTUP_OPTIONS).join(', ')})`);
    if (v !== null && typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw new Error(`${where}.options.${name} must be a string, number, boolean or null, got ${JSON.stringify(v)}`);
    if (v !== null && o.allowed && !o.allowed.includes(String(v))) throw new Error(`${where}.options.${name} must be one of ${o.allowed.join(', ')}, got ${JSON.stringify(v)}`);
    out[name] = v;
  }
  return out;
}

/** The recorded options with a member's overrides applied. */
export function applyStartupOverrides(recorded: StartupOptions, overrides: StartupOptionOverrides | undefined): StartupOptions {
  const out: StartupOptions = { ...recorded };
  for (const [name, v] of Object.entries(overrides ?? {})) {
    if (v === null) delete out[name];
    else out[name] = v;
  }
  return out;
}

/**
 * mongod's command-line arguments for `options` at one kind of start: `temporary` (a standalone run of the restore:
 * layout and encryption only) or `final` (the replica-set start: everything). An option whose value a restore cannot
 * carry (a clusterAuthMode that needs TLS) is left out; {@link uncarried} names those.
 */
export function startupArgs(options: StartupOptions, start: 'temporary' | 'final'): string[] {
  const args: string[] = [];
  // In the table's order, whatever order the options were recorded or overridden in.
  for (const [name, o] of Object.entries(CARRIED_STARTUP_OPTIONS)) {
    const v = options[name];
    if (v === undefined || (o.when === 'final' && start !== 'final')) continue;
    if (o.allowed && !o.allowed.includes(String(v))) continue;
    if (o.form === 'switch') {
      if (v === true || v === 'true' || v === 'enabled') args.push(o.flag);
    } else args.push(o.flag, String(v));
  }
  return args;
}

/** Recorded options a restore leaves out, with why (shown in the restore's log so nothing is dropped silently). */
export function uncarried(options: StartupOptions): string[] {
  return Object.entries(options)
    .filter(([name, v]) => CARRIED_STARTUP_OPTIONS[name]?.allowed && !CARRIED_STARTUP_OPTIONS[name]!.allowed!.includes(String(v)))
    .map(([name, v]) => `${name}: ${String(v)} (needs the new hosts' TLS settings: configure x509 cluster authentication on them by hand)`);
}
