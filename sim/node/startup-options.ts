/**
 * Checks of a node's startup options that mongod makes while it parses its command line, before it touches the dbpath
 * (mongod then exits 2, EXIT_BADOPTIONS): the storage, encryption and security options a restore must repeat
 * (docs/psmdb-behaviour.md section 7.1). The key file's own checks come next (lib/mongo/keyfile.ts, exit 1), and the
 * checks against the dbpath last (storage/startup.ts and storage/keydb.ts: `storage.bson`, `key.db`).
 */
import { CIPHER_MODES } from '../storage/index.ts';
import type { ClusterAuthMode, SimNodeOptions } from './types.ts';

export const CLUSTER_AUTH_MODES: readonly ClusterAuthMode[] = ['keyFile', 'sendKeyFile', 'sendX509', 'x509'];

/** A refused option: mongod's status code and message (the simulator's wording where noted). */
export interface OptionError {
  code: number;
  codeName: string;
  message: string;
}

const badValue = (message: string): OptionError => ({ code: 2, codeName: 'BadValue', message });
const invalidOptions = (message: string): OptionError => ({ code: 72, codeName: 'InvalidOptions', message });

/** The first option mongod would refuse, or undefined. */
export function startupOptionError(o: SimNodeOptions): OptionError | undefined {
  if (o.wiredTigerCacheSizeGB !== undefined) {
    // wiredtiger_global_options.idl: a double, 0.25 <= cacheSizeGB <= 10000 (the simulator's wording).
    const gb = o.wiredTigerCacheSizeGB;
    if (!Number.isFinite(gb) || gb < 0.25 || gb > 10_000) {
      return badValue(`storage.wiredTiger.engineConfig.cacheSizeGB must be a number between 0.25 and 10000, not ${String(gb)}`);
    }
  }
  // mongod_options.cpp: `--oplogSize` must be positive.
  if (o.oplogSizeMB !== undefined && !(Number.isFinite(o.oplogSizeMB) && o.oplogSizeMB > 0)) {
    return badValue(`bad --oplogSize, arg must be greater than 0, found: ${String(o.oplogSizeMB)}`);
  }
  // mongod_options_encryption.idl (PSMDB): both `requires: 'security.enableEncryption'`.
  if (!o.enableEncryption) {
    if (o.encryptionKeyFile !== undefined) return badValue('security.encryptionKeyFile requires security.enableEncryption');
    if (o.encryptionCipherMode !== undefined) return badValue('security.encryptionCipherMode requires security.enableEncryption');
  } else {
    if (o.encryptionCipherMode !== undefined && !CIPHER_MODES.includes(o.encryptionCipherMode)) {
      return invalidOptions('Cipher mode unrecognized');
    }
    if (o.encryptionKeyFile === undefined) {
      // PSMDB needs a master key source: a key file, a Vault or a KMIP server (the simulator's wording).
      return invalidOptions(
        'security.enableEncryption needs a master key: --encryptionKeyFile (or a Vault or KMIP server, which the simulator does not support)',
      );
    }
  }
  if (o.clusterAuthMode !== undefined) {
    if (!CLUSTER_AUTH_MODES.includes(o.clusterAuthMode)) return badValue(`Invalid clusterAuthMode '${String(o.clusterAuthMode)}'`);
    if (o.clusterAuthMode === 'sendX509' || o.clusterAuthMode === 'x509') {
      return badValue(`clusterAuthMode ${o.clusterAuthMode} needs TLS (net.tls), which the simulator does not support`);
    }
    if (o.keyFile === undefined) return badValue(`clusterAuthMode ${o.clusterAuthMode} requires security.keyFile`);
  }
  return undefined;
}
