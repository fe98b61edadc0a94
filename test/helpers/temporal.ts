/** Connections to the run's dev server (see global-setup.ts) for integration tests, made as the CLI makes them. */
import type { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { inject } from 'vitest';
import { connectClient } from '../../lib/temporal-connection.ts';
import { connectWorker } from '../../workers/runtime.ts';

/** A client and a worker connection to this run's dev server. */
export interface TemporalHarness {
  address: string;
  namespace: string;
  client: Client;
  native: NativeConnection;
  close(): Promise<void>;
}

/** Connects a client and a worker connection to the dev server of this run. */
export async function connectHarness(): Promise<TemporalHarness> {
  const target = { address: inject('temporalAddress'), namespace: inject('temporalNamespace') };
  const native = await connectWorker(target);
  const { client, connection } = await connectClient(target);
  return {
    ...target,
    client,
    native,
    async close() {
      await native.close();
      await connection.close();
    },
  };
}
