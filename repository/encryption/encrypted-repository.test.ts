import { describe, expect, it } from 'vitest';
import { checkRepository } from '../check.ts';
import { MemoryStorage } from '../memory-storage.ts';
import { Repository } from '../repository.ts';
import { backup, packOf } from '../testing.ts';
import { sha256Hasher } from '../v2/chunk-id.ts';
import { packPath } from '../v2/pack.ts';
import { pseudoRandomBytes } from '../v2/testing.ts';
import { acquireLock } from '../lock.ts';
import type { ManifestFile } from '../../common/manifest.ts';

/** A cheap scrypt for tests (the product's default costs ~0.1 s per key). */
const scrypt = { N: 1024, r: 8, p: 1 };
const DOC = Buffer.from('{"name":"Alice Secretname","iban":"DE00 1234"}'.repeat(40));
const NOISE = pseudoRandomBytes(200_000, 5);
const FILE = 'collection-17-secretcoll.wt';

function repoWith(storage: MemoryStorage, password: string | undefined): Repository {
  return new Repository(storage, { password: () => password, scrypt });
}

async function encryptedRepo(): Promise<{ storage: MemoryStorage; repo: Repository }> {
  const storage = new MemoryStorage('enc');
  const repo = repoWith(storage, 'correct horse');
  await repo.init(new Date(), { encrypt: true });
  await backup(repo, 'b1', { [FILE]: [DOC, NOISE], 'journal/WiredTigerLog.0000000001': [DOC] });
  return { storage, repo };
}

/** Every stored file's bytes, by path. */
async function snapshot(storage: MemoryStorage): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const p of await storage.list('')) out.set(p, await storage.readFile(p));
  return out;
}

async function readAll(repo: Repository, id: string, file: ManifestFile): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of await repo.openStoredFile(id, 'rs0', file)) parts.push(b);
  return Buffer.concat(parts);
}

