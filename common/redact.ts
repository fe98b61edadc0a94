/**
 * Credential redaction for anything that may reach a log line, an error message or a CLI print.
 *
 * Pure and deterministic so the same rules serve the pino logger (lib/logger.ts) and error formatting.
 * Two rules: the userinfo of a connection string (`mongodb://user:secret@host`) loses its password, and values
 * under keys that name a secret are replaced whole.
 */

/** The placeholder that replaces a secret. */
export const REDACTED = '***';

// userinfo = everything between "://" and the last "@" before the host list. A password may contain ':', '@', '/' or
// quotes when percent-encoding was forgotten, so the password part is greedy (anything but whitespace and '"', with
// JSON escapes such as \" allowed) and ends at the last '@' that a host list and the end of the authority follow.
// When in doubt this redacts too much (a query string holding an '@'), never too little.
const URI_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/:@"]*):((?:\\\S|[^\s"\\])*)@(?=[^\s@/"]*(?:[/?#\s"',]|$))/gi;
// "user:pass@" inside a URI where the password is absent is harmless; "?password=..." style query options are not.
const QUERY_SECRETS = /([?&](?:password|authMechanismProperties|tlsCertificateKeyFilePassword|sslPEMKeyPassword)=)[^&\s"']*/gi;

const SECRET_KEY_NAMES = 'password|passwd|pwd|secret|token|apikey|api_key|credentials?|authorization|tls_?key|privatekey|private_key|tlsCertificateKeyFilePassword';
const SECRET_KEY = new RegExp(`^(?:${SECRET_KEY_NAMES})$`, 'i');
// A JSON member whose name is a secret key: its value (string, number, literal, or a flat object) is replaced.
const JSON_SECRET_MEMBER = new RegExp(`"(${SECRET_KEY_NAMES})"\\s*:\\s*("(?:[^"\\\\]|\\\\.)*"|\\{[^{}]*\\}|[^,}\\]]+)`, 'gi');

/** Removes credentials from a string (connection strings, query options). */
export function redactString(text: string): string {
  return text
    .replace(URI_CREDENTIALS, (_m, scheme: string, user: string) => `${scheme}${user}:${REDACTED}@`)
    .replace(QUERY_SECRETS, (_m, prefix: string) => `${prefix}${REDACTED}`);
}

/**
 * Redacts serialized JSON text (a finished log line): credentials in URIs and the values of secret-named members.
 * The last line of defence, for values that reached the serializer by a path the object-level rules do not see.
 */
export function redactJsonText(text: string): string {
  return redactString(text).replace(JSON_SECRET_MEMBER, (_m, key: string) => `"${key}":"${REDACTED}"`);
}

/** True when a property name says its value is a secret. */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/**
 * Returns a deep copy of `value` with credentials removed: strings are cleaned with {@link redactString},
 * properties named like secrets are replaced. Errors become plain objects (see {@link redactError}). Cycles and depth
 * are bounded so a log call can never hang.
 */
export function redactValue(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
  if (typeof value === 'string') return redactString(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth > 12 || seen.has(value)) return '[Circular]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1, seen));
  if (value instanceof Error) return redactError(value, depth, seen);
  if (value instanceof URL) return redactString(value.href);
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) {
    // Class instances (Long, Timestamp, Buffer, Date...) carry no credentials of ours; keep them as they are so
    // serializers can render them.
    return value;
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = isSecretKey(k) ? REDACTED : redactValue(v, depth + 1, seen);
  return out;
}

/**
 * An error as a plain, redacted object: `type` (the error's `name`), `message`, `stack`, its own enumerable fields,
 * and, redacted the same way, its `cause` chain and an AggregateError's `errors` (both non-enumerable, so a plain
 * copy would lose them).
 */
function redactError(error: Error, depth: number, seen: WeakSet<object>): Record<string, unknown> {
  const out: Record<string, unknown> = { type: error.name, message: redactString(error.message) };
  if (error.stack) out.stack = redactString(error.stack);
  const errors = (error as { errors?: unknown }).errors;
  for (const [k, v] of Object.entries(error)) {
    if (k === 'cause' || (k === 'errors' && Array.isArray(errors))) continue; // below, whether enumerable or not
    out[k] = isSecretKey(k) ? REDACTED : redactValue(v, depth + 1, seen);
  }
  if (error.cause !== undefined) out.cause = redactValue(error.cause, depth + 1, seen);
  if (Array.isArray(errors)) out.errors = errors.map((e) => redactValue(e, depth + 1, seen));
  return out;
}
