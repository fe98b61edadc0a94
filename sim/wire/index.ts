/**
 * The simulator's wire layer: a MongoDB wire-protocol server that hands commands to a {@link CommandHandler}.
 * Test helpers (test-handler.ts, test-wire-client.ts) are deliberately not re-exported here; the logger is sim/log.ts.
 */
export { ConnectionContext } from './context.ts';
export type { ConnectionState } from './context.ts';
export {
  CommandError,
  ErrorCodes,
  LocationCodes,
  NOT_PRIMARY_CODES,
  codeNameFor,
  errorReply,
  errorReplyFor,
} from './errors.ts';
export type { CommandErrorOptions, ErrorCodeName } from './errors.ts';
export { ExhaustReply } from './handler.ts';
export type { CommandHandler, ExhaustNext } from './handler.ts';
export {
  MAX_BSON_OBJECT_SIZE,
  MAX_MESSAGE_SIZE_BYTES,
  MAX_REPLY_BODY_SIZE,
  MessageError,
  OpCode,
  OpMsgFlag,
  REQUEST_BSON_OPTIONS,
  firstKey,
  normalizeReply,
} from './protocol.ts';
export type { MessageHeader, WireRequest } from './protocol.ts';
export { WireServer } from './server.ts';
export type { WireServerOptions } from './server.ts';
export { TopologyVersion } from './topology.ts';