describe('encrypted repository', () => {
  it('stores no plaintext: no document bytes, collection or file name, chunk hash or manifest field in any byte', async () => {
    const { storage, repo } = await encryptedRepo();
    await acquireLock(repo.storage, 'backup', { kind: 'shared' });
    const files = await snapshot(storage);
    expect([...files.keys()].some((p) => p.startsWith('data/'))).toBe(true);
    expect([...files.keys()].some((p) => p.startsWith('locks/'))).toBe(true);
    const plainSha = await sha256Hasher(DOC);
    for (const [path, bytes] of files) {
      for (const needle of ['Secretname', 'secretcoll', 'WiredTigerLog', plainSha, 'localhost:27017', '"status"', 'kind', 'backup']) {
        if (path === 'cutpoint.json' || path.startsWith('keys/')) continue;
        expect(bytes.includes(needle), `${path} holds ${needle}`).toBe(false);
      }
      expect(path.includes(plainSha)).toBe(false);
    }
    // cutpoint.json says how to open the rest, and nothing else.
    const config = JSON.parse(files.get('cutpoint.json')!.toString()) as Record<string, unknown>;
    expect(config).toMatchObject({ format: 'cutpoint/v2', chunkHash: 'hmac-sha256', encryption: { type: 'aes-256-gcm', kdf: 'scrypt' } });
  });

  it('reads everything back with the password; chunk ids are keyed (not the SHA-256 of the plaintext)', async () => {
    const { storage } = await encryptedRepo();
    const repo = repoWith(storage, 'correct horse');
    const rm = (await repo.readReplicaSetManifest('b1', 'rs0'))!;
    expect(rm.files[0]!.path).toBe(FILE);
    expect(rm.files[0]!.chunks![0]).toBe(await (await repo.chunkHasher())(DOC));
    expect(rm.files[0]!.chunks![0]).not.toBe(await sha256Hasher(DOC));
    expect((await readAll(repo, 'b1', rm.files[0]!)).equals(Buffer.concat([DOC, NOISE]))).toBe(true);
    expect((await checkRepository(repo, { readData: true })).problems).toEqual([]);
  });

  it('refuses a wrong or missing password with registered codes, writing nothing', async () => {
    const { storage } = await encryptedRepo();
    const before = await snapshot(storage);
    const wrong = repoWith(storage, 'battery staple');
    for (const op of [() => wrong.open(), () => wrong.listBackups().then((l) => { if (l.problems.length) throw new Error(l.problems[0]!.error); }), () => wrong.readClusterManifest('b1'), () => wrong.initWritable(), () => acquireLock(wrong.storage, 'backup', { kind: 'shared' }), () => wrong.storage.writeFile('backups/x/manifest.json', '{}')]) {
      await expect(op()).rejects.toThrow(/wrong password|opens none/);
    }
    await expect(wrong.open()).rejects.toMatchObject({ code: 'REPO_PASSWORD_WRONG' });
    await expect(repoWith(storage, undefined).open()).rejects.toMatchObject({ code: 'REPO_PASSWORD_MISSING', message: expect.stringContaining('CUTPOINT_REPO_PASSWORD') });
    expect(await snapshot(storage)).toEqual(before);
  });

  it('keeps every backup readable across added keys and a password change, and refuses removing the last key', async () => {
    const { storage, repo } = await encryptedRepo();
    const second = await repo.addKey('second password');
    expect((await repo.listKeys()).map((k) => k.id).sort()).toEqual([(await repo.keys())!.keyId, second].sort());
    const dataBefore = [...(await snapshot(storage))].filter(([p]) => !p.startsWith('keys/'));
    const changed = await repo.changePassword('new password');
    // No data rewritten: every object but the key files is byte for byte what it was.
    expect([...(await snapshot(storage))].filter(([p]) => !p.startsWith('keys/'))).toEqual(dataBefore);
    await expect(repoWith(storage, 'correct horse').open()).rejects.toMatchObject({ code: 'REPO_PASSWORD_WRONG' });
    for (const pw of ['new password', 'second password']) {
      const r = repoWith(storage, pw);
      const rm = (await r.readReplicaSetManifest('b1', 'rs0'))!;
      expect((await readAll(r, 'b1', rm.files[0]!)).equals(Buffer.concat([DOC, NOISE]))).toBe(true);
    }
    // With the new key: remove the second; the new one is then the last and cannot go.
    const byNew = repoWith(storage, 'new password');
    await expect(byNew.removeKey(changed.added.slice(0, 10))).rejects.toMatchObject({ code: 'BAD_USAGE', message: expect.stringMatching(/the one this password opened/) });
    await byNew.removeKey(second);
    expect((await byNew.listKeys()).map((k) => k.id)).toEqual([changed.added]);
    await expect(byNew.removeKey(changed.added)).rejects.toMatchObject({ code: 'BAD_USAGE', message: expect.stringMatching(/last key/) });
    expect((await byNew.listKeys()).length).toBe(1);
  });

  it('fails authentication naming the object when one ciphertext byte of a pack, an index or a manifest changes', async () => {
    const { storage, repo } = await encryptedRepo();
    const pack = await packOf(repo.storage, NOISE, await repo.chunkHasher());
    const targets = [packPath(pack.id), `index/${pack.id}.json`, 'backups/b1/rs0/manifest.json'];
    for (const path of targets) {
      const s = new MemoryStorage('t');
      for (const [p, b] of await snapshot(storage)) await s.writeFile(p, b);
      const bytes = await s.readFile(path);
      bytes[bytes.length - 40]! ^= 0x04;
      await s.writeFile(path, bytes);
      const r = repoWith(s, 'correct horse');
      const read = async () => {
        const rm = (await r.readReplicaSetManifest('b1', 'rs0'))!;
        await readAll(r, 'b1', rm.files[0]!);
      };
      await expect(read()).rejects.toMatchObject({ code: 'OBJECT_AUTH_FAILED', message: expect.stringContaining(`memory:t/${path}`) });
    }
  });

  it('repo check --read-data names a tampered pack of an encrypted repository with the backups that need it', async () => {
    const { storage, repo } = await encryptedRepo();
    const pack = await packOf(repo.storage, NOISE, await repo.chunkHasher());
    const path = packPath(pack.id);
    const bytes = await storage.readFile(path);
    bytes[100]! ^= 0x10;
    await storage.writeFile(path, bytes);
    const r = await checkRepository(repoWith(storage, 'correct horse'), { readData: true });
    expect(r.problems).toMatchObject([{ kind: 'pack', object: path, message: expect.stringMatching(/failed authentication/), backups: ['b1'] }]);
  });

  it('a repository without a password stays in the clear; a config stripped of encryption beside key files is refused', async () => {
    const clear = new MemoryStorage('clear');
    const repo = repoWith(clear, undefined);
    await repo.init();
    await backup(repo, 'b1', { [FILE]: [DOC] });
    expect((await clear.readFile('backups/b1/rs0/manifest.json')).includes('secretcoll')).toBe(true);
    expect(await repo.encrypted()).toBe(false);

    const { storage } = await encryptedRepo();
    const config = JSON.parse((await storage.readFile('cutpoint.json')).toString()) as Record<string, unknown>;
    delete config.encryption;
    config.chunkHash = 'sha256';
    await storage.writeFile('cutpoint.json', JSON.stringify(config));
    await expect(repoWith(storage, 'correct horse').listBackups().then((l) => l.backups)).rejects.toMatchObject({ code: 'REPO_CORRUPT', message: expect.stringMatching(/key files/) });
    await expect(repoWith(storage, 'correct horse').storage.writeFile('backups/x/manifest.json', '{}')).rejects.toMatchObject({ code: 'REPO_CORRUPT' });
  });

  it('two processes creating one encrypted repository at once end up with one master key that both use', async () => {
    const storage = new MemoryStorage('race');
    const a = repoWith(storage, 'pw');
    const b = repoWith(storage, 'pw');
    await Promise.all([a.initWritable(), b.initWritable()]);
    // The key of the config that was overwritten may stay (it opens nothing: its master key is not the config's).
    expect((await storage.list('keys')).length).toBeGreaterThanOrEqual(1);
    await backup(a, 'b1', { [FILE]: [DOC] });
    const rm = (await b.readReplicaSetManifest('b1', 'rs0'))!;
    expect((await readAll(b, 'b1', rm.files[0]!)).equals(DOC)).toBe(true);
    expect(await (await a.chunkHasher())(DOC)).toBe(await (await b.chunkHasher())(DOC));
  });

  it('a first backup into an empty location is encrypted when a password is set', async () => {
    const storage = new MemoryStorage('auto');
    const repo = repoWith(storage, 'pw');
    await repo.initWritable();
    expect(await repo.encrypted()).toBe(true);
    expect((await storage.list('keys')).length).toBe(1);
  });
});
