/**
 * Format cutpoint/v2 (docs/repository-format.md section 3): its name and the parameters `cutpoint.json` records, so a reader
 * knows how the chunks of a repository were cut and compressed (changing a chunker parameter changes every chunk id
 * of the files it cuts: deduplication then starts over, correctness does not suffer).
 *
 * @module
 */
import { z } from 'zod';
import { REPOSITORY_FORMAT } from '../../common/manifest.ts';
import { DEFAULT_CDC_PARAMS, FIXED_CHUNK_BYTES } from './chunker.ts';
import { DEFAULT_COMPRESSION_LEVEL } from './zstd.ts';
import { PACK_TARGET_BYTES } from './pack-format.ts';
import { SEGMENT_BYTES } from '../encryption/object-cipher.ts';

/** The `format` of cutpoint.json, manifests and index files of a v2 repository (defined in common/manifest.ts). */
export const REPOSITORY_FORMAT_V2 = REPOSITORY_FORMAT;

/** `cutpoint.json` of a v2 repository. */
export interface RepositoryConfigV2 {
  format: typeof REPOSITORY_FORMAT_V2;
  createdAt: string;
  /** `hmac-sha256` in an encrypted repository (the key is derived from its master key). */
  chunkHash: 'sha256' | 'hmac-sha256';
  /** An encrypted repository's scheme (docs/repository-format.md section 16); absent when not encrypted. */
  encryption?: RepositoryEncryption;
  chunkers: {
    data: { type: 'fixed'; bytes: number };
    'storage.bson': { type: 'fixed'; bytes: number };
    journal: { type: 'fastcdc'; gear: 'cutpoint-gear-sha256'; normalization: 2; minBytes: number; avgBytes: number; maxBytes: number };
  };
  /** `none`: blobs are zstd frames of raw blocks (section 6): a plain copy, readable as any other. */
  compression: { type: 'zstd'; level: number } | { type: 'none' };
  packTargetBytes: number;
}

/** `encryption` of cutpoint.json: segmented AES-256-GCM objects, scrypt-wrapped master key in `keys/`. */
export interface RepositoryEncryption {
  type: 'aes-256-gcm';
  segmentBytes: number;
  kdf: 'scrypt';
  /** Check value of the master key (repository/encryption/keys.ts `keyCheck`): which key files belong. */
  keyCheck: string;
}

/** The configuration a new v2 repository is created with. */
export function defaultRepositoryConfigV2(now: Date, keyCheck?: string, compression: 'zstd' | 'none' = 'zstd'): RepositoryConfigV2 {
  return {
    format: REPOSITORY_FORMAT_V2,
    createdAt: now.toISOString(),
    chunkHash: keyCheck ? 'hmac-sha256' : 'sha256',
    ...(keyCheck ? { encryption: { type: 'aes-256-gcm', segmentBytes: SEGMENT_BYTES, kdf: 'scrypt', keyCheck } as const } : {}),
    chunkers: {
      data: { type: 'fixed', bytes: FIXED_CHUNK_BYTES },
      'storage.bson': { type: 'fixed', bytes: FIXED_CHUNK_BYTES },
      journal: { type: 'fastcdc', gear: 'cutpoint-gear-sha256', normalization: 2, ...DEFAULT_CDC_PARAMS },
    },
    compression: compression === 'none' ? { type: 'none' } : { type: 'zstd', level: DEFAULT_COMPRESSION_LEVEL },
    packTargetBytes: PACK_TARGET_BYTES,
  };
}

const positive = z.int().positive();
const fixed = z.looseObject({ type: z.literal('fixed'), bytes: positive });

/** Validates a v2 `cutpoint.json` (unknown fields are kept; a later v2 may add some). */
export const repositoryConfigV2Schema = z.looseObject({
  format: z.literal(REPOSITORY_FORMAT_V2),
  createdAt: z.iso.datetime({ offset: true }),
  chunkHash: z.enum(['sha256', 'hmac-sha256']),
  encryption: z
    .looseObject({ type: z.literal('aes-256-gcm'), segmentBytes: z.literal(SEGMENT_BYTES), kdf: z.literal('scrypt'), keyCheck: z.string().regex(/^[0-9a-f]{32}$/) })
    .optional(),
  chunkers: z.looseObject({
    data: fixed,
    'storage.bson': fixed,
    journal: z.looseObject({
      type: z.literal('fastcdc'),
      gear: z.literal('cutpoint-gear-sha256'),
      normalization: z.literal(2),
      minBytes: positive,
      avgBytes: positive,
      maxBytes: positive,
    }),
  }),
  compression: z.union([z.looseObject({ type: z.literal('zstd'), level: z.int().min(-7).max(22) }), z.looseObject({ type: z.literal('none') })]),
  packTargetBytes: positive,
}).refine((c) => (c.chunkHash === 'hmac-sha256') === (c.encryption !== undefined), { message: 'chunkHash is hmac-sha256 exactly when the repository is encrypted', path: ['chunkHash'] });

const _config: (x: z.infer<typeof repositoryConfigV2Schema>) => RepositoryConfigV2 = (x) => x;
void _config;
