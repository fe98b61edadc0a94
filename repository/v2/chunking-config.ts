/**
 * The chunking a v2 repository records in cutpoint.json when it is created (docs/repository-format.md): fixed-size
 * chunks for WiredTiger data files, content-defined chunks for the journal, SHA-256 chunk ids, zstd compression.
 * A reader takes the parameters from the repository it opens, never from here.
 */
import type { RepositoryConfig } from '../../common/manifest.ts';
import { DEFAULT_CDC_PARAMS, FIXED_CHUNK_BYTES } from './chunker.ts';

export const CHUNKING: NonNullable<RepositoryConfig['chunking']> = {
  fixedBytes: FIXED_CHUNK_BYTES,
  cdc: { ...DEFAULT_CDC_PARAMS },
  hash: 'sha256',
  compression: 'zstd',
};
