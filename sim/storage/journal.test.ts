import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Journal, listLogNumbers, logFilePath, readJournal } from './journal.ts';
import { cleanup, tmpDir } from './testkit.ts';

const dirs: string[] = [];
afterEach(() => cleanup(dirs));

function journal(size = 4096): { dir: string; j: Journal } {
  const dir = tmpDir();
  dirs.push(dir);
  return { dir, j: Journal.open(dir, size, false) };
}

describe('journal', () => {
  it('preallocates files, switches when full, and replays from a position', () => {
    const { dir, j } = journal();
    const start = j.position();
    for (let i = 0; i < 100; i++) j.append({ i, pad: 'x'.repeat(50) });
    j.close();
    expect(listLogNumbers(dir).length).toBeGreaterThan(1);
    for (const n of listLogNumbers(dir)) expect(fs.statSync(path.join(dir, logFilePath(n))).size).toBe(4096);
    const replay = readJournal(dir, start, 1);
    expect(replay.records.map((r) => r.i)).toEqual([...Array(100).keys()]);
  });

  it('treats a bad record followed by zeros as a torn write, and one followed by data as corruption', () => {
    const { dir, j } = journal();
    const start = j.position();
    j.append({ i: 1 });
    const torn = j.position();
    j.append({ i: 2 });
    j.close();
    const file = path.join(dir, logFilePath(1));
    const buf = fs.readFileSync(file);
    buf.writeUInt8(buf.readUInt8(torn.offset + 12) ^ 0xff, torn.offset + 12);
    fs.writeFileSync(file, buf);
    expect(readJournal(dir, start, 1).records.map((r) => r.i)).toEqual([1]);

    const j2 = Journal.open(dir, 4096, false); // starts file 2, as after a crash
    j2.close();
    const buf2 = fs.readFileSync(file);
    buf2.write('garbage', torn.offset + 200);
    fs.writeFileSync(file, buf2);
    expect(() => readJournal(dir, start, 1)).toThrow(
      `journal/WiredTigerLog.0000000001 offset ${torn.offset}: checksum mismatch followed by more records`,
    );
  });

  it('names a missing file at the start position and a gap in the sequence', () => {
    const { dir, j } = journal();
    const start = j.position();
    j.switchLog();
    j.switchLog();
    j.close();
    fs.rmSync(path.join(dir, logFilePath(2)));
    expect(() => readJournal(dir, start, 7)).toThrow('journal/WiredTigerLog.0000000002 is missing');
    fs.rmSync(path.join(dir, logFilePath(1)));
    expect(() => readJournal(dir, start, 7)).toThrow(
      'journal/WiredTigerLog.0000000001 is missing: recovery from checkpoint generation 7',
    );
  });
});
