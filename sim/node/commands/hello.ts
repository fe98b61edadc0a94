/** `hello` / `isMaster`: handshake and topology, streamed for the driver's awaitable monitor. */
import type { Document } from 'mongodb';
import { MAX_BSON_OBJECT_SIZE, MAX_MESSAGE_SIZE_BYTES, type ConnectionContext } from '../../wire/index.ts';
import type { CommandImpl } from '../types.ts';

/** The fields every mongod 7.0 `hello` carries. */
export function baseHello(command: Document, conn: ConnectionContext): Document {
  return {
    maxBsonObjectSize: MAX_BSON_OBJECT_SIZE,
    maxMessageSizeBytes: MAX_MESSAGE_SIZE_BYTES,
    maxWriteBatchSize: 100_000,
    localTime: new Date(),
    logicalSessionTimeoutMinutes: 30,
    connectionId: conn.id,
    minWireVersion: 0,
    maxWireVersion: 21,
    readOnly: false,
    ...(command.helloOk === true ? { helloOk: true } : {}),
  };
}

/**
 * A router's `hello` / `isMaster` (mongos answers `msg: "isdbgrid"`, which is how drivers and tools tell a mongos from
 * a mongod): shared by the in-process router (sim/cluster/mongos.ts) and the router process (sim/cluster/remote-router.ts).
 */
export function routerHello(name: string, command: Document, conn: ConnectionContext): Document {
  return {
    ...(name === 'hello' ? { isWritablePrimary: true } : { ismaster: true }),
    msg: 'isdbgrid',
    ...baseHello(command, conn),
  };
}

export const hello: CommandImpl = (ctx) =>
  ctx.node.topology.hello(ctx.command, ctx.conn, () => {
    const { node } = ctx;
    const legacy = ctx.name !== 'hello';
    const rs = node.rs
      ? node.rs.helloFields(node)
      : node.options.replSet
        ? { isWritablePrimary: false, secondary: false, info: 'Does not have a valid replica set config', isreplicaset: true }
        : { isWritablePrimary: true };
    const { isWritablePrimary, ...rest } = rs as Document;
    return { ...(legacy ? { ismaster: isWritablePrimary } : { isWritablePrimary }), ...rest, ...baseHello(ctx.command, ctx.conn) };
  });
