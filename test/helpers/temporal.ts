/** Connections to the run's dev server (see global-setup.ts) for integration tests. */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { inject } from 'vitest';
import { installRuntime } from '../../workers/runtime.ts';

export interface TemporalHarness {
  address: string;
  namespace: string;
  client: Client;
  native: NativeConnection;
  close(): Promise<void>;
}

/** Connects a client and a worker connection to the dev server of this run. */
export async function connectHarness(): Promise<TemporalHarness> {
  installRuntime();
  const address = inject('temporalAddress');
  const namespace = inject('temporalNamespace');
  const connection = await Connection.connect({ address });
  const native = await NativeConnection.connect({ address });
  return {
    address,
    namespace,
    client: new Client({ connection, namespace }),
    native,
    async close() {
      await native.close();
      await connection.close();
    },
  };
}
