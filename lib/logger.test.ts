/** Credentials never reach a log line, whichever way a call site hands them to pino or to the Temporal logger. */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, logLevelFromEnv, PinoTemporalLogger } from './logger.ts';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  return { lines, logger: createLogger('trace', stream) };
}

const SECRET = 'Pa55w0rd-do-not-log';
const URI = `mongodb://backup:${SECRET}@10.0.0.5:27017,10.0.0.6:27017/admin?replicaSet=rs0`;

describe('pino logger redaction', () => {
  it('redacts URIs in messages, fields, nested objects, child bindings and errors', () => {
    const { lines, logger } = capture();
    logger.info(`connecting to ${URI}`);
    logger.info({ uri: URI, nested: { list: [URI] } }, 'fields');
    logger.child({ uri: URI, password: SECRET }).warn('child binding');
    logger.error({ err: new Error(`auth failed for ${URI}`) }, 'error object');
    logger.info({ password: SECRET, credentials: { user: 'u', pwd: SECRET } }, 'secret keys');
    logger.info('printf style %s', URI);
    new PinoTemporalLogger(logger).warn(`core says ${URI}`, { target: URI });

    expect(lines).toHaveLength(7);
    for (const line of lines) {
      expect(line).not.toContain(SECRET);
      expect(() => JSON.parse(line) as unknown).not.toThrow();
    }
    expect(lines.join('\n')).toContain('mongodb://backup:***@10.0.0.5:27017');
  });

  it('logs an Error given alone with its message as msg, its type, and its redacted cause chain', () => {
    const { lines, logger } = capture();
    const err = new Error(`cannot back up ${URI}`, { cause: new TypeError(`auth failed for ${URI}`) });
    logger.error(err);
    logger.warn(new AggregateError([err], 'shards failed'), 'explicit message');
    expect(lines).toHaveLength(2);
    const first = JSON.parse(lines[0]!) as { msg: string; err: { type: string; cause: { type: string; message: string } } };
    expect(first.msg).toBe('cannot back up mongodb://backup:***@10.0.0.5:27017,10.0.0.6:27017/admin?replicaSet=rs0');
    expect(first.err.type).toBe('Error');
    expect(first.err.cause).toMatchObject({ type: 'TypeError', message: expect.stringContaining('mongodb://backup:***@') as string });
    const second = JSON.parse(lines[1]!) as { msg: string; err: { type: string; errors: Array<{ cause: unknown }> } };
    expect(second.msg).toBe('explicit message');
    expect(second.err.type).toBe('AggregateError');
    expect(second.err.errors[0]?.cause).toBeDefined();
    for (const line of lines) expect(line).not.toContain(SECRET);
  });

  it('reads CUTPOINT_LOG_LEVEL and rejects nonsense', () => {
    expect(logLevelFromEnv({ CUTPOINT_LOG_LEVEL: 'DEBUG' })).toBe('debug');
    expect(logLevelFromEnv({})).toBe('info');
    expect(() => logLevelFromEnv({ CUTPOINT_LOG_LEVEL: 'loud' })).toThrow(/not a log level/);
  });

  it('honours the level', () => {
    const lines: string[] = [];
    const stream = new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) });
    const logger = createLogger('warn', stream);
    logger.info('hidden');
    logger.warn('shown');
    expect(lines.join('')).toContain('shown');
    expect(lines.join('')).not.toContain('hidden');
  });
});
