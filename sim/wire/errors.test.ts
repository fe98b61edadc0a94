import { Double } from 'mongodb';
import { describe, expect, it } from 'vitest';
import { CommandError, ErrorCodes, codeNameFor, errorReply, errorReplyFor } from './errors.ts';

describe('codeNameFor', () => {
  it('names the codes of error_codes.yml', () => {
    expect(codeNameFor(2)).toBe('BadValue');
    expect(codeNameFor(43)).toBe('CursorNotFound');
    expect(codeNameFor(125)).toBe('CommandFailed');
    expect(codeNameFor(166)).toBe('CommandNotSupportedOnView');
    expect(codeNameFor(10107)).toBe('NotWritablePrimary');
    expect(codeNameFor(13435)).toBe('NotPrimaryNoSecondaryOk');
    expect(codeNameFor(50915)).toBe('BackupCursorOpenConflictWithCheckpoint');
  });

  it('reports a numeric-only code as Location<code>', () => {
    expect(codeNameFor(40324)).toBe('Location40324');
    expect(codeNameFor(50886)).toBe('Location50886');
  });

  it('has no duplicate codes', () => {
    const codes = Object.values(ErrorCodes);
    expect(new Set(codes).size).toBe(codes.length);
  });
});

describe('CommandError', () => {
  it('builds the reply in mongod field order, with ok as a double', () => {
    const error = new CommandError(ErrorCodes.NamespaceNotFound, 'ns not found', {
      errorLabels: ['RetryableWriteError'],
      extra: { topologyVersion: { counter: 1 } },
    });
    const reply = errorReplyFor(error);
    expect(Object.keys(reply)).toEqual(['ok', 'errmsg', 'code', 'codeName', 'topologyVersion', 'errorLabels']);
    expect(reply.ok).toBeInstanceOf(Double);
    expect(reply).toMatchObject({ errmsg: 'ns not found', code: 26, codeName: 'NamespaceNotFound' });
    expect(reply.errorLabels).toEqual(['RetryableWriteError']);
  });

  it('allows overriding codeName (older builds report Location50915)', () => {
    expect(new CommandError(50915, 'x', { codeName: 'Location50915' }).toReply().codeName).toBe('Location50915');
  });

  it('omits errorLabels when there are none', () => {
    expect('errorLabels' in errorReply(2, 'bad')).toBe(false);
  });

  it('turns any other error into 8 UnknownError', () => {
    expect(errorReplyFor(new TypeError('oops'))).toMatchObject({ code: 8, codeName: 'UnknownError', errmsg: 'oops' });
    expect(errorReplyFor('plain string')).toMatchObject({ code: 8, errmsg: 'plain string' });
  });
});
