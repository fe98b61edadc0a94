/**
 * The startup options a restore repeats: what is recorded from a node's getCmdLineOpts (and what never is: secrets,
 * options without meaning for a restore), which arguments each kind of start gets, and a target map's overrides.
 */
import { describe, expect, it } from 'vitest';
import { parseTargetMap } from './restore-types.ts';
import { applyStartupOverrides, startupArgs, startupOptionsFrom, uncarried } from './startup-options.ts';

/** A PSMDB member's getCmdLineOpts.parsed: layout, cache, encryption with a key file, Vault and KMIP, keyFile auth. */
const PARSED = {
  net: { bindIp: '0.0.0.0', port: 27018, tls: { mode: 'disabled' } },
  replication: { replSet: 'rs0', oplogSizeMB: 2048 },
  sharding: { clusterRole: 'shardsvr' },
  storage: {
    dbPath: '/data/db',
    directoryPerDB: true,
    wiredTiger: { engineConfig: { directoryForIndexes: true, cacheSizeGB: 1.5 } },
  },
  security: {
    authorization: 'enabled',
    keyFile: '/etc/mongo/keyfile',
    clusterAuthMode: 'keyFile',
    enableEncryption: true,
    encryptionKeyFile: '/etc/mongo/master.key',
    encryptionCipherMode: 'AES256-GCM',
    kmip: { serverName: 'kmip.example', clientCertificateFile: '/etc/kmip.pem', clientCertificatePassword: 'hunter2' },
  },
  systemLog: { destination: 'file', path: '/var/log/mongod.log' },
};

describe('recording', () => {
  it('records layout, cache, encryption, key management and security by configuration-file name, never a secret', () => {
    const o = startupOptionsFrom(PARSED);
    expect(o).toEqual({
      'storage.directoryPerDB': true,
      'storage.wiredTiger.engineConfig.directoryForIndexes': true,
      'storage.wiredTiger.engineConfig.cacheSizeGB': 1.5,
      'security.enableEncryption': true,
      'security.encryptionKeyFile': '/etc/mongo/master.key',
      'security.encryptionCipherMode': 'AES256-GCM',
      'security.kmip.serverName': 'kmip.example',
      'security.kmip.clientCertificateFile': '/etc/kmip.pem',
      'security.keyFile': '/etc/mongo/keyfile',
      'security.clusterAuthMode': 'keyFile',
      'security.authorization': 'enabled',
    });
    expect(JSON.stringify(o)).not.toContain('hunter2');
  });

  it('a default node records nothing; a keyFile implies authorization, as in mongod; a switch that is off is left out', () => {
    expect(startupOptionsFrom({ storage: { dbPath: '/d' }, net: { port: 1 } })).toEqual({});
    expect(startupOptionsFrom({ security: { keyFile: '/k' } })).toEqual({ 'security.keyFile': '/k', 'security.authorization': 'enabled' });
    expect(startupOptionsFrom({ storage: { directoryPerDB: false } })).toEqual({});
  });
});

describe('arguments per start', () => {
  const o = startupOptionsFrom(PARSED);

  it('a temporary standalone run gets layout, cache and encryption; no access control', () => {
    expect(startupArgs(o, 'temporary')).toEqual([
      '--directoryperdb',
      '--wiredTigerDirectoryForIndexes',
      '--wiredTigerCacheSizeGB', '1.5',
      '--enableEncryption',
      '--encryptionKeyFile', '/etc/mongo/master.key',
      '--encryptionCipherMode', 'AES256-GCM',
      '--kmipServerName', 'kmip.example',
      '--kmipClientCertificateFile', '/etc/kmip.pem',
    ]);
  });

  it('the final start gets everything, keyFile and --auth included', () => {
    const args = startupArgs(o, 'final');
    const temporary = startupArgs(o, 'temporary');
    expect(args.slice(0, temporary.length)).toEqual(temporary);
    expect(args.slice(temporary.length)).toEqual(['--keyFile', '/etc/mongo/keyfile', '--clusterAuthMode', 'keyFile', '--auth']);
  });

  it('x509 cluster authentication is not carried (it needs the new hosts\' TLS settings), and says so', () => {
    const x509 = { 'security.clusterAuthMode': 'x509', 'security.authorization': 'enabled' };
    expect(startupArgs(x509, 'final')).toEqual(['--auth']);
    expect(uncarried(x509)).toEqual([expect.stringMatching(/^security\.clusterAuthMode: x509 \(needs the new hosts' TLS settings/)]);
    expect(uncarried(o)).toEqual([]);
  });
});

describe('target map overrides', () => {
  it('a member names the key file on its host, or leaves an option out with null', () => {
    const map = parseTargetMap({ rs0: [{ host: 'new-a:27017', dbpath: '/data', options: { 'security.keyFile': '/srv/key', 'storage.wiredTiger.engineConfig.cacheSizeGB': null } }] });
    const member = map.rs0![0]!;
    const applied = applyStartupOverrides(startupOptionsFrom(PARSED), member.options);
    expect(applied['security.keyFile']).toBe('/srv/key');
    expect(applied).not.toHaveProperty(['storage.wiredTiger.engineConfig.cacheSizeGB']);
    expect(applied['storage.directoryPerDB']).toBe(true);
  });

  it('refuses an option a restore does not carry, a value of the wrong type and an uncarriable mode, naming the member', () => {
    expect(() => parseTargetMap({ rs0: [{ host: 'a:1', dbpath: '/d', options: { 'net.port': 1 } }] })).toThrow(/target map: rs0\[0\]\.options: "net\.port" is not a startup option a restore carries/);
    expect(() => parseTargetMap({ rs0: [{ host: 'a:1', dbpath: '/d', options: { 'security.keyFile': ['/k'] } }] })).toThrow(/rs0\[0\]\.options\.security\.keyFile must be a string, number, boolean or null/);
    expect(() => parseTargetMap({ rs0: [{ host: 'a:1', dbpath: '/d', options: { 'security.clusterAuthMode': 'x509' } }] })).toThrow(/must be one of keyFile, sendKeyFile/);
    expect(() => parseTargetMap({ rs0: [{ host: 'a:1', dbpath: '/d', options: 'keyFile=/k' }] })).toThrow(/rs0\[0\]\.options must be an object/);
  });
});
