/** Scans for secrets in what tests collect (workflow histories, logs). */

/** Paths (`events.3.…`) where `secret` appears in `value`: strings, and byte arrays (payloads) decoded as UTF-8. */
export function whereSecret(value: unknown, secret: string, path = ''): string[] {
  if (typeof value === 'string') return value.includes(secret) ? [path] : [];
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8').includes(secret) ? [path] : [];
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => whereSecret(v, secret, `${path}.${k}`));
  return [];
}
