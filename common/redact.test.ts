import { describe, expect, it } from 'vitest';
import { REDACTED, redactJsonText, redactString, redactValue } from './redact.ts';

describe('redactString', () => {
  it.each([
    ['mongodb://backup:s3cr3t@127.0.0.1:27017/admin', `mongodb://backup:${REDACTED}@127.0.0.1:27017/admin`],
    ['mongodb+srv://u:p%40ss@cluster0.example.net/?retryWrites=true', `mongodb+srv://u:${REDACTED}@cluster0.example.net/?retryWrites=true`],
    ['uri=mongodb://a:b@h1:1,h2:2/?replicaSet=rs0 next', `uri=mongodb://a:${REDACTED}@h1:1,h2:2/?replicaSet=rs0 next`],
    ['"mongodb://a:pa:ss@h:1"', `"mongodb://a:${REDACTED}@h:1"`],
    ['mongodb://h:1/?authSource=admin&password=hunter2&x=1', `mongodb://h:1/?authSource=admin&password=${REDACTED}&x=1`],
    // Unencoded '/' and '@' in a password: the userinfo runs to the last '@' before the host list.
    ['mongodb://u:pa/ss@h:1/x', `mongodb://u:${REDACTED}@h:1/x`],
    ['mongodb://u:p@ss/w0rd@h1:1,h2:2/db?x=1', `mongodb://u:${REDACTED}@h1:1,h2:2/db?x=1`],
    // The same inside serialized JSON, where a quote in the password is escaped.
    [JSON.stringify({ u: 'mongodb://u:pa"ss@h:1', next: 'x@y' }), `{"u":"mongodb://u:${REDACTED}@h:1","next":"x@y"}`],
  ])('%s', (input, expected) => {
    expect(redactString(input)).toBe(expected);
    expect(redactString(input)).not.toMatch(/s3cr3t|p%40ss|hunter2|:b@|pa:ss|pa\/ss|w0rd|pa\\"ss/);
  });

  it('leaves text without credentials alone', () => {
    for (const s of ['mongodb://127.0.0.1:27017', 'mongodb://user@h:1/db', 'copied 12 files', 'a:b@c is not a uri']) {
      expect(redactString(s)).toBe(s);
    }
  });
});

describe('redactValue', () => {
  it('redacts secret keys and nested URIs, keeps the rest', () => {
    const input = {
      uri: 'mongodb://root:topsecret@db:27017',
      password: 'x',
      nested: { list: ['mongodb://u:v@h:2'], apiKey: 'k', n: 3 },
      ok: true,
    };
    const out = redactValue(input) as typeof input;
    expect(out).toEqual({
      uri: `mongodb://root:${REDACTED}@db:27017`,
      password: REDACTED,
      nested: { list: [`mongodb://u:${REDACTED}@h:2`], apiKey: REDACTED, n: 3 },
      ok: true,
    });
    expect(input.password).toBe('x'); // no mutation
  });

  it('redacts error messages and survives cycles', () => {
    const err = new Error('connect failed: mongodb://a:hunter2@h:1');
    const cyclic: Record<string, unknown> = { err };
    cyclic.self = cyclic;
    const out = JSON.stringify(redactValue(cyclic));
    expect(out).not.toContain('hunter2');
    expect(out).toContain('[Circular]');
  });

  it('keeps an error\'s name as type, its cause chain and AggregateError errors, all redacted', () => {
    const inner = new TypeError('socket closed: mongodb://a:inner-secret@h:1');
    const outer = new Error('backup failed for mongodb://a:outer-secret@h:1', { cause: inner });
    outer.name = 'BackupError';
    const agg = new AggregateError([outer, new RangeError('mongodb://a:agg-secret@h:2')], 'two shards failed');
    const out = redactValue(agg) as Record<string, unknown>;
    expect(out).toMatchObject({
      type: 'AggregateError',
      message: 'two shards failed',
      errors: [
        {
          type: 'BackupError',
          message: `backup failed for mongodb://a:${REDACTED}@h:1`,
          cause: { type: 'TypeError', message: `socket closed: mongodb://a:${REDACTED}@h:1` },
        },
        { type: 'RangeError', message: `mongodb://a:${REDACTED}@h:2` },
      ],
    });
    expect(JSON.stringify(out)).not.toMatch(/inner-secret|outer-secret|agg-secret/);
  });

  it('follows an enumerable cause (Temporal failures) and non-error causes too', () => {
    const err = Object.assign(new Error('workflow failed'), { cause: { reason: 'mongodb://a:enum-secret@h:1' } });
    const out = redactValue(err) as { cause: unknown };
    expect(out.cause).toEqual({ reason: `mongodb://a:${REDACTED}@h:1` });
  });
});

describe('redactJsonText', () => {
  it('replaces secret members of serialized JSON and URIs inside it', () => {
    const line = JSON.stringify({ a: 1, password: 'p"w', creds: { pwd: 7 }, credentials: { u: 'x', p: 'y' }, u: 'mongodb://a:b@h:1' });
    const out = redactJsonText(line);
    expect(JSON.parse(out)).toEqual({ a: 1, password: REDACTED, creds: { pwd: REDACTED }, credentials: REDACTED, u: `mongodb://a:${REDACTED}@h:1` });
  });
});
